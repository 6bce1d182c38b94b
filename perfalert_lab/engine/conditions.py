"""Values per evaluation and the conditions on them (operators, windows, matchers).

For one rule, every matching series is evaluated at the times its clock gives. The
value at evaluation ``t`` is

* without a window: the newest sample at or before ``t`` (with the clock's lookback,
  only if it lies in ``(t - lookback, t]``; otherwise the series is absent);
* with a window ``W``: the aggregate of the samples in ``(t - W, t]`` (absent when
  empty; ``rate`` needs two samples).

The compiled kernels walk all series of a rule in one call with two pointers per
series, so the work is linear in samples plus evaluations (times the window length
for aggregates, which are summed left to right exactly as the reference does).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._jit import kernel
from .._time import to_ns
from ..clock import Clock, SampleClock, shared_times
from ..frames import SeriesSet
from ..rules.model import Rule

__all__ = ["Evaluations", "compare", "evaluate_values", "match_series"]

AGG_CODES = {"mean": 0, "min": 1, "max": 2, "sum": 3, "count": 4, "rate": 5, "median": 6}


def aggregate_code(name: str) -> tuple[int, float]:
    """Kernel code and quantile for an aggregate name (``p95`` -> quantile 0.95)."""
    if name in AGG_CODES:
        return AGG_CODES[name], 0.5
    return 6, int(name[1:]) / 100.0


def match_series(keys: pd.DataFrame, rule: Rule) -> np.ndarray:
    """Indices of the series (rows of ``keys``) a rule applies to: its metric and matchers.

    Matchers are shell-style globs (``web-*``) on ``source`` or a label column; a
    matcher on a column the data does not have matches nothing.
    """
    mask = (keys["metric"] == rule.metric).to_numpy(dtype=bool, copy=True)
    for column, pattern in rule.match.items():
        if column not in keys.columns:
            return np.zeros(0, dtype=np.int64)
        values = keys[column].astype("str").to_numpy(dtype=object)
        mask &= np.array([fnmatch.fnmatchcase(str(v), pattern) for v in values], dtype=bool)
    return np.flatnonzero(mask).astype(np.int64)


@dataclass(frozen=True)
class Evaluations:
    """Evaluation times and values of one rule over its matching series.

    Series ``j`` (the ``series_ids[j]``-th series of the SeriesSet) owns
    ``times[offsets[j]:offsets[j+1]]`` and the same slices of ``values`` and
    ``present``.
    """

    series_ids: np.ndarray
    times: np.ndarray
    offsets: np.ndarray
    values: np.ndarray
    present: np.ndarray
    all_present: bool = False  # every evaluation has a value (the sample clock without a window)

    @property
    def n(self) -> int:
        return len(self.times)


def evaluation_times(series: SeriesSet, sids: np.ndarray, clock: Clock) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated evaluation times of the series ``sids`` and their offsets."""
    if isinstance(clock, SampleClock):
        counts = series.offsets[sids + 1] - series.offsets[sids]
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        if len(sids) == series.n_series:  # every series: the sample times as they are
            return series.times, offsets
        return _gather(series.times, series.offsets, sids, offsets), offsets
    ticks = shared_times(clock, series.start_ns, series.end_ns)
    if ticks is not None:
        offsets = np.arange(len(sids) + 1, dtype=np.int64) * len(ticks)
        return np.tile(ticks, len(sids)), offsets
    parts = []
    for s in sids:
        own = series.times[series.offsets[s]:series.offsets[s + 1]]
        t = np.unique(np.asarray(clock.evaluation_times(own, series.start_ns, series.end_ns), dtype=np.int64))
        parts.append(t[t <= series.end_ns])
    counts = np.array([len(p) for p in parts], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return (np.concatenate(parts) if parts else np.zeros(0, np.int64)), offsets


@kernel
def _gather(times, offsets, sids, out_offsets):  # pragma: no cover - compiled
    out = np.empty(out_offsets[-1], dtype=times.dtype)
    for j in range(len(sids)):
        a = offsets[sids[j]]
        n = out_offsets[j + 1] - out_offsets[j]
        for i in range(n):
            out[out_offsets[j] + i] = times[a + i]
    return out


def evaluate_values(series: SeriesSet, sids: np.ndarray, rule: Rule, clock: Clock) -> Evaluations:
    """The value (or absence) of each matching series at each of its evaluations."""
    times, offsets = evaluation_times(series, sids, clock)
    if rule.window is None:
        if isinstance(clock, SampleClock):  # the value is the sample itself
            vals = (
                series.values if len(sids) == series.n_series else _gather(series.values, series.offsets, sids, offsets)
            )
            return Evaluations(sids, times, offsets, vals, np.ones(len(times), dtype=np.bool_), all_present=True)
        lookback = clock.lookback_ns
        values, present = _latest(series.times, series.values, series.offsets, sids, times, offsets,
                                  -1 if lookback is None else int(lookback))
    else:
        code, q = aggregate_code(rule.aggregate or "mean")
        values, present = _window(series.times, series.values, series.offsets, sids, times, offsets,
                                  to_ns(rule.window), code, q)
    return Evaluations(sids, times, offsets, values, present)


@kernel
def _latest(times, values, offsets, sids, evals, eoffsets, lookback):  # pragma: no cover - compiled
    """Newest sample at or before each evaluation, within ``lookback`` (< 0: unbounded)."""
    out = np.empty(len(evals), dtype=np.float64)
    present = np.zeros(len(evals), dtype=np.bool_)
    for j in range(len(sids)):
        a = offsets[sids[j]]
        b = offsets[sids[j] + 1]
        i = a - 1
        for k in range(eoffsets[j], eoffsets[j + 1]):
            t = evals[k]
            while i + 1 < b and times[i + 1] <= t:
                i += 1
            if i >= a and (lookback < 0 or times[i] > t - lookback):
                out[k] = values[i]
                present[k] = True
            else:
                out[k] = np.nan
    return out, present


@kernel
def _window(times, values, offsets, sids, evals, eoffsets, window, code, q):  # pragma: no cover - compiled
    """Aggregate of the samples in ``(t - window, t]`` for each evaluation ``t``."""
    out = np.empty(len(evals), dtype=np.float64)
    present = np.zeros(len(evals), dtype=np.bool_)
    for j in range(len(sids)):
        a = offsets[sids[j]]
        b = offsets[sids[j] + 1]
        hi = a - 1  # last sample <= t
        lo = a  # first sample > t - window
        for k in range(eoffsets[j], eoffsets[j + 1]):
            t = evals[k]
            while hi + 1 < b and times[hi + 1] <= t:
                hi += 1
            while lo < b and times[lo] <= t - window:
                lo += 1
            n = hi - lo + 1
            out[k] = np.nan
            if n <= 0:
                continue
            if code == 5:  # rate
                if n < 2:
                    continue
                out[k] = (values[hi] - values[lo]) / ((times[hi] - times[lo]) / 1e9)
            elif code == 4:  # count
                out[k] = float(n)
            elif code == 0 or code == 3:  # mean, sum
                acc = 0.0
                for i in range(lo, hi + 1):
                    acc += values[i]
                out[k] = acc / n if code == 0 else acc
            elif code == 1:
                m = values[lo]
                for i in range(lo + 1, hi + 1):
                    if values[i] < m:
                        m = values[i]
                out[k] = m
            elif code == 2:
                m = values[lo]
                for i in range(lo + 1, hi + 1):
                    if values[i] > m:
                        m = values[i]
                out[k] = m
            else:  # quantile with linear interpolation between closest ranks
                s = np.sort(values[lo:hi + 1])
                pos = q * (n - 1)
                f = int(np.floor(pos))
                frac = pos - f
                if f + 1 < n:
                    out[k] = s[f] + (s[f + 1] - s[f]) * frac
                else:
                    out[k] = s[f]
            present[k] = True
    return out, present


def compare(values: np.ndarray, present: np.ndarray | None, op: str, threshold: float) -> np.ndarray:
    """``present & (values op threshold)`` as a boolean array (``present`` None: all present)."""
    with np.errstate(invalid="ignore"):
        if op == ">":
            r = values > threshold
        elif op == ">=":
            r = values >= threshold
        elif op == "<":
            r = values < threshold
        elif op == "<=":
            r = values <= threshold
        elif op == "==":
            r = values == threshold
        elif op == "!=":
            r = values != threshold
        else:  # pragma: no cover - Rule validates op
            raise ValueError(op)
    if present is not None:
        np.logical_and(r, present, out=r)
    return r


def conditions(ev: Evaluations, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
    """``(active, held)`` per evaluation: held is the clear condition of a firing alert."""
    present = None if ev.all_present else ev.present
    active = compare(ev.values, present, rule.op, rule.threshold)
    held = active if rule.clear is None else compare(ev.values, present, rule.op, rule.clear)
    return active, held
