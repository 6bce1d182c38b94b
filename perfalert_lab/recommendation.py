"""What every sweep's recommendation is: the chosen row, the tuned rule or configuration, and why.

One type for every kind of sweep: our rules and Prometheus alert rules
(:func:`perfalert_lab.tuning.recommend`) and Alertmanager's timers and grouping
(:func:`perfalert_lab.alertmanager.tuning.recommend_alertmanager`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Recommendation"]


@dataclass(frozen=True)
class Recommendation:
    """The sweep row chosen for a budget, the tuned rule (ours or a Prometheus alert rule, ``None``
    where the sweep knew none), the tuned Alertmanager configuration where one was swept, and why."""

    row: pd.Series
    rule: Any
    explanation: str
    alertmanager: Any = None

    def __str__(self) -> str:
        return self.explanation
