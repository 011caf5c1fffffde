"""The default platform plus the catalog connectors it does not deploy (slack, email,
documents), so the sandbox tests can invoke each connector function directly.

Loaded by ``aios local up --platform tests/integration/local/catalog_platform.py:PLATFORM``.
"""

from __future__ import annotations

from infrastructure.platform.connectors import CATALOG_ONLY_FUNCTIONS
from infrastructure.platform.default import PLATFORM as DEFAULT

_DEPLOYED = {function.name for function in DEFAULT.functions}

PLATFORM = DEFAULT.model_copy(
    update={
        "functions": (
            *DEFAULT.functions,
            *(function for function in CATALOG_ONLY_FUNCTIONS if function.name not in _DEPLOYED),
        )
    }
)
