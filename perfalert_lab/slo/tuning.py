"""Tuning an SLO's burn-rate alerts: sweep the share of the error budget each condition waits for
(its burn-rate factor), keep the sweep's table in the shape every other sweep has (so
:func:`~perfalert_lab.tuning.frontier` and :func:`~perfalert_lab.tuning.recommend` take it), and
write the chosen set back: as the generated rule file, or as sloth's ``AlertWindows`` file
(``sloth generate --slo-period-windows-path``).

The SLI's error ratios over every window are recorded once (one replay of the rule file); each
combination then only compares them with its thresholds and runs Prometheus's alert state machine,
so a combination costs milliseconds. A combination with the SLO's own values equals
:func:`~perfalert_lab.slo.backtest_slo` (the tests hold it).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .._time import format_duration, parse_duration, to_ns
from ..errors import UsageError
from ..prometheus.alerting import alert_states
from .analysis import _score, backtest_slo, one_series, runs
from .generate import go_float
from .model import SLO

__all__ = ["alert_windows_text", "sweep_slo"]

_NS_PER_MS = 1_000_000


def _key(w: Any) -> str:
    return f"{w.severity}_{w.speed}"


def sweep_slo(frame: Any, slo: SLO, *, incidents: pd.DataFrame | None = None, burn_rate: float = 1.0,
              burn_window: str = "1h", prometheus_compat: str = "3", **percents: Any) -> pd.DataFrame:
    """Statistics of ``slo``'s alerts for every combination of budget percentages, one keyword per
    condition (``page_quick=[1, 2, 4]``, ``page_slow``, ``ticket_quick``, ``ticket_slow``: the share of the
    budget spent over its long window that raises it). Columns: the swept ones, then ``alerts``,
    ``alerts_per_week``, ``alerts_per_day``, ``pages``, ``pages_per_week``, ``events``, ``detected``,
    ``recall``, ``precision``, ``mean_detection_delay_s``, ``mean_reset_s``,
    ``budget_spent_before_detection``."""
    names = {_key(w): w for w in slo.windows}
    unknown = [k for k in percents if k not in names]
    if unknown:
        raise UsageError(f"sweep_slo: {', '.join(unknown)} not among {slo.id}'s conditions "
                         f"({', '.join(names)})")
    if not percents:
        raise UsageError(f"sweep_slo: give percentages to sweep for at least one of {', '.join(names)}")
    grid = {k: [float(v) for v in (vals if isinstance(vals, list | tuple | np.ndarray) else [vals])]
            for k, vals in percents.items()}
    for k, vals in grid.items():
        if not vals or any(not v > 0 for v in vals):
            raise UsageError(f"sweep_slo: {k} needs positive percentages of the budget, got {vals}")
    base = backtest_slo(frame, slo, incidents=incidents, burn_rate=burn_rate, burn_window=burn_window,
                        prometheus_compat=prometheus_compat)
    one_series(base.burn, slo, "sweep_slo")
    burn = base.burn[base.burn["slo"] == slo.id]
    step_ms = base.rules.groups[0].interval_ms if base.rules.groups else 60_000
    span = (int(base.result.span[0].value), int(base.result.span[1].value))
    first = -(-(span[0] // _NS_PER_MS) // step_ms) * step_ms
    ticks = np.arange(first, span[1] // _NS_PER_MS + 1, step_ms, dtype=np.int64)
    ratios = {}
    for w, g in burn.groupby("window", sort=False):
        col = np.full(len(ticks), np.nan)
        idx = (g["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64) // _NS_PER_MS - first) // step_ms
        ok = (idx >= 0) & (idx < len(ticks))
        col[idx[ok]] = g["error_ratio"].to_numpy(dtype=np.float64)[ok]
        ratios[str(w)] = col
    events = base.events
    weeks = max((span[1] - span[0]) / 604_800e9, 1e-9)
    params = list(grid)
    rows = []
    for combo in itertools.product(*(grid[k] for k in params)):
        variant = slo.replace(**dict(zip(params, combo, strict=True)))
        alerts = _alerts(variant, ratios, ticks, span)
        row: dict[str, Any] = dict(zip(params, combo, strict=True))
        scored = _score(alerts, events, None, span)
        pages = int((alerts["tier"] == "page").sum())
        row.update(alerts=len(alerts), alerts_per_week=len(alerts) / weeks, alerts_per_day=len(alerts) / weeks / 7,
                   pages=pages, pages_per_week=pages / weeks, events=scored["events"], detected=scored["detected"],
                   recall=scored["recall"], precision=scored["precision"],
                   mean_detection_delay_s=scored["mean_detection_s"], mean_reset_s=scored["mean_reset_s"])
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["perfalert_sweep"] = {"rule": slo, "params": params}
    return table


def _alerts(slo: SLO, ratios: dict[str, np.ndarray], ticks: np.ndarray, span: tuple[int, int]) -> pd.DataFrame:
    """The alerts the generated rules would raise (one SLI series): per tier the ``or`` of its
    conditions, each ``short > factor x budget and long > factor x budget``, through the state machine."""
    rows = []
    for tier, wanted, for_ in (("page", slo.page_alert, slo.page_for), ("ticket", slo.ticket_alert, slo.ticket_for)):
        conds = [w for w in slo.windows if w.severity == tier]
        if not wanted or not conds:
            continue
        cond = np.zeros(len(ticks), dtype=bool)
        for w in conds:
            bound = slo.factor(w) * slo.error_budget
            short, long = (ratios.get(format_duration(parse_duration(x))) for x in (w.short, w.long))
            if short is None or long is None:
                raise UsageError(f"sweep_slo: window {w.short} or {w.long} was not recorded")
            with np.errstate(invalid="ignore"):
                cond |= (short > bound) & (long > bound)
        state = alert_states(cond[None, :], ticks, to_ns(parse_duration(for_)) // _NS_PER_MS)
        firing = np.flatnonzero(state[0] == 2)
        for start, stop in zip(*runs(state[0] != 0), strict=True):  # each active stretch, fired or not
            k = int(np.searchsorted(firing, start))
            if k < len(firing) and firing[k] < stop:
                rows.append({"tier": tier, "fired_at": ticks[firing[k]] * _NS_PER_MS,
                             "resolved_at": ticks[stop] * _NS_PER_MS if stop < len(ticks) else np.iinfo(np.int64).min})
    frame = pd.DataFrame(rows, columns=["tier", "fired_at", "resolved_at"])
    return frame.assign(fired_at=pd.to_datetime(frame["fired_at"].astype(np.int64), utc=True),
                        resolved_at=pd.to_datetime(frame["resolved_at"].astype(np.int64), utc=True))


def alert_windows_text(slo: SLO) -> str:
    """sloth's ``AlertWindows`` file for ``slo``'s conditions (page and ticket, quick and slow)."""
    spec: dict[str, Any] = {"sloPeriod": format_duration(parse_duration(slo.window))}
    for w in slo.windows:
        spec.setdefault(w.severity, {})[w.speed] = {"errorBudgetPercent": float(go_float(w.percent)),
                                                    "shortWindow": w.short, "longWindow": w.long}
    missing = [f"{s} {sp}" for s in ("page", "ticket") for sp in ("quick", "slow")
               if sp not in spec.get(s, {})]
    if missing:
        raise UsageError(f"sloth's AlertWindows needs page and ticket, quick and slow; {slo.id} has no "
                         f"{', '.join(missing)}: write the rule file instead")
    doc = {"apiVersion": "sloth.slok.dev/v1", "kind": "AlertWindows", "spec": spec}
    return ("# sloth alert windows tuned by perfalert_lab: sloth generate --slo-period-windows-path <dir>\n"
            + yaml.safe_dump(doc, sort_keys=False))
