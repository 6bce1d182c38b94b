"""``pal.promql(dask_frame, expr)``: the pandas answer, computed where the data is.

The frame is shuffled on its label columns so that every series lives in one
partition. The expression tree is then split:

* **per-series parts** (selectors, range functions and subqueries over them, math
  functions, arithmetic with a number) need only the samples of one series: each
  partition evaluates them on its own series, in a task;
* **aggregations** ``sum``, ``count``, ``min``, ``max``, ``avg`` and ``group`` (with
  ``by``/``without``) over a per-series part are reduced in the task too, to partial
  aggregates per group (sum and count, min, max), which the client combines;
* **the rest** (matching across series, other aggregations, ``histogram_quantile``,
  ``absent``...) is evaluated by the client on the tasks' per-series results, with the
  same evaluator as pandas.

Only the per-series results or partial aggregates travel, never the samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import promql_parser as pp

from ..errors import DataError, require_module
from ..frames import frame_timestamps
from . import kernels as K
from .evaluate import _MATH, Evaluator, Scalar, Vector, _drop_absent, _merge_rows, parse
from .store import Labels, SeriesStore, store_from_frame

__all__ = ["evaluate_dask", "span_of_dask"]

_PARTIAL = {"sum", "count", "min", "max", "avg", "group"}
_LOCAL_CALLS = set(K.RANGE_FUNCTIONS) | set(_MATH) | {"round", "clamp", "clamp_min", "clamp_max", "timestamp"}


def _local(node: Any) -> bool:
    """Does ``node`` need only the samples of one series at a time?"""
    if isinstance(node, pp.VectorSelector):
        return node.at is None
    if isinstance(node, pp.MatrixSelector):
        return _local(node.vector_selector)
    if isinstance(node, pp.SubqueryExpr):
        return _local(node.expr)
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr):
        return _local(node.expr)
    if isinstance(node, pp.NumberLiteral):
        return True
    if isinstance(node, pp.Call):
        return node.func.name in _LOCAL_CALLS and all(_local(a) for a in node.args)
    if isinstance(node, pp.BinaryExpr):
        # a vector with a number: each series on its own; two vectors would need matching
        sides = [node.lhs, node.rhs]
        return sum(isinstance(_unparen(s), pp.NumberLiteral) for s in sides) >= 1 and all(_local(s) for s in sides)
    return False


def _unparen(node: Any) -> Any:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def _plan(node: Any, local: list[Any], partial: list[Any]) -> None:
    """Collect the largest per-series subtrees and the aggregations to reduce in the tasks."""
    if isinstance(node, pp.NumberLiteral | pp.StringLiteral):
        return
    if isinstance(node, pp.AggregateExpr) and str(node.op) in _PARTIAL and _local(node.expr) \
            and _vector_like(node.expr):
        partial.append(node)
        return
    if _local(node) and not isinstance(_unparen(node), pp.NumberLiteral):
        local.append(node)
        return
    for child in _children(node):
        _plan(child, local, partial)


def _vector_like(node: Any) -> bool:
    return not isinstance(_unparen(node), pp.NumberLiteral)


def _children(node: Any) -> list[Any]:
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, pp.AggregateExpr):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, pp.Call):
        return list(node.args)
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        return [node.expr]
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    return []


def _group_key(node: Any) -> Any:
    mod = node.modifier
    if mod is None:
        return lambda lb: ()
    names = set(mod.labels)
    if str(mod.type).endswith("By"):
        return lambda lb: tuple(p for p in lb if p[0] in names)
    return lambda lb: tuple(p for p in lb if p[0] not in names and p[0] != "__name__")


def _partials(node: Any, v: Vector) -> dict[Labels, tuple[np.ndarray, ...]]:
    """Per group: (sum, count, min, max) over the series present at each step."""
    key = _group_key(node)
    groups: dict[Labels, list[int]] = {}
    for row, lb in enumerate(v.labels):
        groups.setdefault(key(lb), []).append(row)
    out: dict[Labels, tuple[np.ndarray, ...]] = {}
    with np.errstate(all="ignore"):
        for g, rows in groups.items():
            vals, mask = v.values[rows], v.present[rows]
            filled = np.where(mask, vals, np.nan)
            out[g] = (np.where(mask, vals, 0.0).sum(axis=0), mask.sum(axis=0).astype(np.float64),
                      np.fmin.reduce(filled, axis=0), np.fmax.reduce(filled, axis=0))
    return out


def _task(pdf: pd.DataFrame, expr: str, times: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
    node = parse(expr)
    local: list[Any] = []
    partial: list[Any] = []
    _plan(node, local, partial)
    if len(pdf) == 0:
        return {"local": {}, "partial": {}}
    ev = Evaluator(store_from_frame(pdf), times, text=expr, **options)
    result: dict[str, Any] = {"local": {}, "partial": {}}
    for sub in local:
        result["local"][str(sub)] = ev.eval(sub)
    for agg in partial:
        v = ev.eval(agg.expr)
        assert isinstance(v, Vector)
        result["partial"][str(agg)] = _partials(agg, v)
    return result


def _combine_partials(node: Any, parts: list[dict[Labels, tuple[np.ndarray, ...]]], steps: int) -> Vector:
    op = str(node.op)
    merged: dict[Labels, list[np.ndarray]] = {}
    for part in parts:
        for g, (s, c, lo, hi) in part.items():
            if g not in merged:
                merged[g] = [s.copy(), c.copy(), lo.copy(), hi.copy()]
            else:
                m = merged[g]
                m[0] += s
                m[1] += c
                m[2] = np.fmin(m[2], lo)
                m[3] = np.fmax(m[3], hi)
    if not merged:
        return Vector.empty(steps)
    labels = list(merged)
    s = np.array([merged[g][0] for g in labels])
    c = np.array([merged[g][1] for g in labels])
    with np.errstate(all="ignore"):
        values = {"sum": s, "count": c, "avg": s / c, "group": np.ones_like(s),
                  "min": np.array([merged[g][2] for g in labels]), "max": np.array([merged[g][3] for g in labels])}[op]
    return _drop_absent(Vector(labels, values, c > 0))


class _Central(Evaluator):
    """The client's evaluator: per-series parts and reduced aggregations come from the tasks."""

    def __init__(self, done: dict[str, Any], times: np.ndarray, text: str, options: dict[str, Any]) -> None:
        empty = SeriesStore([], np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0))
        super().__init__(empty, times, text=text, **options)
        self.done = done

    def eval(self, node: Any) -> Any:
        hit = self.done.get(str(node))
        return hit if hit is not None else super().eval(node)


