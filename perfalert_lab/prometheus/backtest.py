"""``pal.backtest(frame, pal.load_prometheus_rules(path))``: a rule file's alerts as SPEC 5 tables.

The alert timeline comes from :mod:`.alerting` (Prometheus's rule manager). Each
stretch of an alert instance that fired becomes one row of ``alerts``: the section 5
columns (``source`` is the alert's ``source`` label, else ``instance``, else empty;
``metric`` the metric name of its series where PromQL keeps one) plus ``labels`` and
``annotations`` (``{k="v", ...}`` text, rendered when it fired). Without an
Alertmanager configuration each alert notifies channel ``alertmanager`` when it fires
and when it resolves. Statistics and incident scoring are section 5's.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from .._time import NAT_NS, ns_to_timestamps, parse_duration, parse_instant, to_ns
from ..clock import IntervalClock
from ..engine.lifecycle import ALERT_COLUMNS, ALERT_TEXT_COLUMNS, NOTIFICATION_COLUMNS, NOTIFICATION_TEXT_COLUMNS
from ..errors import DataError
from ..frames import SeriesSet, as_incidents
from ..promql_engine import compat_version
from ..promql_engine.evaluate import Evaluator, Vector
from ..promql_engine.store import store_from_frame
from ..result import BacktestResult
from ..rules.promfile import PromRuleFile
from ..stats import compute_stats
from ..templates import format_labels
from .alerting import AlertTimeline, _alert_instances, evaluate_rule_file

__all__ = ["backtest_prometheus"]

_NS_PER_MS = 1_000_000


def _episodes(tl: AlertTimeline) -> list[tuple[int, int, int, int | None]]:
    """(instance, first tick, fired tick, end tick or None) of every stretch that fired."""
    out = []
    for i in range(len(tl.labels)):
        state, since = tl.state[i], tl.active_at[i]
        j, S = 0, len(tl.ticks)
        while j < S:
            if state[j] == 0:
                j += 1
                continue
            start = j
            while j < S and state[j] != 0 and since[j] == since[start]:
                j += 1
            fired = np.flatnonzero(state[start:j] == 2)
            if len(fired):
                out.append((i, start, start + int(fired[0]), j if j < S else None))
    return out


def backtest_prometheus(frame: Any, rules: PromRuleFile, *, incidents: pd.DataFrame | None = None,
                        prometheus_compat: str = "3", group_offset: Any = "0s", lookback: Any = "5m",
                        start: Any = None, end: Any = None, keep_recorded: bool = False) -> BacktestResult:
    """The backtest of a Prometheus rule file (SPEC 11); ``keep_recorded`` keeps the input series with
    what the recording rules wrote, as ``result.recorded`` (a :class:`SeriesStore`)."""
    compat = compat_version(prometheus_compat)
    store = store_from_frame(frame)
    if store.first_ms is None:
        raise DataError("frame: no samples to replay")
    start_ms = parse_instant(start) // _NS_PER_MS if start is not None else store.first_ms
    end_ms = parse_instant(end) // _NS_PER_MS if end is not None else store.last_ms
    assert end_ms is not None
    timelines, full_store = evaluate_rule_file(store, rules, start_ms, end_ms, compat=compat,
                                               lookback_ms=to_ns(parse_duration(lookback)) // _NS_PER_MS,
                                               group_offset_ms=to_ns(parse_duration(group_offset)) // _NS_PER_MS)
    incidents = as_incidents(incidents)
    rule_ids = list(dict.fromkeys(r.name for r in rules.alert_rules))
    all_sources = {alert_source(dict(lb)) for lb in store.labels}
    series, compared = _expression_series(timelines, full_store, compat,
                                          to_ns(parse_duration(lookback)) // _NS_PER_MS)
    alerts, notifications, stats = tables_from_timelines(timelines, rule_ids, (store.first_ms, end_ms), incidents,
                                                         all_sources, compared=compared)
    interval = rules.groups[0].interval_ms if rules.groups else 60_000
    clock = IntervalClock(every=f"{interval // 1000}s", lookback=lookback)
    span = (pd.Timestamp(store.first_ms * _NS_PER_MS, tz="UTC"), pd.Timestamp(end_ms * _NS_PER_MS, tz="UTC"))
    return BacktestResult(alerts, notifications, stats, rules, clock, span, incidents,
                          series=series, recorded=full_store if keep_recorded else None)


def tables_from_timelines(timelines: list[AlertTimeline], rule_ids: list[str], span_ms: tuple[int, int],
                          incidents: pd.DataFrame | None, sources: set[str], compared: dict[str, int] | None = None
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The alerts, notifications and statistics tables of alert timelines (SPEC 5 and 11).

    ``compared`` counts, per rule, the series its threshold is compared with (the left side of
    ``<expr> > 0.05``); a rule's ``firing_fraction`` divides by it (default: its alert instances)."""
    rows: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    evaluations: dict[str, int] = {}
    watched: dict[str, set[str]] = {}
    n_series: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    for tl in timelines:
        rid = tl.rule.name
        evaluations[rid] = evaluations.get(rid, 0) + len(tl.ticks)
        n_series[rid] = n_series.get(rid, 0) + len(tl.labels)
        watched.setdefault(rid, set()).update(tl.watched or {alert_source(dict(lb)) for lb in tl.labels})
        if len(tl.ticks):
            spans[rid] = (int(tl.ticks[0]) * _NS_PER_MS, int(tl.ticks[-1]) * _NS_PER_MS)
        lower_is_worse = tl.rule.comparison.get("op") in ("<", "<=")
        for i, first, fired, stop in _episodes(tl):
            labels = dict(tl.labels[i])
            source = alert_source(labels)
            values = tl.value[i, first:stop]
            peak = float(np.nanmin(values) if lower_is_worse else np.nanmax(values)) \
                if np.isfinite(values).any() else float("nan")
            fired_ms = int(tl.ticks[fired])
            resolved_ms = int(tl.ticks[stop]) if stop is not None else None
            key = f"{rid}|{format_labels(tl.labels[i])}|{fired_ms}"
            alert_id = hashlib.sha1(key.encode()).hexdigest()[:16]
            annotations = tl.annotations_at(i, fired)
            rows.append({
                "alert_id": alert_id, "rule_id": rid, "source": source,
                "metric": dict(tl.series_labels[i]).get("__name__", ""),
                "severity": labels.get("severity", ""), "mode": "prometheus",
                "pending_since": int(tl.active_at[i, first]) * _NS_PER_MS, "fired_at": fired_ms * _NS_PER_MS,
                "resolved_at": resolved_ms * _NS_PER_MS if resolved_ms is not None else NAT_NS,
                "acknowledged_at": NAT_NS, "status": "resolved" if resolved_ms is not None else "active",
                "suppressed_by": "", "escalation_level": 0, "peak_value": peak,
                "notifications": 1 + (resolved_ms is not None),
                "labels": format_labels(tl.labels[i]),
                "annotations": format_labels(tuple(sorted(annotations.items()))),
            })
            notes.append({"alert_id": alert_id, "rule_id": rid, "source": source, "channel": "alertmanager",
                          "kind": "firing", "level": 0, "at": fired_ms * _NS_PER_MS, "delivered": True,
                          "reason": "", "summary": _summary(annotations)})
            if stop is not None and resolved_ms is not None:  # with the annotations of its last active evaluation
                notes.append({"alert_id": alert_id, "rule_id": rid, "source": source, "channel": "alertmanager",
                              "kind": "resolved", "level": 0, "at": resolved_ms * _NS_PER_MS, "delivered": True,
                              "reason": "", "summary": _summary(tl.annotations_at(i, stop - 1))})
    alerts = pd.DataFrame(rows, columns=ALERT_COLUMNS + ALERT_TEXT_COLUMNS)
    notifications = pd.DataFrame(notes, columns=NOTIFICATION_COLUMNS + NOTIFICATION_TEXT_COLUMNS)
    for table, cols in ((alerts, ("pending_since", "fired_at", "resolved_at", "acknowledged_at")),
                        (notifications, ("at",))):
        for c in cols:
            table[c] = ns_to_timestamps(table[c].to_numpy(dtype=np.int64) if len(table) else np.zeros(0, np.int64))
    alerts = alerts.sort_values(["fired_at", "rule_id", "labels"], kind="stable").reset_index(drop=True)
    notifications = notifications.sort_values(["at", "rule_id"], kind="stable").reset_index(drop=True)
    alerts["escalation_level"] = alerts["escalation_level"].astype(np.int64)
    alerts["notifications"] = alerts["notifications"].astype(np.int64)
    notifications["level"] = notifications["level"].astype(np.int64)
    notifications["delivered"] = notifications["delivered"].astype(bool)
    span_ns = (span_ms[0] * _NS_PER_MS, span_ms[1] * _NS_PER_MS)
    if compared is not None:
        n_series.update({rid: n for rid, n in compared.items() if rid in n_series})
    stats = compute_stats(alerts, notifications, evaluations, watched, n_series, rule_ids, span_ns, incidents,
                          spans=spans, sources=sources)
    return alerts, notifications, stats


