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

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .._arrow import repeated, strings_at, taken
from .._hashing import stable_hash
from .._time import NAT_NS, ns_to_timestamps, parse_duration, parse_instant, to_ns
from ..clock import IntervalClock
from ..engine.lifecycle import (
    ALERT_COLUMNS,
    ALERT_TEXT_COLUMNS,
    NOTIFICATION_COLUMNS,
    NOTIFICATION_TEXT_COLUMNS,
    alert_ids,
)
from ..errors import DataError
from ..frames import Handoff, SeriesSet, as_incidents
from ..promql_engine import compat_version
from ..promql_engine.evaluate import Evaluator, Vector
from ..promql_engine.store import store_from_frame
from ..result import BacktestResult
from ..rules.promfile import PromRuleFile
from ..stats import compute_stats
from ..templates import format_labels, format_labels_many
from .alerting import AlertTimeline, _alert_instances, evaluate_rule_file, fired_stretches, top_expression

__all__ = ["backtest_prometheus"]

_NS_PER_MS = 1_000_000


def backtest_prometheus(frame: Any, rules: PromRuleFile, *, incidents: pd.DataFrame | None = None,
                        prometheus_compat: str = "3", group_offset: Any = "0s", lookback: Any = "5m",
                        start: Any = None, end: Any = None, keep_recorded: bool = False) -> BacktestResult:
    """The backtest of a Prometheus rule file (SPEC 11); ``keep_recorded`` keeps the input series with
    what the recording rules wrote, as ``result.recorded`` (a :class:`SeriesStore`)."""
    compat = compat_version(prometheus_compat)
    # handed over (the command's own read, :class:`Handoff`), the input is held only while its store is
    # made: the store's times are its own (milliseconds) and its values go with it, before the tables
    store = store_from_frame(Handoff.taken(frame))
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
    rows = _alert_rows(timelines, rule_ids)
    first_ms, recorded = store.first_ms, full_store if keep_recorded else None
    # the replay's (instance x tick) matrices and the store's times go before the tables are built, but
    # for the matrices the report draws (``series`` holds them): less memory at the run's peak
    del timelines, store, full_store
    alerts, notifications, stats = rows.tables((first_ms, end_ms), incidents, all_sources, compared)
    interval = rules.groups[0].interval_ms if rules.groups else 60_000
    clock = IntervalClock(every=f"{interval // 1000}s", lookback=lookback)
    span = (pd.Timestamp(first_ms * _NS_PER_MS, tz="UTC"), pd.Timestamp(end_ms * _NS_PER_MS, tz="UTC"))
    return BacktestResult(alerts, notifications, stats, rules, clock, span, incidents,
                          series=series, recorded=recorded)


