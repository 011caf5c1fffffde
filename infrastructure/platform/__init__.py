"""The platform description and its default instance."""

from infrastructure.platform.default import PLATFORM
from infrastructure.platform.model import Platform

__all__ = ["PLATFORM", "Platform"]
