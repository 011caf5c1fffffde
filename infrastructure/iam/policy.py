"""An IAM policy statement evaluator: does a set of statements allow one request?

It decides a request (action, resource ARN, principal, context keys) against IAM JSON
statements whose CloudFormation intrinsics are already resolved (``template.py`` does that),
the way AWS documents it:

- Evaluation logic (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
  an explicit ``Deny`` in any statement wins; otherwise an ``Allow`` allows; otherwise the
  request is implicitly denied.
- A statement applies when its ``Action``/``NotAction``, ``Resource``/``NotResource``,
  ``Principal``/``NotPrincipal`` and ``Condition`` all match
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html).
  Action names are matched case-insensitively, resource ARNs case-sensitively, both with the
  ``*`` and ``?`` wildcards
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
- Conditions (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html):
  operators and keys are AND'ed, the values of one key OR'ed (NOR for a negated operator);
  a key missing from the request context makes the condition false, except for negated
  operators (true), ``...IfExists`` (true) and ``Null``. Set operators
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html):
  ``ForAnyValue`` is false for a missing or empty key, ``ForAllValues`` true.
- Policy variables ``${aws:...}`` in ``Resource`` and in string/ARN condition values are
  replaced from the request context; a variable without a value matches nothing
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).

Permissions boundaries, SCPs and session policies are not modelled: the local mode and the
policy contract tests evaluate one identity or resource policy at a time.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

Decision = Literal["Allow", "ExplicitDeny", "ImplicitDeny"]
ContextValue = str | list[str]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_NO_VALUE = "\x00aios:no-value\x00"  # what a variable without a value becomes: equal to nothing
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Request:
    """One authorization request.

    ``principal`` is the caller as a resource policy sees it (``{"Service": "logs.amazonaws.com"}``,
    ``{"AWS": "arn:aws:iam::123456789012:role/x"}``); ``None`` for identity policies, where
    statements carry no ``Principal``. ``context`` holds condition keys (names are
    case-insensitive, values strings or lists of strings for multivalued keys).
    """

    action: str
    resource: str
    principal: Mapping[str, str | list[str]] | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)


def evaluate(statements: Sequence[Mapping[str, Any]], request: Request) -> Decision:
    """The decision of ``statements`` on ``request``: a matching Deny beats any Allow."""
    context = _Context(request.context)
    allowed = False
    for statement in statements:
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise ValueError(f"statement has no valid Effect: {statement!r}")
        if not _applies(statement, request, context):
            continue
        if effect == "Deny":
            return "ExplicitDeny"
        allowed = True
    return "Allow" if allowed else "ImplicitDeny"


def allows(statements: Sequence[Mapping[str, Any]], request: Request) -> bool:
    return evaluate(statements, request) == "Allow"


def statements_of(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statements of a policy document (``Statement`` may be one object or a list)."""
    statement = document.get("Statement", [])
    return [dict(statement)] if isinstance(statement, Mapping) else [dict(s) for s in statement]


# --- elements ----------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _applies(statement: Mapping[str, Any], request: Request, context: _Context) -> bool:
    return (
        _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource, context)
        and _principal_matches(statement, request.principal)
        and _conditions_hold(statement.get("Condition", {}), context)
    )


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(
            _glob(pattern, ignore_case=True).fullmatch(action) for pattern in _as_list(statement["Action"])
        )
    if "NotAction" in statement:
        return not any(
            _glob(pattern, ignore_case=True).fullmatch(action) for pattern in _as_list(statement["NotAction"])
        )
    raise ValueError(f"statement has neither Action nor NotAction: {statement!r}")


def _resource_matches(statement: Mapping[str, Any], resource: str, context: _Context) -> bool:
    def matches(patterns: Any) -> bool:
        return any(
            _glob(context.substitute(str(pattern), wildcards=True)).fullmatch(resource)
            for pattern in _as_list(patterns)
        )

    if "Resource" in statement:
        return matches(statement["Resource"])
    if "NotResource" in statement:
        return not matches(statement["NotResource"])
    # A resource policy may omit Resource (it is the resource itself, e.g. a Lambda permission).
    return True


