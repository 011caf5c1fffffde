"""The documents connector's Lambda handler; its operations: ``aios.connectors.catalog.documents``."""

from aios.connectors.catalog.documents import DocumentsConnector

handler = DocumentsConnector.lambda_handler()
