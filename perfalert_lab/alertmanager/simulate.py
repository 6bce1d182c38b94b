"""Alertmanager's dispatcher and notification pipeline over an alert timeline, one event at a time.

Alerts arrive as Prometheus sends them: when they fire (``starts_at``) and when they
resolve (``ends_at``); the re-sends every minute in between only refresh an alert and
change nothing here. Each alert goes to the routes the tree gives it
(:meth:`Route.match`), into the aggregation group of (route, group labels). A group's
first flush comes ``group_wait`` after it was created (at once when the alert started
more than ``group_wait`` before it arrived at a group that never flushed), later
flushes every ``group_interval``. At a flush, inhibited, silenced and muted alerts are
left out; each integration of the route's receiver notifies when Alertmanager's
notification log says so (``DedupStage.needsUpdate``):

* nothing was sent for the group yet: only if some alert fires;
* an alert fires that the last notification did not carry;
* no alert fires any more, and the last notification carried some (sent only with
  ``send_resolved``; the log is updated either way);
* an alert resolved that the last one did not report, with ``send_resolved``;
* otherwise when ``repeat_interval`` has passed since the last notification.

Inhibited, silenced and muted alerts are taken out before the notification log is read:
when none is left, the pipeline stops there and the log is left as it was (so the
resolution sent after an inhibition lifts is still sent), though resolved alerts still
leave the group. Resolved alerts leave the group after the flush that carried them; an
empty group lives on, its timer ticking every ``group_interval``, until the dispatcher's
maintenance (every 30 seconds from ``dispatcher_start``) removes it: an alert that joins it
meanwhile is flushed at the group's next tick, not ``group_wait`` after it arrives.
Events at the same instant: arrivals first, then flushes, then maintenance. Pure: no wall
clock.
"""

from __future__ import annotations

import calendar
import heapq
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .config import AlertmanagerConfig, InhibitRule, Matcher, Route, TimeInterval

__all__ = ["Alert", "Notification", "group_key", "simulate"]


@dataclass(frozen=True)
class Alert:
    alert_id: str
    labels: tuple[tuple[str, str], ...]
    starts_at: int  # ms
    ends_at: int | None = None  # ms; None while still firing at the end of the data

    def firing_at(self, t: int) -> bool:
        return self.starts_at <= t and (self.ends_at is None or t < self.ends_at)


@dataclass
class Notification:
    at: int
    receiver: str
    integration: str
    group_key: str
    group_labels: tuple[tuple[str, str], ...]
    firing: list[str]
    resolved: list[str]
    repeat: bool
    paging: bool


@dataclass
class _Group:
    route: Route
    labels: tuple[tuple[str, str], ...]
    key: str
    alerts: dict[str, Alert] = field(default_factory=dict)
    next_flush: int = 0
    has_flushed: bool = False
    generation: int = 0


@dataclass(frozen=True)
class Silence:
    matchers: tuple[Matcher, ...]
    start: int
    end: int

    def mutes(self, labels: dict[str, str], t: int) -> bool:
        return self.start <= t < self.end and all(m.matches(labels) for m in self.matchers)


def _inhibited(labels: dict[str, str], rules: tuple[InhibitRule, ...], firing: list[dict[str, str]]) -> bool:
    for rule in rules:
        if not all(m.matches(labels) for m in rule.target):
            continue
        target_is_source = all(m.matches(labels) for m in rule.source)
        for src in firing:
            if not all(m.matches(src) for m in rule.source):
                continue
            if target_is_source and all(m.matches(src) for m in rule.target):
                continue  # an alert matching both sides does not inhibit (nor is inhibited by) its kind
            if all(src.get(k, "") == labels.get(k, "") for k in rule.equal):
                return True
    return False


