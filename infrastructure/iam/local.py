"""The local mode's IAM: each function's synthesized role policy, as a file its worker enforces.

``policy_files(platform, names=...)`` synthesizes ``platform`` with the CDK app's own stacks
(``infrastructure.app.AiosStacks``, in process, into a temp outdir), takes each function's
role from the template (``AWS::Lambda::Function.Role``), gathers the statements attached to
it (``AWS::IAM::Policy`` and ``AWS::IAM::ManagedPolicy`` resources naming the role, the role's
inline ``Policies``), resolves their intrinsics (``template.resolve_intrinsics``, with the
stacks' exports) for the local account and region, and writes one JSON file per function
(``enforce.FunctionPolicy``). The statements are the template's, not a second derivation
from the platform description: a grant CDK does not synthesize is denied locally.

Names: CDK names resources ``aios-<stage>-<part>`` (``DeploymentSettings.name``), the local
mode ``aios-local-<part>`` (``LocalNames.name``); resolved values are renamed from one to the
other, which is the only difference between the two namings.

Synthesis takes 15-30 s; its result is cached under ``.aios/iam/<key>/``, keyed by a hash
of the platform description, the CDK code (``infrastructure/``), ``cdk.json``, the state
machine definitions and the aws-cdk-lib version, so later starts read files (<1 s).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from infrastructure.iam.enforce import FunctionPolicy
from infrastructure.iam.policy import statements_of
from infrastructure.iam.requests import service_data
from infrastructure.iam.template import exports_of, resolve_intrinsics
from infrastructure.local.deploy import LocalNames
from infrastructure.platform.spec import REPO_ROOT, Platform

LOG = logging.getLogger("aios.iam")
IAM_ENV = "AIOS_LOCAL_IAM"
CACHE_DIR = REPO_ROOT / ".aios" / "iam"
IamMode = Literal["enforce", "off"]
_INPUTS = ("infrastructure", "statemachines", "cdk.json")
_FORMAT = 3  # bump when the policy file format changes
STATE_MACHINES_FILE = "_state-machines.json"
IAM_DATA_FILE = "_iam-data.json"


def iam_mode(environ: Mapping[str, str]) -> IamMode:
    """``AIOS_LOCAL_IAM``: ``enforce`` (default) or ``off``."""
    value = environ.get(IAM_ENV, "enforce").strip().lower() or "enforce"
    if value not in ("enforce", "off"):
        raise ValueError(f"{IAM_ENV} must be 'enforce' or 'off', not {value!r}")
    return "enforce" if value == "enforce" else "off"


def cache_key(platform: Platform) -> str:
    digest = hashlib.sha256()
    digest.update(f"format={_FORMAT} aws-cdk-lib={version('aws-cdk-lib')}\n".encode())
    digest.update(platform.model_dump_json().encode())
    for root in _INPUTS:
        path = REPO_ROOT / root
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if file.suffix in (".py", ".json") and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(REPO_ROOT)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def synthesize(platform: Platform) -> tuple[dict[str, dict[str, Any]], str]:
    """The templates CDK synthesizes for ``platform`` (stack name -> template) and the stage."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk  # noqa: PLC0415 - jsii starts Node: only when a synth is needed

    from infrastructure.app import AiosStacks  # noqa: PLC0415
    from infrastructure.settings import DeploymentSettings, cdk_json_context  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="aios-iam-synth-") as outdir:
        # No asset bundling: the policies do not depend on what the assets hold, and bundling the
        # layer is most of a synth's time ("aws:cdk:bundling-stacks" lists the stacks that bundle).
        app = cdk.App(outdir=outdir, context={**cdk_json_context(), "aws:cdk:bundling-stacks": []})
        settings = DeploymentSettings.from_app(app)
        stacks = AiosStacks(app, platform=platform, settings=settings)
        assembly = app.synth()
        templates = {
            stack.stack_name: dict(assembly.get_stack_by_name(stack.stack_name).template)
            for stack in stacks.all
        }
    return templates, settings.stage


