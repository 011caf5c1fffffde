"""The connector catalog: one module per connector, each with its typed operations.

Each module exposes ``Request`` (a discriminated union on ``operation``), the connector
class, ``handle(request, connector=None)`` and ``default_connector()`` (made once per process).
"""
