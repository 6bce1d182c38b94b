"""Stable hashing, shared by loading (series keys) and the engine (alert ids, responder draws).

It lives apart from both so that loading borrows nothing from the engine.

>>> stable_hash("web-1\\x00cpu") == stable_hash("web-1\\x00cpu"), f"{stable_hash('cpu-high'):016x}"[:4]
(True, 'b005')
"""

from __future__ import annotations

import hashlib

__all__ = ["stable_hash"]


def stable_hash(text: str) -> int:
    """A 64-bit hash of a string that is the same on every run and machine (BLAKE2b, 8 bytes)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
