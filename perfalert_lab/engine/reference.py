"""The reference engine: SPEC section 4 written out plainly, one evaluation at a time.

It is slow on purpose, and written apart from the compiled engine so the tests can
hold the fast engine to it on random inputs: its transitions, value lookups, windows,
acknowledgements, escalations and fan-out are its own. What it does share is named
here: the rule model, the clocks' evaluation times, frame normalisation
(:func:`~perfalert_lab.frames.normalize_frame`), the state names
(:class:`~perfalert_lab.engine.states.AlertState`) and the alert-id hash
(:func:`~perfalert_lab._hashing.stable_hash`); a bug in those would not be
caught by comparing the two engines. It also serves to *explain* a single series
step by step (:func:`explain`).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from .._hashing import stable_hash
from .._time import col_ns, parse_duration, to_ns
from ..clock import Clock, IntervalClock, SampleClock
from ..frames import normalize_frame
from ..rules.model import LognormalDelay, Rule, RuleSet
from .states import AlertState

__all__ = ["ReferenceAlert", "explain", "reference_alerts", "reference_backtest", "value_at"]

NS = 1_000_000_000


@dataclass
class ReferenceAlert:
    rule_id: str
    source: str
    metric: str
    pending_since: int
    fired_at: int
    resolved_at: int | None
    suppressed: bool
    peak_value: float = math.nan


def _series(frame: pd.DataFrame) -> dict[tuple[str, str], list[tuple[int, float]]]:
    out: dict[tuple[str, str], list[tuple[int, float]]] = {}
    ts = col_ns(frame["timestamp"]).tolist()
    for t, s, m, v in zip(ts, frame["source"].tolist(), frame["metric"].tolist(), frame["value"].tolist(), strict=True):
        out.setdefault((s, m), []).append((t, v))
    for samples in out.values():
        samples.sort(key=lambda x: x[0])
    return out


def _labels(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, str]]:
    cols = [c for c in frame.columns if c not in ("timestamp", "source", "metric", "value")]
    out: dict[tuple[str, str], dict[str, str]] = {}
    for d in frame.to_dict("records"):
        out[(str(d["source"]), str(d["metric"]))] = {c: str(d[c]) for c in cols}
    return out


def _matches(rule: Rule, source: str, metric: str, labels: dict[str, str]) -> bool:
    if metric != rule.metric:
        return False
    for column, pattern in rule.match.items():
        if column == "source":
            value = source
        elif column in labels:
            value = labels[column]
        else:
            return False
        if not fnmatch.fnmatchcase(value, pattern):
            return False
    return True


def _ticks(clock: Clock, samples: list[tuple[int, float]], start: int, end: int) -> list[int]:
    if isinstance(clock, SampleClock):
        return [t for t, _ in samples]
    if isinstance(clock, IntervalClock):
        every = to_ns(parse_duration(clock.every))
        offset = to_ns(parse_duration(clock.offset)) % every
        q, r = divmod(start - offset, every)
        t = offset + (q + (1 if r else 0)) * every  # the first tick at or after the start
        out = []
        while t <= end:
            out.append(t)
            t += every
        return out
    own = np.array([t for t, _ in samples], dtype="int64")
    times = sorted({int(x) for x in clock.evaluation_times(own, start, end)})
    return [t for t in times if t <= end]


def value_at(samples: list[tuple[int, float]], t: int, lookback: int | None, rule: Rule) -> float | None:
    """The rule's value at evaluation ``t``, or ``None`` when the series is absent."""
    if rule.window is None:
        newest = None
        for ts, v in samples:
            if ts <= t:
                newest = (ts, v)
        if newest is None:
            return None
        if lookback is not None and not newest[0] > t - lookback:
            return None
        return newest[1]
    w = to_ns(rule.window)
    inside = [(ts, v) for ts, v in samples if t - w < ts <= t]
    if not inside:
        return None
    vals = [v for _, v in inside]
    agg = rule.aggregate
    if agg == "count":
        return float(len(vals))
    if agg in ("sum", "mean"):
        total = 0.0
        for v in vals:
            total += v
        return total / len(vals) if agg == "mean" else total
    if agg == "min":
        return min(vals)
    if agg == "max":
        return max(vals)
    if agg == "rate":
        if len(inside) < 2:
            return None
        (t0, v0), (t1, v1) = inside[0], inside[-1]
        return (v1 - v0) / ((t1 - t0) / 1e9)
    q = 0.5 if agg == "median" else int(agg[1:]) / 100  # type: ignore[index]
    s = sorted(vals)
    pos = q * (len(s) - 1)
    f = math.floor(pos)
    if f + 1 < len(s):
        return s[f] + (s[f + 1] - s[f]) * (pos - f)
    return s[f]


