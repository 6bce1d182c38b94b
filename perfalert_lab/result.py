"""What a backtest returns: :class:`BacktestResult` (SPEC 5 and 6), for every kind of rule.

Below the front door (:mod:`perfalert_lab.backtesting`) so that every path that makes one (our
engine's stages, the Prometheus rule manager's replay, the Dask path, Alertmanager) imports it
without importing the front door.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from .report import result_html
from .stats import oncall_load

if TYPE_CHECKING:  # pragma: no cover
    from .clock import Clock
    from .frames import SeriesSet
    from .rules.model import RuleSet
    from .rules.promfile import PromRuleFile

__all__ = ["BacktestResult"]


@dataclass
class BacktestResult:
    """What a rule set would have done: the three tables of SPEC section 5.

    ``alerts``, ``notifications`` and ``stats`` are DataFrames; ``series`` holds the
    samples the plots draw (they never recompute). Row order is fixed: alerts by firing
    time, then rule file order, then series; notifications by time, then rule, series and
    pending instant, then kind, level and channel position.
    """

    alerts: pd.DataFrame
    notifications: pd.DataFrame
    stats: pd.DataFrame
    rules: RuleSet | PromRuleFile  # the rule source: ours, or a Prometheus rule file (``rules.kind``)
    clock: Clock
    span: tuple[pd.Timestamp, pd.Timestamp]
    incidents: pd.DataFrame | None = None
    series: SeriesSet | None = field(default=None, repr=False)
    # with an Alertmanager configuration (SPEC 12): the alerts each notification carried,
    # statistics per receiver, and the configuration
    notification_alerts: pd.DataFrame | None = field(default=None, repr=False)
    receivers: pd.DataFrame | None = field(default=None, repr=False)
    alertmanager: Any = field(default=None, repr=False)
    # a Prometheus rule file's input series with what its recording rules wrote (when asked for)
    recorded: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        total = self.stats[self.stats["rule_id"] == "TOTAL"].iloc[0]
        return (f"<BacktestResult {len(self.rules)} rules, {int(total['evaluations'])} evaluations, "
                f"{int(total['alerts'])} alerts, {int(total['suppressed'])} suppressed, "
                f"{int(total['notifications'])} notifications, clock={self.clock}>")

    def oncall(self) -> pd.DataFrame:
        """Pages per week, busiest hour and flapping alerts per rule (see :func:`stats.oncall_load`)."""
        if self.receivers is not None:  # through Alertmanager: the load is per receiver
            return self.receivers
        return oncall_load(self.alerts, self.notifications, (self.span[0].value, self.span[1].value))

    def _repr_html_(self) -> str:
        return result_html(self)
