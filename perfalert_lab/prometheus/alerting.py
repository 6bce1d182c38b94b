"""Prometheus's rule manager over history: recording rules, then alerts, tick by tick at once.

Each group evaluates on ticks aligned to its ``interval`` (multiples of it since the
epoch, as promtool evaluates; ``group_offset`` shifts them), querying at ``t -
query_offset``. Rules run in file order: a recording rule's output is written as
samples at the tick times and seen by the rules after it. An alert rule's
expression is evaluated at all ticks in one call; every output series (its labels
without ``__name__``, plus the rule's rendered labels and ``alertname``) is one alert
instance, and :func:`alert_states` runs Prometheus's state machine for all instances:
pending when it appears, firing once active for ``for``, kept firing for
``keep_firing_for`` after it disappears, resolved when it is gone, and every alert of
the rule dropped at a tick where more than ``limit`` are active.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from .._time import ns_to_timestamps
from ..engine.states import AlertState
from ..errors import PerfAlertWarning, RulesError
from ..gotemplate import Struct
from ..promql_engine import parse
from ..promql_engine.evaluate import Evaluator, PromQLError, Scalar, Vector
from ..promql_engine.kernels import STALE_NAN_BITS
from ..promql_engine.store import Labels, SeriesStore
from ..rules.promfile import PromGroup, PromRule, PromRuleFile
from ..templates import render, render_many

__all__ = ["AlertTimeline", "active_since", "alert_states", "compared_side", "evaluate_rule_file", "instant_query",
           "rule_ticks", "top_expression"]

INACTIVE, PENDING, FIRING = int(AlertState.INACTIVE), int(AlertState.PENDING), int(AlertState.FIRING)
_STALE = np.array([STALE_NAN_BITS], dtype=np.int64).view(np.float64)[0]


@dataclass
class AlertTimeline:
    """One alert rule's instances over the group's ticks."""

    rule: PromRule
    group: PromGroup
    ticks: np.ndarray  # int64 ms
    labels: list[Labels]  # per instance: the alert's labels (alertname included)
    series_labels: list[Labels]  # per instance: the expression's output series (for templates)
    state: np.ndarray  # int8 [instance, tick]: INACTIVE / PENDING / FIRING
    values: np.ndarray  # float64 [instance, tick]: the expression's value, read where ``present`` (may be shared)
    present: np.ndarray  # bool [instance, tick]: where the alert expression gives the instance a value
    watched: frozenset[str] = frozenset()  # sources of the series its selectors read (incidents it answers for)
    query: Callable[[str, int], list[Any]] | None = None  # a template's PromQL query at a time (ms)
    # for '<expression> > 0.05': the expression's value at every tick, every series (what the report draws)
    compared: Vector | None = None

    @functools.cached_property
    def value(self) -> np.ndarray:
        """float64 [instance, tick]: the expression's value where present, NaN elsewhere (made when read)."""
        return np.where(self.present, self.values, np.nan)

    @functools.cached_property
    def active_at(self) -> np.ndarray:
        """int64 [instance, tick] ms: when the alert became active (its ``activeAt``), where state > 0 (made
        when read)."""
        return active_since(self.state, self.ticks)

    def annotations_many(self, inst: np.ndarray, ticks: np.ndarray, names: tuple[str, ...] | None = None
                         ) -> dict[str, Any]:
        """The rule's annotations rendered for instance ``inst[k]`` at tick ``ticks[k]`` (a template's ``query``
        runs at that tick, over the history), as one Arrow string column per annotation (``names``: those
        only), each distinct input rendered once (:func:`render_many`)."""
        inst, ticks = np.asarray(inst, dtype=np.int64), np.asarray(ticks, dtype=np.int64)
        values = np.where(self.present[inst, ticks], self.values[inst, ticks], np.nan)
        labels = [dict(lb) for lb in self.series_labels]
        at_ms = self.ticks.astype(np.int64)[ticks]
        return {k: render_many(v, labels, inst, values, at_ms=at_ms, query=self.query)
                for k, v in self.rule.annotations.items() if names is None or k in names}


