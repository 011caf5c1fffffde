"""The outside world of webhook ingress: the EventBridge bus (boto3 client injectable)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

    from aios.envelope import DocumentRef


class PublishFailed(Exception):
    """The bus did not accept the entry (failed entry, throttling, transport error)."""


class BusEntry(BaseModel):
    """One ``PutEvents`` entry; ``detail`` is the envelope's JSON."""

    model_config = ConfigDict(frozen=True)

    source: str
    detail_type: str
    detail: str


class EventPublisher(Protocol):
    def put(self, entry: BusEntry) -> None:
        """Put one entry; raise ``PublishFailed`` unless the bus reported it accepted."""


class DocumentSink(Protocol):
    def put(self, body: bytes, *, key: str, content_type: str = "application/json") -> DocumentRef:
        """Store a claim-checked document and return its reference."""


class EventBusPublisher:
    """Puts entries on one event bus; success only when ``FailedEntryCount`` is 0."""

    def __init__(self, bus_name: str, client: EventBridgeClient | None = None) -> None:
        self.bus_name = bus_name
        self._client = client

    @property
    def client(self) -> EventBridgeClient:
        if self._client is None:
            from aios import clients  # noqa: PLC0415 - created on first use, not at cold start

            self._client = clients.events()
        return self._client

    def put(self, entry: BusEntry) -> None:
        try:
            response = self.client.put_events(
                Entries=[
                    {
                        "Source": entry.source,
                        "DetailType": entry.detail_type,
                        "Detail": entry.detail,
                        "EventBusName": self.bus_name,
                    }
                ]
            )
        except (BotoCoreError, ClientError) as error:
            raise PublishFailed(f"PutEvents failed ({type(error).__name__})") from None
        if response.get("FailedEntryCount", 0):
            failed = response.get("Entries", [{}])[0]
            raise PublishFailed(f"PutEvents rejected the entry ({failed.get('ErrorCode', 'unknown')})")
