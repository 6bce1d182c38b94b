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
import pyarrow as pa
import pyarrow.compute as pc

from ._arrow import arrow_strings
from ._jit import kernel
from ._time import NAT_NS, col_ns
from .frames import combine_codes

__all__ = ["PAGING_CHANNELS", "PAGING_INTEGRATIONS", "PAGING_SEVERITIES", "SCORE_COLUMNS", "STATS_COLUMNS",
           "compute_stats", "notification_pages", "oncall_load", "page_rows", "rule_stats", "score_arrays"]

STATS_COLUMNS = ["rule_id", "evaluations", "alerts", "suppressed", "alerts_per_day", "notifications",
                 "undelivered", "escalations", "acknowledged", "firing_fraction", "mean_duration_s",
                 "median_duration_s"]
SCORE_COLUMNS = ["incidents", "detected", "recall", "precision", "mean_detection_delay_s"]
NS = 1e9


def _ns(col: pd.Series) -> np.ndarray:
    """A datetime column as int64 ns (NaT as the minimum int64)."""
    return col_ns(col) if len(col) else np.zeros(0, np.int64)




@kernel
def _union_ns(group, start, stop):  # pragma: no cover - compiled
    """Total length of the union of intervals, sorted by (group, start), within each group."""
    total = 0
    i = 0
    n = len(start)
    while i < n:
        g = group[i]
        cur_s = start[i]
        cur_e = stop[i]
        i += 1
        while i < n and group[i] == g:
            if start[i] > cur_e:
                total += cur_e - cur_s
                cur_s = start[i]
                cur_e = stop[i]
            elif stop[i] > cur_e:
                cur_e = stop[i]
            i += 1
        total += cur_e - cur_s
    return total


def firing_ns(group: np.ndarray, fired: np.ndarray, resolved: np.ndarray, end_ns: int) -> int:
    """Nanoseconds firing: the union of ``[fired, resolved or end)`` within each group."""
    if len(fired) == 0:
        return 0
    stop = np.where(resolved == NAT_NS, end_ns, resolved)
    dg, df = np.diff(group), np.diff(fired)
    if not ((dg > 0) | ((dg == 0) & (df >= 0))).all():  # the engine's order already is (series, time)
        order = np.lexsort((fired, group))
        group, fired, stop = group[order], fired[order], stop[order]
    return int(_union_ns(np.ascontiguousarray(group), np.ascontiguousarray(fired), np.ascontiguousarray(stop)))


