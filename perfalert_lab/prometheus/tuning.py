"""Tuning a Prometheus alert rule (SPEC 11): sweep its threshold, ``for`` and ``keep_firing_for``,
and write the chosen values back into the rule file.

The threshold is the number of the expression's top-level comparison
(``<expression> > 0.05``): the expression's other side is evaluated once, at every tick
of the rule's group, and every combination only re-runs the comparison and the alert
state machine. :func:`perfalert_lab.rules.writeback.update_prometheus_rule` edits the file in place of the old
values (comments, key order and the rest of the expression kept).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._time import format_duration, parse_duration, to_ns
from ..clock import IntervalClock
from ..errors import UsageError
from ..frames import as_incidents
from ..promql_engine import compat_version
from ..promql_engine.evaluate import Evaluator, Vector
from ..promql_engine.store import store_from_frame
from ..result import BacktestResult
from ..rules.promfile import PromRule, PromRuleFile, comparison_of
from ..rules.writeback import update_prometheus_rule, updated_prometheus_text
from ..stats import notification_pages
from .alerting import (
    _FILTERS,
    AlertTimeline,
    _alert_instances,
    alert_states,
    compared_side,
    evaluate_rule_file,
    rule_ticks,
    top_expression,
    watched_sources,
)
from .backtest import _expression_series, alert_source, tables_from_timelines

__all__ = ["PromRuleReplay", "sweep_prometheus"]


_NS_PER_MS = 1_000_000
def _ms(value: Any) -> int:
    return to_ns(parse_duration(value)) // _NS_PER_MS


class PromRuleReplay:
    """One Prometheus alert rule over history, prepared once for many variants (the sweep and the
    tuner): the recording rules it reads and the left side of its top-level comparison (or, without
    a threshold, the whole expression) are evaluated once; :meth:`run` re-runs only the comparison
    and the alert state machine for a threshold, ``for`` and ``keep_firing_for``."""

    def __init__(self, frame: Any, rule: PromRule | str, rules: PromRuleFile, *,
                 incidents: pd.DataFrame | None = None, prometheus_compat: str = "3", lookback: Any = "5m",
                 caller: str = "sweep") -> None:
        name = rule if isinstance(rule, str) else rule.name
        try:
            rule = rules.rule(name)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        if rule.kind != "alert":
            raise UsageError(f"{caller}: {name!r} is a recording rule; {caller} an alert rule")
        self.rule, self.rules, self.name = rule, rules, name
        self.group = next(g for g in rules.groups if rule in g.rules)
        compat = compat_version(prometheus_compat)
        store = store_from_frame(frame)
        if store.first_ms is None:
            raise UsageError(f"{caller}: the frame holds no samples")
        self.span_ms = (int(store.first_ms), int(store.last_ms or 0))
        lookback_ms = _ms(lookback)
        # the recording rules, as the backtest writes them, for the rules that read them
        records = PromRuleFile(tuple(replace(g, rules=tuple(r for r in g.rules if r.kind == "record"))
                                     for g in rules.groups), rules.path)  # the alert rules' states are not needed
        _, full = evaluate_rule_file(store, records, self.span_ms[0], self.span_ms[1], compat=compat,
                                     lookback_ms=lookback_ms)
        self.ticks = rule_ticks(self.group, *self.span_ms)
        split = compared_side(rule)  # None for '> bool 5' (0 or 1 for every series: no threshold to move)
        self.op: str | None = rule.comparison.get("op")
        self.threshold: float | None = split[2] if split is not None else None
        ev = Evaluator(full, self.ticks - self.group.query_offset_ms, lookback_ms=lookback_ms, compat=compat,
                       subquery_step_ms=self.group.interval_ms, text=rule.expr)
        where = f"{rules.path}: group {self.group.name!r}"
        out = ev.eval(split[0] if split is not None else top_expression(rule.expr))
        if not isinstance(out, Vector):
            raise UsageError(f"{caller}: rule {name!r}: the left side of the comparison is not a vector")
        self.labels, self.series, self.present, self.values, _ = _alert_instances(rule, out, where)
        self.incidents = as_incidents(incidents)
        self.sources = {alert_source(dict(lb)) for lb in full.labels}
        self.watched = watched_sources(full, rule.expr)
        self.store = full
        self.compat, self.lookback_ms = compat, lookback_ms
        self._drawn: Any = None
        self.metric = name  # the timeline draws the compared value under the rule's name
        finite = self.values[self.present & np.isfinite(self.values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if self.threshold is not None:
            lo, hi = min(lo, self.threshold), max(hi, self.threshold)
        self.value_range = (lo, hi)
        self.source_names = sorted({alert_source(dict(lb)) or name for lb in self.labels}) or [name]
        self.save_as = str(rules.path or f"{name}.rules.yml")

    # the tuning model (as :class:`perfalert_lab.tuning.RuleReplay` for our rules)
    durations = ("for", "keep_firing_for")
    has_clear = False
    button_labels = ("write to", "Show rule file", "Write back")

    def initial(self) -> dict[str, Any]:
        """The rule's own values, by :meth:`run`'s keyword."""
        out: dict[str, Any] = {"for_": format_duration(parse_duration(f"{self.rule.for_ms}ms")),
                               "keep_firing_for": format_duration(parse_duration(f"{self.rule.keep_firing_for_ms}ms"))}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out

    def span_of(self, source: str, result: Any) -> tuple[int, int]:
        """The span of the value the rule compares on that series (else the whole input's)."""
        drawn = result.series
        if drawn is not None:
            sids = np.flatnonzero((drawn.keys["source"] == source).to_numpy(dtype=bool))
            if len(sids):
                return drawn.span_of(sids)
        return (result.span[0].value, result.span[1].value)

    def curve(self, thresholds: Any, **values: Any) -> pd.DataFrame:
        """The sweep of the variant's threshold, its ``for`` and ``keep_firing_for`` fixed."""
        values = {**self.initial(), **values}
        return self.sweep(threshold=list(thresholds), for_=[values["for_"]],
                          keep_firing_for=[values["keep_firing_for"]])

    def describe(self, **values: Any) -> str:
        rule = self.variant(**values)
        text = f"{rule.expr}"
        for key, ms in (("for", rule.for_ms), ("keep_firing_for", rule.keep_firing_for_ms)):
            if ms:
                text += f" {key} {format_duration(parse_duration(f'{ms}ms'))}"
        return text

    def changed(self, **values: Any) -> dict[str, Any]:
        """The values that differ from the rule file's (only those are written back)."""
        rule, out = self.rule, {}
        if values.get("threshold") is not None and values["threshold"] != self.threshold:
            out["threshold"] = values["threshold"]
        if values.get("for_") is not None and _ms(values["for_"]) != rule.for_ms:
            out["for_"] = values["for_"]
        if values.get("keep_firing_for") is not None and _ms(values["keep_firing_for"]) != rule.keep_firing_for_ms:
            out["keep_firing_for"] = values["keep_firing_for"]
        return out

    def text(self, **values: Any) -> str:
        """The user's rule file with the variant's values (nothing else changed)."""
        if self.rules.path is None:
            raise UsageError("tune: this rule file was not read from a file, so there is no text to change")
        return updated_prometheus_text(self.rules.path, self.name, **self.changed(**values))

    def save(self, path: Any, **values: Any) -> Path:
        """Write the variant's values into the rule file at ``path``; the path written."""
        if self.rules.path is None:
            raise UsageError("tune: this rule file was not read from a file; write it with "
                             "perfalert_lab.rules.writeback.update_prometheus_rule")
        return update_prometheus_rule(self.rules.path, self.name, out=path, **self.changed(**values))

    def variant(self, threshold: float | None = None, for_: Any = None, keep_firing_for: Any = None) -> PromRule:
        """The rule with these values (``None`` keeps the rule's own)."""
        if threshold is not None:
            self._need_threshold()
        return self.rule.replace(threshold=threshold, for_=for_, keep_firing_for=keep_firing_for)

    def _need_threshold(self) -> None:
        if self.threshold is None:
            raise UsageError(f"rule {self.name!r}: threshold= needs an expression '<expression> <op> <number>'; "
                             f"{self.rule.expr!r} has no number in its top-level comparison")

    def timeline(self, variant: PromRule) -> AlertTimeline:
        """The variant's alert states at every tick."""
        cond = self.present  # without a threshold, the values are the whole expression's: present = active
        if self.threshold is not None:
            with np.errstate(invalid="ignore"):
                bound = float(comparison_of(variant.expr)["threshold"])
                cond = self.present & _FILTERS[str(self.op)](self.values, bound)
        state = alert_states(cond, self.ticks, variant.for_ms, variant.keep_firing_for_ms, self.group.limit)
        # the compared side's values, read where the variant's alert has one
        return AlertTimeline(variant, self.group, self.ticks, self.labels, self.series, state, self.values, cond,
                             self.watched)

    def tables(self, variant: PromRule) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The alerts, notifications and statistics of the variant (SPEC 5 and 11)."""
        return tables_from_timelines([self.timeline(variant)], [self.name], self.span_ms, self.incidents,
                                     self.sources, compared={self.name: len(self.labels)})

    def run(self, threshold: float | None = None, for_: Any = None, keep_firing_for: Any = None) -> Any:
        """A :class:`BacktestResult` of the variant alone (its series: the compared value per source)."""
        variant = self.variant(threshold, for_, keep_firing_for)
        alerts, notifications, stats = self.tables(variant)
        if self._drawn is None:  # the compared value does not change with the threshold: computed once
            # drawn wherever the compared side has a value, as the backtest draws it
            whole = replace(self.timeline(variant), present=self.present)
            self._drawn, _ = _expression_series([whole], self.store, self.compat, self.lookback_ms)
        rules = PromRuleFile(tuple(replace(g, rules=tuple(variant if r is self.rule else r for r in g.rules))
                                   for g in self.rules.groups), self.rules.path)
        span = (pd.Timestamp(self.span_ms[0] * _NS_PER_MS, tz="UTC"), pd.Timestamp(self.span_ms[1] * _NS_PER_MS,
                                                                                   tz="UTC"))
        clock = IntervalClock(format_duration(parse_duration(f"{self.group.interval_ms}ms")))
        return BacktestResult(alerts, notifications, stats, rules, clock, span, self.incidents, self._drawn)

    def sweep(self, *, threshold: Any = None, for_: Any = None, keep_firing_for: Any = None) -> pd.DataFrame:
        """Statistics for every combination of the given values (see :func:`sweep_prometheus`)."""
        grid = {k: list(v) for k, v in (("threshold", threshold), ("for", for_), ("keep_firing_for",
                                                                                   keep_firing_for))
                if v is not None}
        if not grid:
            raise UsageError("sweep: give at least one of threshold, for_, keep_firing_for")
        if "threshold" in grid:
            self._need_threshold()
        # the rule's own span (first to last evaluation), as its statistics' alerts_per_day (SPEC 5)
        weeks = max(float(self.ticks[-1] - self.ticks[0]) / 1000 / 604800, 1e-9) if len(self.ticks) else 1e-9
        names = list(grid)
        rows = []
        for combo in itertools.product(*(grid[k] for k in names)):
            chosen = dict(zip(names, combo, strict=True))
            variant = self.variant(chosen.get("threshold"), chosen.get("for"), chosen.get("keep_firing_for"))
            alerts, notes, stats = self.tables(variant)
            row: dict[Any, Any] = {k: (float(v) if k == "threshold" else format_duration(parse_duration(v)))
                                   for k, v in chosen.items()}
            row.update(stats.iloc[0].to_dict())
            row["alerts_per_week"] = float(row["alerts"]) / weeks
            pages = int(notification_pages(notes, alerts).sum())  # SPEC 5's one meaning of a page
            row["pages"] = pages
            row["pages_per_week"] = pages / weeks
            rows.append(row)
        table = pd.DataFrame(rows)
        # what recommend() needs to hand back the tuned rule (as for our rules' sweep)
        table.attrs["perfalert_sweep"] = {"rule": self.rule, "params": names}
        return table


def sweep_prometheus(frame: Any, rule: PromRule | str, rules: PromRuleFile, *, threshold: Any = None,
                     for_: Any = None, keep_firing_for: Any = None, incidents: pd.DataFrame | None = None,
                     prometheus_compat: str = "3", lookback: Any = "5m") -> pd.DataFrame:
    """Statistics of a Prometheus alert rule for every combination of the given values."""
    if threshold is None and for_ is None and keep_firing_for is None:
        raise UsageError("sweep: give at least one of threshold, for_, keep_firing_for")
    replay = PromRuleReplay(frame, rule, rules, incidents=incidents, prometheus_compat=prometheus_compat,
                            lookback=lookback)
    return replay.sweep(threshold=threshold, for_=for_, keep_firing_for=keep_firing_for)
