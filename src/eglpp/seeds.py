"""Seeds that are the same on every machine and in every run: randomness keyed by names."""

from __future__ import annotations

import zlib

__all__ = ["stable_seed"]


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from any parts (ints, strings), the same on every machine and run."""
    return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF
