"""The alert state machine as a compiled kernel (SPEC section 4).

One named state machine, in Prometheus terms::

    INACTIVE --active--> PENDING --held for `for`--> FIRING --not held (after keep_firing_for)--> INACTIVE
                            |                            ^
                            +--not active--> INACTIVE    | a held evaluation resets the keep timer

with the seed's cooldown on top: a transition to FIRING before ``previous fired_at +
cooldown`` waits in PENDING; if the alert drops back to inactive (or the data ends)
while it waits, it is recorded as *suppressed*. Sample mode (the seed's own model)
raises an alert at every active evaluation outside the cooldown.

The kernel walks every series of a rule in one call. Instants are int64
nanoseconds; ``NAT_NS`` (the minimum int64) stands for "none". Each transition is the
same branch as in :mod:`perfalert_lab.engine.reference`, which the tests hold it to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._jit import kernel
from .._time import NAT_NS
from .states import AlertState

__all__ = ["Episodes", "peak_values", "run_episodes", "run_samples", "values_at"]

# the states as plain integers: numba reads module globals as compile-time constants
INACTIVE, PENDING, FIRING = int(AlertState.INACTIVE), int(AlertState.PENDING), int(AlertState.FIRING)


@dataclass(frozen=True)
class Episodes:
    """Alerts found for one rule, one entry per alert (arrays of equal length).

    ``series``: index into the rule's matching series; ``resolved_at`` is ``NAT_NS``
    for an alert still open at the end of the data; ``suppressed`` marks cooldown
    suppression; ``k_start``/``k_end`` delimit the evaluations the alert spans
    (``k_end`` exclusive: the resolving evaluation, or the series' end).
    """

    series: np.ndarray
    pending_since: np.ndarray
    fired_at: np.ndarray
    resolved_at: np.ndarray
    suppressed: np.ndarray
    k_start: np.ndarray
    k_end: np.ndarray
    peak: np.ndarray | None = None  # tracked by the episode kernel when it is given the values

    def __len__(self) -> int:
        return len(self.series)


@kernel
def _episodes(times, offsets, active, held, for_ns, keep_ns, cooldown_ns, capacity, values, present, direction,
              ref, track):  # pragma: no cover - compiled
    cols = np.empty((capacity, 6), dtype=np.int64)  # series, pending, fired, resolved, k_start, k_end
    supp = np.empty(capacity, dtype=np.bool_)
    peaks = np.empty(capacity, dtype=np.float64)
    peak = np.nan
    n = 0
    nat = np.iinfo(np.int64).min
    for j in range(len(offsets) - 1):
        a = offsets[j]
        b = offsets[j + 1]
        state = INACTIVE
        pending_since = nat
        k_pending = a
        fired_at = nat
        last_fired = nat  # fired_at of the previous alert that really fired
        blocked_at = nat  # when a cooldown first held this pending alert back
        keep_since = nat
        for k in range(a, b):
            t = times[k]
            if state == FIRING:
                if held[k]:
                    keep_since = nat  # held: stays firing, keep timer reset
                    if track and present[k]:
                        peak = _extreme(peak, values[k], direction, ref)
                    continue
                if keep_ns > 0:
                    if keep_since == nat:
                        keep_since = t  # first evaluation not held: start keep_firing_for
                    if t - keep_since < keep_ns:
                        if track and present[k]:
                            peak = _extreme(peak, values[k], direction, ref)
                        continue  # kept firing
                # resolved at t
                n = _record(cols, supp, peaks, n, j, pending_since, fired_at, t, False, k_pending, k, peak)
                state = INACTIVE
                keep_since = nat
                continue
            if state == INACTIVE:
                if not active[k]:
                    continue
                state = PENDING  # from now
                pending_since = t
                k_pending = k
                blocked_at = nat
                peak = np.nan
            elif not active[k]:  # PENDING and no longer active
                if blocked_at != nat:  # it waited for the cooldown in vain: suppressed
                    n = _record(cols, supp, peaks, n, j, pending_since, blocked_at, t, True, k_pending, k, peak)
                state = INACTIVE
                continue
            # PENDING and active: fire once pending for `for`, unless in cooldown
            if track and present[k]:
                peak = _extreme(peak, values[k], direction, ref)
            if t - pending_since >= for_ns:
                if last_fired != nat and t < last_fired + cooldown_ns:
                    if blocked_at == nat:
                        blocked_at = t
                else:
                    state = FIRING
                    fired_at = t
                    last_fired = t
                    keep_since = nat
        # end of this series' data
        if state == FIRING:
            n = _record(cols, supp, peaks, n, j, pending_since, fired_at, nat, False, k_pending, b, peak)
        elif state == PENDING and blocked_at != nat:
            n = _record(cols, supp, peaks, n, j, pending_since, blocked_at, nat, True, k_pending, b, peak)
    return (cols[:n, 0].copy(), cols[:n, 1].copy(), cols[:n, 2].copy(), cols[:n, 3].copy(), supp[:n],
            cols[:n, 4].copy(), cols[:n, 5].copy(), peaks[:n])


@kernel(inline="always")
def _record(
    cols, supp, peaks, n, series, pending, fired, resolved, suppressed, k_start, k_end, peak
):  # pragma: no cover
    """Write alert ``n`` and return the count after it."""
    cols[n, 0] = series
    cols[n, 1] = pending
    cols[n, 2] = fired
    cols[n, 3] = resolved
    cols[n, 4] = k_start
    cols[n, 5] = k_end
    supp[n] = suppressed
    peaks[n] = peak
    return n + 1


@kernel(inline="always")
def _extreme(best, v, direction, ref):  # pragma: no cover - compiled
    """The more extreme of ``best`` and ``v`` (the first value when ``best`` is NaN)."""
    if np.isnan(best):
        return v
    if direction == 1:
        return v if v > best else best
    if direction == -1:
        return v if v < best else best
    return v if abs(v - ref) > abs(best - ref) else best


@kernel
def _samples(times, offsets, active, cooldown_ns, capacity):  # pragma: no cover - compiled
    series = np.empty(capacity, dtype=np.int64)
    at = np.empty(capacity, dtype=np.int64)
    kk = np.empty(capacity, dtype=np.int64)
    n = 0
    nat = np.iinfo(np.int64).min
    for j in range(len(offsets) - 1):
        last = nat
        for k in range(offsets[j], offsets[j + 1]):
            if active[k]:
                t = times[k]
                if last == nat or t >= last + cooldown_ns:
                    series[n] = j
                    at[n] = t
                    kk[n] = k
                    n += 1
                    last = t
    return series[:n], at[:n], kk[:n]


def _capacity_episodes(active: np.ndarray, offsets: np.ndarray) -> int:
    """Upper bound on episodes: every episode starts where ``active`` rises."""
    if len(active) == 0:
        return 0
    rises = int(np.count_nonzero(active[1:] & ~active[:-1])) + int(active[0])
    starts = offsets[1:-1][offsets[1:-1] < len(active)]
    rises += int(np.count_nonzero(active[starts]))  # a series may start active
    return rises


def run_episodes(times: np.ndarray, offsets: np.ndarray, active: np.ndarray, held: np.ndarray,
                 for_ns: int, keep_ns: int, cooldown_ns: int, *, values: np.ndarray | None = None,
                 present: np.ndarray | None = None, op: str = ">", threshold: float = 0.0) -> Episodes:
    """Episode-mode alerts of every series (SPEC section 4).

    Given ``values`` and ``present``, the kernel also tracks each alert's peak value
    (see :func:`peak_values` for the definition) in the same pass.
    """
    cap = _capacity_episodes(active, offsets)
    track = values is not None and present is not None
    vals = values if track else np.zeros(0, np.float64)
    pres = present if track else np.zeros(0, np.bool_)
    s, p, f, r, sup, k0, k1, pk = _episodes(times, offsets, active, held, np.int64(for_ns), np.int64(keep_ns),
                                            np.int64(cooldown_ns), cap, vals, pres, np.int64(peak_direction(op)),
                                            np.float64(threshold), track)
    return Episodes(s, p, f, r, sup, k0, k1, pk if track else None)


def run_samples(times: np.ndarray, offsets: np.ndarray, active: np.ndarray, cooldown_ns: int) -> Episodes:
    """Sample-mode alerts: one per active evaluation outside the cooldown.

    ``resolved_at`` is left ``NAT_NS``: sample-mode alerts resolve only by a responder.
    """
    cap = int(np.count_nonzero(active))
    s, at, k = _samples(times, offsets, active, np.int64(cooldown_ns), cap)
    nat = np.full(len(s), NAT_NS, dtype=np.int64)
    ends = offsets[s + 1] if len(s) else np.zeros(0, np.int64)
    return Episodes(s, at, at.copy(), nat, np.zeros(len(s), dtype=bool), k, ends)


@kernel
def _peaks(times, values, present, k_start, k_end, end_t, direction, ref):  # pragma: no cover - compiled
    out = np.empty(len(k_start), dtype=np.float64)
    for i in range(len(k_start)):
        best = np.nan
        for k in range(k_start[i], k_end[i]):
            if times[k] >= end_t[i] and k > k_start[i]:
                break
            if not present[k]:
                continue
            v = values[k]
            if np.isnan(best):
                best = v
            elif direction == 1:
                if v > best:
                    best = v
            elif direction == -1:
                if v < best:
                    best = v
            elif direction == 0 and abs(v - ref) > abs(best - ref):  # farthest from the threshold
                best = v
        out[i] = best
    return out


def peak_direction(op: str) -> int:
    """+1: the largest value is the most extreme; -1: the smallest; 0: farthest from the threshold."""
    return 1 if op in (">", ">=") else -1 if op in ("<", "<=") else 0


def peak_values(times: np.ndarray, values: np.ndarray, present: np.ndarray, k_start: np.ndarray, k_end: np.ndarray,
                end_t: np.ndarray, op: str, threshold: float) -> np.ndarray:
    """Most extreme value in the direction of ``op`` over each alert's evaluations.

    An alert spans the evaluations from ``k_start`` up to (not including) ``k_end``
    and the first evaluation at or after ``end_t`` (its resolution); its first
    evaluation always counts. For ``==`` and ``!=`` the value farthest from the
    threshold is the peak.
    """
    return _peaks(times, values, present, k_start, k_end, end_t, peak_direction(op), float(threshold))


@kernel
def _values_at(times, values, present, k_start, k_end, at):  # pragma: no cover - compiled
    out = np.full(len(k_start), np.nan)
    for i in range(len(k_start)):
        for k in range(k_start[i], k_end[i]):
            if times[k] >= at[i]:
                if times[k] == at[i] and present[k]:
                    out[i] = values[k]
                break
    return out


def values_at(times: np.ndarray, values: np.ndarray, present: np.ndarray, k_start: np.ndarray, k_end: np.ndarray,
              at: np.ndarray) -> np.ndarray:
    """Each alert's value at the evaluation at instant ``at`` (its firing: the ``$value`` its page shows),
    searched from ``k_start``; NaN where there is none."""
    return _values_at(times, values, present, k_start, k_end, at)
