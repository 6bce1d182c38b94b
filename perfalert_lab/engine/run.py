"""``backtest``: frames and rules -> clock -> state machine -> lifecycle -> statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._time import NAT_NS, to_ns
from ..clock import Clock, SampleClock, shared_times
from ..errors import NoSeriesWarning, RulesError, UsageError
from ..frames import SeriesSet, as_incidents
from ..rules.model import Rule, RuleSet
from ..stats import compute_stats
from .conditions import Evaluations, conditions, evaluate_values, match_series
from .episodes import Episodes, peak_values, run_episodes, run_samples, values_at
from .lifecycle import AlertColumns, apply_lifecycle

__all__ = ["BacktestResult", "RuleRun", "backtest", "run_rule"]


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


def _alert_columns(series: SeriesSet, run: RuleRun, rules: RuleSet, horizon: int) -> AlertColumns:
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


@dataclass
class BacktestResult:
    """What a rule set would have done: the three tables of SPEC section 5.

    ``alerts``, ``notifications`` and ``stats`` are DataFrames; ``series`` holds the
    samples the plots draw (they never recompute).
    """

    alerts: pd.DataFrame
    notifications: pd.DataFrame
    stats: pd.DataFrame
    rules: RuleSet
    clock: Clock
    span: tuple[pd.Timestamp, pd.Timestamp]
    incidents: pd.DataFrame | None = None
    series: SeriesSet | None = field(default=None, repr=False)
    # with an Alertmanager configuration (SPEC 12): the alerts each notification carried,
    # statistics per receiver, and the configuration
    notification_alerts: pd.DataFrame | None = field(default=None, repr=False)
    receivers: pd.DataFrame | None = field(default=None, repr=False)
    alertmanager: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        total = self.stats[self.stats["rule_id"] == "TOTAL"].iloc[0]
        return (f"<BacktestResult {len(self.rules)} rules, {int(total['evaluations'])} evaluations, "
                f"{int(total['alerts'])} alerts, {int(total['suppressed'])} suppressed, "
                f"{int(total['notifications'])} notifications, clock={self.clock}>")

    def oncall(self) -> pd.DataFrame:
        """Pages per week, busiest hour and flapping alerts per rule (see :func:`stats.oncall_load`)."""
        from ..stats import oncall_load

        if self.receivers is not None:  # through Alertmanager: the load is per receiver
            return self.receivers
        return oncall_load(self.alerts, self.notifications, (self.span[0].value, self.span[1].value))

    def _repr_html_(self) -> str:
        from ..report import result_html

        return result_html(self)


def backtest(frame: Any, rules: Any, *, clock: Clock | None = None,
             incidents: pd.DataFrame | None = None, duplicates: str = "last", progress: bool = False,
             strict: bool = False, prometheus: dict[str, Any] | None = None,
             alertmanager: Any = None, texts: bool | None = None) -> BacktestResult:
    """Replay metrics against rules and return every alert, notification and statistic.

    Parameters
    ----------
    frame
        A long metric frame (``timestamp, source, metric, value[, labels]``), or a
        dask DataFrame of the same shape (run on the current dask scheduler).
    rules
        A :class:`RuleSet`, one :class:`Rule` or a list of rules; or a Prometheus rule
        file from :func:`load_prometheus_rules`, evaluated as Prometheus's rule manager
        does (SPEC 11; ``prometheus`` passes its options: ``prometheus_compat``,
        ``group_offset``, ``lookback``, ``start``, ``end``).
    clock
        When to evaluate: :class:`SampleClock` (default) or :class:`IntervalClock`.
    incidents
        Optional ground truth (``start, end[, source, metric, point]``) to score against.
    progress
        Show a progress bar over the rules (the CLI turns it on on a terminal).
    strict
        A rule that matches no series is an error (:class:`RulesError`) instead of a
        :class:`NoSeriesWarning`.
    alertmanager
        An Alertmanager configuration (:func:`load_alertmanager`): every alert goes
        through a simulated Alertmanager instead of the rules' own channels (SPEC 12),
        and ``notifications`` lists what each integration would have received.
    texts
        Show what each page says: the alerts add ``labels`` and ``annotations`` and the
        notifications a ``summary``, rendered from the rules' templates (the default summary is
        the seed's alert message). Default: when a rule sets labels or annotations; always for
        a Prometheus rule file.

    Examples
    --------
    >>> import pandas as pd, perfalert_lab as pal
    >>> frame = pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=6, freq="1min", tz="UTC"),
    ...                       "source": "web-1", "metric": "cpu", "value": [10, 90, 95, 20, 91, 10]})
    >>> rule = pal.Rule(id="cpu-high", metric="cpu", op=">", threshold=80)
    >>> result = pal.backtest(frame, rule)
    >>> result.alerts[["fired_at", "resolved_at", "peak_value"]]
                       fired_at               resolved_at  peak_value
    0 2026-01-01 00:01:00+00:00 2026-01-01 00:03:00+00:00        95.0
    1 2026-01-01 00:04:00+00:00 2026-01-01 00:05:00+00:00        91.0
    """
    result = _backtest(frame, rules, clock=clock, incidents=incidents, duplicates=duplicates, progress=progress,
                       strict=strict, prometheus=prometheus, texts=texts)
    if alertmanager is None:
        return result
    from ..alertmanager.outputs import apply_alertmanager

    return apply_alertmanager(result, alertmanager)


def _backtest(frame: Any, rules: Any, *, clock: Clock | None, incidents: pd.DataFrame | None, duplicates: str,
              progress: bool, strict: bool, prometheus: dict[str, Any] | None, texts: bool | None = None
              ) -> BacktestResult:
    from ..rules.promfile import PromRuleFile

    if isinstance(rules, PromRuleFile):  # a Prometheus rule file: its rule manager, not ours (SPEC 11)
        if clock is not None:
            raise UsageError("clock: a Prometheus rule file is evaluated on its groups' own intervals; "
                             "leave clock out")
        from ..query.backtest import backtest_prometheus

        if _is_dask(frame):
            frame = frame.compute()
        return backtest_prometheus(frame, rules, incidents=incidents, **(prometheus or {}))
    if _is_dask(frame):
        from ..distributed import backtest_dask

        return backtest_dask(frame, rules, clock=clock, incidents=incidents, duplicates=duplicates, strict=strict,
                             texts=texts)
    clock = clock if clock is not None else SampleClock()
    if not hasattr(clock, "evaluation_times") or not hasattr(clock, "lookback_ns"):
        raise UsageError(f"clock: expected SampleClock(), IntervalClock(...) or a Clock, got {clock!r}")
    rs = RuleSet.of(rules)
    series = SeriesSet.from_frame(frame, duplicates=duplicates)  # type: ignore[arg-type]
    incidents = as_incidents(incidents)
    return _backtest_series(series, rs, clock, incidents, progress, strict=strict, texts=texts)


def unmatched_rules(rules: RuleSet, metrics: set[str], matched: dict[str, int]) -> list[str]:
    """One line for each enabled rule that matches no series (``matched[rule.id] == 0``): what
    exists (``metrics``), and a did-you-mean."""
    import difflib

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
    import warnings

    problems = unmatched_rules(rules, metrics, matched)
    if problems and strict:
        raise RulesError(problems)
    for line in problems:
        warnings.warn(line, NoSeriesWarning, stacklevel=stacklevel)


def _backtest_series(series: SeriesSet, rs: RuleSet, clock: Clock, incidents: pd.DataFrame | None,
                     progress: bool = False, strict: bool | None = None, texts: bool | None = None
                     ) -> BacktestResult:
    """The backtest of prepared series; ``strict`` not None says (warns, or raises) when a rule
    matches no series, before any table is built."""
    horizon = series.end_ns
    rules_iter: Any = rs
    if progress and len(rs) > 1:
        from tqdm import tqdm

        rules_iter = tqdm(rs, desc="backtest", unit="rule", leave=False)
    parts = []
    evaluations: dict[str, int] = {}
    watched: dict[str, set[str]] = {}
    n_series: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    shared: dict[tuple[Any, ...], Evaluations] = {}
    for rule in rules_iter:
        if not rule.enabled:
            evaluations[rule.id] = 0
            continue
        sids = match_series(series.keys, rule)
        batches = _batches(series, sids, clock)
        if len(batches) == 1:
            key = (tuple(sids.tolist()), rule.window, rule.aggregate)
            ev = shared.get(key)
            if ev is None:  # rules on the same series and window share their evaluations
                ev = evaluate_values(series, sids, rule, clock)
                shared[key] = ev
            run = run_rule(series, rule, clock, sids=sids, evaluations=ev)
            parts.append(_alert_columns(series, run, rs, horizon))
            evaluations[rule.id] = run.evaluations.n
        else:  # many evaluations: a batch of series at a time bounds the memory
            runs = [run_rule(series, rule, clock, sids=batch) for batch in batches]
            parts.append(AlertColumns.concat([_alert_columns(series, r, rs, horizon) for r in runs], rule))
            evaluations[rule.id] = sum(r.evaluations.n for r in runs)
            del runs
        watched[rule.id] = set(series.keys["source"].iloc[sids].astype("str").tolist())
        n_series[rule.id] = len(sids)
        spans[rule.id] = series.span_of(sids)
    if strict is not None:  # from backtest(): warning -> check_rules_match -> here -> backtest -> the caller
        check_rules_match(rs, set(series.keys["metric"].astype("str").tolist()), n_series, strict=strict,
                          stacklevel=4)
    alerts, notifications = apply_lifecycle(parts, rs, horizon, texts=texts)
    loaded = set(series.keys["source"].astype("str").tolist()) if incidents is not None else None
    stats = compute_stats(alerts, notifications, evaluations, watched, n_series, rs.ids,
                          (series.start_ns, series.end_ns), incidents, spans=spans, sources=loaded)
    span = (pd.Timestamp(series.start_ns, tz="UTC"), pd.Timestamp(series.end_ns, tz="UTC"))
    return BacktestResult(alerts, notifications, stats, rs, clock, span, incidents, series)


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


def _is_dask(frame: Any) -> bool:
    mod = type(frame).__module__
    return mod.startswith("dask")