def _in_interval(t_ms: int, intervals: tuple[TimeInterval, ...]) -> bool:
    for ti in intervals:
        zone = UTC if ti.location in ("UTC", "Local") else ZoneInfo(ti.location)
        d = datetime.fromtimestamp(t_ms / 1000, tz=zone)
        minute = d.hour * 60 + d.minute
        weekday = (d.weekday() + 1) % 7  # Alertmanager counts from Sunday
        ok = (not ti.times or any(a <= minute < b for a, b in ti.times)) and \
             (not ti.weekdays or any(a <= weekday <= b for a, b in ti.weekdays)) and \
             (not ti.months or any(a <= d.month <= b for a, b in ti.months)) and \
             (not ti.years or any(a <= d.year <= b for a, b in ti.years))
        if ok and ti.days_of_month:
            days = calendar.monthrange(d.year, d.month)[1]
            ok = any((a if a > 0 else days + a + 1) <= d.day <= (b if b > 0 else days + b + 1)
                     for a, b in ti.days_of_month)
        if ok:
            return True
    return False


def route_muted(route: Route, t: int, config: AlertmanagerConfig) -> bool:
    """The route's mute_time_intervals hold at ``t``, or its active_time_intervals do not."""
    if route.mute_time_intervals and any(_in_interval(t, config.time_intervals[n]) for n in route.mute_time_intervals):
        return True
    return bool(route.active_time_intervals) and not any(_in_interval(t, config.time_intervals[n])
                                                         for n in route.active_time_intervals)


def needs_update(entry: tuple[frozenset[str], frozenset[str], int] | None, firing: frozenset[str],
                 resolved: frozenset[str], send_resolved: bool, repeat_ms: int, t: int) -> tuple[bool, bool]:
    """``(notify, is_repeat)``: the notification log's DedupStage.needsUpdate, ``entry`` = (firing,
    resolved, time) of the last notification of this group to this integration."""
    if entry is None:
        return bool(firing), False
    if not firing <= entry[0]:
        return True, False
    if not firing:
        return bool(entry[0]), False
    if send_resolved and not resolved <= entry[1]:
        return True, False
    due = entry[2] < t - repeat_ms  # Before(now - repeat): strictly
    return due, due


MAINTENANCE_MS = 30_000  # Alertmanager's dispatcher removes empty aggregation groups this often


