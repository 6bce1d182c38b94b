"""Statistics per rule and incident scoring (SPEC section 5).

All numbers are recomputable from the alerts and notifications tables plus the
incidents, which the tests do:

* ``alerts`` counts alerts that fired (not suppressed); ``suppressed`` the rest.
* ``alerts_per_day``: alerts over the span of the data (first to latest sample).
* ``firing_fraction``: time firing (the union of ``[fired_at, resolved_at or end)``
  per series) over the span times the number of series the rule watches.
* Durations are over alerts that resolved within the data.
* Scoring: an alert is a true positive when it fires inside an incident window of
  its source (``start <= fired_at <= end``; an incident without a source matches
  any); an incident is detected by the first such alert, and the detection delay is
  that alert's ``fired_at`` minus the incident ``point``. A rule is scored on the
  incidents of the sources it watches (or naming no source); the TOTAL row on all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._time import col_ns

__all__ = ["STATS_COLUMNS", "SCORE_COLUMNS", "compute_stats", "oncall_load", "score_alerts"]

STATS_COLUMNS = ["rule_id", "evaluations", "alerts", "suppressed", "alerts_per_day", "notifications",
                 "undelivered", "escalations", "acknowledged", "firing_fraction", "mean_duration_s",
                 "median_duration_s"]
SCORE_COLUMNS = ["incidents", "detected", "recall", "precision", "mean_detection_delay_s"]
NS = 1e9


def _ns(col: pd.Series) -> np.ndarray:
    """A datetime column as int64 ns (NaT as the minimum int64)."""
    return col_ns(col) if len(col) else np.zeros(0, np.int64)


def _firing_time(alerts: pd.DataFrame, end_ns: int) -> float:
    """Seconds firing, as the union of firing intervals per rule and series."""
    if alerts.empty:
        return 0.0
    nat = np.iinfo(np.int64).min
    start = _ns(alerts["fired_at"])
    stop = _ns(alerts["resolved_at"])
    stop = np.where(stop == nat, end_ns, stop)
    group = alerts.groupby(["rule_id", "source", "metric"], sort=False).ngroup().to_numpy()
    order = np.lexsort((start, group))
    start, stop, group = start[order], stop[order], group[order]
    # the furthest end reached by earlier intervals of the same group
    reach = pd.Series(stop).groupby(group).cummax().to_numpy()
    prev = pd.Series(reach).groupby(group).shift(1, fill_value=nat).to_numpy(dtype=np.int64)
    # each interval adds what it covers beyond the earlier intervals of its group
    added = np.maximum(stop - np.maximum(start, prev), 0)
    return float(added.sum()) / NS


def score_alerts(alerts: pd.DataFrame, incidents: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match fired alerts to incidents.

    Returns ``(true_positive per alert, first detecting alert index per incident or
    -1, detection delay in seconds per incident or NaN)``.
    """
    fired = _ns(alerts["fired_at"])
    a_src = alerts["source"].astype("str").to_numpy(dtype=object)
    tp = np.zeros(len(alerts), dtype=bool)
    first = np.full(len(incidents), -1, dtype=np.int64)
    delay = np.full(len(incidents), np.nan)
    if len(incidents) == 0 or len(alerts) == 0:
        return tp, first, delay
    starts, ends, points = _ns(incidents["start"]), _ns(incidents["end"]), _ns(incidents["point"])
    i_src = incidents["source"].to_numpy(dtype=object)
    for i in range(len(incidents)):
        inside = (fired >= starts[i]) & (fired <= ends[i])
        src = i_src[i]
        if src is not None and not (isinstance(src, float) and np.isnan(src)) and src is not pd.NA:
            inside &= a_src == str(src)
        hits = np.flatnonzero(inside)
        if len(hits):
            tp[hits] = True
            j = hits[np.argmin(fired[hits])]
            first[i] = j
            delay[i] = (fired[j] - points[i]) / NS
    return tp, first, delay


def _relevant(incidents: pd.DataFrame, sources: set[str]) -> np.ndarray:
    src = incidents["source"]
    return (src.isna() | src.astype("str").isin(sources)).to_numpy(dtype=bool)


