"""A per-instant PromQL reference in plain Python, for what promtool 2.42 cannot judge.

Prometheus 3's left-open windows ``(t - r, t]`` and its order of rate extrapolation
have no oracle on this machine (promtool here is 2.42). This evaluator is written from
Prometheus's documentation, one instant and one series at a time, with lists and no
arrays, for the constructs whose answer depends on the version: instant selectors
(lookback, offset), range functions over range selectors and subqueries. Aggregations
and operators do not depend on the version and are judged by promtool.
"""

from __future__ import annotations

import math
from typing import Any

import promql_parser as pp

from perfalert_lab.templates import format_labels

Series = dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]  # labels -> [(t_ms, value)]


def _ms(td: Any) -> int:
    return 0 if td is None else int(round(td.total_seconds() * 1000))


def _in_window(t: int, start: int, end: int, left_open: bool) -> bool:
    return (start < t if left_open else start <= t) and t <= end


def _matches(labels: dict[str, str], node: Any) -> bool:
    import re

    tests = [("__name__", "Equal", node.name)] if node.name else []
    tests += [(m.name, str(m.op).rsplit(".", 1)[-1], m.value) for m in node.matchers.matchers]
    for name, op, value in tests:
        have = labels.get(name, "")
        if op == "Equal" and have != value or op == "NotEqual" and have == value:
            return False
        if op in ("Re", "NotRe") and (re.fullmatch(value, have) is not None) != (op == "Re"):
            return False
    return True


