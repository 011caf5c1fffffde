"""Published Lambda versions in the local mode: each runs the code and configuration it was
published with (https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html: a
version is an immutable snapshot of the function's code and settings), and an alias invokes
the version it points to.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from infrastructure.local.lambda_runtime import worker_environment
from infrastructure.platform.spec import REPO_ROOT
from tests.integration.local.conftest import Aws


def _invoke(aws: Aws, name: str) -> tuple[dict[str, Any], str]:
    answer = aws.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    return json.loads(answer["Payload"].read()), answer["ExecutedVersion"]


def test_each_version_keeps_its_configuration_and_an_alias_follows(aws: Aws) -> None:
    lambda_ = aws.client("lambda")
    name = "aios-test-probe"
    # Given two versions published with different configuration
    lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": {"MARKER": "one"}})
    assert lambda_.publish_version(FunctionName=name)["Version"] == "1"
    lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": {"MARKER": "two"}})
    assert lambda_.publish_version(FunctionName=name)["Version"] == "2"
    lambda_.create_alias(FunctionName=name, Name="live", FunctionVersion="1")

    # When each version and the alias are invoked
    one, one_version = _invoke(aws, f"{name}:1")
    two, two_version = _invoke(aws, f"{name}:2")
    live, live_version = _invoke(aws, f"{name}:live")

    # Then each runs its own configuration, in environments of its own
    assert (one["environment"]["MARKER"], one_version) == ("one", "1")
    assert (two["environment"]["MARKER"], two_version) == ("two", "2")
    assert (live["environment"]["MARKER"], live_version) == ("one", "1")
    assert one["pid"] != two["pid"]
    # ... and moving the alias moves its invocations
    lambda_.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    moved, moved_version = _invoke(aws, f"{name}:live")
    assert (moved["environment"]["MARKER"], moved_version) == ("two", "2")


def test_a_version_runs_a_copy_of_the_code_it_was_published_with(aws: Aws) -> None:
    name = "aios-test-callback"
    lambda_ = aws.client("lambda")
    lambda_.update_function_configuration(FunctionName=name, Description="v1")
    version = lambda_.publish_version(FunctionName=name)["Version"]
    published = aws.runtime.find(name, version)
    assert published is not None and published.version == version
    handler = published.code_root / "functions" / published.spec.code / "handler.py"
    original = REPO_ROOT / "functions" / published.spec.code / "handler.py"
    assert handler.read_bytes() == original.read_bytes()
    assert published.code_root != REPO_ROOT
    # The worker imports the copy first (its cwd, then PYTHONPATH), and says which version it is
    environment = worker_environment(
        dataclasses.replace(published, environment={}), aws_endpoint=aws.url, region="us-east-1"
    )
    assert environment["PYTHONPATH"].split(":")[0] == str(published.code_root)
    assert environment["AWS_LAMBDA_FUNCTION_VERSION"] == version