def _principal_matches(statement: Mapping[str, Any], principal: Mapping[str, Any] | None) -> bool:
    if "Principal" in statement:
        return _principal_in(statement["Principal"], principal)
    if "NotPrincipal" in statement:
        return not _principal_in(statement["NotPrincipal"], principal)
    return True  # identity policies name no principal: the policy's holder is the principal


def _principal_in(element: Any, principal: Mapping[str, Any] | None) -> bool:
    """Whether ``principal`` is one of those ``element`` names.

    ``"*"`` and ``{"AWS": "*"}`` name everyone (anonymous included); an account (``123456789012``
    or ``arn:aws:iam::123456789012:root``) names every principal of that account
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
    """
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        raise ValueError(f"invalid Principal element: {element!r}")
    if "*" in _as_list(element.get("AWS", [])):
        return True
    if principal is None:
        return False
    return any(
        _principal_names_match(kind, str(w), str(g))
        for kind, names in element.items()
        for w in _as_list(names)
        for g in _as_list(principal.get(kind, []))
    )


def _principal_names_match(kind: str, wanted: str, given: str) -> bool:
    if kind == "AWS":
        return _aws_principal_matches(wanted, given)
    if kind == "Service":
        return wanted.lower() == given.lower()
    return wanted == given


def _aws_principal_matches(wanted: str, given: str) -> bool:
    if wanted == given:
        return True
    account = wanted if _ACCOUNT.match(wanted) else _root_account(wanted)
    if account is None:
        return False
    given_account = given if _ACCOUNT.match(given) else _arn_account(given)
    return given_account == account


def _root_account(arn: str) -> str | None:
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "iam" and parts[5] == "root" and _ACCOUNT.match(parts[4]):
        return parts[4]
    return None


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else None


# --- conditions ----------------------------------------------------------------------------


