"""A backtest's alerts sent through a simulated Alertmanager: the SPEC 12 tables.

``notifications`` becomes one row per notification an integration receives
(``notification_id, at, receiver, integration, group_key, group_labels, firing,
resolved, repeat``), ``notification_alerts`` lists the alerts each carried, and
``receivers`` holds the statistics per receiver: notifications per day and per week,
pages per week (paging integrations), the busiest hour and the longest quiet stretch.
Alerts from our rules reach Alertmanager with ``alertname`` (the rule id),
``severity``, ``source`` and ``metric``; alerts from Prometheus rules with their own labels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import numpy as np
import pandas as pd

from .._time import col_ns
from ..rules.prometheus import glob_to_regex
from ..stats import notification_pages
from .config import AlertmanagerConfig, Matcher
from .fast import simulate_fast
from .simulate import Alert, Silence, simulate

__all__ = ["NOTIFICATION_COLUMNS", "apply_alertmanager"]

NOTIFICATION_COLUMNS = ["notification_id", "at", "receiver", "integration", "group_key", "group_labels", "firing",
                        "resolved", "repeat"]
_PAIR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _labels(row: Any, has_labels: bool) -> tuple[tuple[str, str], ...]:
    if has_labels:
        return tuple(sorted(_PAIR.findall(str(row["labels"]))))
    d = {"alertname": str(row["rule_id"]), "severity": str(row["severity"]), "source": str(row["source"]),
         "metric": str(row["metric"])}
    return tuple(sorted((k, v) for k, v in d.items() if v))


def _silences(rules: Any) -> tuple[Silence, ...]:
    """Our rules file's silences (glob matchers over a window) as Alertmanager silences."""
    out = []
    for s in getattr(rules, "silences", ()) or ():
        matchers = tuple(Matcher("alertname" if k == "rule_id" else k, "=~", glob_to_regex(str(v)))
                         for k, v in s.matchers.items())
        out.append(Silence(matchers, s.start // 1_000_000, s.end // 1_000_000))
    return tuple(out)


def apply_alertmanager(result: Any, config: AlertmanagerConfig) -> Any:
    """``result`` with its notifications replaced by the simulated Alertmanager's."""
    alerts = result.alerts
    has_labels = "labels" in alerts.columns
    live = alerts[alerts["status"] != "suppressed"] if len(alerts) else alerts
    fired = col_ns(live["fired_at"]) if len(live) else np.zeros(0, np.int64)
    resolved = col_ns(live["resolved_at"]) if len(live) else np.zeros(0, np.int64)
    sim_alerts = []
    for k, (_, row) in enumerate(live.iterrows()):
        end = None if resolved[k] == np.iinfo(np.int64).min else int(resolved[k] // 1_000_000)
        sim_alerts.append(Alert(str(row["alert_id"]), _labels(row, has_labels), int(fired[k] // 1_000_000), end))
    span = result.span
    end_ms = int(pd.Timestamp(span[1]).value // 1_000_000)
    keys = _route_keys(config.route, [])
    # group by group when no two routes share a notification log (sibling routes with the same
    # matchers do): the event-at-a-time reference otherwise; the tests hold the two equal
    run = simulate_fast if len(set(keys)) == len(keys) else simulate
    notes = run(sim_alerts, config, end_ms=end_ms, silences=_silences(result.rules))
    rows, carried = [], []
    for n in notes:
        nid = hashlib.sha1(f"{n.at}|{n.receiver}|{n.integration}|{n.group_key}".encode()).hexdigest()[:16]
        rows.append({"notification_id": nid, "at": n.at * 1_000_000, "receiver": n.receiver,
                     "integration": n.integration, "group_key": n.group_key,
                     "group_labels": "{" + ", ".join(f'{k}="{v}"' for k, v in n.group_labels) + "}",
                     "firing": len(n.firing), "resolved": len(n.resolved), "repeat": n.repeat, "paging": n.paging})
        carried += [{"notification_id": nid, "alert_id": a, "state": "firing"} for a in n.firing]
        carried += [{"notification_id": nid, "alert_id": a, "state": "resolved"} for a in n.resolved]
    table = pd.DataFrame(rows, columns=[*NOTIFICATION_COLUMNS, "paging"])
    table["at"] = pd.to_datetime(table["at"].astype("int64"), unit="ns", utc=True)
    for c in ("firing", "resolved"):
        table[c] = table[c].astype(np.int64)
    table["repeat"] = table["repeat"].astype(bool)
    table.pop("paging")
    paging = pd.Series(notification_pages(table, result.alerts), index=table.index)  # SPEC 5's one meaning
    per_alert = pd.DataFrame(carried, columns=["notification_id", "alert_id", "state"])
    new_alerts = alerts.copy()
    counts = per_alert.groupby("alert_id")["notification_id"].nunique() if len(per_alert) else pd.Series(dtype="int64")
    new_alerts["notifications"] = new_alerts["alert_id"].map(counts).fillna(0).astype(np.int64)
    stats = result.stats.copy()
    rule_of = alerts.set_index("alert_id")["rule_id"] if len(alerts) else pd.Series(dtype="str")
    by_rule = per_alert.assign(rule_id=per_alert["alert_id"].map(rule_of)).groupby("rule_id")["notification_id"] \
        .nunique() if len(per_alert) else pd.Series(dtype="int64")
    stats["notifications"] = [int(len(table)) if r == "TOTAL" else int(by_rule.get(r, 0)) for r in stats["rule_id"]]
    if "undelivered" in stats.columns:
        stats["undelivered"] = 0
    receivers = _receiver_stats(table, paging, config, (pd.Timestamp(span[0]).value, pd.Timestamp(span[1]).value))
    return dataclasses.replace(result, alerts=new_alerts, notifications=table, stats=stats,
                               notification_alerts=per_alert, receivers=receivers, alertmanager=config)


def _route_keys(route: Any, out: list[str]) -> list[str]:
    out.append(route.key)
    for child in route.routes:
        _route_keys(child, out)
    return out


def _receiver_stats(table: pd.DataFrame, paging: pd.Series, config: AlertmanagerConfig,
                    span_ns: tuple[int, int]) -> pd.DataFrame:
    days = max((span_ns[1] - span_ns[0]) / 1e9 / 86400, 1e-9)
    rows = []
    for name in config.receivers:
        mine = table["receiver"] == name
        at = table.loc[mine, "at"].sort_values()
        times = np.concatenate([[span_ns[0]], col_ns(at), [span_ns[1]]]) if len(at) else np.array(span_ns)
        quiet_h = float(np.diff(times).max() / 3.6e12) if len(times) > 1 else float("nan")
        rows.append({
            "receiver": name, "notifications": int(mine.sum()), "per_day": mine.sum() / days,
            "per_week": mine.sum() / days * 7, "pages": int((mine & paging).sum()),
            "pages_per_week": (mine & paging).sum() / days * 7,
            "busiest_hour_utc": int(at.dt.hour.value_counts().idxmax()) if len(at) else -1,
            "longest_quiet_h": quiet_h,
        })
    return pd.DataFrame(rows)