def _no_name(labels: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple(p for p in labels if p[0] != "__name__")


class Reference:
    def __init__(self, series: Series, *, compat: str, lookback_ms: int = 300_000, sub_step_ms: int = 60_000):
        self.series = series
        self.left_open = compat == "3"
        self.v3 = compat == "3"
        self.lookback = lookback_ms
        self.sub_step = sub_step_ms

    def instant(self, node: Any, t: int) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant vector at ``t``: labels -> value."""
        while isinstance(node, pp.ParenExpr):
            node = node.expr
        if isinstance(node, pp.VectorSelector):
            ref = t - _ms(node.offset)
            out = {}
            for labels, samples in self.series.items():
                if not _matches(dict(labels), node):
                    continue
                seen = [(ts, v) for ts, v in samples if _in_window(ts, ref - self.lookback, ref, self.left_open)]
                if seen:
                    out[labels] = seen[-1][1]
            return out
        if isinstance(node, pp.Call):
            name = node.func.name
            args = list(node.args)
            arg = None
            if name == "quantile_over_time":
                arg, args = float(args[0].val), args[1:]
            elif name == "predict_linear":
                arg = float(args[1].val)
            windows = self.windows(args[0], t)
            out = {}
            for labels, samples in windows.items():
                value = self.apply(name, samples, t, args[0], arg)
                if value is not None:
                    out[labels if name == "last_over_time" else _no_name(labels)] = value
            return out
        raise NotImplementedError(str(node))

    def windows(self, node: Any, t: int) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        """The samples of a range selector or subquery in the window that ends at ``t``."""
        if isinstance(node, pp.MatrixSelector):
            vs = node.vector_selector
            end = t - _ms(vs.offset)
            start = end - _ms(node.range)
            return {labels: [(ts, v) for ts, v in samples if _in_window(ts, start, end, self.left_open)]
                    for labels, samples in self.series.items() if _matches(dict(labels), vs)}
        if isinstance(node, pp.SubqueryExpr):
            step = _ms(node.step) if node.step is not None else self.sub_step
            end = t - _ms(node.offset)
            start = end - _ms(node.range)
            tick = (start // step) * step
            out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
            while tick <= end:
                if _in_window(tick, start, end, self.left_open):
                    for labels, value in self.instant(node.expr, tick).items():
                        out.setdefault(labels, []).append((tick, value))
                tick += step
            return out
        raise NotImplementedError(str(node))

    def apply(
        self, name: str, samples: list[tuple[int, float]], t: int, rng_node: Any, arg: float | None
    ) -> float | None:
        if not samples:
            return None
        values = [v for _, v in samples]
        if name in ("rate", "increase", "delta"):
            return self.extrapolated(samples, t, rng_node, counter=name != "delta", rate=name == "rate")
        if name in ("irate", "idelta"):
            if len(samples) < 2:
                return None
            (t1, v1), (t2, v2) = samples[-2], samples[-1]
            change = v2 if name == "irate" and v2 < v1 else v2 - v1
            return change / ((t2 - t1) / 1000) if name == "irate" else change
        if name in ("deriv", "predict_linear"):
            if len(samples) < 2:
                return None
            origin = samples[0][0] if name == "deriv" else t
            slope, intercept = _least_squares(samples, origin)
            return slope if name == "deriv" else slope * arg + intercept
        if name == "sum_over_time":
            return sum(values)
        if name == "count_over_time":
            return float(len(values))
        if name == "avg_over_time":
            return sum(values) / len(values)
        if name == "min_over_time":
            return min(values)
        if name == "max_over_time":
            return max(values)
        if name == "last_over_time":
            return values[-1]
        if name == "present_over_time":
            return 1.0
        if name in ("stddev_over_time", "stdvar_over_time"):
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / len(values)
            return math.sqrt(var) if name == "stddev_over_time" else var
        if name == "quantile_over_time":
            s = sorted(values)
            rank = arg * (len(s) - 1)
            lo = max(0, math.floor(rank))
            hi = min(len(s) - 1, lo + 1)
            w = rank - math.floor(rank)
            return s[lo] * (1 - w) + s[hi] * w
        if name == "changes":
            return float(sum(1 for a, b in zip(values, values[1:], strict=False) if a != b))
        if name == "resets":
            return float(sum(1 for a, b in zip(values, values[1:], strict=False) if b < a))
        raise NotImplementedError(name)

    def extrapolated(
        self, samples: list[tuple[int, float]], t: int, node: Any, *, counter: bool, rate: bool
    ) -> float | None:
        """rate/increase/delta as the documentation describes extrapolation to the window's edges."""
        if len(samples) < 2:
            return None
        if isinstance(node, pp.MatrixSelector):
            offset, range_ms = _ms(node.vector_selector.offset), _ms(node.range)
        else:
            offset, range_ms = _ms(node.offset), _ms(node.range)
        end = t - offset
        start = end - range_ms
        first_t, first_v = samples[0]
        last_t, last_v = samples[-1]
        change = last_v - first_v
        if counter:  # a drop is a restart from zero: add what was there before it
            for (_, a), (_, b) in zip(samples, samples[1:], strict=False):
                if b < a:
                    change += a
        sampled = (last_t - first_t) / 1000
        average = sampled / (len(samples) - 1)
        to_start = (first_t - start) / 1000
        to_end = (end - last_t) / 1000
        limit = average * 1.1
        zero = sampled * (first_v / change) if counter and change > 0 and first_v >= 0 else math.inf
        if self.v3:
            to_start = to_start if to_start < limit else average / 2
            to_end = to_end if to_end < limit else average / 2
            to_start = min(to_start, zero)
        else:
            to_start = min(to_start, zero)
            to_start = to_start if to_start < limit else average / 2
            to_end = to_end if to_end < limit else average / 2
        result = change * (sampled + to_start + to_end) / sampled
        return result / (range_ms / 1000) if rate else result


def _least_squares(samples: list[tuple[int, float]], origin: int) -> tuple[float, float]:
    xs = [(ts - origin) / 1000 for ts, _ in samples]
    ys = [v for _, v in samples]
    if all(y == ys[0] for y in ys):
        return 0.0, ys[0]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def reference_answers(series: Series, expr: str, times_ms: list[int], compat: str) -> dict[int, dict[str, float]]:
    ref = Reference(series, compat=compat)
    node = pp.parse(expr)
    return {t: {format_labels(lb): v for lb, v in ref.instant(node, t).items()} for t in times_ms}
