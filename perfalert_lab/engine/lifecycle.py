"""What an on-call person lives through: silences, acknowledgement, escalation, fan-out.

Works on whole columns of alerts at once (numpy), rule by rule, then applies the
channel limits across all notifications in time order. Semantics (SPEC section 4):

* **Horizon**: nothing is recorded after the end of the data.
* **Silence**: an alert whose firing time is covered by a matching silence is
  ``suppressed`` (``suppressed_by = silence``); a notification at a silenced time is
  recorded undelivered (``reason = silenced``). Silences cover ``start <= t < end``.
  Silences do not change the state machine: a silenced alert still starts the
  rule's cooldown, as Alertmanager silences do not change Prometheus' alerts.
* **Acknowledgement** at ``fired_at + delay`` when that is before the resolution.
* **Escalation** ``n`` at ``fired_at + n*delay`` or, with ``check_every`` P, at the
  first P-tick (aligned to the epoch) at or after ``e(n-1) + delay``; only while
  neither acknowledged nor resolved (an ack or resolution at the same instant wins).
  Unlike the seed, escalation goes on to ``max`` (the seed stopped after one level
  because it set the status to ESCALATED and then required ACTIVE).
* **Repeat** every ``repeat_interval`` while firing and unacknowledged.
* **Channel limits**: a notification is undelivered (``reason = rate_limited``) when
  ``max_per_hour`` notifications of its channel were already delivered in the hour
  ``(t - 1h, t]``.
* Suppressed alerts are never acknowledged, never escalate and notify nobody.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from .._arrow import arrow_strings, strings_at, taken
from .._hashing import stable_hash
from .._jit import kernel
from .._time import NAT_NS, ns_to_timestamps, to_ns
from ..rules.model import CHANNELS, Channel, LognormalDelay, Responders, Rule, RuleSet, Silence
from .texts import alert_texts

__all__ = ["AlertColumns", "Lifecycle", "ack_delays", "lifecycle"]

HOUR = 3600 * 10**9
KIND_ORDER = {"firing": 0, "escalation": 1, "repeat": 2, "resolved": 3}


@dataclass
class AlertColumns:
    """The alerts of one rule as columns, before the lifecycle fills the rest."""

    rule: Rule
    series_keys: pd.DataFrame  # one row per alert: source, metric, labels
    series_hash: np.ndarray  # uint64 per alert: stable hash of (source, metric)
    pending_since: np.ndarray
    fired_at: np.ndarray
    resolved_at: np.ndarray
    suppressed: np.ndarray  # by cooldown
    peak_value: np.ndarray
    fired_value: np.ndarray | None = None  # the value when it fired ($value of its templates); None: not tracked

    ARRAYS = ("series_hash", "pending_since", "fired_at", "resolved_at", "suppressed", "peak_value", "fired_value")

    def __len__(self) -> int:
        return len(self.fired_at)

    def take(self, order: np.ndarray) -> AlertColumns:
        """The alerts in another order (or a subset)."""
        arrays: dict[str, Any] = {f: None if getattr(self, f) is None else getattr(self, f)[order]
                                  for f in self.ARRAYS}
        return AlertColumns(self.rule, self.series_keys.iloc[order].reset_index(drop=True), **arrays)

    @staticmethod
    def concat(parts: list[AlertColumns], rule: Rule) -> AlertColumns:
        """One rule's alerts from several batches of series, in the order given."""
        keys = pd.concat([p.series_keys for p in parts], ignore_index=True)
        arrays: dict[str, Any] = {}
        for f in AlertColumns.ARRAYS:
            got = [getattr(p, f) for p in parts]
            arrays[f] = None if any(g is None for g in got) else np.concatenate(got)
        return AlertColumns(rule, keys, **arrays)