class _Context:
    """The request context with case-insensitive key names."""

    def __init__(self, values: Mapping[str, ContextValue]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in values.items():
            items = value if isinstance(value, list | tuple) else [value]
            self._values[key.lower()] = [_text(item) for item in items]

    def get(self, key: str) -> list[str] | None:
        return self._values.get(key.lower())

    def substitute(self, value: str, *, wildcards: bool = False) -> str:
        """``value`` with its policy variables replaced (``${*}``, ``${?}``, ``${$}`` are literals)."""
        if "${" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in ("*", "?", "$"):
                return _LITERAL_MARKS[name] if wildcards else name
            key, _, default = name.partition(",")
            found = self.get(key.strip())
            if found and len(found) == 1:
                return _escape_glob(found[0]) if wildcards else found[0]
            default = default.strip()
            if len(default) >= 2 and default[0] == default[-1] == "'":
                return default[1:-1]
            return _NO_VALUE

        return _VARIABLE.sub(replace, value)


_LITERAL_MARKS = {"*": "\x01", "?": "\x02", "$": "$"}


def _escape_glob(value: str) -> str:
    return value.replace("*", "\x01").replace("?", "\x02")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


Comparer = Callable[[str, str], bool]


def _string_equals(policy: str, actual: str) -> bool:
    return policy == actual


def _string_equals_ignore_case(policy: str, actual: str) -> bool:
    return policy.lower() == actual.lower()


def _string_like(policy: str, actual: str) -> bool:
    return _glob(policy).fullmatch(actual) is not None


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _numeric(compare: Callable[[float, float], bool]) -> Comparer:
    def comparer(policy: str, actual: str) -> bool:
        p, a = _number(policy), _number(actual)
        return p is not None and a is not None and compare(a, p)

    return comparer


def _date_value(value: str) -> float | None:
    number = _number(value)
    if number is not None:
        return number  # epoch seconds
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _date(compare: Callable[[float, float], bool]) -> Comparer:
    def comparer(policy: str, actual: str) -> bool:
        p, a = _date_value(policy), _date_value(actual)
        return p is not None and a is not None and compare(a, p)

    return comparer


def _bool(policy: str, actual: str) -> bool:
    return policy.lower() == actual.lower()


def _binary(policy: str, actual: str) -> bool:
    try:
        return base64.b64decode(policy, validate=True) == base64.b64decode(actual, validate=True)
    except ValueError:
        return False


def _ip_address(policy: str, actual: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(policy, strict=False)
    except ValueError:
        return False


def _arn_like(policy: str, actual: str) -> bool:
    """Each of the six colon-separated parts matched on its own, with wildcards (ArnEquals = ArnLike)."""
    wanted, given = policy.split(":", 5), actual.split(":", 5)
    if len(wanted) != 6 or len(given) != 6:
        return False
    return all(_glob(w).fullmatch(g) is not None for w, g in zip(wanted, given, strict=True))


#: operator name -> (comparer, negated, takes policy variables)
_OPERATORS: dict[str, tuple[Comparer, bool, bool]] = {
    "StringEquals": (_string_equals, False, True),
    "StringNotEquals": (_string_equals, True, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False, True),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True, True),
    "StringLike": (_string_like, False, True),
    "StringNotLike": (_string_like, True, True),
    "NumericEquals": (_numeric(lambda a, p: a == p), False, False),
    "NumericNotEquals": (_numeric(lambda a, p: a == p), True, False),
    "NumericLessThan": (_numeric(lambda a, p: a < p), False, False),
    "NumericLessThanEquals": (_numeric(lambda a, p: a <= p), False, False),
    "NumericGreaterThan": (_numeric(lambda a, p: a > p), False, False),
    "NumericGreaterThanEquals": (_numeric(lambda a, p: a >= p), False, False),
    "DateEquals": (_date(lambda a, p: a == p), False, False),
    "DateNotEquals": (_date(lambda a, p: a == p), True, False),
    "DateLessThan": (_date(lambda a, p: a < p), False, False),
    "DateLessThanEquals": (_date(lambda a, p: a <= p), False, False),
    "DateGreaterThan": (_date(lambda a, p: a > p), False, False),
    "DateGreaterThanEquals": (_date(lambda a, p: a >= p), False, False),
    "Bool": (_bool, False, True),
    "BinaryEquals": (_binary, False, False),
    "IpAddress": (_ip_address, False, False),
    "NotIpAddress": (_ip_address, True, False),
    "ArnEquals": (_arn_like, False, True),
    "ArnLike": (_arn_like, False, True),
    "ArnNotEquals": (_arn_like, True, True),
    "ArnNotLike": (_arn_like, True, True),
}


def _conditions_hold(block: Mapping[str, Any], context: _Context) -> bool:
    return all(
        _condition_holds(operator, key, values, context)
        for operator, keys in block.items()
        for key, values in keys.items()
    )


def _condition_holds(operator: str, key: str, values: Any, context: _Context) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise ValueError(f"unknown condition set operator {operator!r}")
    policy_values = [_text(v) for v in _as_list(values)]
    actual = context.get(key)

    if name == "Null":
        # "true": the key must be absent; "false": present (with a value).
        present = bool(actual)
        return all((v.lower() == "true") != present for v in policy_values) if policy_values else True

    if_exists = name.endswith("IfExists")
    base = name.removesuffix("IfExists") if if_exists else name
    if base not in _OPERATORS:
        raise ValueError(f"unknown condition operator {operator!r}")
    comparer, negated, variables = _OPERATORS[base]
    if variables:
        policy_values = [context.substitute(v) for v in policy_values]

    def single(value: str) -> bool:
        matched = any(comparer(p, value) for p in policy_values)  # values OR'ed
        return not matched if negated else matched  # NOR for a negated operator

    if qualifier == "ForAllValues":
        return all(single(v) for v in actual or [])  # true when missing or empty
    if qualifier == "ForAnyValue":
        return any(single(v) for v in actual or [])  # false when missing or empty
    if actual is None or not actual:
        return if_exists or negated
    # A single-valued operator on a multivalued key: any of its values decides.
    return any(single(v) for v in actual) if not negated else all(single(v) for v in actual)


@lru_cache(maxsize=4096)
def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` one character; everything else literal."""
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char == "\x01":
            parts.append(re.escape("*"))
        elif char == "\x02":
            parts.append(re.escape("?"))
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def actions_of(statements: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every ``Action`` pattern the statements name (for reports and tests)."""
    return {str(a) for s in statements for a in _as_list(s.get("Action", []))}


__all__ = ["Decision", "Request", "actions_of", "allows", "evaluate", "statements_of"]