def _holds(op: str, value: float | None, bound: float) -> bool:
    if value is None:
        return False
    return {
        ">": value > bound, ">=": value >= bound, "<": value < bound,
        "<=": value <= bound, "==": value == bound, "!=": value != bound,
    }[op]


@dataclass
class _Machine:
    """One rule on one series: the episode-mode state machine, a branch per transition."""

    rule: Rule
    state: AlertState = AlertState.INACTIVE
    pending_since: int = 0
    fired_at: int = 0
    last_fired: int | None = None
    blocked_at: int | None = None
    keep_since: int | None = None
    closed: list[tuple[int, int, int | None, bool]] = field(default_factory=list)

    def step(self, t: int, active: bool, held: bool) -> None:
        r = self.rule
        if self.state is AlertState.FIRING:
            if held:
                self.keep_since = None  # firing and held: stays firing, keep timer reset
                return
            keep = to_ns(r.keep_firing_for)
            if keep > 0:
                if self.keep_since is None:
                    self.keep_since = t  # first evaluation not held starts the keep timer
                if t - self.keep_since < keep:
                    return  # kept firing
            self._resolve(t)  # firing and not held (any more): resolved
            return
        if self.state is AlertState.INACTIVE:
            if active:
                self.state, self.pending_since, self.blocked_at = AlertState.PENDING, t, None
                self._maybe_fire(t)
            return
        # AlertState.PENDING
        if not active:
            if self.blocked_at is not None:  # waited for the cooldown in vain
                self.closed.append((self.pending_since, self.blocked_at, t, True))
            self.state = AlertState.INACTIVE
            return
        self._maybe_fire(t)

    def _maybe_fire(self, t: int) -> None:
        if t - self.pending_since < to_ns(self.rule.for_):
            return
        if self.last_fired is not None and t < self.last_fired + to_ns(self.rule.cooldown):
            if self.blocked_at is None:
                self.blocked_at = t  # would fire now, but the cooldown holds it back
            return
        self.state, self.fired_at, self.last_fired, self.keep_since = AlertState.FIRING, t, t, None

    def _resolve(self, t: int) -> None:
        self.closed.append((self.pending_since, self.fired_at, t, False))
        self.state, self.keep_since = AlertState.INACTIVE, None

    def finish(self) -> None:
        if self.state is AlertState.FIRING:
            self.closed.append((self.pending_since, self.fired_at, None, False))
        elif self.state is AlertState.PENDING and self.blocked_at is not None:
            self.closed.append((self.pending_since, self.blocked_at, None, True))


@dataclass
class _SampleMachine:
    """One rule on one series in sample mode (the seed's model): every evaluation where the
    condition holds raises an alert, unless it comes within the cooldown of the last one."""

    rule: Rule
    last: int | None = None
    state: str = "inactive"  # what explain shows: "alert" (raised here), "cooldown" (held back), "inactive"

    def step(self, t: int, active: bool) -> bool:
        """True when this evaluation raises an alert."""
        if not active:
            self.state = "inactive"
            return False
        if self.last is not None and t < self.last + to_ns(self.rule.cooldown):
            self.state = "cooldown"  # the condition holds, but too soon after the last alert
            return False
        self.last, self.state = t, "alert"
        return True


def _evaluations(
    frame: pd.DataFrame, rule: Rule, clock: Clock
) -> Iterator[tuple[str, str, list[tuple[int, float | None]]]]:
    series = _series(frame)
    labels = _labels(frame)
    if not series:
        return
    start = min(s[0][0] for s in series.values())
    end = max(s[-1][0] for s in series.values())
    for (source, metric), samples in sorted(series.items()):
        if not _matches(rule, source, metric, labels[(source, metric)]):
            continue
        ticks = _ticks(clock, samples, start, end)
        yield source, metric, [(t, value_at(samples, t, clock.lookback_ns, rule)) for t in ticks]


def reference_alerts(frame: pd.DataFrame, rules: RuleSet | Rule, clock: Clock | None = None,
                     resolve_after: int | None = None) -> list[ReferenceAlert]:
    """Every alert of every enabled rule, computed one evaluation at a time.

    ``resolve_after`` (ns) resolves sample-mode alerts, as a responder would.
    """
    clock = clock or SampleClock()
    frame = normalize_frame(frame)
    end_of_data = int(col_ns(frame["timestamp"]).max()) if len(frame) else 0
    out: list[ReferenceAlert] = []
    for rule in RuleSet.of(rules):
        if not rule.enabled:
            continue
        for source, metric, evals in _evaluations(frame, rule, clock):
            alerts: list[tuple[int, int, int | None, bool]] = []
            if rule.mode == "sample":
                sm = _SampleMachine(rule)
                for t, v in evals:
                    if sm.step(t, _holds(rule.op, v, rule.threshold)):
                        res = t + resolve_after if resolve_after is not None else None
                        alerts.append((t, t, res if res is not None and res <= end_of_data else None, False))
            else:
                m = _Machine(rule)
                for t, v in evals:
                    active = _holds(rule.op, v, rule.threshold)
                    held = _holds(rule.op, v, rule.clear) if rule.clear is not None else active
                    m.step(t, active, held)
                m.finish()
                alerts = m.closed
            for pending, fired, resolved, suppressed in alerts:
                peak = _peak(rule, evals, pending, resolved)
                out.append(ReferenceAlert(rule.id, source, metric, pending, fired, resolved, suppressed, peak))
    return out


def _peak(rule: Rule, evals: list[tuple[int, float | None]], start: int, end: int | None) -> float:
    vals = [v for t, v in evals if v is not None and (t == start or (t > start and (end is None or t < end)))]
    if not vals:
        return math.nan
    if rule.op in (">", ">="):
        return max(vals)
    if rule.op in ("<", "<="):
        return min(vals)
    best = vals[0]
    for v in vals[1:]:
        if abs(v - rule.threshold) > abs(best - rule.threshold):
            best = v
    return best


def explain(frame: pd.DataFrame, rule: Rule, clock: Clock | None = None, source: str | None = None) -> pd.DataFrame:
    """Step through one series: every evaluation with its value, condition and state.

    Handy to see *why* an alert fired (or did not); uses the reference engine. The
    ``state`` after each evaluation is ``inactive``, ``pending`` or ``firing`` in episode
    mode; in sample mode ``alert`` (an alert raised here), ``cooldown`` (the condition
    holds, too soon after the last alert) or ``inactive``.
    """
    clock = clock or SampleClock()
    frame = normalize_frame(frame)
    rows = []
    for src, metric, evals in _evaluations(frame, rule, clock):
        if source is not None and src != source:
            continue
        m = _Machine(rule)
        sm = _SampleMachine(rule)
        for t, v in evals:
            active = _holds(rule.op, v, rule.threshold)
            held = _holds(rule.op, v, rule.clear) if rule.clear is not None else active
            if rule.mode == "sample":
                sm.step(t, active)
                state = sm.state
            else:
                m.step(t, active, held)
                state = str(m.state)
            rows.append({"timestamp": pd.Timestamp(t, tz="UTC"), "source": src, "metric": metric, "value": v,
                         "active": active, "held": held, "state": state})
        break
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- lifecycle

_M64 = (1 << 64) - 1
HOUR = 3600 * NS


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _alert_key(rule: Rule, source: str, metric: str, pending_since: int) -> int:
    series = stable_hash(source + chr(0) + metric)
    return _splitmix(series ^ _splitmix(pending_since & _M64) ^ _splitmix(stable_hash(rule.id)))


def _ack_delay(rule: Rule, responders: Any, key: int) -> int | None:
    a = responders.ack_after
    if a is None:
        return None
    if isinstance(a, timedelta):
        return to_ns(a)
    if isinstance(a, LognormalDelay):
        h1 = _splitmix(key ^ _splitmix(a.seed & _M64))
        h2 = _splitmix(h1)
        u1 = ((h1 >> 11) + 0.5) / 2.0**53
        u2 = ((h2 >> 11) + 0.5) / 2.0**53
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        return round(to_ns(a.median) * math.exp(a.sigma * z))
    d = a.get(rule.severity)
    return None if d is None else to_ns(d)


def _silence_hits(silence: Any, rule: Rule, source: str, metric: str, labels: dict[str, str]) -> bool:
    for k, pattern in silence.matchers.items():
        if k == "rule_id":
            value = rule.id
        elif k == "severity":
            value = rule.severity
        elif k == "source":
            value = source
        elif k == "metric":
            value = metric
        elif k in labels:
            value = labels[k]
        elif k in rule.labels:
            value = rule.labels[k]
        else:
            return False
        if not fnmatch.fnmatchcase(value, pattern):
            return False
    return True