def compute_stats(alerts: pd.DataFrame, notifications: pd.DataFrame, evaluations: dict[str, int],
                  watched: dict[str, set[str]], n_series: dict[str, int], rule_ids: Sequence[str],
                  span_ns: tuple[int, int], incidents: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per rule plus ``TOTAL``; score columns when incidents are given.

    ``evaluations``, ``watched`` (sources) and ``n_series`` describe what each rule
    evaluated.
    """
    start, end = span_ns
    span_s = (end - start) / NS
    days = span_s / 86400
    rows = []
    fired_all = alerts[alerts["status"] != "suppressed"]
    for rid in [*rule_ids, "TOTAL"]:
        a = alerts if rid == "TOTAL" else alerts[alerts["rule_id"] == rid]
        n = notifications if rid == "TOTAL" else notifications[notifications["rule_id"] == rid]
        live = a[a["status"] != "suppressed"]
        ev = sum(evaluations.values()) if rid == "TOTAL" else evaluations.get(rid, 0)
        series = sum(n_series.get(r, 0) for r in rule_ids) if rid == "TOTAL" else n_series.get(rid, 0)
        resolved = live[live["resolved_at"].notna()]
        dur = (_ns(resolved["resolved_at"]) - _ns(resolved["fired_at"])) / NS
        row = {
            "rule_id": rid,
            "evaluations": int(ev),
            "alerts": int(len(live)),
            "suppressed": int(len(a) - len(live)),
            "alerts_per_day": len(live) / days if days > 0 else np.nan,
            "notifications": int(len(n)),
            "undelivered": int((~n["delivered"].astype(bool)).sum()),
            "escalations": int(live["escalation_level"].sum()),
            "acknowledged": int(live["acknowledged_at"].notna().sum()),
            "firing_fraction": _firing_time(live, end) / (span_s * series) if span_s > 0 and series else np.nan,
            "mean_duration_s": float(dur.mean()) if len(dur) else np.nan,
            "median_duration_s": float(np.median(dur)) if len(dur) else np.nan,
        }
        rows.append(row)
    out = pd.DataFrame(rows, columns=STATS_COLUMNS)
    if incidents is not None:
        tp, first, delay = score_alerts(fired_all.reset_index(drop=True), incidents)
        score_rows = []
        rids = fired_all["rule_id"].to_numpy(dtype=object)
        for rid in [*rule_ids, "TOTAL"]:
            if rid == "TOTAL":
                rel = np.ones(len(incidents), dtype=bool)
                mine = np.ones(len(fired_all), dtype=bool)
            else:
                rel = _relevant(incidents, watched.get(rid, set()))
                mine = rids == rid
            sub = fired_all[mine].reset_index(drop=True)
            tp_r, first_r, delay_r = score_alerts(sub, incidents[rel].reset_index(drop=True))
            detected = int((first_r >= 0).sum())
            n_inc = int(rel.sum())
            score_rows.append({
                "incidents": n_inc,
                "detected": detected,
                "recall": detected / n_inc if n_inc else np.nan,
                "precision": float(tp_r.mean()) if len(sub) else np.nan,
                "mean_detection_delay_s": float(np.nanmean(delay_r)) if detected else np.nan,
            })
        out = pd.concat([out, pd.DataFrame(score_rows, columns=SCORE_COLUMNS)], axis=1)
    return out


def oncall_load(alerts: pd.DataFrame, notifications: pd.DataFrame, span_ns: tuple[int, int]) -> pd.DataFrame:
    """What an on-call lead asks next, per rule and TOTAL.

    ``pages``: delivered notifications that wake someone (``sms`` channel, or any
    channel for a ``critical`` alert); ``pages_per_week``; ``busiest_hour``: the
    UTC hour of day with most delivered notifications; ``flapping``: alerts that
    fired again within one hour of the previous alert of the same series resolving.
    """
    weeks = (span_ns[1] - span_ns[0]) / NS / 604800
    sev = alerts.set_index("alert_id")["severity"] if len(alerts) else pd.Series(dtype="str")
    delivered = notifications[notifications["delivered"].astype(bool)]
    crit = delivered["alert_id"].map(sev).fillna("") == "critical"
    pages = delivered[(delivered["channel"] == "sms") | crit]
    rows = []
    for rid in [*dict.fromkeys(alerts["rule_id"].tolist()), "TOTAL"]:
        p = pages if rid == "TOTAL" else pages[pages["rule_id"] == rid]
        d = delivered if rid == "TOTAL" else delivered[delivered["rule_id"] == rid]
        a = alerts if rid == "TOTAL" else alerts[alerts["rule_id"] == rid]
        a = a[a["status"] != "suppressed"].sort_values(["rule_id", "source", "metric", "fired_at"])
        flaps = 0
        if len(a):
            prev_res = a.groupby(["rule_id", "source", "metric"])["resolved_at"].shift(1)
            gap = (a["fired_at"] - prev_res).dt.total_seconds()
            flaps = int(((gap >= 0) & (gap <= 3600)).sum())
        busiest = int(d["at"].dt.hour.value_counts().idxmax()) if len(d) else -1
        rows.append({"rule_id": rid, "pages": int(len(p)), "pages_per_week": len(p) / weeks if weeks > 0 else np.nan,
                     "busiest_hour_utc": busiest, "flapping": flaps})
    return pd.DataFrame(rows)
