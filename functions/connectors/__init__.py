"""Connector Lambda functions: one per connector, each a thin handler over the catalog."""
