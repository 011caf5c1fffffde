"""The claim-check store: documents too large to travel in an event or a state live in the
documents bucket, and what travels is a ``DocumentRef`` (bucket, key, digest, size).

Objects are written with the bucket's default encryption (SSE, set by CDK); a reader checks
the digest and size, so a document that was altered after it was referenced is refused.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from aios import clients
from aios.config import settings
from aios.envelope import DocumentRef
from aios.errors import ValidationFailed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class DocumentStore:
    """Puts and gets claim-checked documents in one bucket (S3 client injectable)."""

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = clients.s3()
        return self._client

    def put(self, body: bytes, *, key: str, content_type: str = "application/json") -> DocumentRef:
        digest = hashlib.sha256(body).hexdigest()
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            Metadata={"sha256": digest},
        )
        return DocumentRef(bucket=self.bucket, key=key, sha256=digest, size=len(body))

    def get(self, ref: DocumentRef) -> bytes:
        """The document's bytes; ``Validation.Failed`` when they do not match the reference."""
        body = self.client.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        if len(body) != ref.size or hashlib.sha256(body).hexdigest() != ref.sha256:
            raise ValidationFailed(f"document s3://{ref.bucket}/{ref.key} does not match its reference")
        return body


def put_document(
    body: bytes,
    *,
    key: str,
    content_type: str = "application/json",
    bucket: str | None = None,
    client: S3Client | None = None,
) -> DocumentRef:
    """Store ``body`` under ``key`` in the documents bucket (``AIOS_DOCUMENTS_BUCKET`` by default)."""
    store = DocumentStore(bucket or settings().require("documents_bucket"), client)
    return store.put(body, key=key, content_type=content_type)


def get_document(ref: DocumentRef, *, client: S3Client | None = None) -> bytes:
    """The bytes a ``DocumentRef`` points to, checked against its digest and size."""
    return DocumentStore(ref.bucket, client).get(ref)
