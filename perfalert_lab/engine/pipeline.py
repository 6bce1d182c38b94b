"""Our rules' one data path, in stages (see docs/architecture.md)::

    prepare(frame)           -> SeriesSet   series as contiguous arrays: one sort, strings factorised once
    replay(series, rules)    -> Replay      per rule: evaluations, the state machine, alerts as arrays
    lifecycle(parts, rules)  -> Lifecycle   acknowledgement, escalation, fan-out, delivery, as arrays
    statistics(...)          -> DataFrame   SPEC 5's statistics from those arrays
    Lifecycle.tables()       -> alerts, notifications   the DataFrames, built last

:func:`run` strings replay, lifecycle, statistics and tables together over prepared series;
the front door (:func:`perfalert_lab.backtest`, in :mod:`perfalert_lab.backtesting`), the Dask
path, the sweep and the tuner call these stages.
"""

from __future__ import annotations

import difflib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._time import NAT_NS, to_ns
from ..clock import Clock, shared_times
from ..errors import NoSeriesWarning, RulesError
from ..frames import SeriesSet
from ..rules.model import Rule, RuleSet
from ..stats import SCORE_COLUMNS, STATS_COLUMNS, relevant_incidents, rule_stats
from .conditions import Evaluations, conditions, evaluate_values, match_series
from .episodes import Episodes, peak_values, run_episodes, run_samples, values_at
from .lifecycle import STATUS, AlertColumns, Lifecycle, lifecycle

__all__ = ["Outcome", "Replay", "RuleRun", "alert_columns", "check_rules_match", "lifecycle", "prepare", "replay",
           "resolution", "run", "run_rule", "statistics", "unmatched_rules"]


@dataclass(frozen=True)
class RuleRun:
    """One rule replayed over its series: evaluations and the alerts found."""

    rule: Rule
    evaluations: Evaluations
    episodes: Episodes


def run_rule(series: SeriesSet, rule: Rule, clock: Clock, *, sids: np.ndarray | None = None,
             evaluations: Evaluations | None = None) -> RuleRun:
    """Replay one rule (its evaluations may be passed in to share them across rules)."""
    if sids is None:
        sids = match_series(series.keys, rule)
    ev = evaluations if evaluations is not None else evaluate_values(series, sids, rule, clock)
    active, held = conditions(ev, rule)
    if rule.mode == "sample":
        eps = run_samples(ev.times, ev.offsets, active, to_ns(rule.cooldown))
    else:
        eps = run_episodes(ev.times, ev.offsets, active, held, to_ns(rule.for_), to_ns(rule.keep_firing_for),
                           to_ns(rule.cooldown), values=ev.values, present=ev.present, op=rule.op,
                           threshold=rule.threshold)
    return RuleRun(rule, ev, eps)


def resolution(eps: Episodes, rule: Rule, rules: RuleSet, horizon: int) -> np.ndarray:
    """When each alert resolves: by value (episode mode), or by the responder (sample mode)."""
    if rule.mode == "sample" and rules.responders.resolve_after is not None:
        res = eps.fired_at + to_ns(rules.responders.resolve_after)
        return np.where(res <= horizon, res, NAT_NS)  # nothing is recorded past the end of the data
    return eps.resolved_at


def alert_columns(series: SeriesSet, run: RuleRun, rules: RuleSet, horizon: int) -> AlertColumns:
    """One rule's replay as the lifecycle's input: per alert its series, instants, peak and firing value."""
    ev, eps, rule = run.evaluations, run.episodes, run.rule
    sid = ev.series_ids[eps.series] if len(eps) else np.zeros(0, np.int64)
    keys = series.keys.iloc[sid].reset_index(drop=True)
    hashes = series.hashes[sid] if len(sid) else np.zeros(0, np.uint64)
    resolved = resolution(eps, rule, rules, horizon)
    if eps.peak is not None:  # the episode kernel tracked them
        peaks = eps.peak
    else:  # sample mode: an alert spans up to its responder's resolution
        end_t = np.where(resolved == NAT_NS, np.iinfo(np.int64).max, resolved)
        peaks = peak_values(ev.times, ev.values, ev.present, eps.k_start, eps.k_end, end_t, rule.op, rule.threshold)
    fired_value = values_at(ev.times, ev.values, ev.present, eps.k_start, eps.k_end, eps.fired_at)
    return AlertColumns(rule, keys, hashes, eps.pending_since, eps.fired_at, resolved, eps.suppressed, peaks,
                        fired_value)


