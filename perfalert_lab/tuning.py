"""Tuning: parameter sweeps, the trade-off frontier, recommendations, rule-set diffs.

A sweep replays one rule for every combination of the given parameters. Each row
holds exactly the statistics a separate :func:`~perfalert_lab.backtest` of that
combination would give (the tests check it), but the work that does not depend on
the swept parameters is done once: loading and grouping the series, the values per
evaluation (clock, lookback, window), the condition per threshold and per clear
level. Per combination only the compiled state machine, the lifecycle arrays and
the statistics run — no tables are built.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from ._time import NAT_NS, format_duration, parse_duration, to_ns
from .backtesting import backtest, backtest_series
from .clock import Clock, SampleClock
from .engine.conditions import compare, evaluate_values, match_series
from .engine.episodes import run_episodes, run_samples
from .engine.lifecycle import ALERT_COLUMNS, KIND_ORDER, AlertColumns, deliver, part_lifecycle
from .engine.pipeline import resolution
from .errors import RulesError, UsageError
from .frames import SeriesSet, as_incidents
from .present import human_delay, human_seconds
from .prometheus.tuning import PromRuleReplay, sweep_prometheus
from .recommendation import Recommendation
from .rules.model import CHANNELS, Rule, RuleSet
from .rules.promfile import PromGroup, PromRule, PromRuleFile
from .rules.yaml_io import rules_to_yaml, save_rules
from .stats import (
    PAGING_CHANNELS,
    PAGING_SEVERITIES,
    SCORE_COLUMNS,
    STATS_COLUMNS,
    page_rows,
    relevant_incidents,
    rule_stats,
)

__all__ = ["Recommendation", "RuleSetDiff", "SWEEP_PARAMS", "diff", "frontier", "recommend", "sweep"]

# rule key (as in the YAML file and the sweep table) -> Rule attribute
SWEEP_PARAMS = {"threshold": "threshold", "for": "for_", "cooldown": "cooldown", "clear": "clear",
                "keep_firing_for": "keep_firing_for"}
_DURATIONS = {"for", "cooldown", "keep_firing_for"}


def _values(name: str, values: Any) -> list[Any]:
    if values is None:
        return []
    if isinstance(values, str | int | float | timedelta) or values is None:
        values = [values]
    out: list[Any] = []
    for v in values:
        if name in _DURATIONS:
            out.append(parse_duration(v))
        elif name == "clear" and (v is None or (isinstance(v, str) and v.lower() == "none")):
            out.append(None)
        else:
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                raise UsageError(f"sweep: {name}={v!r} is not a number") from None
    return out


def _as_series(frame: Any) -> SeriesSet:
    return frame if isinstance(frame, SeriesSet) else SeriesSet.from_frame(frame)


def sweep(frame: Any, rule: Rule, *, threshold: Iterable[float] | None = None, for_: Iterable[Any] | None = None,
          cooldown: Iterable[Any] | None = None, clear: Iterable[float | None] | None = None,
          keep_firing_for: Iterable[Any] | None = None, incidents: pd.DataFrame | None = None,
          clock: Clock | None = None, rules: RuleSet | None = None, progress: bool = False) -> pd.DataFrame:
    """Statistics of ``rule`` for every combination of the given parameters.

    Parameters not given keep the rule's value. ``rules`` supplies the shared
    policies (channel limits, silences, responders) when the rule comes from a rule
    set. Returns one row per valid combination: a column per swept parameter, named
    as the rule key (``threshold``, ``for``, ``cooldown``, ``clear``,
    ``keep_firing_for``; durations as Prometheus strings), then the statistics of
    SPEC section 5 (score columns with incidents), then ``alerts_per_week``,
    ``pages`` and ``pages_per_week``. Combinations the rule model rejects (a
    ``clear`` above a ``>`` threshold, say) are left out with a warning.

    Examples
    --------
    >>> import pandas as pd, perfalert_lab as pal
    >>> frame = pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=6, freq="1min", tz="UTC"),
    ...                       "source": "web-1", "metric": "cpu", "value": [10, 90, 95, 20, 91, 10]})
    >>> rule = pal.Rule(id="cpu-high", metric="cpu", threshold=80)
    >>> pal.sweep(frame, rule, threshold=[80, 92], for_=["0s", "1m"])[["threshold", "for", "alerts"]]
       threshold for  alerts
    0       80.0  0s       2
    1       80.0  1m       1
    2       92.0  0s       1
    3       92.0  1m       0
    """

    if isinstance(rule, PromRule):  # a Prometheus alert rule (SPEC 11)
        if cooldown is not None or clear is not None or clock is not None:
            raise UsageError("sweep: a Prometheus alert rule takes threshold, for_ and keep_firing_for")
        file = rules if isinstance(rules, PromRuleFile) else None
        if file is None:
            file = PromRuleFile((PromGroup("sweep", 60_000, (rule,)),))
        return sweep_prometheus(frame, rule, file, threshold=threshold, for_=for_, keep_firing_for=keep_firing_for,
                                incidents=incidents)
    if not rule.enabled:  # a backtest skips it: a sweep of it would be a table of silent zeros
        raise UsageError(f"sweep: rule {rule.id!r} is disabled (enabled: false); sweep rule.replace(enabled=True) "
                         "to tune it before enabling it")
    given = {"threshold": threshold, "for": for_, "cooldown": cooldown, "clear": clear,
             "keep_firing_for": keep_firing_for}
    grid = {k: _values(k, v) for k, v in given.items() if v is not None}
    if not grid:
        raise UsageError("sweep: give at least one of threshold, for_, cooldown, clear, keep_firing_for")
    empty = [k for k, v in grid.items() if not v]
    if empty:
        raise UsageError(f"sweep: no values for {', '.join(empty)}")
    if rule.mode == "sample" and any(k in grid for k in ("for", "clear", "keep_firing_for")):
        raise UsageError("sweep: for, clear and keep_firing_for do not apply to a sample-mode rule")
    context = (rules or RuleSet((rule,))).with_rule(rule)
    clock = clock if clock is not None else SampleClock()
    series = _as_series(frame)
    incidents = as_incidents(incidents)
    sids = match_series(series.keys, rule)
    ev = evaluate_values(series, sids, rule, clock)
    horizon = series.end_ns
    span = series.span_of(sids)  # a rule's rates divide by the span of the series it watches (SPEC 5)
    hashes = series.hashes[sids] if len(sids) else np.zeros(0, np.uint64)
    keys = series.keys.iloc[sids].reset_index(drop=True)
    sources = keys["source"].astype("str").to_numpy(dtype=object)
    inc = relevant_incidents(incidents, set(sources.tolist())) if incidents is not None else None
    weeks = (span[1] - span[0]) / 1e9 / 604800
    names = list(grid)
    combos = list(itertools.product(*(grid[k] for k in names)))
    conditions_cache: dict[float | None, np.ndarray] = {}

    def condition(bound: float) -> np.ndarray:
        got = conditions_cache.get(bound)
        if got is None:
            got = compare(ev.values, ev.present, rule.op, bound)
            conditions_cache[bound] = got
        return got

    def run_one(combo: tuple[Any, ...]) -> dict[str, Any] | str:
        changes = {SWEEP_PARAMS[k]: v for k, v in zip(names, combo, strict=True)}
        try:
            r = rule.replace(**changes)
        except RulesError as exc:
            return exc.problems[0]
        active = condition(r.threshold)
        if r.mode == "sample":
            eps = run_samples(ev.times, ev.offsets, active, to_ns(r.cooldown))
        else:
            held = active if r.clear is None else condition(r.clear)
            eps = run_episodes(ev.times, ev.offsets, active, held, to_ns(r.for_), to_ns(r.keep_firing_for),
                               to_ns(r.cooldown))
        resolved = resolution(eps, r, context, horizon)
        # silences are the only reason to look at each alert's labels; peaks are not statistics
        alert_keys = keys.iloc[eps.series].reset_index(drop=True) if context.silences else keys.iloc[:0]
        part = AlertColumns(r, alert_keys, hashes[eps.series], eps.pending_since, eps.fired_at, resolved,
                            eps.suppressed, np.zeros(len(eps), dtype=np.float64))
        life = part_lifecycle(part, context.with_rule(r), horizon)
        if any(ch in context.channels for ch in {c.channel for c in _all_channels(r)}):
            notes, delivered, _ = deliver(life.notes, context)
        else:
            notes, delivered = life.notes, ~life.notes["silenced"].astype(bool)
        live = life.status != 3
        row = rule_stats(r.id, evaluations=ev.n, n_series=len(sids), span_ns=span, group=eps.series,
                         source=sources[eps.series], fired=eps.fired_at, resolved=resolved,
                         acked=life.ack != NAT_NS, level=life.level, live=live,
                         notifications=len(delivered), undelivered=int((~delivered).sum()), incidents=inc)
        # a page (SPEC 5): the firing and each escalation of an alert whose severity pages, or sent to a paging
        # channel
        paging = delivered & np.isin(notes["kind"], (KIND_ORDER["firing"], KIND_ORDER["escalation"])) & (
            (r.severity in PAGING_SEVERITIES) | np.isin(np.asarray(CHANNELS, dtype=object)[notes["channel"]],
                                                        PAGING_CHANNELS))
        pages = page_rows(notes["row"], notes["level"], paging)
        row["alerts_per_week"] = row["alerts"] / weeks if weeks > 0 else np.nan  # type: ignore[operator]
        row["pages"] = int(pages.sum())
        row["pages_per_week"] = int(pages.sum()) / weeks if weeks > 0 else np.nan
        for k, v in zip(names, combo, strict=True):
            row[k] = format_duration(v) if k in _DURATIONS else v
        return row

    # the compiled kernels release the GIL: combinations run on every core, rows keep grid order
    workers = max(1, min(os.cpu_count() or 1, 8, len(combos) // 8))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results: Iterable[dict[str, Any] | str] = pool.map(run_one, combos, chunksize=8)
            if progress:
                from tqdm import tqdm

                results = tqdm(results, total=len(combos), desc=f"sweep {rule.id}", unit="combo", leave=False)
            outcomes = list(results)
    else:
        outcomes = [run_one(c) for c in combos]
    rows = [o for o in outcomes if isinstance(o, dict)]
    rejected = [o for o in outcomes if isinstance(o, str)]
    if rejected:
        warnings.warn(f"sweep: {len(rejected)} combination(s) left out as invalid, e.g. {rejected[0]}",
                      UserWarning, stacklevel=2)
    stat_cols = STATS_COLUMNS[1:] + (SCORE_COLUMNS if incidents is not None else [])
    out = pd.DataFrame(rows, columns=[*names, *stat_cols, "alerts_per_week", "pages", "pages_per_week"])
    out.attrs["perfalert_sweep"] = {"rule": rule, "params": names, "clock": str(clock)}
    return out


def _all_channels(rule: Rule) -> list[Any]:
    chans = list(rule.channels)
    if rule.escalation is not None:
        for lv in rule.escalation.levels:
            chans += [c for c in lv.notify if c.enabled]
    return chans


# --------------------------------------------------------------------------- frontier

DEFAULT_OBJECTIVES = {"alerts_per_day": "min", "recall": "max", "mean_detection_delay_s": "min"}


def frontier(table: pd.DataFrame, objectives: dict[str, str] | Sequence[str] | None = None) -> pd.DataFrame:
    """The Pareto-optimal rows of a sweep: no other row is as good on every objective and better on one.

    ``objectives`` maps a column to ``"min"`` or ``"max"`` (default: fewer alerts per
    day, more recall, less detection delay — the columns present). Missing values
    count as the worst. Rows come back sorted by the first objective.
    """
    if objectives is None:
        objectives = {k: v for k, v in DEFAULT_OBJECTIVES.items() if k in table.columns}
    elif not isinstance(objectives, dict):
        objectives = {k: DEFAULT_OBJECTIVES.get(k, "min") for k in objectives}
    missing = [k for k in objectives if k not in table.columns]
    if missing:
        raise UsageError(f"frontier: no column(s) {', '.join(missing)} in the sweep table")
    if table.empty:
        return table.copy()
    # every objective as "smaller is better", NaN as the worst
    cols = []
    for k, sense in objectives.items():
        v = table[k].to_numpy(dtype=np.float64)
        v = -v if sense == "max" else v
        cols.append(np.where(np.isnan(v), np.inf, v))
    m: np.ndarray = np.column_stack(cols)
    n = len(m)
    dominated = np.zeros(n, dtype=bool)
    for start in range(0, n, 512):
        block = m[start:start + 512]
        le = np.all(m[None, :, :] <= block[:, None, :], axis=2)
        lt = np.any(m[None, :, :] < block[:, None, :], axis=2)
        dominated[start:start + 512] = (le & lt).any(axis=1)
    first = next(iter(objectives))
    out = table[~dominated].sort_values(first, ascending=objectives[first] == "min", kind="stable")
    out.attrs = dict(table.attrs)
    return out


# --------------------------------------------------------------------------- recommend


def recommend(table: pd.DataFrame, *, max_alerts_per_day: float | None = None,
              max_alerts_per_week: float | None = None, max_pages_per_week: float | None = None,
              min_recall: float | None = None) -> Recommendation:
    """Pick the sweep row that meets an alert budget with the best recall, and explain it.

    Among rows within every budget given, the choice maximises recall, then
    minimises the mean detection delay, then the alert volume. Without incidents
    (no recall), the most sensitive rule within budget (most alerts) is chosen.
    """
    ok = np.ones(len(table), dtype=bool)
    budget = []
    for col, limit, label in (("alerts_per_day", max_alerts_per_day, "alerts/day"),
                              ("alerts_per_week", max_alerts_per_week, "alerts/week"),
                              ("pages_per_week", max_pages_per_week, "pages/week")):
        if limit is not None:
            ok &= table[col].to_numpy(dtype=np.float64) <= limit
            budget.append(f"at most {limit:g} {label}")
    if min_recall is not None:
        if "recall" not in table.columns:
            raise UsageError("recommend: min_recall needs a sweep with incidents")
        ok &= table["recall"].fillna(0).to_numpy(dtype=np.float64) >= min_recall
        budget.append(f"recall at least {min_recall:g}")
    candidates = table[ok]
    if candidates.empty:
        best_volume = table["alerts_per_day"].min() if len(table) else math.nan
        raise UsageError(f"recommend: no combination meets {' and '.join(budget) or 'the budget'} "
                         f"(the quietest gives {best_volume:.3g} alerts/day); widen the sweep or the budget")
    if "recall" in candidates.columns:
        key = candidates.assign(
            _r=-candidates["recall"].fillna(0), _d=candidates["mean_detection_delay_s"].fillna(np.inf)
        )
        pick = key.sort_values(["_r", "_d", "alerts_per_day"], kind="stable").index[0]
        why = "the best recall"
    else:
        pick = candidates.sort_values("alerts_per_day", ascending=False, kind="stable").index[0]
        why = "the most sensitive setting (no incidents to score recall)"
    row = table.loc[pick]
    meta = table.attrs.get("perfalert_sweep", {})
    params = meta.get("params", [k for k in SWEEP_PARAMS if k in table.columns])
    rule = meta.get("rule")
    tuned = None
    if rule is not None:
        # a sweep's own parameters (an SLO's page_quick ...) pass through under their names
        changes = {SWEEP_PARAMS.get(k, k): (None if pd.isna(row[k]) else row[k]) if k == "clear" else row[k]
                   for k in params}
        tuned = rule.replace(**changes)
    within = " and ".join(budget) or "no budget"
    text = [f"Chose {_setting(row, params)}: {_outcome(row, 'recall' in table.columns)}.",
            f"Of {len(table)} combinations {len(candidates)} meet {within}; this one has {why}."]
    if "recall" in table.columns and not row["recall"] > 0:
        better = table[table["recall"].fillna(0) > 0]
        if len(better):  # the budget rules out every combination that catches something: say so, and what would
            b = better.sort_values(["alerts_per_week", "recall"], ascending=[True, False], kind="stable").iloc[0]
            text.append(f"No combination within the budget catches an incident; the quietest that does is "
                        f"{_setting(b, params)} ({_outcome(b, True)}).")
        else:
            text.append("No combination in the sweep catches an incident.")
    text += _edges(table, row, params)
    return Recommendation(row, tuned, " ".join(text))


def _setting(row: pd.Series, params: Sequence[str]) -> str:
    return ", ".join(f"{k}={row[k]:g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in params)


def _outcome(row: pd.Series, scored: bool) -> str:
    """What a sweep row did, in words: volume, then (with incidents) what it caught and how early."""
    parts = [f"{row['alerts_per_week']:.3g} alerts/week, {row['pages_per_week']:.3g} pages/week"]
    if scored:
        caught = f"recall {row['recall']:.2f}" if not pd.isna(row["recall"]) else "no incidents to catch"
        if row["alerts_per_week"] > 0 and not pd.isna(row["precision"]):
            caught += f", precision {row['precision']:.2f}"
        delay = human_delay(row["mean_detection_delay_s"])
        parts.append(caught + (f", detection {delay} on average" if delay else ""))
    return "; ".join(parts)


def _edges(table: pd.DataFrame, row: pd.Series, params: Sequence[str]) -> list[str]:
    """A sentence for each swept parameter whose chosen value is the end of its swept range."""
    out = []
    for k in params:
        values = table[k].dropna().unique().tolist()
        if len(values) < 2 or pd.isna(row[k]):
            continue
        order = (lambda v: to_ns(parse_duration(v))) if isinstance(row[k], str) else float
        ranked = sorted(values, key=order)
        if row[k] == ranked[-1]:
            out.append(f"{k}={row[k]:g} is the top of the swept range: widen the range above it."
                       if isinstance(row[k], float) else f"{k}={row[k]} is the longest swept: try longer.")
        elif row[k] == ranked[0] and order(row[k]) != 0:  # nothing is shorter than 0s
            out.append(f"{k}={row[k]:g} is the bottom of the swept range: widen the range below it."
                       if isinstance(row[k], float) else f"{k}={row[k]} is the shortest swept: try shorter.")
    return out


# --------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class RuleSetDiff:
    """What changes between two rule sets on the same history.

    ``gained``/``lost``: alerts only the new / only the old rules raise (matched by
    rule id, series and firing time); ``moved``: an old and a new alert of the same
    rule and series that fire at different times for the same episode (their spans
    from pending to resolution overlap), paired once each, with the ``shift``;
    ``incidents``: per incident, detected by old and by new; ``volume``: alerts and
    notifications per rule, old and new.
    """

    gained: pd.DataFrame
    lost: pd.DataFrame
    incidents: pd.DataFrame | None
    volume: pd.DataFrame
    moved: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_moved_columns()))

    @property
    def empty(self) -> bool:
        """True when both rule sets behave the same on this history."""
        changed_incidents = False
        if self.incidents is not None and len(self.incidents):
            changed_incidents = bool((self.incidents["old"] != self.incidents["new"]).any())
        changed_volume = bool((self.volume["notifications_old"] != self.volume["notifications_new"]).any())
        return (self.gained.empty and self.lost.empty and self.moved.empty and not changed_incidents
                and not changed_volume)

    def summary(self) -> str:
        lines = [f"{len(self.gained)} alert(s) gained, {len(self.lost)} lost, {len(self.moved)} moved"]
        if len(self.moved):
            shift = self.moved["shift"].dt.total_seconds()
            later, earlier = int((shift > 0).sum()), int((shift < 0).sum())
            lines[0] += (f" ({later} later, {earlier} earlier; median shift "
                         f"{'-' if shift.median() < 0 else '+'}{human_seconds(shift.median())})")
        if self.incidents is not None:
            caught = int((~self.incidents["old"] & self.incidents["new"]).sum())
            missed = int((self.incidents["old"] & ~self.incidents["new"]).sum())
            lines.append(f"{caught} incident(s) newly caught, {missed} newly missed")
        for row in self.volume.to_dict("records"):
            if row["alerts_old"] != row["alerts_new"] or row["notifications_old"] != row["notifications_new"]:
                lines.append(f"rule {row['rule_id']}: alerts {row['alerts_old']} -> {row['alerts_new']}, "
                             f"notifications {row['notifications_old']} -> {row['notifications_new']}")
        return "\n".join(lines)


def diff(old: Any, new: Any, frame: Any, *, incidents: pd.DataFrame | None = None,
         clock: Clock | None = None, prometheus: dict[str, Any] | None = None) -> RuleSetDiff:
    """Compare two rule sets on the same history (see :class:`RuleSetDiff`).

    Either side may be our rules or a Prometheus rule file (:func:`load_prometheus_rules`); an
    alert is matched by its rule, its series (``source``, ``metric`` and its labels) and when it
    fired. ``clock`` applies to our rules, ``prometheus`` (its backtest options) to rule files.
    """
    incidents = as_incidents(incidents)

    def run(rules: Any) -> Any:
        if getattr(rules, "kind", None) == "prometheus":
            return backtest(frame, rules, incidents=incidents, prometheus=prometheus)
        assert series is not None
        return backtest_series(series, RuleSet.of(rules), clock or SampleClock(), incidents)

    needs_series = any(getattr(r, "kind", None) != "prometheus" for r in (old, new))
    series = _as_series(frame) if needs_series else None
    a, b = run(old), run(new)
    # an alert's series is its label set: the label columns of the input, a rule file's labels text
    extra = [c for c in dict.fromkeys([*a.alerts.columns[len(ALERT_COLUMNS):], *b.alerts.columns[len(ALERT_COLUMNS):]])
             if c not in ("annotations",) and c in a.alerts.columns and c in b.alerts.columns]
    key = ["rule_id", "source", "metric", *extra, "fired_at"]
    fa = a.alerts[a.alerts["status"] != "suppressed"]
    fb = b.alerts[b.alerts["status"] != "suppressed"]
    merged = fa[key].merge(fb[key], on=key, how="outer", indicator=True)
    gained = fb.merge(merged[merged["_merge"] == "right_only"][key], on=key)
    lost = fa.merge(merged[merged["_merge"] == "left_only"][key], on=key)
    moved, gained, lost = _pair_moved(lost, gained, key[:-1])
    inc_table = None
    if incidents is not None:
        inc = a.incidents if a.incidents is not None else incidents
        inc_table = inc.copy()
        inc_table["old"] = _detected(fa, inc)
        inc_table["new"] = _detected(fb, inc)
    ids = list(dict.fromkeys([*a.rules.ids, *b.rules.ids]))
    count = lambda res, col: res.alerts[res.alerts["status"] != "suppressed"].groupby("rule_id").size() \
        if col == "alerts" else res.notifications.groupby("rule_id").size()  # noqa: E731
    volume = pd.DataFrame({"rule_id": ids})
    for name, res in (("old", a), ("new", b)):
        for col in ("alerts", "notifications"):
            volume[f"{col}_{name}"] = volume["rule_id"].map(count(res, col)).fillna(0).astype(int)
    return RuleSetDiff(gained.reset_index(drop=True), lost.reset_index(drop=True), inc_table, volume, moved)


def _moved_columns() -> list[str]:
    return list(MOVED_COLUMNS)


MOVED_COLUMNS = ["rule_id", "source", "metric", "alert_id_old", "alert_id_new", "fired_at_old", "fired_at_new",
                 "shift"]


def _pair_moved(lost: pd.DataFrame, gained: pd.DataFrame, series: list[str]
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Pair lost and gained alerts of one rule and series (the ``series`` columns) whose episodes
    overlap (each used once, in firing order): those moved in time; the rest stay lost and gained."""
    if lost.empty or gained.empty:
        return pd.DataFrame(columns=MOVED_COLUMNS), gained, lost
    far = pd.Timestamp.max.tz_localize("UTC")
    pairs = lost.reset_index(names="i_old").merge(gained.reset_index(names="i_new"), on=series,
                                                  suffixes=("_old", "_new"))
    overlap = (pairs["pending_since_old"] <= pairs["resolved_at_new"].fillna(far)) & \
              (pairs["pending_since_new"] <= pairs["resolved_at_old"].fillna(far))
    pairs = pairs[overlap].sort_values(["fired_at_old", "fired_at_new"], kind="stable")
    used_old: set[int] = set()
    used_new: set[int] = set()
    keep = []
    for i_old, i_new in zip(pairs["i_old"].tolist(), pairs["i_new"].tolist(), strict=True):
        if i_old not in used_old and i_new not in used_new:
            used_old.add(int(i_old))
            used_new.add(int(i_new))
            keep.append(True)
        else:
            keep.append(False)
    chosen = pairs[np.array(keep, dtype=bool)] if len(pairs) else pairs
    moved = chosen.assign(shift=chosen["fired_at_new"] - chosen["fired_at_old"])[MOVED_COLUMNS]
    return (moved.reset_index(drop=True), gained.drop(index=sorted(used_new)),
            lost.drop(index=sorted(used_old)))