def synthesize_in_child(platform: Platform) -> tuple[dict[str, dict[str, Any]], str]:
    """``synthesize`` in a child process, which leaves without jsii's shutdown (about 10 s)
    and keeps Node out of the local mode's process."""
    with tempfile.TemporaryDirectory(prefix="aios-iam-") as work:
        request, result = Path(work) / "platform.pickle", Path(work) / "templates.json"
        request.write_bytes(pickle.dumps(platform))
        subprocess.run(  # noqa: S603 - this module, with our interpreter
            [sys.executable, "-m", "infrastructure.iam.local", str(request), str(result)],
            cwd=REPO_ROOT,
            check=True,
            stdout=sys.stderr,  # the local mode's stdout carries its ready line
        )
        data = json.loads(result.read_text(encoding="utf-8"))
    return data["templates"], str(data["stage"])


def _child_main(request: str, result: str) -> None:
    platform = pickle.loads(Path(request).read_bytes())  # noqa: S301 - our own file, just written
    templates, stage = synthesize(platform)
    Path(result).write_text(json.dumps({"templates": templates, "stage": stage}), encoding="utf-8")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip jsii's kernel shutdown: the result is written


def function_policies(
    templates: Mapping[str, Mapping[str, Any]], *, stage: str, names: LocalNames
) -> dict[str, FunctionPolicy]:
    """Each function's role statements, resolved to local names (function name -> policy)."""
    return _policies(templates, stage=stage, names=names, kind="AWS::Lambda::Function")


def state_machine_policies(
    templates: Mapping[str, Mapping[str, Any]], *, stage: str, names: LocalNames
) -> dict[str, FunctionPolicy]:
    """Each state machine's role statements, resolved to local names (workflow name -> policy)."""
    return _policies(templates, stage=stage, names=names, kind="AWS::StepFunctions::StateMachine")


_SHAPES = {
    "AWS::Lambda::Function": ("Role", "FunctionName"),
    "AWS::StepFunctions::StateMachine": ("RoleArn", "StateMachineName"),
}


def _policies(
    templates: Mapping[str, Mapping[str, Any]], *, stage: str, names: LocalNames, kind: str
) -> dict[str, FunctionPolicy]:
    exports = exports_of(templates, account=names.account, region=names.region)
    cdk_prefix, local_prefix = f"aios-{stage}-", f"aios-{names.stage}-"
    role_property, name_property = _SHAPES[kind]
    policies: dict[str, FunctionPolicy] = {}
    for stack_name, template in templates.items():

        def resolve(value: Any, template: Mapping[str, Any] = template, stack: str = stack_name) -> Any:
            resolved = resolve_intrinsics(
                value, template, account=names.account, region=names.region, exports=exports, stack_name=stack
            )
            return _rename(resolved, cdk_prefix, local_prefix)

        resources: Mapping[str, Any] = template.get("Resources", {})
        for logical_id, resource in resources.items():
            if resource.get("Type") != kind:
                continue
            properties = resource.get("Properties", {})
            role_id = _role_id(properties.get(role_property))
            if role_id is None:
                continue
            physical = str(resolve(properties.get(name_property, logical_id)))
            name = physical.removeprefix(local_prefix)
            statements, sources = _role_statements(resources, role_id, resolve)
            policies[name] = FunctionPolicy(
                function=physical,
                role_arn=names.role_arn.rpartition("/")[0] + f"/{local_prefix}{name}",
                account=names.account,
                region=names.region,
                statements=statements,
                source={"stack": stack_name, "resource": logical_id, "role": role_id, "policies": sources},
            )
    return policies


def _role_id(role: Any) -> str | None:
    if isinstance(role, Mapping) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else str(target).partition(".")[0])
    return None


def _names_role(roles: Any, role_id: str) -> bool:
    return any(isinstance(r, Mapping) and r.get("Ref") == role_id for r in roles or [])