def maintenance_ticks(start: int, end: int, dispatcher_start: int) -> range:
    """The dispatcher's maintenance times in ``(start, end]``: every 30 s after ``dispatcher_start``."""
    first = dispatcher_start + ((start - dispatcher_start) // MAINTENANCE_MS + 1) * MAINTENANCE_MS
    return range(first, end + 1, MAINTENANCE_MS)


def simulate(alerts: list[Alert], config: AlertmanagerConfig, *, end_ms: int,
             silences: tuple[Silence, ...] = (), dispatcher_start: int = 0) -> list[Notification]:
    """Every notification the configuration's integrations would have received up to ``end_ms``.

    ``dispatcher_start`` (ms) sets the phase of the 30-second maintenance that removes empty
    groups (Alertmanager's start or last configuration reload; by default the Unix epoch)."""
    counter = itertools.count()
    events: list[tuple[int, int, int, str, Any]] = []  # (time, order, seq, kind, payload)
    for a in alerts:
        heapq.heappush(events, (a.starts_at, 0, next(counter), "arrive", a))
        if a.ends_at is not None:
            heapq.heappush(events, (a.ends_at, 0, next(counter), "resolve", a))
    maintenance_due: set[int] = set()  # maintenance runs that may find an empty group
    groups: dict[str, _Group] = {}
    log: dict[tuple[str, str, str], tuple[frozenset[str], frozenset[str], int]] = {}  # nflog
    out: list[Notification] = []
    live: dict[str, Alert] = {}  # every alert Alertmanager currently holds (for inhibition)

    def insert(a: Alert, t: int) -> None:
        labels = dict(a.labels)
        for route in config.routes_for(labels):
            glabels = route.group_labels(labels)
            key = f"{route.path}|{group_key(route, glabels)}"
            g = groups.get(key)
            if g is None:
                g = _Group(route, glabels, key, next_flush=t + route.group_wait_ms)
                groups[key] = g
                heapq.heappush(events, (g.next_flush, 1, next(counter), "flush", (key, g.generation)))
            g.alerts[_fingerprint(a)] = a  # Alertmanager knows an alert by its labels
            if not g.has_flushed and a.starts_at + route.group_wait_ms < t and g.next_flush > t:
                g.next_flush = t  # an old alert into a group that never flushed: at once
                g.generation += 1
                heapq.heappush(events, (t, 1, next(counter), "flush", (key, g.generation)))

    def flush(g: _Group, t: int) -> None:
        try:
            notify(g, t)
        finally:  # resolved alerts leave the group after a flush, whatever the pipeline decided
            for fp in [fp for fp, a in g.alerts.items() if not a.firing_at(t)]:
                del g.alerts[fp]

    def notify(g: _Group, t: int) -> None:
        route = g.route
        if route_muted(route, t, config):
            return
        firing_sources = [dict(a.labels) for a in live.values() if a.firing_at(t)]
        shown: list[Alert] = []
        for a in g.alerts.values():
            labels = dict(a.labels)
            if any(s.mutes(labels, t) for s in silences):
                continue
            if _inhibited(labels, config.inhibit_rules, firing_sources):
                continue
            shown.append(a)
        if not shown:  # every alert muted: the pipeline stops before the notification log
            return
        firing_alerts = [a for a in shown if a.firing_at(t)]
        resolved_alerts = [a for a in shown if not a.firing_at(t)]
        firing = frozenset(_fingerprint(a) for a in firing_alerts)
        resolved = frozenset(_fingerprint(a) for a in resolved_alerts)
        receiver = config.receivers.get(route.receiver)
        for integration in receiver.integrations if receiver else ():
            lk = (g.key.split("|", 1)[1], route.receiver, integration.name)  # the log knows route keys, not routes
            needed, repeat = needs_update(log.get(lk), firing, resolved, integration.send_resolved,
                                          route.repeat_interval_ms, t)
            if not needed:
                continue
            log[lk] = (firing, resolved, t)
            sent_resolved = sorted(a.alert_id for a in resolved_alerts) if integration.send_resolved else []
            if not firing and not sent_resolved:
                continue  # logged, but nothing to send
            out.append(Notification(t, route.receiver, integration.name, g.key.split("|", 1)[1], g.labels,
                                    sorted(a.alert_id for a in firing_alerts), sent_resolved, repeat,
                                    integration.paging))

    while events:
        t, _, _, kind, payload = heapq.heappop(events)
        if t > end_ms:
            break
        if kind == "arrive":
            live[_fingerprint(payload)] = payload
            insert(payload, t)
        elif kind == "resolve":
            pass  # the alert's ends_at is known; groups see it resolved from now on
        elif kind == "maintenance":
            maintenance_due.discard(t)
            for key in [k for k, g in groups.items() if not g.alerts]:
                del groups[key]  # an empty group is stopped and forgotten
        else:
            key, generation = payload
            g = groups.get(key)
            if g is None or generation != g.generation or g.next_flush != t:
                continue
            g.has_flushed = True
            if g.alerts:  # an empty group's flush does nothing; its timer goes on
                flush(g, t)
                if not g.alerts:  # emptied: the next maintenance removes it, unless an alert comes first
                    tick = next(iter(maintenance_ticks(t - 1, t + MAINTENANCE_MS, dispatcher_start)))
                    if tick not in maintenance_due:
                        maintenance_due.add(tick)
                        heapq.heappush(events, (tick, 2, next(counter), "maintenance", None))
            g.next_flush = t + g.route.group_interval_ms
            heapq.heappush(events, (g.next_flush, 1, next(counter), "flush", (key, g.generation)))
    return out


def group_key(route: Route, group_labels: tuple[tuple[str, str], ...]) -> str:
    """Alertmanager's group key: the route's key, then the group labels as a label set prints
    (``{}/{team="db"}:{alertname="A", host="h1"}``)."""
    return f"{route.key}:{{{', '.join(f'{k}={_quote(v)}' for k, v in group_labels)}}}"


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fingerprint(a: Alert) -> str:
    return ",".join(f"{k}={v}" for k, v in a.labels)
