"""The README's worked example (``worked_example.py``) runs: its class yields the request
model, the dispatch and the Lambda handler; its one platform line yields a function the
platform accepts, with the connector's secret, circuit, idempotency and lineage access.
No sockets: httpx.MockTransport stands in for the CRM."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import ValidationError

from aios.connectors import ConnectorSecret, Credentials
from aios.connectors.kit import Connector
from aios.errors import ConnectorRejected, ConnectorUnavailable, ValidationFailed
from infrastructure.platform.default import PLATFORM
from infrastructure.platform.spec import Access, Platform
from tests.lambda_context import LambdaContext
from tests.unit.connectors import worked_example as crm

T = TypeVar("T")
README = Path(__file__).resolve().parents[3] / "functions" / "connectors" / "README.md"
VENDOR = {"id": "V-1", "display_name": "Acme Industrial Supply", "tier": "gold"}


class StaticCredentials(Credentials):
    """Secrets as an operator wrote them, without Secrets Manager."""

    def __init__(self, secrets: dict[str, dict[str, Any]]) -> None:
        self.secrets = secrets

    def get(self, connector: str, *, refresh: bool = False) -> ConnectorSecret:
        return ConnectorSecret.model_validate(self.secrets[connector])


class PassThroughBreaker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def protect(self, connector: str, target: str, action: Callable[[], T]) -> T:
        self.calls.append((connector, target))
        return action()


class Crm:
    """A CRM answering ``GET /vendors/{id}`` (bearer auth) with ``reply``."""

    def __init__(self) -> None:
        self.reply: httpx.Response = httpx.Response(200, json=VENDOR)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Crm]:
    server = Crm()
    connector = crm.CrmConnector(
        credentials=StaticCredentials({"crm": {"base_url": "https://crm.example.com/api", "token": "t0k"}}),
        breaker=PassThroughBreaker(),
        transport=httpx.MockTransport(server),
    )
    monkeypatch.setattr(crm.CrmConnector, "default", lambda: connector)
    yield server
    Connector.reset_defaults()


def test_the_readme_shows_the_example_that_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    source = Path(crm.__file__).read_text(encoding="utf-8")
    assert source in blocks


def test_the_class_yields_the_request_model_and_the_dispatch() -> None:
    assert set(crm.CrmConnector.operations()) == {"get_vendor"}
    request = crm.CrmConnector.request_adapter().validate_python(
        {"operation": "get_vendor", "vendor_id": "V-1"}
    )
    assert isinstance(request, crm.GetVendor)
    with pytest.raises(ValidationError):
        crm.CrmConnector.request_adapter().validate_python({"operation": "get_vendor", "vendor_id": "a b"})
    with pytest.raises(ValidationError):
        crm.CrmConnector.request_adapter().validate_python({"operation": "delete_vendor", "vendor_id": "V-1"})


def test_the_handler_validates_calls_and_answers_json(api: Crm) -> None:
    result = crm.handler({"operation": "get_vendor", "vendor_id": "V-1"}, LambdaContext())

    assert result == {
        "connector": "crm",
        "connector_version": "1.0.0",
        "operation": "get_vendor",
        "vendor_id": "V-1",
        "vendor_name": "Acme Industrial Supply",
    }
    (sent,) = api.requests
    assert str(sent.url) == "https://crm.example.com/api/vendors/V-1"
    assert sent.headers["authorization"] == "Bearer t0k"
    breaker = crm.CrmConnector.default().breaker
    assert isinstance(breaker, PassThroughBreaker) and breaker.calls == [("crm", "crm.example.com")]

    with pytest.raises(ValidationFailed, match="vendor_id"):
        crm.handler({"operation": "get_vendor", "vendor_id": "not valid"}, LambdaContext())
    assert len(api.requests) == 1  # an invalid request never reaches the CRM


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (httpx.Response(404, json={"code": "vendor_not_found"}), ConnectorRejected, "HTTP 404"),
        (httpx.Response(200, json={"id": "V-1"}), ConnectorRejected, "display_name"),
        (httpx.Response(503, json={}), ConnectorUnavailable, "HTTP 503"),
    ],
)
def test_the_kit_maps_the_crms_failures(
    api: Crm, reply: httpx.Response, error: type[Exception], message: str
) -> None:
    api.reply = reply
    with pytest.raises(error, match=message):
        crm.handler({"operation": "get_vendor", "vendor_id": "V-1"}, LambdaContext())


def test_one_line_declares_the_function_with_the_connector_defaults() -> None:
    spec = crm.CRM_CONNECTOR
    assert (spec.name, spec.code, spec.credentials) == ("crm-connector", "connectors/crm", "crm")
    assert dict(spec.tables) == {
        "idempotency": Access.READ_WRITE,
        "circuit": Access.READ_WRITE,
        "lineage": Access.WRITE,
    }
    # The platform accepts it as it is (every table it names exists); its environment names them
    platform = Platform.model_validate(
        {**PLATFORM.model_dump(), "functions": [*PLATFORM.model_dump()["functions"], spec.model_dump()]}
    )
    environment = platform.function_environment(platform.function("crm-connector"))
    assert {"AIOS_IDEMPOTENCY_TABLE", "AIOS_CIRCUIT_TABLE", "AIOS_LINEAGE_TABLE"} <= set(environment)


def test_the_readme_lists_each_connectors_operations_as_its_class_serves_them() -> None:
    from aios.connectors.catalog import documents, email, erp, payments, slack  # noqa: PLC0415

    rows = re.findall(r"^\| `([a-z]+)` \| (.+) \|$", README.read_text(encoding="utf-8"), re.MULTILINE)
    listed = {name: set(re.findall(r"`([a-z_]+)`", operations)) for name, operations in rows}
    classes = (
        erp.ErpConnector,
        payments.PaymentsConnector,
        slack.SlackConnector,
        email.EmailConnector,
        documents.DocumentsConnector,
    )
    assert listed == {connector.name: set(connector.operations()) for connector in classes}