# --------------------------------------------------------------------------- hashing


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def alert_ids(rule_id: str, series_hash: np.ndarray, pending_since: np.ndarray) -> Any:
    """Deterministic ids ``<rule>-<series hash, 16 hex>-<pending instant, ns>``, as an arrow string array.

    Built with arrow string kernels: one prefix per series, joined to the decimal
    pending instant, with no Python loop over alerts.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    uniq, inverse = np.unique(series_hash, return_inverse=True)
    prefixes = pa.array([f"{rule_id}-{int(h):016x}-" for h in uniq.tolist()], type=pa.string())
    return pc.binary_join_element_wise(prefixes.take(pa.array(inverse.astype(np.int64))),
                                       pc.cast(pa.array(pending_since), pa.string()), "")


# --------------------------------------------------------------------------- responders


def ack_delays(responders: Responders, severity: str, keys: np.ndarray) -> np.ndarray:
    """Acknowledgement delay (ns) per alert, ``NAT_NS`` for never.

    ``keys`` are per-alert uint64 hashes (see :func:`alert_keys`), so random delays are
    reproducible per alert whatever other alerts the run has. A lognormal delay is
    ``median * exp(sigma * z)`` with ``z`` from Box-Muller on two uniforms drawn by
    splitmix64 from ``key ^ splitmix64(seed)``.
    """
    n = len(keys)
    a = responders.ack_after
    if a is None:
        return np.full(n, NAT_NS, dtype=np.int64)
    if isinstance(a, timedelta):
        return np.full(n, to_ns(a), dtype=np.int64)
    if isinstance(a, LognormalDelay):
        seed = _splitmix64(np.array([a.seed], dtype=np.uint64))[0]
        h1 = _splitmix64(keys ^ seed)
        h2 = _splitmix64(h1)
        u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
        u2 = ((h2 >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)  # Box-Muller
        return np.round(to_ns(a.median) * np.exp(a.sigma * z)).astype(np.int64)
    if isinstance(a, Mapping):
        d = a.get(severity)
        return np.full(n, NAT_NS if d is None else to_ns(d), dtype=np.int64)
    raise TypeError(f"unsupported ack_after {a!r}")  # pragma: no cover


# --------------------------------------------------------------------------- silences


def silence_matches(silence: Silence, rule: Rule, keys: pd.DataFrame,
                    rendered: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Which alerts (rows of ``keys``) a silence's matchers select; ``rendered`` holds the rule's
    templated labels as each alert rendered them."""
    mask = np.ones(len(keys), dtype=bool)
    for k, pattern in silence.matchers.items():
        if k == "rule_id":
            mask &= fnmatch.fnmatchcase(rule.id, pattern)
        elif k == "severity":
            mask &= fnmatch.fnmatchcase(rule.severity, pattern)
        elif k in keys.columns:
            vals = keys[k].astype("str").to_numpy(dtype=object)
            uniq, inv = np.unique(vals, return_inverse=True)
            hit = np.array([fnmatch.fnmatchcase(str(u), pattern) for u in uniq], dtype=bool)
            mask &= hit[inv] if len(uniq) else np.zeros(len(keys), bool)
        elif rendered is not None and k in rendered:
            mask &= np.array([fnmatch.fnmatchcase(str(v), pattern) for v in rendered[k]], dtype=bool)
        elif k in rule.labels:
            mask &= fnmatch.fnmatchcase(rule.labels[k], pattern)
        else:
            mask &= False
    return mask


def _silenced_at(silences: list[tuple[np.ndarray, int, int]], rows: np.ndarray, at: np.ndarray) -> np.ndarray:
    out = np.zeros(len(at), dtype=bool)
    for match, start, end in silences:
        out |= match[rows] & (at >= start) & (at < end)
    return out


# --------------------------------------------------------------------------- main


