"""Compiled loops of the PromQL evaluator: every step of every series in one pass.

Samples are held per series as contiguous slices (``ts[offsets[i]:offsets[i+1]]``,
int64 milliseconds, strictly increasing, and the same slice of ``vals``). Evaluation
times ``T`` are ascending, so each series' window ``(t - range, t]`` (or Prometheus
2's ``[t - range, t]``) is found by two pointers that only move forward: the whole
evaluation is linear in samples plus steps.

The arithmetic of each function follows Prometheus's ``promql/functions.go`` (the
semantics, written here for arrays): ``extrapolatedRate`` for rate/increase/delta,
the last two samples for irate/idelta, least squares for deriv/predict_linear, and
the ``*_over_time`` aggregations.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# range functions, as integers so numba branches on constants
RATE, INCREASE, DELTA, IRATE, IDELTA, DERIV, PREDICT_LINEAR = 0, 1, 2, 3, 4, 5, 6
AVG, MIN, MAX, SUM, COUNT, QUANTILE, STDDEV, STDVAR, LAST, PRESENT = 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
CHANGES, RESETS = 17, 18

RANGE_FUNCTIONS = {
    "rate": RATE, "increase": INCREASE, "delta": DELTA, "irate": IRATE, "idelta": IDELTA,
    "deriv": DERIV, "predict_linear": PREDICT_LINEAR,
    "avg_over_time": AVG, "min_over_time": MIN, "max_over_time": MAX, "sum_over_time": SUM,
    "count_over_time": COUNT, "quantile_over_time": QUANTILE, "stddev_over_time": STDDEV,
    "stdvar_over_time": STDVAR, "last_over_time": LAST, "present_over_time": PRESENT,
    "changes": CHANGES, "resets": RESETS,
}


STALE_NAN_BITS = 0x7FF0000000000002  # Prometheus's staleness marker: a NaN with this payload


@numba.njit(cache=True, nogil=True, error_model="numpy")
def instant(offsets, ts, vals, T, lookback, left_open, out, present, sample_ts):  # pragma: no cover - compiled
    """The newest sample of each series within the lookback of each time in ``T``.

    A staleness marker as the newest sample means the series has ended: absent.
    """
    bits = vals.view(np.int64)
    n = len(offsets) - 1
    S = len(T)
    for i in range(n):
        a = offsets[i]
        b = offsets[i + 1]
        hi = a  # first sample after t
        for j in range(S):
            t = T[j]
            while hi < b and ts[hi] <= t:
                hi += 1
            if hi == a:
                continue
            k = hi - 1
            age_ok = ts[k] > t - lookback if left_open else ts[k] >= t - lookback
            if age_ok and bits[k] != STALE_NAN_BITS:
                out[i, j] = vals[k]
                present[i, j] = True
                sample_ts[i, j] = ts[k]


@numba.njit(cache=True, inline="always", error_model="numpy")
def quantile(q, values):  # pragma: no cover - compiled
    """Prometheus's quantile of ``values`` (interpolated between ranks), as quantile_over_time
    and the quantile aggregation compute it."""
    if math.isnan(q):
        return np.nan
    if q < 0:
        return -np.inf
    if q > 1:
        return np.inf
    s = np.sort(values)  # NaN last here; Prometheus sorts NaN first
    n = len(s)
    nans = 0
    while nans < n and math.isnan(s[n - 1 - nans]):
        nans += 1
    if nans:
        s = np.concatenate((s[n - nans:], s[:n - nans]))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1.0, lower + 1)
    weight = rank - math.floor(rank)
    return s[int(lower)] * (1 - weight) + s[int(upper)] * weight


@numba.njit(cache=True, inline="always", error_model="numpy")
def kahan_inc(inc, total, c):  # pragma: no cover - compiled
    """One step of compensated (Kahan-Neumaier) summation, as Prometheus sums: ``(total, c)``."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


@numba.njit(cache=True, inline="always", error_model="numpy")
def _regression(ts, vals, a, b, intercept_time):  # pragma: no cover - compiled
    """Least-squares slope and intercept of ``vals`` over seconds since ``intercept_time``."""
    n = 0.0
    sum_x = 0.0
    sum_y = 0.0
    sum_xy = 0.0
    sum_x2 = 0.0
    const_y = True
    init_y = vals[a]
    for k in range(a, b):
        v = vals[k]
        if const_y and k > a and v != init_y:
            const_y = False
        n += 1.0
        x = (ts[k] - intercept_time) / 1e3
        sum_x += x
        sum_y += v
        sum_xy += x * v
        sum_x2 += x * x
    if const_y:
        if math.isinf(init_y):
            return np.nan, np.nan
        return 0.0, init_y
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = cov_xy / var_x
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


