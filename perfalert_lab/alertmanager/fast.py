"""The same notifications as :func:`.simulate.simulate`, computed group by group.

Aggregation groups never wait on one another: a group's flushes depend only on its own
alerts, and inhibition and silences only on the alert timeline. So instead of one
event queue for everything, each (route, group labels) is replayed alone: its
lifetimes (from the first arrival to the maintenance that finds it empty), the flush
ticks of each lifetime (``group_wait``, then every ``group_interval``), and at each
tick the firing and resolved sets from the alerts' start and end arrays; which alerts
inhibit which is computed once per inhibition rule as intervals. The per-flush rules
(muting, the notification log's decision) are the simulation's own functions: what the
two paths differ in, and what the tests compare, is the bookkeeping of groups and time. It is the path
``apply_alertmanager`` uses; the event-at-a-time simulation is its reference and the
tests hold them equal on random timelines and configurations.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .config import AlertmanagerConfig, Route
from .simulate import (
    MAINTENANCE_MS,
    Alert,
    Notification,
    Silence,
    _fingerprint,
    group_key,
    maintenance_ticks,
    needs_update,
    route_muted,
)

__all__ = ["simulate_fast"]


def _inhibited_intervals(alerts: list[Alert], config: AlertmanagerConfig) -> dict[str, list[tuple[int, int]]]:
    """For each alert (by fingerprint), the times when some rule's source mutes it: [start, end) spans."""
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    labels = [dict(a.labels) for a in alerts]
    for rule in config.inhibit_rules:
        is_source = [all(m.matches(lb) for m in rule.source) for lb in labels]
        is_target = [all(m.matches(lb) for m in rule.target) for lb in labels]
        sources: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, lb in enumerate(labels):
            if is_source[i]:
                sources[tuple(lb.get(k, "") for k in rule.equal)].append(i)
        for j, lb in enumerate(labels):
            if not is_target[j]:
                continue
            for i in sources.get(tuple(lb.get(k, "") for k in rule.equal), ()):
                if is_source[j] and is_target[i]:
                    continue  # an alert matching both sides is not inhibited by its own kind
                a = alerts[i]
                out[_fingerprint(alerts[j])].append((a.starts_at, a.ends_at if a.ends_at is not None else 2**62))
    return out


def _muted_at(spans: list[tuple[int, int]], t: int) -> bool:
    return any(a <= t < b for a, b in spans)


def simulate_fast(alerts: list[Alert], config: AlertmanagerConfig, *, end_ms: int,
                  silences: tuple[Silence, ...] = (), dispatcher_start: int = 0) -> list[Notification]:
    inhibit = _inhibited_intervals(alerts, config) if config.inhibit_rules else {}
    groups: dict[tuple[str, str], tuple[Route, tuple[tuple[str, str], ...], list[Alert]]] = {}
    for a in alerts:
        labels = dict(a.labels)
        for route in config.routes_for(labels):
            glabels = route.group_labels(labels)
            key = (route.path, group_key(route, glabels))
            groups.setdefault(key, (route, glabels, []))[2].append(a)
    out: list[Notification] = []
    log: dict[tuple[str, str, str], tuple[frozenset[str], frozenset[str], int]] = {}
    # groups are independent except for the notification log shared by equal route keys: replay
    # them in the order of their first arrival so a shared log sees the same history
    for (_, gkey), (route, glabels, members) in sorted(groups.items(), key=lambda kv: min(a.starts_at
                                                                                        for a in kv[1][2])):
        members.sort(key=lambda a: a.starts_at)
        starts = np.array([a.starts_at for a in members], dtype=np.int64)
        ends = np.array([a.ends_at if a.ends_at is not None else 2**62 for a in members], dtype=np.int64)
        fps = [_fingerprint(a) for a in members]
        receiver = config.receivers.get(route.receiver)
        integrations = receiver.integrations if receiver else ()
        k = 0  # next member to arrive
        in_group: dict[str, int] = {}  # fingerprint -> member index (the latest arrival wins)
        while k < len(members) and starts[k] <= end_ms:
            created = int(starts[k])
            t = created + route.group_wait_ms
            while True:
                while k < len(members) and starts[k] <= t:  # arrivals up to and at the tick
                    in_group[fps[k]] = k
                    k += 1
                if t > end_ms:
                    break
                if in_group:  # an empty group's flush does nothing; its timer goes on
                    _flush(t, route, gkey, glabels, members, in_group, starts, ends, integrations, log, out,
                           inhibit, silences, config)
                    for fp in [fp for fp, i in in_group.items() if not (starts[i] <= t < ends[i])]:
                        del in_group[fp]  # resolved alerts leave after the flush
                    if not in_group:
                        # the next maintenance deletes it, unless an alert arrives first (then it lives on,
                        # ticking, and the alert waits for its next tick rather than group_wait)
                        m = next(iter(maintenance_ticks(t - 1, t + MAINTENANCE_MS, dispatcher_start)))
                        if k >= len(members) or starts[k] > m:
                            break  # deleted; a later arrival starts a new lifetime
                t += route.group_interval_ms
            if t > end_ms:
                break
    out.sort(key=lambda n: n.at)
    return out


def _flush(t: int, route: Route, gkey: str, glabels: tuple[tuple[str, str], ...], members: list[Alert],
           in_group: dict[str, int], starts: np.ndarray, ends: np.ndarray, integrations: tuple, log: dict,
           out: list[Notification], inhibit: dict[str, list[tuple[int, int]]], silences: tuple[Silence, ...],
           config: AlertmanagerConfig) -> None:
    if route_muted(route, t, config):
        return
    firing_ids, resolved_ids, firing, resolved = [], [], set(), set()
    for fp, i in in_group.items():
        a = members[i]
        if silences and any(s.mutes(dict(a.labels), t) for s in silences):
            continue
        if fp in inhibit and _muted_at(inhibit[fp], t):
            continue
        if starts[i] <= t < ends[i]:
            firing.add(fp)
            firing_ids.append(a.alert_id)
        else:
            resolved.add(fp)
            resolved_ids.append(a.alert_id)
    if not firing and not resolved:  # every alert muted: the pipeline stops before the notification log
        return
    f, r = frozenset(firing), frozenset(resolved)
    for integration in integrations:
        lk = (gkey, route.receiver, integration.name)
        needed, repeat = needs_update(log.get(lk), f, r, integration.send_resolved, route.repeat_interval_ms, t)
        if not needed:
            continue
        log[lk] = (f, r, t)
        sent_resolved = sorted(resolved_ids) if integration.send_resolved else []
        if not f and not sent_resolved:
            continue
        out.append(Notification(t, route.receiver, integration.name, gkey, glabels, sorted(firing_ids),
                                sent_resolved, repeat, integration.paging))