def span_of_dask(frame: Any) -> tuple[int, int]:
    """First and last sample time (ms) of a dask frame."""
    dask = require_module("dask", "dask", "PromQL on a dask DataFrame")

    def span(pdf: pd.DataFrame) -> tuple[int, int] | None:
        if len(pdf) == 0:
            return None
        ns = frame_timestamps(pdf["timestamp"], "dask frame")
        return int(ns.min()) // 1_000_000, int(ns.max()) // 1_000_000

    spans = [s for s in dask.compute(*[dask.delayed(span)(p) for p in frame.to_delayed()]) if s is not None]
    if not spans:
        raise DataError("dask frame: no samples")
    return min(a for a, _ in spans), max(b for _, b in spans)


def evaluate_dask(frame: Any, expr: str, times: np.ndarray, options: dict[str, Any]) -> Vector | Scalar:
    """Evaluate ``expr`` at ``times`` over a dask frame (see the module's description)."""
    dask = require_module("dask", "dask", "PromQL on a dask DataFrame")

    node = parse(expr)
    labels = [c for c in frame.columns if c not in ("timestamp", "value")]
    shuffled = frame.shuffle(on=labels) if frame.npartitions > 1 else frame
    results = dask.compute(*[dask.delayed(_task)(p, expr, times, options) for p in shuffled.to_delayed()])
    local: list[Any] = []
    partial: list[Any] = []
    _plan(node, local, partial)
    done: dict[str, Any] = {}
    for sub in local:
        parts = [r["local"][str(sub)] for r in results if str(sub) in r["local"]]
        vectors = [p for p in parts if isinstance(p, Vector)]
        if vectors:
            done[str(sub)] = _merge_rows(Vector([lb for v in vectors for lb in v.labels],
                                                np.vstack([v.values for v in vectors]),
                                                np.vstack([v.present for v in vectors])))
        elif parts:  # a scalar-valued local part (time(), a number expression): the same everywhere
            done[str(sub)] = parts[0]
        else:
            done[str(sub)] = Vector.empty(len(times))
    for agg in partial:
        done[str(agg)] = _combine_partials(agg, [r["partial"][str(agg)] for r in results if str(agg) in r["partial"]],
                                           len(times))
    return _Central(done, times, expr, options).eval(node)