def reference_backtest(frame: pd.DataFrame, rules: RuleSet | Rule, clock: Clock | None = None
                       ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The alerts and notifications tables, one alert and one notification at a time.

    Rows are plain dicts with the columns of SPEC section 5 (instants as int ns,
    ``None`` for none).
    """
    rs = RuleSet.of(rules)
    frame = normalize_frame(frame)
    horizon = int(col_ns(frame["timestamp"]).max()) if len(frame) else 0
    labels_of = _labels(frame)
    resolve_after = to_ns(rs.responders.resolve_after) if rs.responders.resolve_after is not None else None
    raw = reference_alerts(frame, rs, clock, resolve_after=resolve_after)
    alerts: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    by_rule = {r.id: r for r in rs}
    kinds = {"firing": 0, "escalation": 1, "repeat": 2, "resolved": 3}
    for order, ra in enumerate(raw):
        rule = by_rule[ra.rule_id]
        labels = labels_of[(ra.source, ra.metric)]
        alert_id = f"{rule.id}-{stable_hash(ra.source + chr(0) + ra.metric):016x}-{ra.pending_since}"
        silences = [s for s in rs.silences if _silence_hits(s, rule, ra.source, ra.metric, labels)]
        silenced = not ra.suppressed and any(s.start <= ra.fired_at < s.end for s in silences)
        row: dict[str, Any] = {"alert_id": alert_id, "rule_id": rule.id, "source": ra.source, "metric": ra.metric,
               "severity": rule.severity, "mode": rule.mode, "pending_since": ra.pending_since,
               "fired_at": ra.fired_at, "resolved_at": ra.resolved_at, "acknowledged_at": None,
               "escalation_level": 0, "peak_value": ra.peak_value, "notifications": 0}
        alerts.append(row)
        if ra.suppressed or silenced:
            row["status"], row["suppressed_by"] = "suppressed", "cooldown" if ra.suppressed else "silence"
            continue
        delay = _ack_delay(rule, rs.responders, _alert_key(rule, ra.source, ra.metric, ra.pending_since))
        if delay is not None:
            ack = ra.fired_at + delay
            if ack <= horizon and (ra.resolved_at is None or ack < ra.resolved_at):
                row["acknowledged_at"] = ack
        stops = [t for t in (row["acknowledged_at"], ra.resolved_at) if t is not None]
        stop = min(stops) if stops else None

        def notify(at: int, kind: str, level: int, channels: tuple[Any, ...], _row: dict = row, _order: int = order,
                   _silences: list = silences) -> None:
            for i, ch in enumerate(c for c in channels if c.enabled):
                notes.append({"alert_id": _row["alert_id"], "rule_id": _row["rule_id"], "source": _row["source"],
                              "channel": ch.channel, "kind": kind, "level": level, "at": at,
                              "silenced": any(s.start <= at < s.end for s in _silences),
                              "_key": (at, _order, kinds[kind], level, i)})
                _row["notifications"] += 1

        notify(ra.fired_at, "firing", 0, rule.notify)
        esc = rule.escalation
        if esc is not None:
            prev = ra.fired_at
            for n in range(1, esc.max + 1):
                due = prev + to_ns(esc.delay)
                if esc.check_every is not None:
                    p = to_ns(esc.check_every)
                    due = -(-due // p) * p  # the first polling tick at or after it
                if due > horizon or (stop is not None and due >= stop):
                    break
                row["escalation_level"] = n
                level = esc.levels[min(n, len(esc.levels)) - 1].notify if esc.levels else rule.notify
                notify(due, "escalation", n, level)
                prev = due
        if rule.repeat_interval is not None:
            k = 1
            while True:
                t = ra.fired_at + k * to_ns(rule.repeat_interval)
                if t > horizon or (stop is not None and t >= stop):
                    break
                notify(t, "repeat", 0, rule.notify)
                k += 1
        if rule.send_resolved and ra.resolved_at is not None:
            notify(ra.resolved_at, "resolved", 0, rule.notify)
        if ra.resolved_at is not None:
            row["status"] = "resolved"
        elif row["acknowledged_at"] is not None:
            row["status"] = "acknowledged"
        else:
            row["status"] = "active"
        row["suppressed_by"] = ""
    notes.sort(key=lambda note: note["_key"])
    sent: dict[str, list[int]] = {}
    for note in notes:
        limit = rs.channels[note["channel"]].max_per_hour if note["channel"] in rs.channels else None
        recent = [t for t in sent.get(note["channel"], []) if t > note["at"] - HOUR]
        if note["silenced"]:
            note["delivered"], note["reason"] = False, "silenced"
        elif limit is not None and len(recent) >= limit:
            note["delivered"], note["reason"] = False, "rate_limited"
        else:
            note["delivered"], note["reason"] = True, ""
            sent.setdefault(note["channel"], []).append(note["at"])
        del note["silenced"], note["_key"]
    return alerts, notes