def unmatched_rules(rules: RuleSet, metrics: set[str], matched: dict[str, int]) -> list[str]:
    """One line for each enabled rule that matches no series (``matched[rule.id] == 0``): what
    exists (``metrics``), and a did-you-mean."""
    present = sorted(metrics)
    problems = []
    for rule in rules:
        if not rule.enabled or matched.get(rule.id, 0):
            continue
        line = f"rule {rule.id!r}: metric {rule.metric!r}"
        if rule.match:
            line += f" with match {dict(rule.match)}"
        line += " matches no series"
        close = difflib.get_close_matches(rule.metric, present, n=1, cutoff=0.6)
        if rule.metric in metrics:
            line += f" (metric {rule.metric!r} exists: check the match patterns)"
        elif close:
            line += f"; did you mean {close[0]!r}?"
        shown = ", ".join(present[:10]) + (f" and {len(present) - 10} more" if len(present) > 10 else "")
        problems.append(f"{line} (metrics in the input: {shown or 'none'})")
    return problems


def check_rules_match(rules: RuleSet, metrics: set[str], matched: dict[str, int], *, strict: bool = False,
                      stacklevel: int = 3) -> None:
    """Warn (or, with ``strict``, raise :class:`RulesError`) for each rule that matches no series;
    ``stacklevel`` points the warning at the user's call."""
    problems = unmatched_rules(rules, metrics, matched)
    if problems and strict:
        raise RulesError(problems)
    for line in problems:
        warnings.warn(line, NoSeriesWarning, stacklevel=stacklevel)


@dataclass
class Replay:
    """The replay stage's output: per enabled rule (in rule order) its alerts as arrays, and what
    it evaluated (the statistics need the counts, watched sources and spans)."""

    series: SeriesSet
    rules: RuleSet
    clock: Clock
    parts: list[AlertColumns]
    evaluations: dict[str, int]
    watched: dict[str, set[str]]
    n_series: dict[str, int]
    spans: dict[str, tuple[int, int]]


def prepare(frame: Any, *, duplicates: str = "last") -> SeriesSet:
    """Stage 1: a long metric frame as contiguous per-series arrays (one sort, strings factorised once); a
    :class:`SeriesSet` (``pal.read_series``) is already that."""
    if isinstance(frame, SeriesSet):
        return frame
    return SeriesSet.from_frame(frame, duplicates=duplicates)  # type: ignore[arg-type]


