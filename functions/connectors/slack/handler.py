"""The Slack connector's Lambda handler; its operations: ``aios.connectors.catalog.slack``."""

from aios.connectors.catalog.slack import SlackConnector

handler = SlackConnector.lambda_handler()