def instant_query(store: SeriesStore, expr: str, at_ms: int, *, lookback_ms: int, compat: str) -> list[Any]:
    """A template's ``query``: the samples of a PromQL instant query at ``at_ms``, as Prometheus's
    template functions see them (``.Labels`` with ``__name__``, ``.Value``); a scalar is one sample
    without labels."""
    ev = Evaluator(store, np.array([at_ms], dtype=np.int64), lookback_ms=lookback_ms, compat=compat,
                   subquery_step_ms=60_000, text=expr)
    out = ev.eval(parse(expr))
    if isinstance(out, Scalar):
        return [Struct(Labels={}, Value=float(out.values[0]))]
    if not isinstance(out, Vector):
        raise ValueError("query result is not a vector or scalar")
    return [Struct(Labels=dict(lb), Value=float(out.values[k, 0]))
            for k, lb in enumerate(out.labels) if out.present[k, 0]]


def selectors(expr: str) -> list[Any]:
    """The vector selectors of an expression (in range selectors and subqueries too)."""
    import promql_parser as pp

    found = []
    stack = [parse(expr)]
    while stack:
        n = stack.pop()
        if isinstance(n, pp.VectorSelector):
            found.append(n)
            continue
        for attr in ("lhs", "rhs", "expr", "vector_selector", "param"):
            child = getattr(n, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                stack.append(child)
        if isinstance(n, pp.Call):
            stack += list(n.args)
    return found


def watched_sources(store: SeriesStore, expr: str) -> frozenset[str]:
    """The sources (``source`` label, else ``instance``) of every series the expression's selectors match."""
    ev = Evaluator(store, np.zeros(0, dtype=np.int64), lookback_ms=0, compat="3", subquery_step_ms=60_000)
    out: set[str] = set()
    for sel in selectors(expr):
        for row in ev._select(sel):
            d = dict(store.labels[row])
            out.add(d.get("source") or d.get("instance") or "")
    return frozenset(out)


def forward_references(rules: PromRuleFile) -> list[str]:
    """One line per rule that reads a series recorded by a rule evaluated after it (later in its
    group, or in a later group): it sees that rule's previous evaluation, one interval late (as
    promtool evaluates; the backtest does the same)."""
    order = [(g, r) for g in rules.groups for r in g.rules]
    lines = []
    for i, (group, rule) in enumerate(order):
        later = {r.name: g for g, r in order[i + 1:] if r.kind == "record"}
        if not later:
            continue
        for sel in selectors(rule.expr):
            name = getattr(sel, "name", None)
            if name in later:
                lines.append(f"{rules.path}: group {group.name!r}: rule {rule.name!r} reads {name!r}, recorded by a "
                             f"rule after it (group {later[name].name!r}): it sees the previous evaluation's value, "
                             "one interval late; move the recording rule first to read the current one")
                break
    return lines


def rule_ticks(group: PromGroup, start_ms: int, end_ms: int, group_offset_ms: int = 0) -> np.ndarray:
    """The group's evaluation times in ``[start_ms, end_ms]``: multiples of its interval, shifted."""
    step = group.interval_ms
    first = -(-(start_ms - group_offset_ms) // step) * step + group_offset_ms
    return np.arange(first, end_ms + 1, step, dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _states(present, ticks, failed, for_ms, keep_ms, limit, state):  # pragma: no cover - compiled
    n, S = present.shape
    cur = np.zeros(n, dtype=np.int8)
    since = np.zeros(n, dtype=np.int64)
    keep_since = np.full(n, -1, dtype=np.int64)
    for j in range(S):
        t = ticks[j]
        if failed[j]:  # the rule's evaluation failed: Prometheus leaves its alerts as they were
            for i in range(n):
                state[i, j] = cur[i]
            continue
        active = 0
        for i in range(n):
            if present[i, j]:
                keep_since[i] = -1
                if cur[i] == INACTIVE:
                    cur[i] = PENDING
                    since[i] = t
            elif cur[i] == PENDING:
                cur[i] = INACTIVE
            elif cur[i] == FIRING:
                keep = False
                if keep_ms > 0:
                    if keep_since[i] < 0:
                        keep_since[i] = t
                    keep = t - keep_since[i] < keep_ms
                if not keep:
                    cur[i] = INACTIVE
                    keep_since[i] = -1
            if cur[i] == PENDING and t - since[i] >= for_ms:
                cur[i] = FIRING
            if cur[i] != INACTIVE:
                active += 1
        if limit > 0 and active > limit:  # Prometheus drops every alert of the rule
            for i in range(n):
                cur[i] = INACTIVE
                keep_since[i] = -1
        for i in range(n):
            state[i, j] = cur[i]


@numba.njit(cache=True, nogil=True)
def _stretches(state, values, present, lower, out, peak):  # pragma: no cover - compiled
    """Each stretch that fired (a run of active ticks holding a firing tick: an alert keeps its ``activeAt``
    until it is inactive) as a row of ``out``: instance, first tick, firing tick, end tick (exclusive; -1:
    active at the last tick); ``peak``: the largest (``lower``: smallest) value present over [first, end),
    NaN when none is finite. With ``out`` of no rows the stretches are only counted. Returns how many."""
    n, S = state.shape
    k = 0
    for i in range(n):
        j = 0
        while j < S:
            if state[i, j] == INACTIVE:
                j += 1
                continue
            first = j
            fired = -1
            while j < S and state[i, j] != INACTIVE:
                if fired < 0 and state[i, j] == FIRING:
                    fired = j
                j += 1
            if fired < 0:
                continue
            if out.shape[0]:
                best = np.nan  # over the values that are not NaN; NaN when none is finite
                finite = False
                for m in range(first, j):
                    if not present[i, m]:
                        continue
                    v = values[i, m]
                    if not np.isnan(v) and (np.isnan(best) or (v < best if lower else v > best)):
                        best = v
                    finite = finite or np.isfinite(v)
                if not finite:
                    best = np.nan
                out[k, 0] = i
                out[k, 1] = first
                out[k, 2] = fired
                out[k, 3] = j if j < S else -1
                peak[k] = best
            k += 1
    return k


def fired_stretches(state: np.ndarray, values: np.ndarray, present: np.ndarray, lower: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every stretch of an alert timeline that fired, in two passes over its state (count, fill):
    instance, first tick, firing tick, end tick (-1: still active at the last tick) and its peak value
    over the ticks ``present`` (the largest, the smallest for ``lower``; NaN when none is finite)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    state, present = np.ascontiguousarray(state), np.ascontiguousarray(present, dtype=np.bool_)
    k = _stretches(state, values, present, lower, np.zeros((0, 4), dtype=np.int64), np.zeros(0))
    out, peak = np.zeros((k, 4), dtype=np.int64), np.zeros(k)
    _stretches(state, values, present, lower, out, peak)
    return out[:, 0].copy(), out[:, 1].copy(), out[:, 2].copy(), out[:, 3].copy(), peak


def alert_states(present: np.ndarray, ticks: np.ndarray, for_ms: int, keep_firing_for_ms: int = 0,
                 limit: int = 0, failed: np.ndarray | None = None) -> np.ndarray:
    """The state of every instance at every tick (int8: INACTIVE / PENDING / FIRING), from where its
    series is present; at ``failed`` ticks (the rule's evaluation failed) every instance keeps its state.
    Its ``activeAt`` is :func:`active_since` of the states."""
    n, S = present.shape
    state = np.zeros((n, S), dtype=np.int8)
    failed = np.zeros(S, dtype=np.bool_) if failed is None else np.ascontiguousarray(failed, dtype=np.bool_)
    if n and S:
        _states(np.ascontiguousarray(present), ticks, failed, for_ms, keep_firing_for_ms, limit, state)
    return state


def active_since(state: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """int64 [instance, tick] ms: each active tick's ``activeAt``, the tick its run of active ticks began
    (an alert becomes pending when it appears and keeps its ``activeAt`` until it is inactive); 0 where
    inactive."""
    active = state != INACTIVE
    n, S = active.shape
    begins = active.copy()
    begins[:, 1:] &= ~active[:, :-1]
    start = np.where(begins, np.arange(S, dtype=np.int64), 0)
    np.maximum.accumulate(start, axis=1, out=start)
    return np.where(active, np.asarray(ticks, dtype=np.int64)[start], 0)


def _add_series(store: SeriesStore, labels: list[Labels], ts: list[np.ndarray], vals: list[np.ndarray]) -> SeriesStore:
    """``store`` with samples added (new series, or merged into existing ones of the same labels)."""
    index = {lb: i for i, lb in enumerate(store.labels)}
    per_series_ts = [store.ts[store.offsets[i]:store.offsets[i + 1]] for i in range(store.n_series)]
    per_series_v = [store.vals[store.offsets[i]:store.offsets[i + 1]] for i in range(store.n_series)]
    all_labels = list(store.labels)
    for lb, t, v in zip(labels, ts, vals, strict=True):
        if lb in index:
            i = index[lb]
            merged_t = np.concatenate([per_series_ts[i], t])
            merged_v = np.concatenate([per_series_v[i], v])
            order = np.argsort(merged_t, kind="stable")
            merged_t, merged_v = merged_t[order], merged_v[order]
            keep = np.ones(len(merged_t), dtype=bool)
            keep[:-1] = merged_t[1:] != merged_t[:-1]  # the later write at one timestamp wins
            per_series_ts[i], per_series_v[i] = merged_t[keep], merged_v[keep]
        else:
            index[lb] = len(all_labels)
            all_labels.append(lb)
            per_series_ts.append(t)
            per_series_v.append(v)
    offsets = np.zeros(len(all_labels) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in per_series_ts], out=offsets[1:])
    cat_t = np.concatenate(per_series_ts) if per_series_ts else np.empty(0, np.int64)
    cat_v = np.concatenate(per_series_v) if per_series_v else np.empty(0)
    return SeriesStore(all_labels, offsets, cat_t.astype(np.int64), cat_v.astype(np.float64))


_FILTERS = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal, "==": np.equal,
            "!=": np.not_equal}


def top_expression(expr: str) -> Any:
    """``expr`` parsed, without the parentheses around the whole of it."""
    import promql_parser as pp

    node: Any = parse(expr)
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def compared_side(rule: PromRule) -> tuple[Any, str, float] | None:
    """``(left side, op, number)`` of an alert expression ``<vector expression> <op> <number>`` (a
    filtering comparison, not ``bool``: :attr:`PromRule.comparison` with a threshold); None for any other shape."""
    import promql_parser as pp

    op, bound = rule.comparison.get("op"), rule.comparison.get("threshold")
    if bound is None or op not in _FILTERS:
        return None
    node = top_expression(rule.expr)
    if node.modifier is not None and node.modifier.return_bool:
        return None
    assert isinstance(node, pp.BinaryExpr)  # comparison_of found a top-level comparison with a number on the right
    return node.lhs, str(op), float(bound)


def _filtered(lhs: Vector, op: str, bound: float) -> Vector:
    """``lhs <op> bound`` as PromQL filters a vector by a scalar: each series where the comparison holds,
    its value and labels unchanged, series never kept dropped."""
    with np.errstate(invalid="ignore"):
        present = lhs.present & _FILTERS[op](lhs.values, bound)
    rows = np.flatnonzero(present.any(axis=1))
    if len(rows) == len(lhs.labels):  # every series kept: its values are the left side's own (not copied)
        return Vector(list(lhs.labels), lhs.values, present)
    return Vector([lhs.labels[i] for i in rows], lhs.values[rows], present[rows])


def _evaluate(store: SeriesStore, rule: PromRule, group: PromGroup, ticks: np.ndarray, *, lookback_ms: int,
              compat: str, where: str, node: Any = None) -> Vector:
    ev = Evaluator(store, ticks - group.query_offset_ms, lookback_ms=lookback_ms, compat=compat,
                   subquery_step_ms=group.interval_ms, text=rule.expr)
    try:
        out = ev.eval(parse(rule.expr) if node is None else node)
    except PromQLError as exc:
        raise RulesError(f"{where}: rule {rule.name!r}: {exc}") from None
    if isinstance(out, Scalar):  # a scalar result is one series without labels
        out = Vector([()], out.values[None, :], np.ones((1, len(ticks)), dtype=bool))
    assert isinstance(out, Vector)
    return out


def _alert_instances(rule: PromRule, out: Vector, where: str) -> tuple[list[Labels], list[Labels], np.ndarray,
                                                                        np.ndarray, np.ndarray]:
    """Alert labels per instance, the series each came from, ``present``/``values`` per instance (the
    values are read where present; one row per instance: the vector's own arrays, not copied), and
    the ticks where two series gave one instance (``vector contains metrics with the same labelset
    after applying alert labels``: Prometheus fails the rule's evaluation there)."""
    index: dict[Labels, int] = {}
    labels: list[Labels] = []
    series: list[Labels] = []
    rows_of: list[list[int]] = []
    templated = any("{{" in v for v in rule.labels.values())
    for row, lb in enumerate(out.labels):
        base = {k: v for k, v in lb if k != "__name__"}
        if templated:
            first = int(np.argmax(out.present[row]))
            extra = {k: render(v, dict(lb), float(out.values[row, first])) for k, v in rule.labels.items()}
        else:
            extra = dict(rule.labels)
        final = {**base, **{k: v for k, v in extra.items()}, "alertname": rule.name}
        key = tuple(sorted((k, v) for k, v in final.items() if v != ""))
        if key not in index:
            index[key] = len(labels)
            labels.append(key)
            series.append(lb)
            rows_of.append([])
        rows_of[index[key]].append(row)
    S = out.values.shape[1]
    if len(labels) == len(out.labels):  # one row per instance (the common case): no merging to do
        # each row its own instance, in order: the vector's arrays are read, never written
        return labels, series, out.present, out.values, np.zeros(S, dtype=bool)
    present = np.zeros((len(labels), S), dtype=bool)
    value = np.full((len(labels), S), np.nan)
    failed = np.zeros(S, dtype=bool)
    for i, rows in enumerate(rows_of):
        if len(rows) > 1:
            failed |= out.present[rows].sum(axis=0) > 1
        for r in rows:
            present[i] |= out.present[r]
            value[i] = np.where(out.present[r], out.values[r], value[i])
    return labels, series, present, value, failed


def _warn_failed(where: str, rule: PromRule, ticks: np.ndarray, failed: np.ndarray, applied: str = "alert labels",
                 then: str = "keeps its alerts as they were") -> None:
    first = ns_to_timestamps(np.array([int(ticks[np.argmax(failed)]) * 1_000_000]))[0]
    warnings.warn(f"{where}: rule {rule.name!r}: at {first.isoformat()} and {int(failed.sum()) - 1} more evaluations "
                  f"the vector contains metrics with the same labelset after applying {applied}; Prometheus fails "
                  f"the rule's evaluation there and {then}", PerfAlertWarning, stacklevel=2)


def evaluate_rule_file(store: SeriesStore, rules: PromRuleFile, start_ms: int, end_ms: int, *,
                       lookback_ms: int = 300_000, compat: str = "3", group_offset_ms: int = 0,
                       ) -> tuple[list[AlertTimeline], SeriesStore]:
    """Every alert rule's timeline, and the store with the recording rules' series added.

    Groups and their rules are evaluated in file order at each tick, as promtool does: a rule
    that reads a series recorded by a rule after it sees that series one evaluation late. The
    file is then evaluated in passes: each gives such readers the series the previous pass
    recorded, written one millisecond after their tick (invisible at the tick, visible from the
    next), until the recorded series no longer change."""
    forward = forward_names(rules)
    late: dict[Labels, tuple[np.ndarray, np.ndarray]] = {}
    for _ in range(len(forward) + 2):
        with warnings.catch_warnings(record=True) as said:  # each pass says the same: the last one's are given
            warnings.simplefilter("always")
            timelines, final, recorded = _one_pass(store, rules, start_ms, end_ms, lookback_ms=lookback_ms,
                                                   compat=compat, group_offset_ms=group_offset_ms, forward=forward,
                                                   late=late)
        if not forward or _same_series(recorded, late):
            break
        late = recorded
    for w in said:
        warnings.warn(w.message, w.category, stacklevel=2)
    return timelines, final


def forward_names(rules: PromRuleFile) -> set[str]:
    """Names recorded by a rule that some earlier rule of the file reads."""
    order = [r for g in rules.groups for r in g.rules]
    names: set[str] = set()
    for i, rule in enumerate(order):
        later = {r.name for r in order[i + 1:] if r.kind == "record"}
        names |= {str(getattr(sel, "name", "")) for sel in selectors(rule.expr)} & later
    return names


def _same_series(a: dict[Labels, tuple[np.ndarray, np.ndarray]], b: dict[Labels, tuple[np.ndarray, np.ndarray]]
                 ) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k][0], b[k][0])
                                        and np.array_equal(a[k][1].view(np.int64), b[k][1].view(np.int64))
                                        for k in a)


