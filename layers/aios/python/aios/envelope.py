"""The canonical event envelope: CloudEvents 1.0 attributes plus what ingress observed.

Every verified webhook becomes one ``Envelope`` and travels as the ``detail`` of an
EventBridge event. Payloads too large for an EventBridge entry stay in the documents bucket
and the envelope carries a ``DocumentRef`` (claim-check) instead of ``data``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class DocumentRef(BaseModel):
    """Where a claim-checked document lives, and how to know it was not altered."""

    model_config = ConfigDict(frozen=True)

    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    key: Annotated[str, Field(min_length=1, max_length=1024)]
    sha256: Sha256Hex
    size: Annotated[int, Field(ge=0)]


class Envelope(BaseModel):
    """CloudEvents 1.0 (JSON format) with aios extension attributes.

    Extension attribute names follow the CloudEvents rule (lower-case letters and digits).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Annotated[str, Field(min_length=1, max_length=256)]
    type: Annotated[str, Field(min_length=1, max_length=256)]
    time: datetime
    subject: Annotated[str, Field(max_length=256)] | None = None
    datacontenttype: str = "application/json"
    data: Any = None
    dataref: DocumentRef | None = None
    # aios extensions
    deliveryid: Annotated[str, Field(min_length=1, max_length=256)]
    receivedtime: datetime
    bodysha256: Sha256Hex

    @model_validator(mode="after")
    def _data_or_reference(self) -> Envelope:
        if self.data is not None and self.dataref is not None:
            raise ValueError("an envelope carries data or a dataref, not both")
        return self
