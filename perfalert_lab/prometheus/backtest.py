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


def _episodes(tl: AlertTimeline) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every stretch that fired, as arrays: instance, first tick, fired tick, end tick (-1: still
    active at the last tick). A stretch is a run of active ticks with one ``active_at``."""
    n, S = tl.state.shape
    empty = np.zeros(0, dtype=np.int64)
    if n == 0 or S == 0:
        return empty, empty, empty, empty
    state = tl.state.ravel()
    since = tl.active_at.ravel()
    active = state != 0
    new = np.ones(n * S, dtype=bool)  # a run starts at a row's first tick, after an inactive tick, or a new active_at
    new[1:] = ~active[:-1] | (since[1:] != since[:-1])
    new[::S] = True
    starts = np.flatnonzero(active & new)
    if not len(starts):
        return empty, empty, empty, empty
    run = np.cumsum(active & new) - 1  # the run each active position belongs to
    pos = np.flatnonzero(active)
    lengths = np.bincount(run[pos], minlength=len(starts))
    fired_pos = np.flatnonzero(state == 2)
    runs_fired, first = np.unique(run[fired_pos], return_index=True)
    keep = runs_fired
    start = starts[keep]
    end = start + lengths[keep]
    inst = start // S
    stop = end - inst * S
    return inst, start - inst * S, fired_pos[first] - inst * S, np.where(stop < S, stop, -1)


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
    cols: dict[str, list[Any]] = {c: [] for c in ALERT_COLUMNS + ALERT_TEXT_COLUMNS}
    note_cols: dict[str, list[Any]] = {c: [] for c in NOTIFICATION_COLUMNS + NOTIFICATION_TEXT_COLUMNS}
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
        inst, first, fired, stop = _episodes(tl)
        if not len(inst):
            continue
        # per instance once: its label text, source, metric and severity
        text = np.array([format_labels(lb) for lb in tl.labels], dtype=object)
        source = np.array([alert_source(dict(lb)) for lb in tl.labels], dtype=object)
        metric = np.array([dict(lb).get("__name__", "") for lb in tl.series_labels], dtype=object)
        severity = np.array([dict(lb).get("severity", "") for lb in tl.labels], dtype=object)
        S = len(tl.ticks)
        ticks = tl.ticks.astype(np.int64)
        fired_ms = ticks[fired]
        ended = stop >= 0
        resolved_ms = np.where(ended, ticks[np.where(ended, stop, 0)], 0)
        # the peak of each stretch: the largest value (the smallest for '<' rules), NaN when none is finite
        flat = tl.value.ravel()
        lo, hi = inst * S + first, inst * S + np.where(ended, stop, S)
        bounds = np.ravel(np.column_stack([lo, hi]))
        padded = np.append(flat, np.nan)  # reduceat needs each end inside the array
        finite = np.add.reduceat(np.isfinite(padded), bounds)[::2]
        extreme = (np.fmin if tl.rule.comparison.get("op") in ("<", "<=") else np.fmax).reduceat(padded, bounds)[::2]
        peak = np.where(finite > 0, extreme, np.nan)
        ids = [hashlib.sha1(f"{rid}|{text[i]}|{f}".encode()).hexdigest()[:16]
               for i, f in zip(inst.tolist(), fired_ms.tolist(), strict=True)]
        if tl.rule.annotations:  # rendered at the firing tick (and, for the resolved note, the last active one)
            fired_notes = [tl.annotations_at(i, f) for i, f in zip(inst.tolist(), fired.tolist(), strict=True)]
            annotations = [format_labels(tuple(sorted(a.items()))) for a in fired_notes]
            summaries = [_summary(a) for a in fired_notes]
            resolved_summaries = [_summary(tl.annotations_at(i, st - 1))
                                  for i, st, e in zip(inst.tolist(), stop.tolist(), ended.tolist(), strict=True) if e]
        else:
            annotations = [format_labels(())] * len(inst)
            summaries = [""] * len(inst)
            resolved_summaries = [""] * int(ended.sum())
        k = len(inst)
        cols["alert_id"] += ids
        cols["rule_id"] += [rid] * k
        cols["source"] += source[inst].tolist()
        cols["metric"] += metric[inst].tolist()
        cols["severity"] += severity[inst].tolist()
        cols["mode"] += ["prometheus"] * k
        cols["pending_since"] += (tl.active_at[inst, first].astype(np.int64) * _NS_PER_MS).tolist()
        cols["fired_at"] += (fired_ms * _NS_PER_MS).tolist()
        cols["resolved_at"] += np.where(ended, resolved_ms * _NS_PER_MS, NAT_NS).tolist()
        cols["acknowledged_at"] += [NAT_NS] * k
        cols["status"] += np.where(ended, "resolved", "active").tolist()
        cols["suppressed_by"] += [""] * k
        cols["escalation_level"] += [0] * k
        cols["peak_value"] += peak.tolist()
        cols["notifications"] += (1 + ended).tolist()
        cols["labels"] += text[inst].tolist()
        cols["annotations"] += annotations
        # notifications: one when each alert fires, then (when it does) one when it resolves
        r = np.flatnonzero(ended)
        order = np.argsort(np.concatenate([2 * np.arange(k), 2 * r + 1]), kind="stable")

        def interleave(firing: list[Any], resolved: list[Any], order: np.ndarray = order) -> list[Any]:
            both = firing + resolved
            return [both[j] for j in order.tolist()]

        note_cols["alert_id"] += interleave(ids, [ids[j] for j in r.tolist()])
        note_cols["rule_id"] += [rid] * (k + len(r))
        note_cols["source"] += interleave(source[inst].tolist(), source[inst[r]].tolist())
        note_cols["channel"] += ["alertmanager"] * (k + len(r))
        note_cols["kind"] += interleave(["firing"] * k, ["resolved"] * len(r))
        note_cols["level"] += [0] * (k + len(r))
        note_cols["at"] += interleave((fired_ms * _NS_PER_MS).tolist(), (resolved_ms[r] * _NS_PER_MS).tolist())
        note_cols["delivered"] += [True] * (k + len(r))
        note_cols["reason"] += [""] * (k + len(r))
        note_cols["summary"] += interleave(summaries, resolved_summaries)
    alerts = pd.DataFrame(cols, columns=ALERT_COLUMNS + ALERT_TEXT_COLUMNS)
    notifications = pd.DataFrame(note_cols, columns=NOTIFICATION_COLUMNS + NOTIFICATION_TEXT_COLUMNS)
    for table, time_cols in ((alerts, ("pending_since", "fired_at", "resolved_at", "acknowledged_at")),
                             (notifications, ("at",))):
        for c in time_cols:
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


    keys: list[tuple[str, str, str]] = []
    times: list[np.ndarray] = []
    vals: list[np.ndarray] = []
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
        ok_all = np.isfinite(values_all)
        ticks_ns = tl.ticks.astype(np.int64) * _NS_PER_MS
        for i in np.flatnonzero(ok_all.any(axis=1)).tolist():
            ok = ok_all[i]
            keys.append((alert_source(dict(labels[i])), tl.rule.name, format_labels(labels[i])))
            times.append(ticks_ns[ok])
            vals.append(values_all[i][ok])
    if not keys:
        return None, compared
    if len(set(keys)) < len(keys):  # one label set from two timelines: merged as a frame merges it
        frame = pd.concat([pd.DataFrame({"timestamp": ns_to_timestamps(t), "source": k[0], "metric": k[1],
                                         "value": v, "labels": k[2]})
                           for k, t, v in zip(keys, times, vals, strict=True)], ignore_index=True)
        return SeriesSet.from_frame(frame), compared
    # one series per alert instance, in (source, metric, labels) order as every table lists series
    order = sorted(range(len(keys)), key=keys.__getitem__)
    lengths = np.array([len(times[i]) for i in order], dtype=np.int64)
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    all_t = np.concatenate([times[i] for i in order])
    all_v = np.concatenate([vals[i] for i in order]).astype(np.float64)
    key_frame = pd.DataFrame({name: pd.array([keys[i][c] for i in order], dtype="str")
                              for c, name in enumerate(("source", "metric", "labels"))})
    return SeriesSet(times=all_t, values=all_v, offsets=offsets, keys=key_frame, start_ns=int(all_t.min()),
                     end_ns=int(all_t.max())), compared


def _summary(annotations: dict[str, str]) -> str:
    """What the page says: the ``summary`` annotation, else the ``description``."""
    return annotations.get("summary") or annotations.get("description") or ""


def alert_source(labels: dict[str, str]) -> str:
    return labels.get("source") or labels.get("instance") or ""
