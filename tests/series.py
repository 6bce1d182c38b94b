"""Series notation for literal test data, as promtool's: ``'0+10x3 _x2 100 _ 5'``.

``a+bxn`` expands to the n+1 values a, a+b, ..., a+n*b (``a-bxn`` counts down),
``axn`` to n+1 copies of a, ``_`` is a missing sample and ``_xn`` n missing samples.
Sample ``i`` sits at ``start + i * step``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_TOKEN = re.compile(r"^(?P<a>[-+]?\d+(?:\.\d+)?)(?:(?P<sign>[-+])(?P<b>\d+(?:\.\d+)?))?x(?P<n>\d+)$")


def expand(notation: str) -> list[float | None]:
    """Values of a series notation, ``None`` for a missing sample.

    >>> expand("1+1x2 _ 7x1 _x2")
    [1.0, 2.0, 3.0, None, 7.0, 7.0, None, None]
    """
    out: list[float | None] = []
    for tok in notation.split():
        if tok == "_":
            out.append(None)
        elif tok.startswith("_x"):
            out += [None] * int(tok[2:])
        elif "x" in tok:
            m = _TOKEN.match(tok)
            if not m:
                raise ValueError(f"bad token {tok!r}")
            a = float(m["a"])
            b = float(m["b"] or 0) * (-1 if m["sign"] == "-" else 1)
            out += [a + i * b for i in range(int(m["n"]) + 1)]
        else:
            out.append(float(tok))
    return out


def series_frame(notation: str, *, step: str = "1m", start: str = "2026-01-01T00:00:00Z",
                 source: str = "s1", metric: str = "m", **labels: str) -> pd.DataFrame:
    """A metric frame for one series written in series notation (missing samples left out)."""
    values = expand(notation)
    t0 = pd.Timestamp(start)
    times = [t0 + i * pd.Timedelta(step) for i, v in enumerate(values) if v is not None]
    vals = [v for v in values if v is not None]
    frame = pd.DataFrame({
        "timestamp": pd.DatetimeIndex(times, dtype="datetime64[ns, UTC]") if times else pd.DatetimeIndex([], tz="UTC"),
        "source": pd.array([source] * len(vals), dtype="str"),
        "metric": pd.array([metric] * len(vals), dtype="str"),
        "value": np.array(vals, dtype=np.float64),
    })
    for k, v in labels.items():
        frame[k] = pd.array([v] * len(vals), dtype="str")
    return frame


def at(minutes: float, start: str = "2026-01-01T00:00:00Z") -> pd.Timestamp:
    """The instant ``minutes`` after the notation's start."""
    return pd.Timestamp(start) + pd.Timedelta(minutes=minutes)
