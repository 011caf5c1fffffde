"""aios shared runtime: configuration, observability, events, errors and adapters.

Packaged as one Lambda layer by CDK; importable by tests and tools from the same path.
"""

__version__ = "0.1.0"
