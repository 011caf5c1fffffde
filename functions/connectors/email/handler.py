"""The email connector's Lambda handler; its operations: ``aios.connectors.catalog.email``."""

from aios.connectors.catalog.email import EmailConnector

handler = EmailConnector.lambda_handler()