def replay(series: SeriesSet, rules: RuleSet, clock: Clock, *, progress: bool = False) -> Replay:
    """Stage 2: every enabled rule replayed over its series; rules on the same series and window
    share their evaluations; many evaluations run a batch of series at a time (bounded memory).
    The rules' state machines run on every core (the kernels release the GIL)."""
    horizon = series.end_ns
    evaluations: dict[str, int] = {}
    watched: dict[str, set[str]] = {}
    n_series: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    shared: dict[tuple[Any, ...], Evaluations] = {}
    jobs: list[tuple[Rule, np.ndarray, list[np.ndarray], Evaluations | None]] = []
    for rule in rules:
        if not rule.enabled:
            evaluations[rule.id] = 0
            continue
        sids = match_series(series.keys, rule)
        batches = _batches(series, sids, clock)
        ev = None
        if len(batches) == 1:
            key = (tuple(sids.tolist()), rule.window, rule.aggregate)
            ev = shared.get(key)
            if ev is None:
                ev = evaluate_values(series, sids, rule, clock)
                shared[key] = ev
        jobs.append((rule, sids, batches, ev))
        watched[rule.id] = set(series.keys["source"].iloc[sids].astype("str").tolist())
        n_series[rule.id] = len(sids)
        spans[rule.id] = series.span_of(sids)

    def one(job: tuple[Rule, np.ndarray, list[np.ndarray], Evaluations | None]) -> tuple[AlertColumns, int]:
        rule, sids, batches, ev = job
        if ev is not None:
            run = run_rule(series, rule, clock, sids=sids, evaluations=ev)
            return alert_columns(series, run, rules, horizon), run.evaluations.n
        runs = [run_rule(series, rule, clock, sids=batch) for batch in batches]
        return AlertColumns.concat([alert_columns(series, r, rules, horizon) for r in runs], rule), \
            sum(r.evaluations.n for r in runs)

    work = sum(ev.n for _, _, _, ev in jobs if ev is not None)
    workers = min(os.cpu_count() or 1, 8, len(jobs))
    done: Any
    if workers > 1 and work >= PARALLEL_EVALUATIONS and all(ev is not None for *_, ev in jobs):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = pool.map(one, jobs)  # results in rule order
            done = _progress(done, len(jobs), progress)
            results = list(done)
    else:  # small inputs, or batched rules whose memory one at a time bounds
        results = list(_progress(map(one, jobs), len(jobs), progress))
    parts = []
    for (rule, *_), (part, n) in zip(jobs, results, strict=True):
        parts.append(part)
        evaluations[rule.id] = n
    return Replay(series, rules, clock, parts, evaluations, watched, n_series, spans)


def statistics(rules: RuleSet, parts: list[AlertColumns], lc: Lifecycle, *, evaluations: dict[str, int],
               watched: dict[str, set[str]], n_series: dict[str, int], spans: dict[str, tuple[int, int]],
               span_ns: tuple[int, int], incidents: pd.DataFrame | None = None,
               sources: set[str] | None = None) -> pd.DataFrame:
    """Stage 4: SPEC 5's statistics from the arrays (no table is read): one row per rule, then TOTAL."""
    suppressed = STATUS.index("suppressed")
    per: dict[str, dict[str, np.ndarray]] = {}
    note_part = np.searchsorted(lc.offsets, lc.notes["row"], side="right") - 1 if len(lc.notes["row"]) \
        else np.zeros(0, np.int64)
    n_notes = np.bincount(note_part, minlength=len(parts))
    n_undelivered = np.bincount(note_part, weights=~lc.delivered, minlength=len(parts)).astype(np.int64)
    group_base = 0
    for i, (part, life) in enumerate(zip(parts, lc.lives, strict=True)):
        # a rule's alerts come series by series, each in time order: number the series as they come
        # (monotone, so the firing-time union needs no sort)
        change = np.ones(len(part), dtype=bool)
        change[1:] = part.series_hash[1:] != part.series_hash[:-1]
        group = np.cumsum(change, dtype=np.int64) - 1
        per[part.rule.id] = {
            "group": group + group_base, "source": part.series_keys["source"].to_numpy(dtype=object),
            "fired": part.fired_at, "resolved": part.resolved_at, "acked": life.ack != NAT_NS,
            "level": life.level, "live": life.status != suppressed,
            "notifications": np.array(n_notes[i]), "undelivered": np.array(n_undelivered[i]),
        }
        group_base += int(group.max()) + 1 if len(group) else 0
    empty = {"group": np.zeros(0, np.int64), "source": np.zeros(0, object), "fired": np.zeros(0, np.int64),
             "resolved": np.zeros(0, np.int64), "acked": np.zeros(0, bool), "level": np.zeros(0, np.int64),
             "live": np.zeros(0, bool), "notifications": np.array(0), "undelivered": np.array(0)}
    rows = []
    ids = rules.ids
    for rid in [*ids, "TOTAL"]:
        if rid == "TOTAL":
            mine = {k: (np.array(sum(int(per[r][k]) for r in per)) if k in ("notifications", "undelivered")
                        else np.concatenate([empty[k], *(per[r][k] for r in per)])) for k in empty}
            inc = None if incidents is None else (
                incidents.reset_index(drop=True) if sources is None else relevant_incidents(incidents, sources))
        else:
            mine = per.get(rid, empty)
            inc = None if incidents is None else relevant_incidents(incidents, watched.get(rid, set()))
        rows.append(rule_stats(
            rid, evaluations=sum(evaluations.values()) if rid == "TOTAL" else evaluations.get(rid, 0),
            n_series=sum(n_series.get(r, 0) for r in ids) if rid == "TOTAL" else n_series.get(rid, 0),
            span_ns=span_ns if rid == "TOTAL" else spans.get(rid, span_ns),
            notifications=int(mine["notifications"]), undelivered=int(mine["undelivered"]), incidents=inc,
            **{k: mine[k] for k in ("group", "source", "fired", "resolved", "acked", "level", "live")}))
    return pd.DataFrame(rows, columns=STATS_COLUMNS + (SCORE_COLUMNS if incidents is not None else []))