def _one_pass(store: SeriesStore, rules: PromRuleFile, start_ms: int, end_ms: int, *, lookback_ms: int, compat: str,
              group_offset_ms: int, forward: set[str], late: dict[Labels, tuple[np.ndarray, np.ndarray]]
              ) -> tuple[list[AlertTimeline], SeriesStore, dict[Labels, tuple[np.ndarray, np.ndarray]]]:
    """One evaluation of the file; ``late`` are the forward-read series of the previous pass."""
    if late:  # what the earlier readers see: the previous evaluation's samples, one tick late
        labels = list(late)
        store = _add_series(store, labels, [late[lb][0] + 1 for lb in labels], [late[lb][1] for lb in labels])
    recorded: dict[Labels, tuple[np.ndarray, np.ndarray]] = {}
    timelines: list[AlertTimeline] = []
    for group in rules.groups:
        ticks = rule_ticks(group, start_ms, end_ms, group_offset_ms)
        where = f"{rules.path}: group {group.name!r}"
        for rule in group.rules:
            compared = None
            if rule.kind == "alert" and (split := compared_side(rule)) is not None:
                # evaluated once: its left side, every series, then the comparison as PromQL filters (the
                # left side is what the report draws, so it is not evaluated again)
                compared = _evaluate(store, rule, group, ticks, lookback_ms=lookback_ms, compat=compat, where=where,
                                     node=split[0])
                out = _filtered(compared, split[1], split[2])
            else:
                out = _evaluate(store, rule, group, ticks, lookback_ms=lookback_ms, compat=compat, where=where)
            if rule.kind == "record":
                labels, ts, vals = [], [], []
                for row, lb in enumerate(out.labels):
                    d = {k: v for k, v in lb if k != "__name__"}
                    d.update(rule.labels)
                    d["__name__"] = rule.name
                    labels.append(tuple(sorted((k, v) for k, v in d.items() if v != "")))
                    mask = out.present[row]
                    # where the series stops, Prometheus writes a staleness marker: it ends there,
                    # rather than lingering for the lookback
                    ended = np.zeros_like(mask)
                    ended[1:] = mask[:-1] & ~mask[1:]
                    keep = mask | ended
                    v = np.where(ended, _STALE, out.values[row])
                    ts.append(ticks[keep])
                    vals.append(v[keep])
                if len(set(labels)) != len(labels):
                    merged: dict[Labels, tuple[list[np.ndarray], list[np.ndarray]]] = {}
                    for lb, t, v in zip(labels, ts, vals, strict=True):
                        merged.setdefault(lb, ([], []))
                        merged[lb][0].append(t)
                        merged[lb][1].append(v)
                    labels = list(merged)
                    ts = [np.concatenate(merged[lb][0]) for lb in labels]
                    vals = [np.concatenate(merged[lb][1]) for lb in labels]
                    orders = [np.argsort(t, kind="stable") for t in ts]
                    ts = [t[o] for t, o in zip(ts, orders, strict=True)]
                    vals = [v[o] for v, o in zip(vals, orders, strict=True)]
                    clash = np.unique(np.concatenate([t[1:][t[1:] == t[:-1]] for t in ts]))
                    if len(clash):  # Prometheus fails the rule's evaluation at those ticks: it records nothing
                        failed = np.isin(ticks, clash)
                        _warn_failed(where, rule, ticks, failed, "rule labels", "writes nothing")
                        keep = [~np.isin(t, clash) for t in ts]
                        ts = [t[k] for t, k in zip(ts, keep, strict=True)]
                        vals = [v[k] for v, k in zip(vals, keep, strict=True)]
                if rule.name in forward:  # its late copy gives way to what it records now (rules after it see that)
                    keep = [i for i, lb in enumerate(store.labels)
                            if not (lb in late and dict(lb).get("__name__") == rule.name)]
                    store = store.subset(np.array(keep, dtype=np.int64)) if len(keep) < store.n_series else store
                    recorded.update({lb: (t, v) for lb, t, v in zip(labels, ts, vals, strict=True)})
                store = _add_series(store, labels, ts, vals)
                continue
            labels, series, present, values, failed = _alert_instances(rule, out, where)
            if failed.any():
                _warn_failed(where, rule, ticks, failed)
            state = alert_states(present, ticks, rule.for_ms, rule.keep_firing_for_ms, group.limit, failed)
            timelines.append(AlertTimeline(rule, group, ticks, labels, series, state, values, present,
                                           watched_sources(store, rule.expr), compared=compared))
    final = store  # a template's query sees every series, recorded ones included, as they were at its tick

    def query(expr: str, at_ms: int) -> list[Any]:
        return instant_query(final, expr, at_ms, lookback_ms=lookback_ms, compat=compat)

    for tl in timelines:
        tl.query = query
    return timelines, store, recorded
