"""Pieces every Roundtable package shares: the three error families.

This package owns nothing else; it imports nothing from the rest of Roundtable.
"""

from roundtable.common.errors import ConfigError, InfraError, ModelError, RoundtableError

__all__ = ["ConfigError", "InfraError", "ModelError", "RoundtableError"]
