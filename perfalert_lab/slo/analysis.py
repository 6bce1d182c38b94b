"""What an SLO's burn-rate alerts would have done on history, judged as the SRE workbook judges them.

:func:`backtest_slo` generates the SLOs' rule file (:mod:`.generate`), replays it as Prometheus would
(:func:`perfalert_lab.prometheus.backtest.backtest_prometheus`, the recordings kept), and scores each
alert tier (``page``, ``ticket``) and all of them against events: the labelled incidents, or without
them the periods where the budget burned faster than ``burn_rate`` times the sustainable rate over
``burn_window``. Per tier: recall, precision, detection time (first alert inside the event minus its
start), reset time (how long that alert fired after the event ended), the share of the period's error
budget spent before detection, alerts and pages per week; per SLO the budget remaining.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._time import format_duration, parse_duration, to_ns
from ..errors import UsageError
from ..frames import as_incidents
from ..prometheus.alerting import instant_query
from ..prometheus.backtest import backtest_prometheus
from ..promql_engine import compat_version
from ..result import BacktestResult
from ..rules.promfile import PromRuleFile
from .generate import SLI_RECORD, slo_rule_text, slo_rules, slo_windows
from .model import SLO

__all__ = ["SLOResult", "backtest_slo", "SLO_STATS_COLUMNS"]

SLO_STATS_COLUMNS = ["slo", "tier", "alerts", "alerts_per_week", "pages_per_week", "events", "detected", "recall",
                     "precision", "mean_detection_s", "mean_reset_s", "budget_spent_before_detection",
                     "budget_remaining_end", "budget_remaining_min"]
_NS_PER_MS = 1_000_000
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class SLOResult:
    """The SLOs' alerts on history and the workbook's numbers (see :func:`backtest_slo`)."""

    slos: list[SLO]
    rules: PromRuleFile
    rule_text: str  # the generated Prometheus rule file
    result: BacktestResult  # the rule file's backtest (SPEC 5 tables)
    alerts: pd.DataFrame  # result.alerts with ``slo`` and ``tier``
    notifications: pd.DataFrame  # result.notifications with the ``slo`` and ``tier`` of their alert
    burn: pd.DataFrame  # timestamp, slo, window, error_ratio, burn_rate (every recorded window)
    budget: pd.DataFrame  # timestamp, slo, budget_remaining (of the SLO period, as sloth records it)
    events: pd.DataFrame  # start, end, slo, kind ("incident" or "burn"): what the alerts are scored on
    stats: pd.DataFrame  # SLO_STATS_COLUMNS, per SLO and tier, and a tier "all"

    def plot_budget(self, slo: str | None = None) -> Any:
        """The error budget remaining over time with each tier's alerts and the events (a Display)."""
        from ..plot import SLOBudgetDisplay

        return SLOBudgetDisplay.from_slo(self, slo).plot()

    def plot_burn_rates(self, slo: str | None = None) -> Any:
        """The burn rate over each window with the alert thresholds (a Display)."""
        from ..plot import BurnRateDisplay

        return BurnRateDisplay.from_slo(self, slo).plot()

    def __repr__(self) -> str:
        total = self.stats[self.stats["tier"] == "all"]
        parts = [f"{slo}: {n} alerts, recall {recall:.2f}"
                 for slo, n, recall in zip(total["slo"], total["alerts"], total["recall"], strict=True)]
        return f"<SLOResult {len(self.slos)} SLOs; {'; '.join(parts)}>"