def _escalation_times(fired: np.ndarray, blocked_from: np.ndarray, delay: int, check_every: int | None,
                      max_n: int, horizon: int) -> np.ndarray:
    """(alerts x max) escalation instants, ``NAT_NS`` where an escalation does not happen."""
    n = len(fired)
    out = np.full((n, max_n), NAT_NS, dtype=np.int64)
    prev = fired.copy()
    alive = np.ones(n, dtype=bool)
    for level in range(max_n):
        due = prev + delay
        if check_every:
            due = -((-due) // check_every) * check_every  # first polling tick at or after
        alive &= (due < blocked_from) & (due <= horizon)
        out[alive, level] = due[alive]
        prev = due
    return out


def alert_keys(rule_id: str, series_hash: np.ndarray, pending_since: np.ndarray) -> np.ndarray:
    """Per-alert 64-bit keys for random responders: a hash of rule, series and pending instant."""
    rule_hash = _splitmix64(np.array([stable_hash(rule_id)], dtype=np.uint64))[0]
    return _splitmix64(series_hash ^ _splitmix64(pending_since.view(np.uint64)) ^ rule_hash)


@dataclass
class PartLifecycle:
    """The lifecycle of one rule's alerts as arrays (before any table is built).

    Per alert: ``ack`` (``NAT_NS`` for none), ``status`` and ``suppressed_by`` codes
    (indices into ``STATUS`` / ``SUPPRESSED_BY``), escalation ``level`` and
    notification ``counts``. Per notification (``notes``): ``row`` (the alert),
    ``at``, ``level``, ``kind`` and ``channel`` codes, ``chan_order``, ``silenced``.
    """

    ack: np.ndarray
    status: np.ndarray
    suppressed_by: np.ndarray
    level: np.ndarray
    counts: np.ndarray
    notes: dict[str, np.ndarray]


def part_lifecycle(part: AlertColumns, rules: RuleSet, horizon: int) -> PartLifecycle:
    """Silences, acknowledgement, escalation and fan-out of one rule's alerts."""
    rule = part.rule
    n = len(part)
    fired, pending = part.fired_at, part.pending_since
    resolved = part.resolved_at
    delay = ack_delays(rules.responders, rule.severity, alert_keys(rule.id, part.series_hash, pending))
    rendered = None
    if rules.silences and any("{{" in v for v in rule.labels.values()):
        rendered = alert_texts(rule, part.series_keys, part.series_hash, part.fired_value).rule_labels
    silences = [(silence_matches(s, rule, part.series_keys, rendered), s.start, s.end) for s in rules.silences]
    rows = np.arange(n)
    silenced = _silenced_at(silences, rows, fired) & ~part.suppressed
    suppressed = part.suppressed | silenced
    live = ~suppressed
    ack = np.where(delay == NAT_NS, NAT_NS, fired + np.where(delay == NAT_NS, 0, delay))
    ok_ack = live & (delay != NAT_NS) & (ack <= horizon) & ((resolved == NAT_NS) | (ack < resolved))
    ack = np.where(ok_ack, ack, NAT_NS)
    # an alert stops escalating and repeating at its acknowledgement or resolution
    big = np.iinfo(np.int64).max
    stop = np.minimum(np.where(ack == NAT_NS, big, ack), np.where(resolved == NAT_NS, big, resolved))
    level = np.zeros(n, dtype=np.int64)
    channels = rule.channels
    note_parts: list[tuple[np.ndarray, np.ndarray, int, str, tuple[Channel, ...]]] = []
    note_parts.append((rows[live], fired[live], 0, "firing", channels))
    if rule.escalation is not None:
        e = rule.escalation
        esc = _escalation_times(fired, stop, to_ns(e.delay), to_ns(e.check_every) if e.check_every else None,
                                e.max, horizon)
        esc[~live] = NAT_NS
        level = (esc != NAT_NS).sum(axis=1).astype(np.int64)
        for lv in range(e.max):
            happened = esc[:, lv] != NAT_NS
            chans = e.levels[min(lv + 1, len(e.levels)) - 1].notify if e.levels else channels
            chans = tuple(c for c in chans if c.enabled)
            note_parts.append((rows[happened], esc[happened, lv], lv + 1, "escalation", chans))
    if rule.repeat_interval is not None:
        r = to_ns(rule.repeat_interval)
        limit = np.minimum(stop, horizon + 1)  # repeats strictly before ack/resolution, up to the horizon
        count = np.where(live & (limit > fired), (limit - fired - 1) // r, 0)
        count = np.maximum(count, 0)
        rep_rows = np.repeat(rows, count)
        within = np.arange(len(rep_rows)) - np.repeat(np.cumsum(count) - count, count)
        note_parts.append((rep_rows, fired[rep_rows] + (within + 1) * r, 0, "repeat", channels))
    if rule.send_resolved:
        done = live & (resolved != NAT_NS)
        note_parts.append((rows[done], resolved[done], 0, "resolved", channels))
    counts = np.zeros(n, dtype=np.int64)
    notes: dict[str, list[np.ndarray]] = {k: [] for k in NOTE_FIELDS}
    for prow, pat, plevel, kind, chans in note_parts:
        if not chans or len(prow) == 0:
            continue
        m, k = len(prow), len(chans)
        all_rows = np.repeat(prow, k)
        all_at = np.repeat(pat, k)
        chan_idx = np.tile(np.arange(k), m)
        counts += np.bincount(prow, minlength=n) * k
        notes["row"].append(all_rows)
        notes["at"].append(all_at)
        notes["level"].append(np.full(m * k, plevel, dtype=np.int64))
        notes["kind"].append(np.full(m * k, KIND_ORDER[kind], dtype=np.int64))
        notes["channel"].append(np.array([CHANNEL_CODES[c.channel] for c in chans], dtype=np.int64)[chan_idx])
        notes["chan_order"].append(chan_idx)
        notes["silenced"].append(_silenced_at(silences, all_rows, all_at).astype(np.int64))
    status = np.where(suppressed, STATUS.index("suppressed"), np.where(
        resolved != NAT_NS, STATUS.index("resolved"), np.where(ack != NAT_NS, STATUS.index("acknowledged"),
                                                            STATUS.index("active"))))
    suppressed_by = np.where(part.suppressed, 1, np.where(silenced, 2, 0))
    return PartLifecycle(ack, status.astype(np.int8), suppressed_by.astype(np.int8), level, counts,
                         {k: _cat(v, np.int64) for k, v in notes.items()})


NOTE_FIELDS = ("row", "at", "level", "kind", "channel", "chan_order", "silenced")


def deliver(notes: dict[str, np.ndarray], rules: RuleSet) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Order notifications and decide delivery: silences, then each channel's hourly limit.

    Returns the notes in time order (at one instant by alert, kind, level and channel
    position), ``delivered`` and a ``reason`` code per notification (see ``REASONS``).
    """
    order = np.lexsort((notes["chan_order"], notes["level"], notes["kind"], notes["row"], notes["at"]))
    cols = {k: v[order] for k, v in notes.items()}
    silenced = cols["silenced"].astype(bool)
    delivered = ~silenced
    reason = np.where(silenced, 1, 0).astype(np.int8)
    for name, limits in rules.channels.items():
        if limits.max_per_hour is None:
            continue
        idx = np.flatnonzero(cols["channel"] == CHANNEL_CODES[name])
        if len(idx) == 0:
            continue
        got = _rate_limit(cols["at"][idx], delivered[idx], limits.max_per_hour, HOUR)
        reason[idx[delivered[idx] & ~got]] = 2
        delivered[idx] = got
    return cols, delivered, reason


@dataclass
class Lifecycle:
    """What every alert went through, as arrays (the pipeline's lifecycle stage).

    ``parts`` are the rules' alerts in rule order (alert rows numbered across them, see
    ``offsets``), ``lives`` their :class:`PartLifecycle`; ``notes`` every notification in
    delivery order (``row`` is the alert's row), with ``delivered`` and a ``reason`` code.
    :meth:`tables` builds the DataFrames of SPEC 5, last.
    """

    parts: list[AlertColumns]
    lives: list[PartLifecycle]
    notes: dict[str, np.ndarray]
    delivered: np.ndarray
    reason: np.ndarray
    offsets: np.ndarray
    rules: RuleSet

    def tables(self, texts: bool | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The alerts and notifications tables of SPEC section 5; with ``texts`` (default: when a rule
        sets labels or annotations) the alerts add ``labels`` and ``annotations`` and the
        notifications the ``summary`` each page says (:mod:`.texts`)."""
        texts = self.rules.uses_templates if texts is None else texts
        cols: dict[str, list[np.ndarray]] = {k: [] for k in (
            "alert_id", "rule", "source", "metric", "pending_since", "fired_at", "resolved_at", "acknowledged_at",
            "status", "suppressed_by", "escalation_level", "peak_value", "notifications", "labels", "annotations",
            "summary")}
        # the series' label columns follow the contract's columns (SPEC 1: labels are carried into the
        # outputs), so alerts of two series that differ only by a label can be told apart
        label_names = [str(c) for c in dict.fromkeys(c for p in self.parts for c in p.series_keys.columns[2:])
                       if str(c) not in ALERT_COLUMNS + ALERT_TEXT_COLUMNS]
        label_cols: dict[str, list[Any]] = {name: [] for name in label_names}
        for rule_index, (part, life) in enumerate(zip(self.parts, self.lives, strict=True)):
            n = len(part)
            cols["alert_id"].append(alert_ids(part.rule.id, part.series_hash, part.pending_since))
            cols["rule"].append(np.full(n, rule_index, dtype=np.int64))
            cols["source"].append(arrow_strings(part.series_keys["source"]))
            cols["metric"].append(arrow_strings(part.series_keys["metric"]))
            cols["pending_since"].append(part.pending_since)
            cols["fired_at"].append(part.fired_at)
            cols["resolved_at"].append(part.resolved_at)
            cols["acknowledged_at"].append(life.ack)
            cols["status"].append(life.status)
            cols["suppressed_by"].append(life.suppressed_by)
            cols["escalation_level"].append(life.level)
            cols["peak_value"].append(part.peak_value)
            cols["notifications"].append(life.counts)
            for name, col in label_cols.items():
                col.append(part.series_keys[name].astype("str").fillna("").to_numpy(dtype=object)
                           if name in part.series_keys.columns else np.full(n, "", dtype=object))
            if texts:
                said = alert_texts(part.rule, part.series_keys, part.series_hash, part.fired_value)
                cols["labels"].append(said.labels)
                cols["annotations"].append(said.annotations)
                cols["summary"].append(said.summary)
        alerts, order = _alerts_frame(cols, [p.rule for p in self.parts], texts, label_cols)
        summary = taken(cols["summary"], order) if texts else None
        notifications = _notifications_frame(self.notes, self.delivered, self.reason, alerts, order, summary)
        return alerts, notifications


def lifecycle(parts: list[AlertColumns], rules: RuleSet, horizon: int) -> Lifecycle:
    """Silences, acknowledgement, escalation and fan-out of every rule's alerts, then delivery
    (silences and each channel's hourly limit, across all rules, in time order)."""
    lives = [part_lifecycle(part, rules, horizon) for part in parts]
    offsets = np.concatenate(([0], np.cumsum([len(p) for p in parts]))).astype(np.int64)
    notes = {k: _cat([life.notes[k] + offsets[i] if k == "row" else life.notes[k]
                      for i, life in enumerate(lives)], np.int64) for k in NOTE_FIELDS}
    ordered, delivered, reason = deliver(notes, rules)
    return Lifecycle(parts, lives, ordered, delivered, reason, offsets, rules)


# SPEC 5's columns: the table builders below lay out their frames by these lists
ALERT_COLUMNS = ["alert_id", "rule_id", "source", "metric", "severity", "mode", "pending_since", "fired_at",
                 "resolved_at", "acknowledged_at", "status", "suppressed_by", "escalation_level", "peak_value",
                 "notifications"]
NOTIFICATION_COLUMNS = ["alert_id", "rule_id", "source", "channel", "kind", "level", "at", "delivered", "reason"]
# after the contract's columns: what each alert and each page says (SPEC 2 and 11)
ALERT_TEXT_COLUMNS = ["labels", "annotations"]
NOTIFICATION_TEXT_COLUMNS = ["summary"]
STATUS = ("active", "acknowledged", "resolved", "suppressed")
SUPPRESSED_BY = ("", "cooldown", "silence")
CHANNEL_NAMES = CHANNELS
CHANNEL_CODES = {c: i for i, c in enumerate(CHANNEL_NAMES)}
KIND_NAMES = ("firing", "escalation", "repeat", "resolved")
REASONS = ("", "silenced", "rate_limited")


def _cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def _alerts_frame(cols: dict[str, list[np.ndarray]], rules: list[Rule], texts: bool,
                  label_cols: dict[str, list[Any]] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The alerts table, ordered by firing time, then rule file order, then series; and that order."""
    fired = _cat(cols["fired_at"], np.int64)
    # rows are concatenated in rule order, each rule's in series then time order: a stable sort by
    # firing time keeps that order among alerts that fire at the same instant
    order = np.argsort(fired, kind="stable")
    rule_idx = _cat(cols["rule"], np.int64)[order]
    data = {
        "alert_id": taken(cols["alert_id"], order),
        "rule_id": strings_at([r.id for r in rules], rule_idx),
        "source": taken(cols["source"], order),
        "metric": taken(cols["metric"], order),
        "severity": strings_at([r.severity for r in rules], rule_idx),
        "mode": strings_at([r.mode for r in rules], rule_idx),
        "pending_since": ns_to_timestamps(_cat(cols["pending_since"], np.int64)[order]),
        "fired_at": ns_to_timestamps(fired[order]),
        "resolved_at": ns_to_timestamps(_cat(cols["resolved_at"], np.int64)[order]),
        "acknowledged_at": ns_to_timestamps(_cat(cols["acknowledged_at"], np.int64)[order]),
        "status": strings_at(STATUS, _cat(cols["status"], np.int8)[order]),
        "suppressed_by": strings_at(SUPPRESSED_BY, _cat(cols["suppressed_by"], np.int8)[order]),
        "escalation_level": _cat(cols["escalation_level"], np.int64)[order],
        "peak_value": _cat(cols["peak_value"], np.float64)[order],
        "notifications": _cat(cols["notifications"], np.int64)[order],
    }
    if texts:
        for name in ALERT_TEXT_COLUMNS:
            data[name] = taken(cols[name], order)  # (Arrow string arrays, one a rule)
    for name, parts in (label_cols or {}).items():
        data[name] = pd.array(_cat(parts, object)[order], dtype="str")
    # the contract's columns in the contract's order (SPEC 5), then what the pages say, then labels
    df = pd.DataFrame(data, columns=ALERT_COLUMNS + (ALERT_TEXT_COLUMNS if texts else []) + list(label_cols or {}))
    return df, order


@kernel
def _rate_limit(at, candidate, limit, window):  # pragma: no cover - compiled
    """Deliver in time order while fewer than ``limit`` were delivered in ``(t - window, t]``."""
    delivered = np.zeros(len(at), dtype=np.bool_)
    sent = np.empty(len(at), dtype=np.int64)
    lo = 0
    hi = 0
    for i in range(len(at)):
        if not candidate[i]:
            continue
        t = at[i]
        while lo < hi and sent[lo] <= t - window:
            lo += 1
        if hi - lo < limit:
            delivered[i] = True
            sent[hi] = t
            hi += 1
    return delivered


def _notifications_frame(cols: dict[str, np.ndarray], delivered: np.ndarray, reason: np.ndarray,
                         alerts: pd.DataFrame, alert_order: np.ndarray, summary: Any = None) -> pd.DataFrame:
    # where each notification's alert sits in the (re-ordered) alerts table
    position = np.empty(len(alert_order), dtype=np.int64)
    position[alert_order] = np.arange(len(alert_order))
    at_row = position[cols["row"]] if len(alert_order) else np.zeros(0, np.int64)
    data = {
        "alert_id": alerts["alert_id"].array.take(at_row),
        "rule_id": alerts["rule_id"].array.take(at_row),
        "source": alerts["source"].array.take(at_row),
        "channel": strings_at(CHANNEL_NAMES, cols["channel"]),
        "kind": strings_at(KIND_NAMES, cols["kind"]),
        "level": cols["level"].astype(np.int64),
        "at": ns_to_timestamps(cols["at"]),
        "delivered": delivered,
        "reason": strings_at(REASONS, reason),
    }
    if summary is not None:
        data["summary"] = summary.take(at_row)
    return pd.DataFrame(data, columns=NOTIFICATION_COLUMNS + (NOTIFICATION_TEXT_COLUMNS if summary is not None else []))
