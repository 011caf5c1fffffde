"""The ERP connector's Lambda handler; its operations: ``aios.connectors.catalog.erp``."""

from aios.connectors.catalog.erp import ErpConnector

handler = ErpConnector.lambda_handler()
