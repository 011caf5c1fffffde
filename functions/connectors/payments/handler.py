"""The payments connector's Lambda handler; its operations: ``aios.connectors.catalog.payments``."""

from aios.connectors.catalog.payments import PaymentsConnector

handler = PaymentsConnector.lambda_handler()
