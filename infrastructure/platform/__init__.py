"""The platform description and its default instance."""

from infrastructure.platform.default import PLATFORM
from infrastructure.platform.spec import Platform

__all__ = ["PLATFORM", "Platform"]