def _role_statements(
    resources: Mapping[str, Any], role_id: str, resolve: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    statements: list[dict[str, Any]] = []
    sources: list[str] = []
    role = resources[role_id].get("Properties", {})
    for inline in role.get("Policies", []):
        statements += statements_of(resolve(inline["PolicyDocument"]))
        sources.append(f"{role_id}.Policies.{inline.get('PolicyName')}")
    for managed in role.get("ManagedPolicyArns", []):
        # AWS-managed policies are not in the template; ours are (below). Say so, do not guess.
        LOG.info("aios iam: %s attaches %s, whose statements are not in the template", role_id, managed)
    for logical_id, resource in resources.items():
        if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and _names_role(
            resource.get("Properties", {}).get("Roles"), role_id
        ):
            statements += statements_of(resolve(resource["Properties"]["PolicyDocument"]))
            sources.append(logical_id)
    return statements, sources


def _rename(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_rename(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, old, new) for k, v in value.items()}
    return value


def policy_files(
    platform: Platform,
    *,
    names: LocalNames | None = None,
    platform_ref: str | None = None,
    cache_dir: Path = CACHE_DIR,
) -> dict[str, Path]:
    """Write (or find cached) each function's policy file: function spec name -> path."""
    names = names or LocalNames()
    key = cache_key(platform)
    directory = cache_dir / f"{key}-{names.stage}-{names.account}-{names.region}"
    wanted = {spec.name: directory / f"{spec.name}.json" for spec in platform.functions}
    if all(path.is_file() for path in wanted.values()) and (directory / STATE_MACHINES_FILE).is_file():
        return wanted
    LOG.info("aios iam: synthesizing %s to read its role policies", platform_ref or "the platform")
    templates, stage = synthesize_in_child(platform)
    policies = function_policies(templates, stage=stage, names=names)
    missing = set(wanted) - set(policies)
    if missing:
        raise RuntimeError(f"the synthesized templates have no function for {sorted(missing)}")
    machines = state_machine_policies(templates, stage=stage, names=names)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=_ensure(cache_dir)))
    (staging / IAM_DATA_FILE).write_text(json.dumps(service_data()), encoding="utf-8")
    for name in wanted:
        policy = dataclasses.replace(policies[name], iam_data=str(directory / IAM_DATA_FILE))
        (staging / f"{name}.json").write_text(json.dumps(policy.to_json(), indent=1), encoding="utf-8")
    (staging / STATE_MACHINES_FILE).write_text(
        json.dumps({names.state_machine_arn(n): p.to_json() for n, p in machines.items()}, indent=1),
        encoding="utf-8",
    )
    try:
        staging.rename(directory)  # atomic: two starts racing both end with complete files
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(cache_dir, keep=directory)
    return wanted


def _prune(cache_dir: Path, *, keep: Path, newest: int = 8) -> None:
    """Drop all but the newest few cached syntheses (each edit of infrastructure/ makes a new one)."""
    entries = sorted(
        (d for d in cache_dir.iterdir() if d.is_dir() and not d.name.startswith(".") and d != keep),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for stale in entries[newest - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)


def load_state_machine_policies(function_files: Mapping[str, Path]) -> dict[str, FunctionPolicy]:
    """The state machines' role policies written beside ``policy_files``' output (ARN -> policy)."""
    directory = next(iter(function_files.values())).parent
    data = json.loads((directory / STATE_MACHINES_FILE).read_text(encoding="utf-8"))
    return {arn: FunctionPolicy.from_json(policy) for arn, policy in data.items()}


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


__all__ = [
    "IAM_ENV",
    "IamMode",
    "cache_key",
    "function_policies",
    "iam_mode",
    "load_state_machine_policies",
    "policy_files",
    "state_machine_policies",
    "synthesize",
]


if __name__ == "__main__":
    sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "layers" / "aios" / "python")]
    _child_main(sys.argv[1], sys.argv[2])
