"""Documents connector: claim-check put and get in the documents bucket.

Operations:

- ``put_document``: stores base64 ``content`` under ``documents/<business key>/<sha256>``
  (content-addressed, so a retry writes the same object) and returns its ``DocumentRef``.
- ``get_document``: returns the content of a ``DocumentRef`` (base64), refused as
  ``Validation.Failed`` when the stored bytes no longer match the reference's digest and size.

Built on ``aios.documents.DocumentStore`` (the same store webhook ingest claim-checks with);
S3 errors map through ``aios.connectors.mapping.aws_error``. Payloads are bounded by the
Lambda invoke limit (6 MB); larger documents are written by their producer directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from aios.config import settings as platform_settings
from aios.connectors.kit import Connector, ConnectorRequest, ConnectorResult
from aios.documents import DocumentStore
from aios.envelope import DocumentRef
from aios.invoices import BusinessKey

NAME = "documents"
VERSION = "1.0.0"
MAX_BYTES = 4 * 1024 * 1024


class PutDocument(ConnectorRequest):
    operation: Literal["put_document"]
    business_key: BusinessKey
    content: Annotated[str, Field(min_length=1, max_length=(MAX_BYTES * 4) // 3 + 4)]  # base64
    content_type: Annotated[str, Field(pattern=r"^[a-z]+/[A-Za-z0-9.+-]+$")] = "application/octet-stream"

    @field_validator("content")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content is not base64") from None
        return value


class GetDocument(ConnectorRequest):
    operation: Literal["get_document"]
    ref: DocumentRef


class PutResult(ConnectorResult):
    ref: DocumentRef


class GetResult(ConnectorResult):
    ref: DocumentRef
    content: str


class DocumentsConnector(Connector):
    name = NAME
    version = VERSION

    def __init__(self, *, store: DocumentStore | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store = store

    @property
    def store(self) -> DocumentStore:
        if self._store is None:
            self._store = DocumentStore(platform_settings().require("documents_bucket"))
        return self._store

    def put_document(self, request: PutDocument) -> PutResult:
        body = base64.b64decode(request.content)
        key = f"documents/{request.business_key.replace(':', '/')}/{hashlib.sha256(body).hexdigest()}"
        ref = self.guard(
            request.operation, "s3", lambda: self.store.put(body, key=key, content_type=request.content_type)
        )
        return PutResult(**self.result(request.operation), ref=ref)

    def get_document(self, request: GetDocument) -> GetResult:
        body = self.guard(request.operation, "s3", lambda: self.store.get(request.ref))
        return GetResult(
            **self.result(request.operation), ref=request.ref, content=base64.b64encode(body).decode()
        )