@numba.njit(cache=True, error_model="numpy")
def _incremental_mean(vals, lo, hi):  # pragma: no cover - compiled
    """Prometheus's incremental mean of ``vals[lo:hi]`` (2's avg_over_time; 3's when the sum overflows):
    the mean of a constant is that constant, and a finite value does not move an infinite mean."""
    mean = 0.0
    count = 0.0
    for k in range(lo, hi):
        count += 1
        v = vals[k]
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue  # the same infinity: the mean is already right
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean += v / count - mean / count
    return mean


@numba.njit(cache=True, inline="always", error_model="numpy")
def _any_inf(vals, lo, hi):  # pragma: no cover - compiled
    for k in range(lo, hi):
        if math.isinf(vals[k]):
            return True
    return False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def over_range(fn, offsets, ts, vals, T, eval_T, rng, left_open, v3, arg, out, present):  # pragma: no cover - compiled
    """Apply range function ``fn`` to each series' window ending at each time in ``T``.

    ``T`` are the window ends (evaluation times minus the offset), ``eval_T`` the
    evaluation times themselves (predict_linear's origin), ``arg`` a per-step scalar
    argument (quantile, predict_linear's horizon in seconds). ``v3`` selects Prometheus
    3's order in rate extrapolation: the half-interval limit first, then the counter's
    zero point (Prometheus 2 applies the zero point first).
    """
    n = len(offsets) - 1
    S = len(T)
    for i in range(n):
        a0 = offsets[i]
        b0 = offsets[i + 1]
        lo = a0
        hi = a0
        for j in range(S):
            t = T[j]
            start = t - rng
            while hi < b0 and ts[hi] <= t:
                hi += 1
            if left_open:
                while lo < hi and ts[lo] <= start:
                    lo += 1
            else:
                while lo < hi and ts[lo] < start:
                    lo += 1
            m = hi - lo
            if m == 0:
                continue
            if fn <= DELTA:
                if m < 2:
                    continue
                first = vals[lo]
                last = vals[hi - 1]
                result = last - first
                if fn != DELTA:
                    prev = first
                    for k in range(lo + 1, hi):
                        cur = vals[k]
                        if cur < prev:
                            result += prev
                        prev = cur
                duration_to_start = (ts[lo] - start) / 1e3
                duration_to_end = (t - ts[hi - 1]) / 1e3
                sampled = (ts[hi - 1] - ts[lo]) / 1e3
                average = sampled / (m - 1)
                threshold = average * 1.1
                if v3:
                    if duration_to_start >= threshold:
                        duration_to_start = average / 2
                    if duration_to_end >= threshold:
                        duration_to_end = average / 2
                    if fn != DELTA and result > 0 and first >= 0:
                        duration_to_zero = sampled * (first / result)
                        if duration_to_zero < duration_to_start:
                            duration_to_start = duration_to_zero
                    interval = sampled + duration_to_start + duration_to_end
                else:
                    if fn != DELTA and result > 0 and first >= 0:
                        duration_to_zero = sampled * (first / result)
                        if duration_to_zero < duration_to_start:
                            duration_to_start = duration_to_zero
                    interval = sampled
                    if duration_to_start < threshold:
                        interval += duration_to_start
                    else:
                        interval += average / 2
                    if duration_to_end < threshold:
                        interval += duration_to_end
                    else:
                        interval += average / 2
                result = result * (interval / sampled)
                if fn == RATE:
                    result = result / (rng / 1e3)
                out[i, j] = result
            elif fn == IRATE or fn == IDELTA:
                if m < 2:
                    continue
                last = vals[hi - 1]
                prev = vals[hi - 2]
                if fn == IRATE and last < prev:
                    result = last
                else:
                    result = last - prev
                dt = ts[hi - 1] - ts[hi - 2]
                if dt == 0:
                    continue
                if fn == IRATE:
                    result = result / (dt / 1e3)
                out[i, j] = result
            elif fn == DERIV:
                if m < 2:
                    continue
                slope, _ = _regression(ts, vals, lo, hi, ts[lo])
                out[i, j] = slope
            elif fn == PREDICT_LINEAR:
                if m < 2:
                    continue
                slope, intercept = _regression(ts, vals, lo, hi, eval_T[j])
                out[i, j] = slope * arg[j] + intercept
            elif fn == AVG and not v3:
                # Prometheus 2: an incremental mean (a constant's mean is that constant, exactly)
                out[i, j] = _incremental_mean(vals, lo, hi)
            elif fn == AVG:
                # Prometheus 3: the compensated sum divided by the count; when that sum overflows,
                # an incremental mean (which keeps large finite values finite)
                total = 0.0
                comp = 0.0
                for k in range(lo, hi):
                    total, comp = kahan_inc(vals[k], total, comp)
                if not math.isinf(total) or _any_inf(vals, lo, hi):
                    out[i, j] = (total + comp) / m
                else:
                    out[i, j] = _incremental_mean(vals, lo, hi)
            elif fn == MIN or fn == MAX:
                best = vals[lo]
                for k in range(lo + 1, hi):
                    v = vals[k]
                    if fn == MIN:
                        if v < best or math.isnan(best):
                            best = v
                    else:
                        if v > best or math.isnan(best):
                            best = v
                out[i, j] = best
            elif fn == SUM:
                total = 0.0
                comp = 0.0
                for k in range(lo, hi):
                    total, comp = kahan_inc(vals[k], total, comp)
                out[i, j] = total + comp
            elif fn == COUNT:
                out[i, j] = m
            elif fn == QUANTILE:
                out[i, j] = quantile(arg[j], vals[lo:hi])
            elif fn == STDDEV or fn == STDVAR:
                count = 0.0
                mean = 0.0
                aux = 0.0
                for k in range(lo, hi):
                    v = vals[k]
                    count += 1
                    delta = v - mean
                    mean += delta / count
                    aux += delta * (v - mean)
                out[i, j] = math.sqrt(aux / count) if fn == STDDEV else aux / count
            elif fn == LAST:
                out[i, j] = vals[hi - 1]
            elif fn == PRESENT:
                out[i, j] = 1.0
            elif fn == CHANGES or fn == RESETS:
                c = 0.0
                prev = vals[lo]
                for k in range(lo + 1, hi):
                    cur = vals[k]
                    if fn == CHANGES:
                        if not (cur == prev or (math.isnan(cur) and math.isnan(prev))):
                            c += 1
                    elif cur < prev:
                        c += 1
                    prev = cur
                out[i, j] = c
            present[i, j] = True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def bucket_quantile(q, les, counts, present, out, out_present):  # pragma: no cover - compiled
    """Prometheus's classic-histogram quantile for one group of ``le`` buckets, per step.

    ``les`` is ascending (one entry per series of the group), ``counts``/``present``
    are ``[bucket, step]``.
    """
    m = len(les)
    S = counts.shape[1]
    bounds = np.empty(m)
    cum = np.empty(m)
    for j in range(S):
        nb = 0
        for b in range(m):
            if not present[b, j]:
                continue
            # coalesce buckets with the same upper bound
            if nb > 0 and bounds[nb - 1] == les[b]:
                cum[nb - 1] += counts[b, j]
            else:
                bounds[nb] = les[b]
                cum[nb] = counts[b, j]
                nb += 1
        if nb == 0:
            continue
        out_present[j] = True
        qj = q[j]
        if math.isnan(qj):
            out[j] = np.nan
            continue
        if qj < 0:
            out[j] = -np.inf
            continue
        if qj > 1:
            out[j] = np.inf
            continue
        if not (math.isinf(bounds[nb - 1]) and bounds[nb - 1] > 0):
            out[j] = np.nan
            continue
        # counts must not decrease with the bound
        top = -np.inf
        for b in range(nb):
            if cum[b] > top:
                top = cum[b]
            elif cum[b] < top:
                cum[b] = top
        if nb < 2:
            out[j] = np.nan
            continue
        observations = cum[nb - 1]
        if observations == 0:
            out[j] = np.nan
            continue
        rank = qj * observations
        b = 0
        while b < nb - 1 and not (cum[b] >= rank):
            b += 1
        if b == nb - 1:
            out[j] = bounds[nb - 2]
            continue
        if b == 0 and bounds[0] <= 0:
            out[j] = bounds[0]
            continue
        bucket_start = 0.0
        bucket_end = bounds[b]
        count = cum[b]
        if b > 0:
            bucket_start = bounds[b - 1]
            count -= cum[b - 1]
            rank -= cum[b - 1]
        out[j] = bucket_start + (bucket_end - bucket_start) * (rank / count)
