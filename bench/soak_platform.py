"""The soak's platform: the default one with a short approval ladder (``bench/soak.py``).

Loaded by ``aios local up --platform bench/soak_platform.py:PLATFORM``; the ladder's stage
length is ``AIOS_SOAK_LADDER_SECONDS`` (default 5), read when the file is loaded.
"""

from __future__ import annotations

import os

from infrastructure.platform import PLATFORM as DEFAULT
from infrastructure.platform.payables import with_approval_ladder

LADDER_SECONDS = int(os.environ.get("AIOS_SOAK_LADDER_SECONDS", "5"))
PLATFORM = with_approval_ladder(
    DEFAULT, reminder=LADDER_SECONDS, escalation=LADDER_SECONDS, expiry=LADDER_SECONDS
)