def backtest_slo(frame: Any, slos: SLO | list[SLO], *, incidents: pd.DataFrame | None = None,
                 burn_rate: float = 1.0, burn_window: str = "1h", prometheus_compat: str = "3") -> SLOResult:
    """Replay the SLOs' generated burn-rate alerts over ``frame`` and score them (module docstring).

    ``frame`` is a long metric frame holding the series the SLI queries read. Without
    ``incidents``, events are the stretches where the error ratio over ``burn_window`` (one of the
    recorded windows) exceeds ``burn_rate`` x the error budget.
    """
    many = [slos] if isinstance(slos, SLO) else list(slos)
    if not many:
        raise UsageError("backtest_slo: no SLO given")
    text = slo_rule_text(many)
    rules = slo_rules(many, name="slo.rules.yml")
    result = backtest_prometheus(frame, rules, incidents=incidents, prometheus_compat=prometheus_compat,
                                 keep_recorded=True)
    window = format_duration(parse_duration(burn_window))
    for slo in many:
        if window not in slo_windows(slo) and window != format_duration(parse_duration(slo.window)):
            raise UsageError(f"backtest_slo: burn_window {burn_window!r} is not recorded for SLO {slo.id!r}; "
                             f"use one of {', '.join(slo_windows(slo))}")
    store = result.recorded
    burn, budget = _recorded(store, many)
    result.recorded = None  # the store is not kept on the result (it holds every recorded series)
    alerts = result.alerts.copy()
    labels: list[dict[str, str]] = [dict(_LABEL.findall(str(t))) for t in alerts["labels"]]
    alerts["slo"] = [lb.get("sloth_id", "") for lb in labels]
    alerts["tier"] = [lb.get("sloth_severity", "") for lb in labels]
    of_alert = alerts.set_index("alert_id")[["slo", "tier"]]
    notes = result.notifications
    notes = notes.assign(slo=notes["alert_id"].map(of_alert["slo"]).fillna(""),
                         tier=notes["alert_id"].map(of_alert["tier"]).fillna(""))
    incidents = as_incidents(incidents)
    span = (int(result.span[0].value), int(result.span[1].value))
    rows, events = [], []
    for slo in many:
        ev = _events(slo, incidents, burn, window, burn_rate, span)
        events.append(ev)

        def spent(start_ns: int, detected_ns: int, slo: SLO = slo) -> float:
            return _spent(store, slo, start_ns, detected_ns, prometheus_compat)

        left = budget[budget["slo"] == slo.id]["budget_remaining"]
        for tier in ("page", "ticket", "all"):
            mine = alerts[(alerts["slo"] == slo.id) & ((alerts["tier"] == tier) if tier != "all" else True)]
            row = _score(mine, ev, spent, span)
            weeks = max((span[1] - span[0]) / 604_800e9, 1e-9)
            row.update(slo=slo.id, tier=tier, alerts=len(mine), alerts_per_week=len(mine) / weeks,
                       pages_per_week=int((mine["tier"] == "page").sum()) / weeks,
                       budget_remaining_end=float(left.iloc[-1]) if len(left) else np.nan,
                       budget_remaining_min=float(left.min()) if len(left) else np.nan)
            rows.append(row)
    stats = pd.DataFrame(rows)[SLO_STATS_COLUMNS]
    events_frame = pd.concat(events, ignore_index=True) if events else pd.DataFrame()
    return SLOResult(many, rules, text, result, alerts, notes, burn, budget, events_frame, stats)


