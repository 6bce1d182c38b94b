"""Evaluate a PromQL expression at every step at once.

An instant vector is a :class:`Vector`: one row per output series (its label set),
``values[row, step]`` and ``present[row, step]`` (a row need not exist at every
step; NaN is a value, absence is not). A scalar is a :class:`Scalar` (one value per
step). Each node of the syntax tree (parsed by the ``promql-parser`` package) is
evaluated once, for all steps and all series, with array operations and the loops
of :mod:`.kernels`; nothing loops over steps in Python.

Semantics are Prometheus's (``promql/engine.go`` and ``functions.go``): which series
exist, which labels they keep, NaN and the error cases. Range and lookback windows
are left-open ``(t - r, t]`` as in Prometheus 3; ``compat="2"`` makes them
left-closed ``[t - r, t]`` as in Prometheus 2.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

import numpy as np
import promql_parser as pp

from ..errors import PromQLError, UnsupportedPromQL, UsageError
from ..re2 import compile_anchored
from ..templates import format_labels
from . import kernels as K
from .store import Labels, SeriesStore

__all__ = ["PromQLError", "Scalar", "UnsupportedPromQL", "Vector", "Evaluator", "parse"]


def parse(expr: str) -> Any:
    """Parse ``expr`` with the ``promql-parser`` package; a syntax error is a :class:`PromQLError`."""
    if not isinstance(expr, str) or not expr.strip():
        raise UsageError(f"expected a PromQL expression as text, got {expr!r}")
    try:
        return pp.parse(expr)
    except Exception as exc:  # the parser raises a bare ValueError/RuntimeError with its message
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PromQLError(f"cannot parse PromQL {expr!r}: {msg}") from None


@dataclass
class Vector:
    labels: list[Labels]
    values: np.ndarray  # float64 [n, S]
    present: np.ndarray  # bool [n, S]

    @classmethod
    def empty(cls, steps: int) -> Vector:
        return cls([], np.empty((0, steps)), np.zeros((0, steps), dtype=bool))


@dataclass
class Scalar:
    values: np.ndarray  # float64 [S]


@dataclass
class Matrix:
    """A range vector: samples per series (a store), read at ``T - offset`` over ``range``."""

    store: SeriesStore
    range_ms: int
    offset_ms: int
    selector: Any = None  # the VectorSelector, for absent_over_time's labels


_ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
_COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
_SET = {"and", "or", "unless"}
_MATH = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "sqrt": np.sqrt, "exp": np.exp, "ln": np.log,
    "log2": np.log2, "log10": np.log10,
}
_SIMPLE_AGGREGATIONS = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"}
_PARAM_AGGREGATIONS = {"quantile", "topk", "bottomk", "count_values"}
_KEEP_NAME_FUNCTIONS = {"last_over_time", "label_replace", "label_join"}


def _ms(td: Any) -> int:
    """A ``timedelta`` from the parser as integer milliseconds."""
    if td is None:
        return 0
    return (td.days * 86400 + td.seconds) * 1000 + td.microseconds // 1000


def _without_name(labels: Labels) -> Labels:
    return tuple(p for p in labels if p[0] != "__name__")


class Evaluator:
    """Evaluate parsed expressions over one store at the times ``T`` (int64 ms)."""

    def __init__(self, store: SeriesStore, T: np.ndarray, *, lookback_ms: int, compat: str,
                 subquery_step_ms: int, text: str = "") -> None:
        self.store = store
        self.T = np.asarray(T, dtype=np.int64)
        self.lookback_ms = lookback_ms
        self.left_open = compat != "2"
        self.subquery_step_ms = subquery_step_ms
        self.text = text

    # ------------------------------------------------------------------ entry

    def eval(self, node: Any) -> Vector | Scalar | Matrix | str:
        kind = type(node).__name__
        method = getattr(self, f"_eval_{kind}", None)
        if method is None:
            self.unsupported(f"the expression {str(node)!r}", str(node))
        return method(node)

    def unsupported(self, what: str, needle: str | None = None) -> NoReturn:
        where = ""
        if needle and self.text:
            i = self.text.find(needle)
            if i >= 0:
                where = f" at position {i + 1}"
        raise UnsupportedPromQL(f"{what}{where} is not supported by perfalert_lab's PromQL "
                                f"(SPEC 11 lists the supported subset)")

    def _scalar_arg(self, node: Any, what: str) -> np.ndarray:
        v = self.eval(node)
        if not isinstance(v, Scalar):
            raise PromQLError(f"{what}: expected a scalar, got an instant vector")
        return v.values

    def _string_arg(self, node: Any, what: str) -> str:
        v = self.eval(node)
        if not isinstance(v, str):
            raise PromQLError(f"{what}: expected a string")
        return v

    def _vector_arg(self, node: Any, what: str) -> Vector:
        v = self.eval(node)
        if not isinstance(v, Vector):
            raise PromQLError(f"{what}: expected an instant vector")
        return v

    # ------------------------------------------------------------------ leaves

    def _eval_NumberLiteral(self, node: Any) -> Scalar:
        return Scalar(np.full(len(self.T), float(node.val)))

    def _eval_StringLiteral(self, node: Any) -> str:
        return str(node.val)

    def _eval_ParenExpr(self, node: Any) -> Any:
        return self.eval(node.expr)

    def _eval_UnaryExpr(self, node: Any) -> Any:
        v = self.eval(node.expr)
        if isinstance(v, Scalar):
            return Scalar(-v.values)
        if isinstance(v, Vector):
            return _merge_rows(Vector([_without_name(lb) for lb in v.labels], -v.values, v.present.copy()))
        raise PromQLError("unary minus needs a scalar or an instant vector")

    def _select(self, node: Any) -> np.ndarray:
        """Rows of the store matched by a vector selector's matchers."""
        if node.at is not None:
            self.unsupported("the @ modifier", "@")
        matchers = list(node.matchers.matchers)
        if node.matchers.or_matchers:
            self.unsupported("'or' inside a selector", " or ")
        if node.name:
            matchers.append(("__name__", "Equal", node.name))
        tests = []
        for m in matchers:
            if isinstance(m, tuple):
                name, op, value = m
            else:
                name, op, value = m.name, str(m.op).rsplit(".", 1)[-1], m.value
            tests.append((name, op, value))
        rows = []
        for i, lb in enumerate(self.store.labels):
            d = dict(lb)
            if all(_match(d.get(name, ""), op, value) for name, op, value in tests):
                rows.append(i)
        return np.asarray(rows, dtype=np.int64)

    def _eval_VectorSelector(self, node: Any, *, with_times: bool = False) -> Any:
        rows = self._select(node)
        sub = self.store.subset(rows)
        S = len(self.T)
        n = sub.n_series
        out = np.full((n, S), np.nan)
        present = np.zeros((n, S), dtype=bool)
        sample_ts = np.zeros((n, S), dtype=np.int64)
        if n and S:
            K.instant(sub.offsets, sub.ts, sub.vals, self.T - _ms(node.offset), self.lookback_ms,
                      self.left_open, out, present, sample_ts)
        vec = Vector(list(sub.labels), out, present)
        return (vec, sample_ts) if with_times else vec

    def _eval_MatrixSelector(self, node: Any) -> Matrix:
        vs = node.vector_selector
        rows = self._select(vs)
        return Matrix(self.store.subset(rows).without_stale(), _ms(node.range), _ms(vs.offset), vs)

    def _eval_SubqueryExpr(self, node: Any) -> Matrix:
        if node.at is not None:
            self.unsupported("the @ modifier", "@")
        rng = _ms(node.range)
        step = _ms(node.step) if node.step is not None else self.subquery_step_ms
        offset = _ms(node.offset)
        if len(self.T) == 0:
            return Matrix(SeriesStore([], np.zeros(1, dtype=np.int64), np.empty(0, np.int64), np.empty(0)),
                          rng, offset)
        t0 = int(self.T[0]) - offset - rng
        start = (t0 // step) * step
        if start < t0 or (self.left_open and start == t0):
            start += step
        ticks = np.arange(start, int(self.T[-1]) - offset + 1, step, dtype=np.int64)
        inner = Evaluator(self.store, ticks, lookback_ms=self.lookback_ms,
                          compat="3" if self.left_open else "2", subquery_step_ms=self.subquery_step_ms,
                          text=self.text)
        v = inner.eval(node.expr)
        if isinstance(v, Scalar):
            self.unsupported("a subquery of a scalar expression", str(node))
        assert isinstance(v, Vector)
        counts = v.present.sum(axis=1)
        offsets = np.zeros(len(v.labels) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        rr, cc = np.nonzero(v.present)
        store = SeriesStore(list(v.labels), offsets, ticks[cc], v.values[rr, cc])
        # the window ends at t - offset; the stored ticks already sit on the absolute grid
        return Matrix(store, rng, offset)

    # ------------------------------------------------------------------ functions

    def _eval_Call(self, node: Any) -> Any:
        name = node.func.name
        args = list(node.args)
        S = len(self.T)
        if name in K.RANGE_FUNCTIONS:
            if name in ("quantile_over_time",):
                arg = self._scalar_arg(args[0], name)
                m = self.eval(args[1])
            elif name == "predict_linear":
                m = self.eval(args[0])
                arg = self._scalar_arg(args[1], name)
            else:
                m = self.eval(args[0])
                arg = np.zeros(S)
            if not isinstance(m, Matrix):
                raise PromQLError(f"{name}: expected a range vector")
            st = m.store
            out = np.full((st.n_series, S), np.nan)
            present = np.zeros((st.n_series, S), dtype=bool)
            if st.n_series and S:
                v3 = self.left_open  # Prometheus 3's extrapolation goes with its boundaries
                K.over_range(K.RANGE_FUNCTIONS[name], st.offsets, st.ts, st.vals, self.T - m.offset_ms, self.T,
                             m.range_ms, self.left_open, v3, np.asarray(arg, dtype=np.float64), out, present)
            labels = list(st.labels) if name in _KEEP_NAME_FUNCTIONS else [_without_name(lb) for lb in st.labels]
            return _drop_absent(_merge_rows(Vector(labels, out, present)))
        if name in _MATH:
            v = self._vector_arg(args[0], name)
            with np.errstate(all="ignore"):
                vals = _MATH[name](v.values)
            return _merge_rows(Vector([_without_name(lb) for lb in v.labels], vals, v.present.copy()))
        if name == "round":
            v = self._vector_arg(args[0], name)
            to = self._scalar_arg(args[1], name) if len(args) > 1 else np.ones(S)
            with np.errstate(all="ignore"):
                inv = 1.0 / to
                vals = np.floor(v.values * inv + 0.5) / inv
            return _merge_rows(Vector([_without_name(lb) for lb in v.labels], vals, v.present.copy()))
        if name in ("clamp", "clamp_min", "clamp_max"):
            v = self._vector_arg(args[0], name)
            lo = self._scalar_arg(args[1], name) if name in ("clamp", "clamp_min") else np.full(S, -np.inf)
            hi = (self._scalar_arg(args[2 if name == "clamp" else 1], name)
                  if name in ("clamp", "clamp_max") else np.full(S, np.inf))
            if name == "clamp":  # Prometheus: max(min, min(max, v)), and nothing when max < min
                vals = np.maximum(lo, np.minimum(hi, v.values))
            elif name == "clamp_min":
                vals = np.maximum(lo, v.values)
            else:
                vals = np.minimum(hi, v.values)
            present = v.present.copy()
            if name == "clamp":
                present &= ~(hi < lo)[None, :]
            return _drop_absent(_merge_rows(Vector([_without_name(lb) for lb in v.labels], vals, present)))
        if name == "time":
            return Scalar(self.T / 1e3)
        if name == "vector":
            s = self._scalar_arg(args[0], name)
            return Vector([()], s[None, :].copy(), np.ones((1, S), dtype=bool))
        if name == "scalar":
            v = self._vector_arg(args[0], name)
            count = v.present.sum(axis=0)
            vals = np.full(S, np.nan)
            if len(v.labels):
                one = count == 1
                row = np.argmax(v.present, axis=0)
                vals[one] = v.values[row[one], np.flatnonzero(one)]
            return Scalar(vals)
        if name == "timestamp":
            inner = args[0]
            while isinstance(inner, pp.ParenExpr):
                inner = inner.expr
            if isinstance(inner, pp.VectorSelector):
                v, sample_ts = self._eval_VectorSelector(inner, with_times=True)
                vals = sample_ts / 1e3
            else:
                v = self._vector_arg(args[0], name)
                vals = np.broadcast_to(self.T / 1e3, v.values.shape).copy()
            return _merge_rows(Vector([_without_name(lb) for lb in v.labels], vals, v.present.copy()))
        if name == "absent":
            v = self._vector_arg(args[0], name)
            none = np.asarray(~v.present.any(axis=0)) if len(v.labels) else np.ones(S, dtype=bool)
            absent_labels = _absent_labels(args[0])
            return _drop_absent(Vector([absent_labels], np.ones((1, S)), none[None, :].copy()))
        if name == "absent_over_time":
            m = self.eval(args[0])
            if not isinstance(m, Matrix):
                raise PromQLError("absent_over_time: expected a range vector")
            st = m.store
            seen: np.ndarray = np.zeros(S, dtype=bool)
            if st.n_series and S:  # present_over_time over every series, then: did any have a sample?
                out = np.full((st.n_series, S), np.nan)
                present = np.zeros((st.n_series, S), dtype=bool)
                K.over_range(K.PRESENT, st.offsets, st.ts, st.vals, self.T - m.offset_ms, self.T, m.range_ms,
                             self.left_open, self.left_open, np.zeros(S), out, present)
                seen = np.asarray(present.any(axis=0))
            absent_labels = _absent_labels(m.selector) if m.selector is not None else ()
            return _drop_absent(Vector([absent_labels], np.ones((1, S)), (~seen)[None, :].copy()))
        if name == "histogram_quantile":
            q = self._scalar_arg(args[0], name)
            v = self._vector_arg(args[1], name)
            return self._histogram_quantile(q, v)
        if name == "label_replace":
            v = self._vector_arg(args[0], name)
            dst, repl, src, regex = (self._string_arg(a, name) for a in args[1:5])
            try:
                pattern = compile_anchored(regex)
            except re.error as exc:
                raise PromQLError(f"label_replace: invalid regular expression {regex!r}: {exc}") from None
            if not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", dst):
                raise PromQLError(f"label_replace: invalid destination label name {dst!r}")
            def replaced(d: dict[str, str]) -> str | None:
                m_ = pattern.match(d.get(src, ""))
                return None if m_ is None else _expand(repl, m_)

            return _relabel(v, dst, replaced)
        if name == "label_join":
            v = self._vector_arg(args[0], name)
            dst, sep = self._string_arg(args[1], name), self._string_arg(args[2], name)
            srcs = [self._string_arg(a, name) for a in args[3:]]
            return _relabel(v, dst, lambda d: sep.join(d.get(s, "") for s in srcs))
        self.unsupported(f"the function {name}()", f"{name}(")

    def _histogram_quantile(self, q: np.ndarray, v: Vector) -> Vector:
        groups: dict[Labels, list[tuple[float, int]]] = defaultdict(list)
        for row, lb in enumerate(v.labels):
            d = dict(lb)
            try:
                le = float(d.get("le", "").replace("Inf", "inf")) if "le" in d else None
            except ValueError:
                le = None
            if le is None:
                continue
            key = tuple(p for p in lb if p[0] not in ("le", "__name__"))
            groups[key].append((le, row))
        labels, values, present = [], [], []
        S = len(self.T)
        for key, members in groups.items():
            members.sort(key=lambda x: x[0])
            les = np.array([m[0] for m in members])
            rows = [m[1] for m in members]
            out = np.full(S, np.nan)
            out_present = np.zeros(S, dtype=bool)
            K.bucket_quantile(np.asarray(q, dtype=np.float64), les, v.values[rows], v.present[rows], out, out_present)
            labels.append(key)
            values.append(out)
            present.append(out_present)
        if not labels:
            return Vector.empty(S)
        return _drop_absent(_merge_rows(Vector(labels, np.array(values), np.array(present))))

    # ------------------------------------------------------------------ aggregation

    def _eval_AggregateExpr(self, node: Any) -> Vector:
        op = str(node.op)
        if op not in _SIMPLE_AGGREGATIONS and op not in _PARAM_AGGREGATIONS:
            self.unsupported(f"the aggregation {op}", f"{op}")
        v = self._vector_arg(node.expr, op)
        S = len(self.T)
        mod = node.modifier
        by = without = None
        if mod is not None:
            names = list(mod.labels)
            if str(mod.type).endswith("By"):
                by = set(names)
            else:
                without = set(names) | {"__name__"}
        param: Any = None
        if op in ("quantile", "topk", "bottomk"):
            param = self._scalar_arg(node.param, op)
        elif op == "count_values":
            param = self.eval(node.param)
            if not isinstance(param, str):
                raise PromQLError("count_values: the label name must be a string")
        if op == "count_values":
            return self._count_values(v, param, by, without)

        def group_key(lb: Labels) -> Labels:
            if by is not None:
                return tuple(p for p in lb if p[0] in by)
            if without is not None:
                return tuple(p for p in lb if p[0] not in without)
            return ()

        groups: dict[Labels, list[int]] = defaultdict(list)
        for row, lb in enumerate(v.labels):
            groups[group_key(lb)].append(row)
        if op in ("topk", "bottomk"):
            return self._topk(v, groups, param, op == "topk")
        labels: list[Labels] = []
        out = np.full((len(groups), S), np.nan)
        present = np.zeros((len(groups), S), dtype=bool)
        for g, (key, rows) in enumerate(groups.items()):
            labels.append(key)
            vals = v.values[rows]
            mask = v.present[rows]
            count = mask.sum(axis=0)
            present[g] = count > 0
            with np.errstate(all="ignore"):
                if op == "sum":
                    out[g] = _kahan_sum(np.where(mask, vals, 0.0))
                elif op == "count":
                    out[g] = count
                elif op == "group":
                    out[g] = 1.0
                elif op in ("avg", "stddev", "stdvar"):
                    out[g] = _running(op, vals, mask)
                elif op in ("min", "max"):
                    filled = np.where(mask, vals, np.nan)
                    out[g] = np.fmin.reduce(filled, axis=0) if op == "min" else np.fmax.reduce(filled, axis=0)
                elif op == "quantile":
                    out[g] = _quantiles(param, vals, mask)
        return _drop_absent(Vector(labels, out, present))

    def _topk(self, v: Vector, groups: dict[Labels, list[int]], k: np.ndarray, top: bool) -> Vector:
        S = len(self.T)
        present = np.zeros_like(v.present)
        for rows in groups.values():
            vals = v.values[rows]
            mask = v.present[rows]
            # rank: present before absent, numbers before NaN, then by value (ties keep input order)
            nan = np.isnan(vals)
            key = np.where(nan, 0.0, -vals if top else vals)
            order = np.lexsort((key.T, nan.T, (~mask).T)).T  # [rank, step] -> row
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.arange(len(rows))[:, None].repeat(S, axis=1), axis=0)
            kk = np.where(np.isnan(k), 0, np.clip(k, -1, len(rows)))  # k < 1 selects nothing
            keep = mask & (ranks < kk.astype(np.int64)[None, :])
            present[rows] = keep
        return _drop_absent(Vector(list(v.labels), v.values.copy(), present))

    def _count_values(self, v: Vector, label: str, by: set[str] | None, without: set[str] | None) -> Vector:
        S = len(self.T)
        cells: dict[Labels, np.ndarray] = {}
        for row, lb in enumerate(v.labels):
            if by is not None:
                base = {k: x for k, x in lb if k in by}
            elif without is not None:
                base = {k: x for k, x in lb if k not in without}
            else:
                base = {}
            steps = np.flatnonzero(v.present[row])
            # each distinct value once (NaN included), then every step holding it
            values, inverse = np.unique(v.values[row, steps], return_inverse=True, equal_nan=True)
            for k, value in enumerate(values):
                key = tuple(sorted({**base, label: _format_float(float(value))}.items()))
                if key not in cells:
                    cells[key] = np.zeros(S)
                np.add.at(cells[key], steps[inverse.reshape(-1) == k], 1)
        if not cells:
            return Vector.empty(S)
        labels = list(cells)
        values_ = np.array([cells[k] for k in labels])
        return Vector(labels, values_, values_ > 0)

    # ------------------------------------------------------------------ binary operators

    def _eval_BinaryExpr(self, node: Any) -> Any:
        op = str(node.op)
        mod = node.modifier
        return_bool = bool(mod is not None and mod.return_bool)
        if op not in _ARITHMETIC and op not in _COMPARISON and op not in _SET:
            self.unsupported(f"the operator {op}", f" {op} ")
        if mod is not None and getattr(mod, "fill_values", None) is not None and _has_fill(mod.fill_values):
            self.unsupported("fill modifiers", "fill")
        lhs = self.eval(node.lhs)
        rhs = self.eval(node.rhs)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            vals, keep = _elem(op, lhs.values, rhs.values)
            if op in _COMPARISON:
                vals = keep.astype(np.float64)
            return Scalar(vals)
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return self._vector_scalar(op, lhs, rhs.values, swap=False, return_bool=return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return self._vector_scalar(op, rhs, lhs.values, swap=True, return_bool=return_bool)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            if op in _SET:
                return self._set_op(op, lhs, rhs, mod)
            return self._vector_vector(op, lhs, rhs, mod, return_bool)
        raise PromQLError(f"operator {op}: unsupported operand types")

    def _vector_scalar(self, op: str, v: Vector, s: np.ndarray, *, swap: bool, return_bool: bool) -> Vector:
        lv, rv = (np.broadcast_to(s, v.values.shape), v.values) if swap else (v.values, s[None, :])
        vals, keep = _elem(op, lv, rv)
        if op in _COMPARISON and swap:
            vals = v.values
        present = v.present.copy()
        if return_bool:
            vals = keep.astype(np.float64)
        elif op in _COMPARISON:
            present &= keep
        drop = op in _ARITHMETIC or return_bool
        labels = [_without_name(lb) for lb in v.labels] if drop else list(v.labels)
        vals = np.array(vals, dtype=np.float64)
        return _drop_absent(_merge_rows(Vector(labels, vals, present)))

    def _signature(self, mod: Any) -> Any:
        if mod is None or mod.matching is None:
            return lambda lb: tuple(p for p in lb if p[0] != "__name__"), False, ()
        names = set(mod.matching.labels)
        on = str(mod.matching.type).endswith("Include")
        if on:
            return lambda lb: tuple(p for p in lb if p[0] in names), True, tuple(mod.matching.labels)
        return (lambda lb: tuple(p for p in lb if p[0] not in names and p[0] != "__name__"), False,
                tuple(mod.matching.labels))

    def _set_op(self, op: str, lhs: Vector, rhs: Vector, mod: Any) -> Vector:
        sig, _, _ = self._signature(mod)
        S = len(self.T)
        rsig: dict[Labels, np.ndarray] = {}
        for row, lb in enumerate(rhs.labels):
            key = sig(lb)
            rsig[key] = rsig.get(key, np.zeros(S, dtype=bool)) | rhs.present[row]
        if op in ("and", "unless"):
            present = lhs.present.copy()
            for row, lb in enumerate(lhs.labels):
                other = rsig.get(sig(lb), np.zeros(S, dtype=bool))
                present[row] &= other if op == "and" else ~other
            return _drop_absent(Vector(list(lhs.labels), lhs.values.copy(), present))
        lsig: dict[Labels, np.ndarray] = {}
        for row, lb in enumerate(lhs.labels):
            key = sig(lb)
            lsig[key] = lsig.get(key, np.zeros(S, dtype=bool)) | lhs.present[row]
        rpresent = rhs.present.copy()
        for row, lb in enumerate(rhs.labels):
            rpresent[row] &= ~lsig.get(sig(lb), np.zeros(S, dtype=bool))
        out = Vector(list(lhs.labels) + list(rhs.labels), np.vstack([lhs.values, rhs.values]),
                     np.vstack([lhs.present, rpresent]))
        return _drop_absent(_merge_rows(out))

    def _vector_vector(self, op: str, lhs: Vector, rhs: Vector, mod: Any, return_bool: bool) -> Vector:
        sig, on, matching_labels = self._signature(mod)
        card = str(mod.card).rsplit(".", 1)[-1] if mod is not None else "OneToOne"
        include = list(mod.group_labels) if mod is not None and card in ("ManyToOne", "OneToMany") else []
        if card == "OneToMany":  # group_right: the right side is the "many" side
            many, one = rhs, lhs
        else:
            many, one = lhs, rhs
        S = len(self.T)
        one_rows: dict[Labels, list[int]] = defaultdict(list)
        for row, lb in enumerate(one.labels):
            one_rows[sig(lb)].append(row)
        for key, rows in one_rows.items():  # the "one" side must be unique at every step
            if len(rows) > 1 and (one.present[rows].sum(axis=0) > 1).any():
                side = "left" if card == "OneToMany" else "right"
                raise PromQLError(f"found duplicate series for the match group {format_labels(key)} on the {side} "
                                  "hand-side of the operation; many-to-many matching not allowed: matching labels "
                                  "must be unique on one side")
        if card == "OneToOne":
            many_rows: dict[Labels, list[int]] = defaultdict(list)
            for row, lb in enumerate(many.labels):
                many_rows[sig(lb)].append(row)
            for key, rows in many_rows.items():
                if len(rows) > 1 and key in one_rows and (many.present[rows].sum(axis=0) > 1).any():
                    raise PromQLError(f"multiple matches for labels {format_labels(key)}: many-to-one matching must "
                                      "be explicit (group_left/group_right)")
        drop_name = op in _ARITHMETIC or return_bool
        labels: list[Labels] = []
        values: list[np.ndarray] = []
        present: list[np.ndarray] = []
        for mrow, mlb in enumerate(many.labels):
            for orow in one_rows.get(sig(mlb), ()):
                both = many.present[mrow] & one.present[orow]
                if not both.any():
                    continue
                vl, vr = many.values[mrow], one.values[orow]
                if card == "OneToMany":
                    vl, vr = vr, vl
                vals, keep = _elem(op, vl, vr)
                if return_bool:
                    vals = keep.astype(np.float64)
                elif op in _COMPARISON:
                    both = both & keep
                d = dict(mlb)
                if drop_name:
                    d.pop("__name__", None)
                if card == "OneToOne":
                    if on:
                        d = {k: v for k, v in d.items() if k in matching_labels}
                    else:
                        for k in matching_labels:
                            d.pop(k, None)
                oth = dict(one.labels[orow])
                for k in include:
                    if oth.get(k):
                        d[k] = oth[k]
                    else:
                        d.pop(k, None)
                labels.append(tuple(sorted(d.items())))
                values.append(np.asarray(vals, dtype=np.float64))
                present.append(both)
        if not labels:
            return Vector.empty(S)
        out = Vector(labels, np.array(values), np.array(present))
        msg = ("multiple matches for labels: grouping labels must ensure unique matches" if card == "OneToOne"
               else "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
        return _drop_absent(_merge_rows(out, msg))


# ---------------------------------------------------------------------- helpers

_FUNCTIONS = (set(K.RANGE_FUNCTIONS) | set(_MATH) | {
    "round", "clamp", "clamp_min", "clamp_max", "time", "vector", "scalar", "timestamp", "absent",
    "absent_over_time", "histogram_quantile", "label_replace", "label_join"})


def check_supported(node: Any, text: str = "") -> None:
    """Raise :class:`UnsupportedPromQL` for the first construct outside SPEC 11's subset, without data."""
    ev = Evaluator.__new__(Evaluator)
    ev.text = text
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, pp.VectorSelector | pp.SubqueryExpr) and n.at is not None:
            ev.unsupported("the @ modifier", "@")
        if isinstance(n, pp.VectorSelector) and n.matchers.or_matchers:
            ev.unsupported("'or' inside a selector", " or ")
        if isinstance(n, pp.Call) and n.func.name not in _FUNCTIONS:
            ev.unsupported(f"the function {n.func.name}()", f"{n.func.name}(")
        if isinstance(n, pp.AggregateExpr) and str(n.op) not in _SIMPLE_AGGREGATIONS | _PARAM_AGGREGATIONS:
            ev.unsupported(f"the aggregation {n.op}", str(n.op))
        if isinstance(n, pp.BinaryExpr):
            op = str(n.op)
            if op not in _ARITHMETIC | _COMPARISON | _SET:
                ev.unsupported(f"the operator {op}", f" {op} ")
            if n.modifier is not None and getattr(n.modifier, "fill_values", None) is not None \
                    and _has_fill(n.modifier.fill_values):
                ev.unsupported("fill modifiers", "fill")
            stack += [n.lhs, n.rhs]
        elif isinstance(n, pp.AggregateExpr):
            stack += [n.expr] + ([n.param] if n.param is not None else [])
        elif isinstance(n, pp.Call):
            stack += list(n.args)
        elif isinstance(n, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
            stack.append(n.expr)
        elif isinstance(n, pp.MatrixSelector):
            stack.append(n.vector_selector)


def _has_fill(fill: Any) -> bool:
    try:
        return any(getattr(fill, a, None) is not None for a in ("lhs", "rhs"))
    except Exception:  # pragma: no cover - parser versions differ
        return False


def _elem(op: str, lv: Any, rv: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(value, keep)`` of ``lv op rv``, elementwise, as Prometheus's vectorElemBinop."""
    with np.errstate(all="ignore"):
        if op == "+":
            return lv + rv, np.ones(np.shape(lv + rv), dtype=bool)
        if op == "-":
            r = lv - rv
        elif op == "*":
            r = lv * rv
        elif op == "/":
            r = np.divide(lv, rv)
        elif op == "%":
            r = np.fmod(lv, rv)
        elif op == "^":
            r = np.power(lv, rv)
        elif op == "atan2":
            r = np.arctan2(lv, rv)
        else:
            cmp = {"==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less,
                   ">=": np.greater_equal, "<=": np.less_equal}[op](lv, rv)
            return np.broadcast_to(lv, cmp.shape), cmp
        return r, np.ones(np.shape(r), dtype=bool)


def _merge_rows(v: Vector, message: str = "vector cannot contain metrics with the same labelset") -> Vector:
    """Rows with the same label set become one; two of them present at one step is an error."""
    if len(set(v.labels)) == len(v.labels):
        return v
    index: dict[Labels, int] = {}
    rows_of: list[list[int]] = []
    for row, lb in enumerate(v.labels):
        if lb not in index:
            index[lb] = len(rows_of)
            rows_of.append([])
        rows_of[index[lb]].append(row)
    labels = list(index)
    values = np.full((len(labels), v.values.shape[1]), np.nan)
    present = np.zeros((len(labels), v.values.shape[1]), dtype=bool)
    for g, rows in enumerate(rows_of):
        if len(rows) > 1 and (v.present[rows].sum(axis=0) > 1).any():
            raise PromQLError(f"{message}: {format_labels(labels[g])}")
        for r in rows:
            values[g] = np.where(v.present[r], v.values[r], values[g])
            present[g] |= v.present[r]
    return Vector(labels, values, present)


def _relabel(v: Vector, dst: str, value_of: Any) -> Vector:
    """Set label ``dst`` of every series to ``value_of(labels)`` (``None``: leave it; ``""``: delete it)."""
    labels = []
    for lb in v.labels:
        d = dict(lb)
        res = value_of(d)
        if res:
            d[dst] = res
        elif res is not None:
            d.pop(dst, None)
        labels.append(tuple(sorted(d.items())))
    return _merge_rows(Vector(labels, v.values.copy(), v.present.copy()))


def _drop_absent(v: Vector) -> Vector:
    """Forget rows that are absent at every step."""
    keep = v.present.any(axis=1)
    if keep.all():
        return v
    idx = np.flatnonzero(keep)
    return Vector([v.labels[i] for i in idx], v.values[idx], v.present[idx])


def _match(value: str, op: str, pattern: str) -> bool:
    if op == "Equal":
        return value == pattern
    if op == "NotEqual":
        return value != pattern
    hit = compile_anchored(pattern).match(value) is not None
    return hit if op == "Re" else not hit


def _expand(template: str, m: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c != "$" or i + 1 >= len(template):
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            name = template[i + 2:end] if end > 0 else ""
            if end < 0 or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                out.append(c)
                i += 1
                continue
            i = end + 1
        else:
            mm = re.match(r"[A-Za-z0-9_]+", template[i + 1:])
            if mm is None:
                out.append(c)
                i += 1
                continue
            name = mm.group(0)
            i += 1 + len(name)
        out.append(_group(m, name))
    return "".join(out)


def _group(m: re.Match[str], name: str) -> str:
    try:
        g = m.group(int(name)) if name.isdigit() else m.group(name)
    except IndexError:  # no such group: Go expands it to nothing
        return ""
    return g or ""


def _absent_labels(selector: Any) -> Labels:
    """The label set absent() reports: the selector's equality matchers, not ``__name__``."""
    if not isinstance(selector, pp.VectorSelector):
        if isinstance(selector, pp.MatrixSelector):
            selector = selector.vector_selector
        else:
            return ()
    seen: dict[str, int] = defaultdict(int)
    values: dict[str, str] = {}
    for m in selector.matchers.matchers:
        if m.name == "__name__":
            continue
        seen[m.name] += 1
        if str(m.op).endswith("Equal") and not str(m.op).endswith("NotEqual"):
            values[m.name] = m.value
    return tuple(sorted((k, v) for k, v in values.items() if seen[k] == 1 and v != ""))


def _kahan_sum(rows: np.ndarray) -> np.ndarray:
    """Column sums by compensated (Kahan-Neumaier) summation, row by row as Prometheus adds."""
    total = np.zeros(rows.shape[1])
    comp = np.zeros(rows.shape[1])
    with np.errstate(all="ignore"):
        for inc in rows:
            t = total + inc
            comp = np.where(np.isinf(t), 0.0, comp + np.where(np.abs(total) >= np.abs(inc), (total - t) + inc,
                                                              (inc - t) + total))
            total = t
        return total + comp


def _running(op: str, vals: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """avg, stddev or stdvar of the present values per step, updated row by row as Prometheus does
    (incremental mean with its infinity rules; Welford's variance, 0 for a single value)."""
    S = vals.shape[1]
    count = np.zeros(S)
    mean = np.full(S, np.nan)
    var = np.zeros(S)
    with np.errstate(all="ignore"):
        for row in range(vals.shape[0]):
            m = mask[row]
            v = vals[row]
            first = m & (count == 0)
            later = m & (count > 0)
            mean = np.where(first, v, mean)
            count = count + m
            if op == "avg":
                inf = np.isinf(mean)
                skip = inf & ((np.isinf(v) & ((mean > 0) == (v > 0))) | (~np.isinf(v) & ~np.isnan(v)))
                upd = later & ~skip
                mean = np.where(upd, mean + (v / count - mean / count), mean)
            else:
                delta = v - mean
                new_mean = mean + delta / count
                var = np.where(later, var + delta * (v - new_mean), var)
                mean = np.where(later, new_mean, mean)
    if op == "avg":
        return mean
    return np.sqrt(var / count) if op == "stddev" else var / count


def _quantiles(q: np.ndarray, vals: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Prometheus's quantile of the present values at each step (NaN sorts first), for all steps at once."""
    m, S = vals.shape
    nan = np.isnan(vals)
    # order per step: present NaN, present numbers ascending, then absent
    order = np.lexsort((np.where(nan, 0.0, vals).T, (~nan).T, (~mask).T)).T
    ordered = np.take_along_axis(vals, order, axis=0)
    count = mask.sum(axis=0)
    with np.errstate(all="ignore"):
        rank = q * (count - 1)
        lower = np.clip(np.floor(rank), 0, None)
        upper = np.minimum(count - 1, lower + 1)
        weight = rank - np.floor(rank)
        at_lower = np.clip(np.nan_to_num(lower), 0, m - 1).astype(np.int64)  # NaN q: any row, answered below
        at_upper = np.clip(np.nan_to_num(upper), 0, m - 1).astype(np.int64)
        lo = np.take_along_axis(ordered, at_lower[None, :], axis=0)[0]
        hi = np.take_along_axis(ordered, at_upper[None, :], axis=0)[0]
        out = lo * (1 - weight) + hi * weight
    out = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, out))
    return np.where(np.isnan(q), np.nan, out)


def _format_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"

    text = format(Decimal(repr(float(v))), "f")  # the shortest digits, written out without an exponent
    return text[:-2] if text.endswith(".0") else text