def tables_from_timelines(timelines: list[AlertTimeline], rule_ids: list[str], span_ms: tuple[int, int],
                          incidents: pd.DataFrame | None, sources: set[str], compared: dict[str, int] | None = None
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The alerts, notifications and statistics tables of alert timelines (SPEC 5 and 11).

    ``compared`` counts, per rule, the series its threshold is compared with (the left side of
    ``<expr> > 0.05``); a rule's ``firing_fraction`` divides by it (default: its alert instances)."""
    return _alert_rows(timelines, rule_ids).tables(span_ms, incidents, sources, compared)


@dataclass
class _AlertRows:
    """What the tables are built from, per alert and per notification: small arrays and the strings they
    index, without the timelines' (instance x tick) matrices (a backtest lets those go before it builds
    the tables)."""

    a_parts: dict[str, list[np.ndarray]]
    a_ids: list[Any]
    n_parts: dict[str, list[np.ndarray]]
    texts: list[Any]  # Arrow string arrays, end to end
    rule_index: dict[str, int]
    instances: tuple[list[str], list[str], list[str], list[str]]
    evaluations: dict[str, int]
    watched: dict[str, set[str]]
    n_series: dict[str, int]
    spans: dict[str, tuple[int, int]]
    rule_ids: list[str]

    def tables(self, span_ms: tuple[int, int], incidents: pd.DataFrame | None, sources: set[str],
               compared: dict[str, int] | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The three tables; the per-row arrays are used up as the columns are made (call it once)."""
        alerts, notifications = _tables(self.a_parts, self.a_ids, self.n_parts, self.texts, self.rule_index,
                                        self.instances)
        span_ns = (span_ms[0] * _NS_PER_MS, span_ms[1] * _NS_PER_MS)
        n_series = dict(self.n_series)
        if compared is not None:
            n_series.update({rid: n for rid, n in compared.items() if rid in n_series})
        stats = compute_stats(alerts, notifications, self.evaluations, self.watched, n_series, self.rule_ids,
                              span_ns, incidents, spans=self.spans, sources=sources)
        return alerts, notifications, stats


def _alert_rows(timelines: list[AlertTimeline], rule_ids: list[str]) -> _AlertRows:
    """Each fired stretch of the timelines as the rows of the alerts and notifications tables."""
    # strings are kept once per alert instance (label text, source, metric, severity) and per rule;
    # rows refer to them by index, and the columns are built in Arrow at the end (no string per row)
    inst_text: list[str] = []
    inst_source: list[str] = []
    inst_metric: list[str] = []
    inst_severity: list[str] = []
    a_parts: dict[str, list[np.ndarray]] = {k: [] for k in ("inst", "rule", "pending", "fired", "resolved", "peak",
                                                            "annotations")}
    a_ids: list[Any] = []  # Arrow string arrays, one per rule
    n_parts: dict[str, list[np.ndarray]] = {k: [] for k in ("alert", "inst", "rule", "at", "resolved", "summary")}
    # rendered annotations and summaries (Arrow string arrays, end to end), referred to by index: 0 and 1 are a
    # rule without annotations' own
    texts: list[Any] = [pa.array([format_labels(()), ""], type=pa.string())]
    n_texts = 2
    rule_index = {rid: k for k, rid in enumerate(dict.fromkeys([*rule_ids, *(tl.rule.name for tl in timelines)]))}
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
        lower = tl.rule.comparison.get("op") in ("<", "<=")  # a '<' rule's peak is its smallest value
        inst, first, fired, stop, peak = fired_stretches(tl.state, tl.values, tl.present, lower)
        if not len(inst):
            continue
        base, a_base = len(inst_text), sum(len(x) for x in a_ids)
        text = [format_labels(lb) for lb in tl.labels]
        inst_text += text
        inst_source += [alert_source(dict(lb)) for lb in tl.labels]
        inst_metric += [dict(lb).get("__name__", "") for lb in tl.series_labels]
        inst_severity += [dict(lb).get("severity", "") for lb in tl.labels]
        ticks = tl.ticks.astype(np.int64)
        fired_ms = ticks[fired]
        ended = stop >= 0
        resolved_ms = np.where(ended, ticks[np.where(ended, stop, 0)], 0)
        # the ids our own rules' alerts have: <rule>-<hash of the label set>-<pending instant, ns>
        label_hash = np.array([stable_hash(t) for t in text], dtype=np.uint64)
        ids = alert_ids(rid, label_hash[inst], ticks[first] * _NS_PER_MS)
        k = len(inst)
        r = np.flatnonzero(ended)
        if tl.rule.annotations:  # rendered at the firing tick (and, for the resolved note, the last active one)
            fired_notes = tl.annotations_many(inst, fired)
            first_text = n_texts
            texts += [format_labels_many(fired_notes, k), _summaries(fired_notes, k),
                      _resolved_summaries(tl, inst[r], stop[r] - 1)]
            n_texts += 2 * k + len(r)
            annotation_at = first_text + np.arange(k)
            summary_at = first_text + k + np.arange(k + len(r))  # the fired summaries, then the resolved ones
        else:
            annotation_at = np.zeros(k, dtype=np.int64)
            summary_at = np.ones(k + len(r), dtype=np.int64)
        a_parts["inst"].append(base + inst)
        a_parts["rule"].append(np.full(k, rule_index[rid], dtype=np.int64))
        a_parts["pending"].append(ticks[first] * _NS_PER_MS)  # an alert is active from its stretch's first tick
        a_parts["fired"].append(fired_ms * _NS_PER_MS)
        a_parts["resolved"].append(np.where(ended, resolved_ms * _NS_PER_MS, NAT_NS))
        a_parts["peak"].append(peak)
        a_parts["annotations"].append(annotation_at)
        a_ids.append(ids)
        # notifications: one when each alert fires, then (when it does) one when it resolves
        order = np.argsort(np.concatenate([2 * np.arange(k), 2 * r + 1]), kind="stable")
        n_parts["alert"].append(a_base + np.concatenate([np.arange(k), r])[order])
        n_parts["summary"].append(summary_at[order])
        n_parts["inst"].append(base + np.concatenate([inst, inst[r]])[order])
        n_parts["rule"].append(np.full(k + len(r), rule_index[rid], dtype=np.int64))
        n_parts["at"].append(np.concatenate([fired_ms, resolved_ms[r]])[order] * _NS_PER_MS)
        n_parts["resolved"].append(np.concatenate([np.zeros(k, bool), np.ones(len(r), bool)])[order])
    return _AlertRows(a_parts, a_ids, n_parts, texts, rule_index, (inst_text, inst_source, inst_metric, inst_severity),
                      evaluations, watched, n_series, spans, rule_ids)


def _rank(uniques: list[str]) -> np.ndarray:
    """Each string's place in sorted order (ties share one): a sort key equal to sorting the strings."""
    if not uniques:
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(np.array(uniques, dtype=object), return_inverse=True)
    return np.asarray(inverse, dtype=np.int64)


def _tables(a_parts: dict[str, list[np.ndarray]], a_ids: list[Any], n_parts: dict[str, list[np.ndarray]],
            texts: list[Any], rule_index: dict[str, int],
            instances: tuple[list[str], list[str], list[str], list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The alerts and notifications tables from the per-row arrays, sorted as SPEC 5 orders them: alerts by
    firing time, rule and label text; notifications by time and rule (each stably). The arrays of
    ``a_parts``, ``a_ids`` and ``n_parts`` are let go as they are used (less memory at a backtest's peak)."""
    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        out = np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)
        parts.clear()
        return out

    text, source, metric, severity = instances
    ids = pa.concat_arrays(a_ids) if a_ids else pa.array([], type=pa.string())
    a_ids.clear()
    rules = list(rule_index)
    rule_rank = _rank(rules)
    inst, rule = cat(a_parts["inst"], np.int64), cat(a_parts["rule"], np.int64)
    fired = cat(a_parts["fired"], np.int64)
    order = np.lexsort((_rank(text)[inst] if len(inst) else inst, rule_rank[rule] if len(rule) else rule, fired))
    inst, rule, fired = inst[order], rule[order], fired[order]
    resolved = cat(a_parts["resolved"], np.int64)[order]
    ended = resolved != NAT_NS
    n = len(inst)
    alerts = pd.DataFrame({
        "alert_id": taken(ids, order), "rule_id": strings_at(rules, rule), "source": strings_at(source, inst),
        "metric": strings_at(metric, inst), "severity": strings_at(severity, inst),
        "mode": strings_at(["prometheus"], np.zeros(n, dtype=np.int64)),
        "pending_since": ns_to_timestamps(cat(a_parts["pending"], np.int64)[order]),
        "fired_at": ns_to_timestamps(fired), "resolved_at": ns_to_timestamps(resolved),
        "acknowledged_at": ns_to_timestamps(np.full(n, NAT_NS, dtype=np.int64)),
        "status": strings_at(["active", "resolved"], ended.astype(np.int64)),
        "suppressed_by": strings_at([""], np.zeros(n, dtype=np.int64)),
        "escalation_level": np.zeros(n, dtype=np.int64), "peak_value": cat(a_parts["peak"], np.float64)[order],
        "notifications": 1 + ended.astype(np.int64), "labels": strings_at(text, inst),
        "annotations": taken(texts, cat(a_parts["annotations"], np.int64)[order]),
    }, columns=ALERT_COLUMNS + ALERT_TEXT_COLUMNS, copy=False)  # the arrays are the table's own
    n_inst, n_rule = cat(n_parts["inst"], np.int64), cat(n_parts["rule"], np.int64)
    at = cat(n_parts["at"], np.int64)
    order = np.lexsort((rule_rank[n_rule] if len(n_rule) else n_rule, at))
    n_inst, n_rule, at = n_inst[order], n_rule[order], at[order]
    m = len(order)
    notifications = pd.DataFrame({
        "alert_id": taken(ids, cat(n_parts["alert"], np.int64)[order]),
        "rule_id": strings_at(rules, n_rule), "source": strings_at(source, n_inst),
        "channel": strings_at(["alertmanager"], np.zeros(m, dtype=np.int64)),
        "kind": strings_at(["firing", "resolved"], cat(n_parts["resolved"], np.int64)[order]),
        "level": np.zeros(m, dtype=np.int64), "at": ns_to_timestamps(at), "delivered": np.ones(m, dtype=bool),
        "reason": strings_at([""], np.zeros(m, dtype=np.int64)),
        "summary": taken(texts, cat(n_parts["summary"], np.int64)[order]),
    }, columns=NOTIFICATION_COLUMNS + NOTIFICATION_TEXT_COLUMNS, copy=False)
    return alerts, notifications


class DrawnSeries(SeriesSet):
    """The series a rule file's report draws, kept as the replay left them: one row of an (instance x
    tick) matrix per series, read where present and finite. A series' points are gathered when asked (the
    report draws six); ``times`` and ``values`` of every series only when read."""

    # (tick times in ns, instance x tick values, where present) per rule: the replay's own arrays
    _blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    _where: tuple[np.ndarray, np.ndarray]  # each series' block and row
    _first: np.ndarray
    _last: np.ndarray

    def __init__(self, keys: pd.DataFrame, blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], block: np.ndarray,
                 row: np.ndarray, counts: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        for name, value in (("keys", keys), ("offsets", offsets), ("start_ns", int(first.min())),
                            ("end_ns", int(last.max())), ("_blocks", blocks), ("_where", (block, row)),
                            ("_first", first), ("_last", last)):
            object.__setattr__(self, name, value)

    def points(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        ticks_ns, values, present = self._blocks[int(self._where[0][s])]
        r = int(self._where[1][s])
        row = values[r]
        ok = present[r] & np.isfinite(row)
        return ticks_ns[ok], row[ok].astype(np.float64)

    def span_of(self, sids: np.ndarray) -> tuple[int, int]:
        sids = np.asarray(sids, dtype=np.int64)
        if len(sids) == 0:
            return self.start_ns, self.end_ns
        return int(self._first[sids].min()), int(self._last[sids].max())

    @functools.cached_property
    def times(self) -> np.ndarray:  # type: ignore[override]
        return self._gather()[0]

    @functools.cached_property
    def values(self) -> np.ndarray:  # type: ignore[override]
        return self._gather()[1]

    def _gather(self) -> tuple[np.ndarray, np.ndarray]:
        if "_all" not in self.__dict__:
            parts = [self.points(s) for s in range(self.n_series)]
            self.__dict__["_all"] = (np.concatenate([p[0] for p in parts]).astype(np.int64),
                                     np.concatenate([p[1] for p in parts]).astype(np.float64))
        return self.__dict__["_all"]  # type: ignore[no-any-return]


def _expression_series(timelines: list[AlertTimeline], store: Any, compat: str, lookback_ms: int
                       ) -> tuple[Any, dict[str, int]]:
    """What the timelines and the report draw for each alert rule: one series per alert instance,
    named as its alert is (``source``, ``metric`` = the rule's name, ``labels`` = the alert's label
    text), holding the value its threshold is compared with (the left side of ``<expr> > 0.05``, at
    every tick, so the approach to the threshold shows), else the alert expression's own value (for
    ``x and y``, ``absent(x)`` or a bare selector: its value while active). Also how many series
    each rule compares. The series stay the replay's matrices (:class:`DrawnSeries`)."""
    keys: list[tuple[str, str, str]] = []
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    where: list[tuple[np.ndarray, np.ndarray]] = []
    counts: list[np.ndarray] = []
    firsts: list[np.ndarray] = []
    lasts: list[np.ndarray] = []
    compared: dict[str, int] = {}
    for tl in timelines:
        labels, values_all, present = tl.labels, tl.values, tl.present  # values read where present
        if tl.compared is not None:  # the left side of '<expression> > 0.05', as the replay evaluated it
            labels, _, present, values_all, _ = _alert_instances(tl.rule, tl.compared, "timeline")
        elif tl.rule.comparison.get("threshold") is not None:  # '> bool 5': its left side, evaluated here
            node = top_expression(tl.rule.expr)
            ev = Evaluator(store, tl.ticks - tl.group.query_offset_ms, lookback_ms=lookback_ms, compat=compat,
                           subquery_step_ms=tl.group.interval_ms, text=tl.rule.expr)
            lhs = ev.eval(node.lhs)
            if isinstance(lhs, Vector):
                labels, _, present, values_all, _ = _alert_instances(tl.rule, lhs, "timeline")
        compared[tl.rule.name] = compared.get(tl.rule.name, 0) + len(labels)
        ok_all = present & np.isfinite(values_all)
        count = ok_all.sum(axis=1)
        rows = np.flatnonzero(count)
        if not len(rows):
            continue
        ticks_ns = tl.ticks.astype(np.int64) * _NS_PER_MS
        ok = ok_all[rows]
        S = ok.shape[1]
        firsts.append(ticks_ns[np.argmax(ok, axis=1)])
        lasts.append(ticks_ns[S - 1 - np.argmax(ok[:, ::-1], axis=1)])
        keys += [(alert_source(dict(labels[i])), tl.rule.name, format_labels(labels[i])) for i in rows.tolist()]
        where.append((np.full(len(rows), len(blocks), dtype=np.int64), rows))
        blocks.append((ticks_ns, values_all, present))
        counts.append(count[rows])
    if not keys:
        return None, compared
    block, row = np.concatenate([w[0] for w in where]), np.concatenate([w[1] for w in where])
    count, first, last = np.concatenate(counts), np.concatenate(firsts), np.concatenate(lasts)
    if len(set(keys)) < len(keys):  # one label set from two timelines: merged as a frame merges it
        parts = [(blocks[b], r) for b, r in zip(block.tolist(), row.tolist(), strict=True)]
        oks = [p[r] & np.isfinite(v[r]) for (_, v, p), r in parts]
        pts = [(t[ok], v[r][ok]) for ((t, v, _), r), ok in zip(parts, oks, strict=True)]
        owner = np.repeat(np.arange(len(keys)), count)
        frame = pd.DataFrame({"timestamp": ns_to_timestamps(np.concatenate([p[0] for p in pts])),
                              "source": [keys[i][0] for i in owner], "metric": [keys[i][1] for i in owner],
                              "value": np.concatenate([p[1] for p in pts]).astype(np.float64),
                              "labels": [keys[i][2] for i in owner]})
        return SeriesSet.from_frame(frame), compared
    # one series per alert instance, in (source, metric, labels) order as every table lists series
    order = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
    key_frame = pd.DataFrame({name: pd.array([keys[i][c] for i in order.tolist()], dtype="str")
                              for c, name in enumerate(("source", "metric", "labels"))})
    return DrawnSeries(key_frame, blocks, block[order], row[order], count[order], first[order],
                       last[order]), compared


def _resolved_summaries(tl: AlertTimeline, inst: np.ndarray, ticks: np.ndarray) -> Any:
    """What each resolved page says (:func:`_summaries`, rendered at the alerts' last active ticks): the
    description only where the summary is empty."""
    import pyarrow.compute as pc

    said = tl.annotations_many(inst, ticks, ("summary",)).get("summary")
    if said is None:
        return _summaries(tl.annotations_many(inst, ticks, ("description",)), len(inst))
    empty = np.asarray(pc.equal(said, "").to_numpy(zero_copy_only=False), dtype=bool)
    if "description" not in tl.rule.annotations or not empty.any():
        return said
    rows = np.flatnonzero(empty)
    described = tl.annotations_many(inst[rows], ticks[rows], ("description",))["description"]
    return pc.replace_with_mask(said, pa.array(empty), described)


def _summaries(annotations: dict[str, Any], n: int) -> Any:
    """What each page says: the ``summary`` annotation, else the ``description`` (columns of ``n`` texts)."""
    import pyarrow.compute as pc

    empty = repeated("", n)
    summary, description = annotations.get("summary", empty), annotations.get("description", empty)
    return pc.if_else(pc.equal(summary, ""), description, summary)


def alert_source(labels: dict[str, str]) -> str:
    return labels.get("source") or labels.get("instance") or ""