def score_arrays(fired: np.ndarray, source: np.ndarray, incidents: pd.DataFrame
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match fired alerts to incidents.

    Returns ``(true positive per alert, detecting alert index per incident or -1,
    detection delay in ns per incident)``: the first alert firing inside an incident
    window of its source detects it (``start <= fired_at <= end``; an incident
    without a source matches any).
    """
    tp = np.zeros(len(fired), dtype=bool)
    first = np.full(len(incidents), -1, dtype=np.int64)
    delay = np.zeros(len(incidents), dtype=np.int64)
    if len(incidents) == 0 or len(fired) == 0:
        return tp, first, delay
    order = np.argsort(fired, kind="stable")
    f_sorted = fired[order]
    starts, ends, points = _ns(incidents["start"]), _ns(incidents["end"]), _ns(incidents["point"])
    i_src = incidents["source"].astype(object).where(incidents["source"].notna(), None).to_numpy()
    lo = np.searchsorted(f_sorted, starts, side="left")
    hi = np.searchsorted(f_sorted, ends, side="right")
    for i in range(len(incidents)):
        cand = order[lo[i]:hi[i]]  # in firing order
        if i_src[i] is not None:
            cand = cand[source[cand] == i_src[i]]
        if len(cand):
            tp[cand] = True
            first[i] = cand[0]
            delay[i] = fired[cand[0]] - points[i]
    return tp, first, delay


def rule_stats(rule_id: str, *, evaluations: int, n_series: int, span_ns: tuple[int, int], group: np.ndarray,
               source: np.ndarray, fired: np.ndarray, resolved: np.ndarray, acked: np.ndarray, level: np.ndarray,
               live: np.ndarray, notifications: int, undelivered: int,
               incidents: pd.DataFrame | None = None) -> dict[str, object]:
    """One statistics row from per-alert arrays (the same arithmetic for backtests and sweeps).

    Sums run over integer nanoseconds, so a row does not depend on the order of
    the alerts.
    """
    start, end = span_ns
    span = end - start
    days = span / NS / 86400
    f, r = fired[live], resolved[live]
    done = r != NAT_NS
    dur = r[done] - f[done]
    row: dict[str, object] = {
        "rule_id": rule_id,
        "evaluations": int(evaluations),
        "alerts": int(live.sum()),
        "suppressed": int(len(live) - live.sum()),
        "alerts_per_day": float(live.sum()) / days if days > 0 else np.nan,
        "notifications": int(notifications),
        "undelivered": int(undelivered),
        "escalations": int(level[live].sum()),
        "acknowledged": int(acked[live].sum()),
        "firing_fraction": firing_ns(group[live], f, r, end) / (span * n_series) if span > 0 and n_series else np.nan,
        "mean_duration_s": float(int(dur.sum())) / len(dur) / NS if len(dur) else np.nan,
        "median_duration_s": float(np.median(dur)) / NS if len(dur) else np.nan,
    }
    if incidents is not None:
        tp, first, delay = score_arrays(f, source[live], incidents)
        detected = first >= 0
        row.update({
            "incidents": int(len(incidents)),
            "detected": int(detected.sum()),
            "recall": float(detected.sum()) / len(incidents) if len(incidents) else np.nan,
            "precision": float(tp.sum()) / len(f) if len(f) else np.nan,
            "mean_detection_delay_s": float(int(delay[detected].sum())) / int(detected.sum()) / NS
            if detected.any() else np.nan,
        })
    return row


def relevant_incidents(incidents: pd.DataFrame, sources: set[str]) -> pd.DataFrame:
    """The incidents a rule is scored on: those of the sources it watches, or naming none."""
    src = incidents["source"]
    keep = (src.isna() | src.astype("str").isin(sources)).to_numpy(dtype=bool)
    return incidents[keep].reset_index(drop=True)


def compute_stats(alerts: pd.DataFrame, notifications: pd.DataFrame, evaluations: dict[str, int],
                  watched: dict[str, set[str]], n_series: dict[str, int], rule_ids: Sequence[str],
                  span_ns: tuple[int, int], incidents: pd.DataFrame | None = None,
                  spans: dict[str, tuple[int, int]] | None = None, sources: set[str] | None = None) -> pd.DataFrame:
    """One row per rule plus ``TOTAL``; score columns when incidents are given.

    ``evaluations``, ``watched`` (sources) and ``n_series`` describe what each rule
    evaluated; ``spans`` the first and last sample of the series each rule watches
    (a rule's rates divide by it, SPEC 5), ``span_ns`` the whole input's (the TOTAL
    row's). TOTAL scores the incidents of the input's ``sources`` and those naming none.
    """
    # a series is a (rule, source, metric): codes from Arrow's hashing, no Python string per alert
    # (a missing value is a value of its own, as grouping by it would keep it apart)
    group = combine_codes([pd.factorize(alerts[c], use_na_sentinel=False)
                           for c in ("rule_id", "source", "metric")])[0]
    arrays = {
        "group": group,
        # read only when scoring incidents (the incidents name sources)
        "source": alerts["source"].to_numpy(dtype=object) if incidents is not None else np.zeros(len(alerts)),
        "fired": _ns(alerts["fired_at"]),
        "resolved": _ns(alerts["resolved_at"]),
        "acked": alerts["acknowledged_at"].notna().to_numpy(dtype=bool),
        "level": alerts["escalation_level"].to_numpy(dtype=np.int64),
        "live": (alerts["status"] != "suppressed").to_numpy(dtype=bool),
    }
    rule_codes, rule_names = pd.factorize(pd.concat([alerts["rule_id"], notifications["rule_id"]], ignore_index=True))
    code_of = {str(rid): k for k, rid in enumerate(rule_names)}
    rids, note_rules = rule_codes[:len(alerts)], rule_codes[len(alerts):]
    undelivered = ~notifications["delivered"].to_numpy(dtype=bool)
    rows = []
    for rid in [*rule_ids, "TOTAL"]:
        mine = np.ones(len(alerts), bool) if rid == "TOTAL" else rids == code_of.get(rid, -2)
        notes = np.ones(len(notifications), bool) if rid == "TOTAL" else note_rules == code_of.get(rid, -2)
        inc = None
        if incidents is not None:
            if rid != "TOTAL":
                inc = relevant_incidents(incidents, watched.get(rid, set()))
            else:
                inc = incidents.reset_index(drop=True) if sources is None else relevant_incidents(incidents, sources)
        rows.append(rule_stats(
            rid,
            evaluations=sum(evaluations.values()) if rid == "TOTAL" else evaluations.get(rid, 0),
            n_series=sum(n_series.get(r, 0) for r in rule_ids) if rid == "TOTAL" else n_series.get(rid, 0),
            span_ns=span_ns if rid == "TOTAL" or spans is None else spans.get(rid, span_ns),
            notifications=int(notes.sum()), undelivered=int((undelivered & notes).sum()),
            incidents=inc, **{k: v[mine] for k, v in arrays.items()}))
    return pd.DataFrame(rows, columns=STATS_COLUMNS + (SCORE_COLUMNS if incidents is not None else []))


# What "a page" means (SPEC 5), one meaning for every kind of rule and every path:
PAGING_SEVERITIES = ("critical", "page")  # the rule's severity, or a Prometheus alert's severity label
PAGING_CHANNELS = ("sms", "pagerduty")  # a notification to one of these wakes someone, whatever the severity
PAGING_INTEGRATIONS = ("pagerduty", "opsgenie", "victorops")  # Alertmanager integrations that page


def page_rows(alert: np.ndarray, level: np.ndarray, paging: np.ndarray) -> np.ndarray:
    """Which notifications count as pages: the first of each paging moment.

    Without Alertmanager an alert pages once when it fires (level 0) and once per escalation
    (level n), when that moment pages (``paging``: a delivered firing or escalation
    notification of an alert whose severity pages, or one sent to a paging channel). ``alert``
    holds any per-alert codes; the result marks one row per (alert, level) among ``paging``.
    """
    paging = np.asarray(paging, dtype=bool)
    out = np.zeros(len(paging), dtype=bool)
    rows = np.flatnonzero(paging)
    if len(rows):
        key = np.asarray(alert, dtype=np.int64)[rows] * (int(np.max(level)) + 1) + np.asarray(level, np.int64)[rows]
        _, first = np.unique(key, return_index=True)
        out[rows[first]] = True
    return out


def notification_pages(notifications: pd.DataFrame, alerts: pd.DataFrame) -> np.ndarray:
    """Which rows of a notifications table are pages (SPEC 5), for either schema: with Alertmanager
    each notification carrying firing alerts to a paging integration; without, :func:`page_rows`."""
    n = notifications
    if not len(n):
        return np.zeros(0, dtype=bool)
    if "receiver" in n.columns:  # what an integration received (SPEC 12)
        kind = n["integration"].astype("str").str.split("[").str[0]
        return (kind.isin(PAGING_INTEGRATIONS) & (n["firing"] > 0)).to_numpy(dtype=bool)
    moment = n["kind"].isin(("firing", "escalation")).to_numpy(dtype=bool) & n["delivered"].to_numpy(dtype=bool)
    by_channel = n["channel"].isin(PAGING_CHANNELS).to_numpy(dtype=bool)
    alert_pages = alerts["severity"].isin(PAGING_SEVERITIES).to_numpy(dtype=bool) if len(alerts) \
        else np.zeros(0, dtype=bool)
    if not (moment & by_channel).any() and not alert_pages.any():  # nothing here can page
        return np.zeros(len(n), dtype=bool)
    # each notification's alert: its row in ``alerts`` (the first with that id), one hash pass in Arrow;
    # notifications of alerts the table lacks are told apart by their ids, after every row
    ids = arrow_strings(n["alert_id"])
    row = pc.index_in(ids, value_set=arrow_strings(alerts["alert_id"])) if len(alerts) \
        else pa.nulls(len(n), type=pa.int32())
    known = row.is_valid().to_numpy(zero_copy_only=False)
    codes = row.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if not known.all():
        codes[~known] = len(alerts) + pd.factorize(n["alert_id"][~known])[0]
    severity_pages = np.zeros(len(n), dtype=bool)
    severity_pages[known] = alert_pages[codes[known]]
    paging = moment & (severity_pages | by_channel)
    return page_rows(codes, n["level"].to_numpy(dtype=np.int64), paging)


def oncall_load(alerts: pd.DataFrame, notifications: pd.DataFrame, span_ns: tuple[int, int]) -> pd.DataFrame:
    """What an on-call lead asks next, per rule and TOTAL.

    ``pages``: what wakes someone (SPEC 5, :func:`notification_pages`);
    ``pages_per_week``; ``busiest_hour``: the
    UTC hour of day with most delivered notifications; ``flapping``: alerts that
    fired again within one hour of the previous alert of the same series resolving.
    """
    weeks = (span_ns[1] - span_ns[0]) / NS / 604800
    rule_ids = [str(r) for r in pd.unique(alerts["rule_id"])]  # in order of first alert
    index = {rid: k for k, rid in enumerate(rule_ids)}
    R = len(rule_ids)

    def rule_codes(codes: np.ndarray, uniques: pd.Index) -> np.ndarray:  # a factorized rule_id column
        mapped = np.array([index.get(u, R) for u in uniques], dtype=np.int64)  # a rule without alerts: TOTAL only
        return mapped[codes] if len(codes) else np.zeros(0, dtype=np.int64)

    note_rule = rule_codes(*pd.factorize(notifications["rule_id"], sort=False))
    pages = np.bincount(note_rule[notification_pages(notifications, alerts)], minlength=R + 1)
    hours = np.zeros((R + 1, 24), dtype=np.int64)
    first = np.full((R + 1, 24), np.iinfo(np.int64).max)  # ties go to the hour seen first, as value_counts
    total_first = np.full(24, np.iinfo(np.int64).max)
    if len(notifications):
        hour = notifications["at"].dt.hour.to_numpy(dtype=np.int64)
        rule = note_rule
        if "delivered" in notifications.columns:
            delivered = notifications["delivered"].to_numpy(dtype=bool)
            if not delivered.all():
                hour, rule = hour[delivered], rule[delivered]
        cell = rule * 24 + hour
        hours = np.bincount(cell, minlength=(R + 1) * 24).reshape(R + 1, 24)
        seen, at = np.unique(cell, return_index=True)  # each (rule, hour)'s first delivered notification
        first.reshape(-1)[seen] = at
        seen, at = np.unique(hour, return_index=True)
        total_first[seen] = at
    # flapping: an alert that fires within an hour of the previous alert of its series resolving
    flaps = np.zeros(R + 1, dtype=np.int64)
    shown = (alerts["status"] != "suppressed").to_numpy(dtype=bool)
    if shown.any():  # the columns read, and rows picked only when some are suppressed (no copy of the table)
        cols = ["rule_id", "source", "metric", "fired_at", "resolved_at"]
        live = alerts[cols] if shown.all() else alerts.loc[shown, cols]
        by = [pd.factorize(live[c], sort=True) for c in ("rule_id", "source", "metric")]
        series, _ = combine_codes(by)
        fired = live["fired_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        resolved = live["resolved_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        order = np.lexsort((fired, series))
        s_, f_, r_ = series[order], fired[order], resolved[order]
        same = np.zeros(len(order), dtype=bool)
        same[1:] = s_[1:] == s_[:-1]
        prev = np.empty(len(order), dtype=np.int64)
        prev[0] = NAT_NS
        prev[1:] = r_[:-1]
        ok = same & (prev != NAT_NS)
        gap = f_ - prev
        flap = ok & (gap >= 0) & (gap <= 3600 * NS)
        flaps = np.bincount(rule_codes(*by[0])[order][flap], minlength=R + 1)
    rows = []
    for k, rid in enumerate([*rule_ids, "TOTAL"]):
        total = k == R
        n_pages = int(pages.sum()) if total else int(pages[k])
        h, seen = (hours.sum(axis=0), total_first) if total else (hours[k], first[k])
        busiest = int(np.argmin(np.where(h == h.max(), seen, np.iinfo(np.int64).max))) if h.sum() else -1
        rows.append({"rule_id": rid, "pages": n_pages, "pages_per_week": n_pages / weeks if weeks > 0 else np.nan,
                     "busiest_hour_utc": busiest,
                     "flapping": int(flaps.sum()) if total else int(flaps[k])})
    return pd.DataFrame(rows)