def _recorded(store: Any, slos: list[SLO]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recorded error ratios per window, and the period budget remaining, of each SLO."""
    store = store.without_stale()
    ids = {slo.id: slo for slo in slos}
    burn_parts, budget_parts = [], []
    prefix = SLI_RECORD.format(window="")
    for i, labels in enumerate(store.labels):
        lb = dict(labels)
        slo = ids.get(lb.get("sloth_id", ""))
        name = lb.get("__name__", "")
        if slo is None:
            continue
        a, b = store.offsets[i], store.offsets[i + 1]
        ts = pd.to_datetime(store.ts[a:b] * _NS_PER_MS, utc=True)
        vals = store.vals[a:b]
        # an SLI aggregated 'by' labels has a series per value: told apart by those labels
        own = {"__name__", "sloth_window", "sloth_id", "sloth_service", "sloth_slo", *slo.labels}
        series = ", ".join(f'{k}="{v}"' for k, v in sorted(lb.items()) if k not in own)
        if name.startswith(prefix):
            burn_parts.append(pd.DataFrame({"timestamp": ts, "slo": slo.id, "window": name[len(prefix):],
                                            "error_ratio": vals, "burn_rate": vals / slo.error_budget,
                                            "series": series}))
        elif name == "slo:period_error_budget_remaining:ratio":
            budget_parts.append(pd.DataFrame({"timestamp": ts, "slo": slo.id, "budget_remaining": vals,
                                              "series": series}))
    burn = pd.concat(burn_parts, ignore_index=True) if burn_parts else pd.DataFrame(
        {"timestamp": pd.Series([], dtype="datetime64[ns, UTC]"), "slo": [], "window": [], "error_ratio": [],
         "burn_rate": [], "series": []})
    budget = pd.concat(budget_parts, ignore_index=True) if budget_parts else pd.DataFrame(
        {"timestamp": pd.Series([], dtype="datetime64[ns, UTC]"), "slo": [], "budget_remaining": [], "series": []})
    order = {w: to_ns(parse_duration(w)) for w in burn["window"].unique()}
    burn = burn.assign(_w=burn["window"].map(order)).sort_values(["slo", "series", "_w", "timestamp"], kind="stable")
    return (burn.drop(columns="_w").reset_index(drop=True),
            budget.sort_values(["slo", "series", "timestamp"], kind="stable").reset_index(drop=True))


def one_series(burn: pd.DataFrame, slo: SLO, what: str) -> None:
    """Refuse, naming them, an SLI with several series where ``what`` needs one."""
    series = burn.loc[burn["slo"] == slo.id, "series"].unique()
    if len(series) > 1:
        raise UsageError(f"{what}: SLO {slo.id!r} has {len(series)} SLI series ({', '.join(map(str, series[:3]))}"
                         f"{', ...' if len(series) > 3 else ''}); aggregate its queries to one series (sum without "
                         "'by'), or give incidents")


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of True in ``mask`` starts, and where it stops (the index after its last).

    >>> runs(np.array([False, True, True, False, True]))
    (array([1, 4]), array([3, 5]))
    """
    edges = np.diff(np.concatenate(([0], np.asarray(mask, dtype=np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _events(slo: SLO, incidents: pd.DataFrame | None, burn: pd.DataFrame, window: str, rate: float,
            span: tuple[int, int]) -> pd.DataFrame:
    """The events an SLO's alerts are scored on: the incidents, else the stretches of evaluations
    where the error ratio over ``window`` exceeded ``rate`` x the budget (end: the first one below)."""
    if incidents is not None:
        return pd.DataFrame({"start": incidents["start"], "end": incidents["end"], "slo": slo.id,
                             "kind": "incident"})
    one_series(burn, slo, "scoring on the burn without incidents")
    mine = burn[(burn["slo"] == slo.id) & (burn["window"] == window)]
    t = mine["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    first, stop = runs(mine["burn_rate"].to_numpy(dtype=np.float64) > rate)
    starts = t[first]
    ends = np.where(stop < len(t), t[np.minimum(stop, len(t) - 1)], span[1])
    return pd.DataFrame({"start": pd.to_datetime(np.array(starts, dtype=np.int64), utc=True),
                         "end": pd.to_datetime(np.array(ends, dtype=np.int64), utc=True), "slo": slo.id,
                         "kind": "burn"})


def _spent(store: Any, slo: SLO, start_ns: int, detected_ns: int, compat: str) -> float:
    """The share of the period's error budget spent from ``start_ns`` to ``detected_ns``: the SLI's
    error ratio over that stretch (its queries with that window, at the detection) x its length /
    (budget x period). Of several SLI series, the worst."""
    window_ms = (detected_ns - start_ns) // _NS_PER_MS
    if window_ms <= 0:
        return 0.0
    window = format_duration(parse_duration(f"{window_ms}ms"))
    if slo.error_ratio is not None:
        expr = slo.error_ratio.replace("{{.window}}", window)
    else:
        errors, total = ((q or "").replace("{{.window}}", window) for q in (slo.errors, slo.total))
        expr = f"({errors}) / ({total})"
    found = instant_query(store, expr, detected_ns // _NS_PER_MS, lookback_ms=300_000, compat=compat_version(compat))
    ratios = [s["Value"] for s in found if np.isfinite(s["Value"])]
    if not ratios:
        return float("nan")
    return max(ratios) * (detected_ns - start_ns) / (slo.error_budget * slo.period_ns)


def _score(alerts: pd.DataFrame, events: pd.DataFrame, spent: Any, span: tuple[int, int]) -> dict[str, Any]:
    """Recall, precision, detection and reset times and budget spent before detection (SPEC 5's
    rule: an alert detects an event when it fires inside it, ``start <= fired_at <= end``).
    ``spent(start_ns, detected_ns)`` gives the budget share spent before a detection (None: not asked)."""
    fired = alerts["fired_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    resolved = alerts["resolved_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    resolved = np.where(resolved == np.iinfo(np.int64).min, span[1], resolved)  # still firing: the span's end
    starts = events["start"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    ends = events["end"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    order = np.argsort(fired, kind="stable")
    fired, resolved = fired[order], resolved[order]
    detections: list[float] = []
    resets: list[float] = []
    budget: list[float] = []
    for s, e in zip(starts, ends, strict=True):
        inside = np.flatnonzero((fired >= s) & (fired <= e))
        if not len(inside):
            continue
        k = inside[0]
        detections.append((fired[k] - s) / 1e9)
        resets.append((resolved[k] - e) / 1e9)
        if spent is not None:
            budget.append(spent(int(s), int(fired[k])))
    true_alerts = sum(bool(((f >= starts) & (f <= ends)).any()) for f in fired)
    return {"events": len(starts), "detected": len(detections),
            "recall": len(detections) / len(starts) if len(starts) else np.nan,
            "precision": true_alerts / len(fired) if len(fired) else np.nan,
            "mean_detection_s": float(np.mean(detections)) if detections else np.nan,
            "mean_reset_s": float(np.mean(resets)) if resets else np.nan,
            "budget_spent_before_detection": float(np.nanmean(budget)) if budget and not np.isnan(budget).all()
            else np.nan}