def _expression_series(timelines: list[AlertTimeline], store: Any, compat: str, lookback_ms: int
                       ) -> tuple[Any, dict[str, int]]:
    """What the timelines and the report draw for each alert rule: one series per alert instance,
    named as its alert is (``source``, ``metric`` = the rule's name, ``labels`` = the alert's label
    text), holding the value its threshold is compared with (the left side of ``<expr> > 0.05``, at
    every tick, so the approach to the threshold shows), else the alert expression's own value (for
    ``x and y``, ``absent(x)`` or a bare selector: its value while active). Also how many series
    each rule compares."""
    import promql_parser as pp


    parts = []
    compared: dict[str, int] = {}
    for tl in timelines:
        labels, values_all = tl.labels, tl.value
        if tl.rule.comparison.get("threshold") is not None:
            node: Any = pp.parse(tl.rule.expr)
            while isinstance(node, pp.ParenExpr):
                node = node.expr
            ev = Evaluator(store, tl.ticks - tl.group.query_offset_ms, lookback_ms=lookback_ms, compat=compat,
                           subquery_step_ms=tl.group.interval_ms, text=tl.rule.expr)
            lhs = ev.eval(node.lhs)
            if isinstance(lhs, Vector):
                labels, _, present, values_all, _ = _alert_instances(tl.rule, lhs, "timeline")
                values_all = np.where(present, values_all, np.nan)
        compared[tl.rule.name] = compared.get(tl.rule.name, 0) + len(labels)
        for i, lb in enumerate(labels):
            values = np.where(np.isfinite(values_all[i]), values_all[i], np.nan)
            ok = ~np.isnan(values)
            if ok.any():
                parts.append(pd.DataFrame({"timestamp": ns_to_timestamps(tl.ticks[ok] * _NS_PER_MS),
                                           "source": alert_source(dict(lb)), "metric": tl.rule.name,
                                           "value": values[ok], "labels": format_labels(lb)}))
    if not parts:
        return None, compared
    return SeriesSet.from_frame(pd.concat(parts, ignore_index=True)), compared


def _summary(annotations: dict[str, str]) -> str:
    """What the page says: the ``summary`` annotation, else the ``description``."""
    return annotations.get("summary") or annotations.get("description") or ""


def alert_source(labels: dict[str, str]) -> str:
    return labels.get("source") or labels.get("instance") or ""