def _detected(alerts: pd.DataFrame, incidents: pd.DataFrame) -> np.ndarray:
    out = np.zeros(len(incidents), dtype=bool)
    for i, inc in enumerate(incidents.itertuples()):
        hits = (alerts["fired_at"] >= inc.start) & (alerts["fired_at"] <= inc.end)
        if isinstance(inc.source, str):
            hits &= alerts["source"] == inc.source
        out[i] = bool(hits.any())
    return out


class RuleReplay:
    """One of our rules over history, prepared once for many variants: the tuning model the
    :class:`~perfalert_lab.widgets.Tuner` moves (:class:`~perfalert_lab.prometheus.tuning.PromRuleReplay`
    is the same for a Prometheus alert rule; both answer the methods below).

    The series are grouped once; :meth:`run` replays a variant (its threshold, ``clear``, ``for`` and
    ``cooldown``), :meth:`curve` sweeps its threshold with the rest fixed, :meth:`text` and :meth:`save`
    give the rule set with the variant in it as YAML."""

    durations = ("for", "cooldown")  # the duration parameters the tuner moves, as the rule file names them
    has_clear = True  # hysteresis: a second bound the alert clears at
    button_labels = ("save as", "Show YAML", "Save YAML")  # the save box's, the show button's, the save button's

    def __init__(self, frame: Any, rule: Rule, rules: RuleSet | None = None, *,
                 incidents: pd.DataFrame | None = None, clock: Clock | None = None, caller: str = "tune") -> None:
        self.series = _as_series(frame)
        self.rule, self.name, self.metric = rule, rule.id, rule.metric
        self.rules = (rules or RuleSet((rule,))).with_rule(rule)
        self.op: str | None = rule.op
        self.threshold: float | None = rule.threshold
        self.clock = clock if clock is not None else SampleClock()
        self.incidents = as_incidents(incidents)
        self.sids = match_series(self.series.keys, rule)
        if len(self.sids) == 0:
            raise UsageError(f"{caller}: no series of metric {rule.metric!r} matches rule {rule.id!r}")
        vals = np.concatenate([self.series.values[self.series.offsets[s]:self.series.offsets[s + 1]]
                               for s in self.sids])
        bounds = [rule.threshold] + ([rule.clear] if rule.clear is not None else [])
        self.value_range = (min(float(np.nanmin(vals)), *bounds), max(float(np.nanmax(vals)), *bounds))
        self.source_names = sorted(set(self.series.keys["source"].iloc[self.sids].astype("str")))
        self.save_as = f"{rule.id}.yaml"

    def initial(self) -> dict[str, Any]:
        """The rule's own values, by :meth:`run`'s keyword."""
        r = self.rule
        return {"threshold": r.threshold, "clear": r.clear, "for_": r.for_, "cooldown": r.cooldown}

    def variant(self, **values: Any) -> Rule:
        """The rule with these values (raises :class:`RulesError` when they contradict)."""
        return self.rule.replace(**values)

    def run(self, **values: Any) -> Any:
        """A :class:`BacktestResult` of the variant alone (with the rule set's channels and silences)."""
        tuned = self.variant(**values)
        rules = RuleSet((tuned,), self.rules.channels, self.rules.silences, self.rules.responders)
        return backtest_series(self.series, rules, self.clock, self.incidents)

    def curve(self, thresholds: Sequence[float], **values: Any) -> pd.DataFrame:
        """The sweep of the variant's threshold (thresholds the clear value contradicts are left out)."""
        tuned = self.variant(**values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sweep(self.series, tuned, threshold=list(thresholds), incidents=self.incidents,
                         rules=self.rules.with_rule(tuned), clock=self.clock)

    def span_of(self, source: str, result: Any) -> tuple[int, int]:
        """The span a series' rates divide by (SPEC 5): its own first to last sample."""
        keys = self.series.keys
        sids = np.flatnonzero((keys["source"] == source).to_numpy(dtype=bool)
                              & (keys["metric"] == self.rule.metric).to_numpy(dtype=bool))
        return self.series.span_of(sids)

    def describe(self, **values: Any) -> str:
        return self.variant(**values).describe()

    def text(self, **values: Any) -> str:
        """The rule set with the variant, as YAML."""
        return rules_to_yaml(self.rules.with_rule(self.variant(**values)))

    def save(self, path: str | os.PathLike[str], **values: Any) -> Any:
        """Save the rule set with the variant (atomically); the path written."""
        return save_rules(self.rules.with_rule(self.variant(**values)), path)


def tuning_model(frame: Any, rule: Any, *, rules: Any = None, incidents: pd.DataFrame | None = None,
                 clock: Clock | None = None, prometheus_compat: str = "3", caller: str = "tune") -> Any:
    """The tuning model of ``rule`` over ``frame``, for either kind of rule: a :class:`RuleReplay` of
    ours, a :class:`~perfalert_lab.prometheus.tuning.PromRuleReplay` of a Prometheus alert rule (given
    as the rule with ``rules=`` its file, or by name)."""
    if isinstance(rule, PromRule) or isinstance(rules, PromRuleFile):
        if clock is not None:
            raise UsageError(f"{caller}: a Prometheus rule runs on its group's interval; leave clock out")
        if not isinstance(rules, PromRuleFile):
            raise UsageError(f"{caller}: a Prometheus alert rule needs its file: "
                             f"{caller}(frame, rule, rules=rule_file)")
        return PromRuleReplay(frame, rule, rules, incidents=incidents, prometheus_compat=prometheus_compat,
                              caller=caller)
    if not isinstance(rule, Rule):
        raise UsageError(f"{caller}: expected a Rule (or a Prometheus alert rule with rules=), "
                         f"got {type(rule).__name__}")
    return RuleReplay(frame, rule, rules, incidents=incidents, clock=clock, caller=caller)
