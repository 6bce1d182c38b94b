"""Durations in Prometheus notation and time conversions shared by every module.

Internally every instant is an ``int`` of nanoseconds since the Unix epoch (UTC) and
every duration an ``int`` of nanoseconds: integer arithmetic keeps comparisons such as
``t - pending_since >= for`` exact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

NS_PER_S = 1_000_000_000
_UNITS_NS = {
    "y": 365 * 86400 * NS_PER_S,
    "w": 7 * 86400 * NS_PER_S,
    "d": 86400 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "m": 60 * NS_PER_S,
    "s": NS_PER_S,
    "ms": 1_000_000,
}
_DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_ORDER = ("y", "w", "d", "h", "m", "s", "ms")


def parse_duration(text: object) -> timedelta:
    """Parse a Prometheus duration (``90s``, ``5m``, ``1h30m``, ``2d``, ``0``).

    A ``timedelta`` is returned unchanged. Raises ``ValueError`` with a hint otherwise.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("0")
    datetime.timedelta(0)
    """
    if isinstance(text, timedelta):
        if text < timedelta(0):
            raise ValueError(f"duration must not be negative, got {format_duration(text)!s}")
        return text
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(
            f"expected a duration such as '90s', '5m' or '1h30m', got {text!r}"
            + (
                f" (write '{text}s' for seconds)"
                if isinstance(text, int | float) and not isinstance(text, bool)
                else ""
            )
        )
    s = text.strip()
    if s == "0":
        return timedelta(0)
    m = _DURATION_RE.match(s)
    if not s or m is None or not any(m.groups()):
        raise ValueError(f"expected a duration such as '90s', '5m' or '1h30m', got {text!r}")
    ns = sum(int(g) * _UNITS_NS[u] for g, u in zip(m.groups(), _ORDER, strict=True) if g)
    return timedelta(microseconds=ns // 1000)


def format_duration(value: timedelta | int) -> str:
    """Format a ``timedelta`` (or nanoseconds) in Prometheus notation.

    >>> format_duration(timedelta(seconds=5400))
    '1h30m'
    >>> format_duration(timedelta(0))
    '0s'
    """
    ns = to_ns(value) if isinstance(value, timedelta) else int(value)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):  # weeks and years are ambiguous to read; stop at days
        q, ns = divmod(ns, _UNITS_NS[unit])
        if q:
            parts.append(f"{q}{unit}")
    if ns:
        parts.append(f"{ns // 1000}us" if ns % 1000 == 0 else f"{ns}ns")
    return sign + "".join(parts)


def to_ns(value: timedelta | None) -> int:
    """A ``timedelta`` as integer nanoseconds (``None`` gives 0)."""
    if value is None:
        return 0
    return (value.days * 86400 + value.seconds) * NS_PER_S + value.microseconds * 1000


def parse_instant(value: object) -> int:
    """Parse an instant (ISO 8601 string, ``datetime``, ``pd.Timestamp``) to UTC nanoseconds.

    Naive values are taken as UTC.

    >>> parse_instant("1970-01-01T00:01:00Z")
    60000000000
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a time such as 2026-01-03T00:00:00Z, got {value!r}")
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]  # anything pandas reads; refused below otherwise
    except (ValueError, TypeError) as exc:
        raise ValueError(f"expected a time such as 2026-01-03T00:00:00Z, got {value!r}") from exc
    if ts is pd.NaT:
        raise ValueError(f"expected a time such as 2026-01-03T00:00:00Z, got {value!r}")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").as_unit("ns").value)


def ns_to_timestamps(values: np.ndarray) -> pd.DatetimeIndex:
    """int64 nanoseconds (with ``NAT_NS`` for missing) to a tz-aware UTC ``DatetimeIndex``."""
    return pd.DatetimeIndex(np.asarray(values, dtype="int64").view("datetime64[ns]")).tz_localize("UTC")


NAT_NS = np.iinfo(np.int64).min  # numpy's NaT as int64


def col_ns(col: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """A datetime column (tz-aware or naive UTC) as int64 nanoseconds; NaT gives ``NAT_NS``."""
    arr = getattr(col, "array", None)
    if not isinstance(arr, pd.arrays.DatetimeArray):
        arr = pd.DatetimeIndex(col).array
    # the underlying int64 of tz-aware data is UTC already; a copy, so callers may write to it
    if arr.unit != "ns":
        arr = arr.as_unit("ns")
    return np.array(arr.asi8, dtype=np.int64, copy=True)  # type: ignore[attr-defined]