@dataclass
class Outcome:
    """What the pipeline hands to the front door: the three tables, and the stages' outputs."""

    alerts: pd.DataFrame
    notifications: pd.DataFrame
    stats: pd.DataFrame
    replay: Replay
    lifecycle: Lifecycle


def run(series: SeriesSet, rules: RuleSet, clock: Clock, incidents: pd.DataFrame | None = None, *,
        progress: bool = False, strict: bool | None = None, texts: bool | None = None) -> Outcome:
    """The pipeline over prepared series: replay -> lifecycle -> statistics -> tables. ``strict`` not
    None says (warns, or raises) when a rule matches no series, before any table is built."""
    rp = replay(series, rules, clock, progress=progress)
    if strict is not None:  # warning -> check_rules_match -> run -> backtest_series -> backtest -> the caller
        check_rules_match(rules, set(series.keys["metric"].astype("str").tolist()), rp.n_series, strict=strict,
                          stacklevel=6)
    lc = lifecycle(rp.parts, rules, series.end_ns)
    loaded = set(series.keys["source"].astype("str").tolist()) if incidents is not None else None
    stats = statistics(rules, rp.parts, lc, evaluations=rp.evaluations, watched=rp.watched, n_series=rp.n_series,
                       spans=rp.spans, span_ns=(series.start_ns, series.end_ns), incidents=incidents,
                       sources=loaded)
    alerts, notifications = lc.tables(texts)
    return Outcome(alerts, notifications, stats, rp, lc)


PARALLEL_EVALUATIONS = 2_000_000  # evaluations from which the rules' replays share the cores


def _progress(items: Any, total: int, on: bool) -> Any:
    if not on or total < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="backtest", unit="rule", leave=False)


BATCH_EVALUATIONS = 20_000_000  # evaluations held at once for one rule (about 19 bytes each)


def _batches(series: SeriesSet, sids: np.ndarray, clock: Clock) -> list[np.ndarray]:
    """The rule's series in consecutive batches of at most about ``BATCH_EVALUATIONS`` evaluations."""
    if len(sids) < 2:
        return [sids]
    ticks = shared_times(clock, series.start_ns, series.end_ns)
    if ticks is not None:
        per = np.full(len(sids), len(ticks), dtype=np.int64)
    else:  # the sample clock (and, as an estimate, other clocks): one evaluation per sample
        per = (series.offsets[sids + 1] - series.offsets[sids]).astype(np.int64)
    if int(per.sum()) <= BATCH_EVALUATIONS:
        return [sids]
    batch = np.cumsum(per) // BATCH_EVALUATIONS  # consecutive series share a batch number
    cuts = np.flatnonzero(np.diff(batch)) + 1
    return np.split(sids, cuts)
