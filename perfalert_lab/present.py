"""Numbers as people read them: durations as durations, leads as leads, no ``nan``.

The tables keep raw numbers (seconds, fractions) for code; what a person reads on a
terminal, in the report or in the tuner goes through :func:`stats_for_people`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["human_delay", "human_seconds", "stats_for_people"]

# statistics columns measured in seconds
SECONDS_COLUMNS = ("mean_duration_s", "median_duration_s")


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def human_seconds(seconds: Any) -> str:
    """A duration in seconds as ``1d2h``, ``15h15m``, ``9m30s``, ``45s`` (two units at most); ``''`` for none.

    >>> human_seconds(54900.0), human_seconds(570), human_seconds(0.5), human_seconds(float("nan"))
    ('15h15m', '9m30s', '0.5s', '')
    """
    if _missing(seconds):
        return ""
    s = abs(float(seconds))
    if s < 10 and s != int(s):
        return f"{s:.2g}s"
    s_int = int(round(s))
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        q, s_int = divmod(s_int, size)
        if q:
            parts.append(f"{q}{unit}")
    return "".join(parts[:2]) or "0s"


def human_delay(seconds: Any) -> str:
    """A detection delay: positive is late, negative is a lead (the alert fired before the labelled point).

    >>> human_delay(-54900.0), human_delay(540), human_delay(0), human_delay(None)
    ('15h15m early', '9m late', 'on time', '')
    """
    if _missing(seconds):
        return ""
    if float(seconds) == 0:
        return "on time"
    return f"{human_seconds(seconds)} {'early' if float(seconds) < 0 else 'late'}"


def _number(x: Any) -> str:
    if _missing(x):
        return ""
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1e6 else f"{x:,.0f}"
    return str(x)


def stats_for_people(stats: pd.DataFrame) -> pd.DataFrame:
    """A copy of a statistics table as text: durations humanised, ``mean_detection_delay_s`` as
    ``detection`` (``9m late`` / ``15h15m early``), numbers to 3 significant digits, empty for none.

    >>> t = pd.DataFrame({"rule_id": ["r"], "alerts": [3], "recall": [0.5], "mean_detection_delay_s": [-60.0]})
    >>> stats_for_people(t).to_dict("records")
    [{'rule_id': 'r', 'alerts': '3', 'recall': '0.5', 'detection': '1m early'}]
    """
    out = pd.DataFrame(index=stats.index)
    for col in stats.columns:
        values = stats[col].tolist()
        if col in SECONDS_COLUMNS:
            out[col.removesuffix("_s")] = [human_seconds(v) for v in values]
        elif col == "mean_detection_delay_s":
            out["detection"] = [human_delay(v) for v in values]
        else:
            out[col] = [_number(v) for v in values]
    return out
