"""Service level objectives and their burn-rate alerts (SPEC 13).

An :class:`SLO` is an objective (99.9 %) over a window (30 days) of an SLI given as an error
ratio: PromQL for the errors and the total events, or one query for the ratio, each with
``{{.window}}`` where the rate window goes (sloth's convention). Its alerts are burn-rate
conditions, :class:`BurnRateWindow`: the error ratio over a long and a short window both above
``factor`` times the error budget. The factor follows from the share of the budget a condition
lets burn over its long window (the SRE workbook, "Alerting on SLOs"): ``factor = percent / 100 x
period / long window`` -- 14.4 for 2 % in 1 hour of 30 days.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any, Literal

from .._time import format_duration, parse_duration, to_ns
from ..errors import RulesError

__all__ = ["SLO", "BurnRateWindow", "SLOTH_WINDOWS", "WORKBOOK_WINDOWS", "burn_rate_windows"]

Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class BurnRateWindow:
    """One burn-rate condition: ``percent`` of the error budget burnt within ``long`` (confirmed by
    ``short``, so the alert stops soon after the burn does) raises a ``severity`` alert."""

    severity: Severity
    speed: Literal["quick", "slow"]
    percent: float  # of the error budget, consumed over the long window
    short: str
    long: str

    def factor(self, period: str) -> float:
        """The burn rate this condition alerts at, for an SLO over ``period`` (sloth's arithmetic)."""
        hours = to_ns(parse_duration(period)) / 3.6e12
        return self.percent * hours / 100 / (to_ns(parse_duration(self.long)) / 3.6e12)


# The SRE workbook's recommended set (table 5-8): page at 2 % of a 30-day budget in 1 h and 5 % in
# 6 h, ticket at 10 % in 3 days; each long window confirmed by a short one 1/12 of it.
WORKBOOK_WINDOWS: tuple[BurnRateWindow, ...] = (
    BurnRateWindow("page", "quick", 2, "5m", "1h"),
    BurnRateWindow("page", "slow", 5, "30m", "6h"),
    BurnRateWindow("ticket", "slow", 10, "6h", "3d"),
)
# What sloth generates (its google-30d / google-28d windows): the workbook's, plus a quick ticket
# condition at 10 % in 1 day.
SLOTH_WINDOWS: tuple[BurnRateWindow, ...] = (
    BurnRateWindow("page", "quick", 2, "5m", "1h"),
    BurnRateWindow("page", "slow", 5, "30m", "6h"),
    BurnRateWindow("ticket", "quick", 10, "2h", "1d"),
    BurnRateWindow("ticket", "slow", 10, "6h", "3d"),
)


def burn_rate_windows(style: str = "workbook") -> tuple[BurnRateWindow, ...]:
    """The burn-rate conditions by name: ``workbook`` (3) or ``sloth`` (4)."""
    try:
        return {"workbook": WORKBOOK_WINDOWS, "sloth": SLOTH_WINDOWS}[style]
    except KeyError:
        raise RulesError(f"unknown burn-rate windows {style!r}; use 'workbook' or 'sloth'") from None


@dataclass(frozen=True)
class SLO:
    """A service level objective with an error-ratio SLI: ``SLO(name, objective, window, sli)``.

    ``objective`` is a percentage (``99.9``); ``window`` the SLO period (``30d``). ``sli`` is one of:

    * ``{"errors": ..., "total": ...}``: PromQL for the bad and all events, with ``{{.window}}``
      where the rate window goes (``sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))``);
    * ``{"error_ratio": ...}`` or a string: one PromQL query for the ratio;
    * ``{"metric": "latency_ms", "threshold": 300}`` (``op`` ``>`` by default, ``match`` labels,
      ``step`` 1m): our metric's samples above the threshold are the errors (a latency SLI).

    ``alert_name`` names the alerts (one name, told apart by ``sloth_severity``), with
    ``alert_labels``/``annotations`` on both and ``page_labels``/``ticket_labels`` on each kind;
    ``windows`` are the burn-rate conditions (:data:`WORKBOOK_WINDOWS` unless given); every window they
    name is recorded, and ``page_alert``/``ticket_alert`` say which alerts are generated.

    >>> slo = SLO("availability", 99.9, "30d", {"errors": "sum(rate(errors_total[{{.window}}]))",
    ...                                          "total": "sum(rate(requests_total[{{.window}}]))"})
    >>> round(slo.error_budget, 6), [round(w.factor(slo.window), 2) for w in slo.windows]
    (0.001, [14.4, 6.0, 1.0])
    """

    name: str
    objective: float
    window: str = "30d"
    sli: Any = field(default=None, repr=False)
    _: KW_ONLY
    errors: str | None = None
    total: str | None = None
    error_ratio: str | None = None
    service: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # on every generated rule
    alert_name: str = ""
    alert_labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    page_labels: dict[str, str] = field(default_factory=dict)
    ticket_labels: dict[str, str] = field(default_factory=dict)
    page_annotations: dict[str, str] = field(default_factory=dict)
    ticket_annotations: dict[str, str] = field(default_factory=dict)
    page_for: str = "0s"
    ticket_for: str = "0s"
    page_alert: bool = True  # generate the page alert (its windows are recorded either way)
    ticket_alert: bool = True
    windows: tuple[BurnRateWindow, ...] = WORKBOOK_WINDOWS
    description: str = ""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.sli is not None:
            for key, value in _sli_queries(self.sli, problems).items():
                object.__setattr__(self, key, value)
            object.__setattr__(self, "sli", None)
        if not self.name or not isinstance(self.name, str):
            problems.append("an SLO needs a name")
        obj = self.objective
        if isinstance(obj, bool) or not isinstance(obj, int | float) or not 0 < float(obj) < 100:
            problems.append(f"objective {obj!r} must be a percentage between 0 and 100 (e.g. 99.9)")
        if self.error_ratio is None and (not self.errors or not self.total):
            problems.append("the SLI needs errors and total queries (or one error_ratio query)")
        if self.error_ratio is not None and (self.errors or self.total):
            problems.append("give the SLI as errors and total, or as error_ratio, not both")
        for key in ("window", "page_for", "ticket_for"):
            try:
                if to_ns(parse_duration(getattr(self, key))) < 0 or (key == "window" and
                                                                     to_ns(parse_duration(self.window)) == 0):
                    problems.append(f"{key} {getattr(self, key)!r} must be a positive duration")
            except (ValueError, TypeError, RulesError):
                problems.append(f"{key} {getattr(self, key)!r} is not a duration such as 30d or 5m")
        if problems:
            raise RulesError([f"SLO {self.name!r}: {p}" for p in problems])

    @property
    def id(self) -> str:
        """sloth's id: ``<service>-<name>``."""
        return f"{self.service}-{self.name}" if self.service else self.name

    @property
    def error_budget(self) -> float:
        """The error ratio the objective allows (``(100 - objective) / 100``, as sloth writes it)."""
        return (100 - float(self.objective)) / 100

    @property
    def period_ns(self) -> int:
        return to_ns(parse_duration(self.window))

    def factor(self, w: BurnRateWindow) -> float:
        return w.factor(self.window)

    def replace(self, **changes: Any) -> SLO:
        """A copy with ``changes``; ``page_quick=4`` (``<severity>_<speed>``) sets that condition's share of
        the budget (its burn-rate factor follows)."""
        windows = list(self.windows)
        for i, w in enumerate(windows):
            key = f"{w.severity}_{w.speed}"
            if key in changes:
                windows[i] = replace(w, percent=float(changes.pop(key)))
        return replace(self, windows=tuple(windows), **changes)

    def describe(self) -> str:
        return (f"{self.id}: {self.objective:g}% over {format_duration(parse_duration(self.window))}, "
                + ", ".join(f"{w.severity} {self.factor(w):.3g}x over {w.long}/{w.short}" for w in self.windows))


def _sli_queries(sli: Any, problems: list[str]) -> dict[str, str]:
    """``errors``/``total`` or ``error_ratio`` PromQL of an ``sli=`` argument (see :class:`SLO`)."""
    if isinstance(sli, str):
        return {"error_ratio": sli}
    if not isinstance(sli, dict):
        problems.append(f"sli must be a mapping (errors and total, error_ratio, or metric and threshold) or a "
                        f"PromQL string, got {type(sli).__name__}")
        return {}
    keys = set(sli)
    if keys <= {"errors", "total"} and keys == {"errors", "total"}:
        return {"errors": str(sli["errors"]), "total": str(sli["total"])}
    if keys == {"error_ratio"}:
        return {"error_ratio": str(sli["error_ratio"])}
    if "metric" in keys and "threshold" in keys and keys <= {"metric", "threshold", "op", "match", "step"}:
        op = str(sli.get("op", ">"))
        if op not in (">", ">=", "<", "<="):
            problems.append(f"sli op {op!r} must be one of >, >=, <, <= (the samples that count as errors)")
            return {}
        try:
            threshold = float(sli["threshold"])
        except (TypeError, ValueError):
            problems.append(f"sli threshold {sli['threshold']!r} is not a number")
            return {}
        match = sli.get("match") or {}
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(match.items()))
        selector = f"{sli['metric']}{{{inner}}}" if inner else str(sli["metric"])
        step = format_duration(parse_duration(sli.get("step", "1m")))
        return {"errors": f"sum(sum_over_time(({selector} {op} bool {threshold!r})[{{{{.window}}}}:{step}]))",
                "total": f"sum(count_over_time(({selector})[{{{{.window}}}}:{step}]))"}
    problems.append(f"sli keys {sorted(map(str, keys))} are not an SLI: give errors and total, error_ratio, or "
                    "metric and threshold")
    return {}
