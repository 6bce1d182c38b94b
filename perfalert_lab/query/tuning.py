"""Tuning a Prometheus alert rule (SPEC 11): sweep its threshold, ``for`` and ``keep_firing_for``,
and write the chosen values back into the rule file.

The threshold is the number of the expression's top-level comparison
(``<expression> > 0.05``): the expression's other side is evaluated once, at every tick
of the rule's group, and every combination only re-runs the comparison and the alert
state machine. :func:`update_prometheus_rule` edits the file in place of the old
values (comments, key order and the rest of the expression kept).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._time import format_duration, parse_duration, to_ns
from ..errors import RulesError, UsageError
from ..frames import as_incidents
from ..rules.promfile import PromRule, PromRuleFile
from .alerting import AlertTimeline, _alert_instances, alert_states, evaluate_rule_file, rule_ticks, watched_sources
from .backtest import _source, tables_from_timelines, threshold_of
from .evaluate import Evaluator, Vector
from .store import store_from_frame

__all__ = ["sweep_prometheus", "update_prometheus_rule"]

_NS_PER_MS = 1_000_000
_COMPARE = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal, "==": np.equal,
            "!=": np.not_equal}
_TAIL = re.compile(r"(?P<op>>=|<=|==|!=|>|<)(?P<space>\s*)(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def _ms(value: Any) -> int:
    return to_ns(parse_duration(value)) // _NS_PER_MS


def sweep_prometheus(frame: Any, rule: PromRule | str, rules: PromRuleFile, *, threshold: Any = None,
                     for_: Any = None, keep_firing_for: Any = None, incidents: pd.DataFrame | None = None,
                     prometheus_compat: str = "3", lookback: Any = "5m") -> pd.DataFrame:
    """Statistics of a Prometheus alert rule for every combination of the given values."""
    from . import _compat

    name = rule if isinstance(rule, str) else rule.name
    try:
        rule = rules.rule(name)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    if rule.kind != "alert":
        raise UsageError(f"sweep: {name!r} is a recording rule; sweep an alert rule")
    group = next(g for g in rules.groups if rule in g.rules)
    grid = {k: list(v) for k, v in (("threshold", threshold), ("for", for_), ("keep_firing_for", keep_firing_for))
            if v is not None}
    if not grid:
        raise UsageError("sweep: give at least one of threshold, for_, keep_firing_for")
    compat = _compat(prometheus_compat)
    store = store_from_frame(frame)
    if store.first_ms is None:
        raise UsageError("sweep: the frame holds no samples")
    end_ms = int(store.last_ms or 0)
    lookback_ms = _ms(lookback)
    # the recording rules, as the backtest writes them, for the rules that read them
    records = PromRuleFile(tuple(replace(g, rules=tuple(r for r in g.rules if r.kind == "record"))
                                 for g in rules.groups), rules.path)  # the alert rules' states are not needed here
    _, full = evaluate_rule_file(store, records, int(store.first_ms), end_ms, compat=compat, lookback_ms=lookback_ms)
    ticks = rule_ticks(group, int(store.first_ms), end_ms)
    import promql_parser as pp

    node: Any = pp.parse(rule.expr)
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    info = threshold_of(rule.expr)
    ev = Evaluator(full, ticks - group.query_offset_ms, lookback_ms=lookback_ms, compat=compat,
                   subquery_step_ms=group.interval_ms, text=rule.expr)
    if "threshold" in grid:
        if "threshold" not in info or (node.modifier is not None and node.modifier.return_bool):
            raise UsageError(f"sweep: rule {name!r}: threshold= needs an expression '<expression> <op> <number>'; "
                             f"{rule.expr!r} has no number in its top-level comparison")
        side = ev.eval(node.lhs)
        if not isinstance(side, Vector):
            raise UsageError(f"sweep: rule {name!r}: the left side of the comparison is not a vector")
        labels, series, present, values = _alert_instances(rule, side, f"{rules.path}: group {group.name!r}")
    else:
        out = ev.eval(node)
        assert isinstance(out, Vector)
        labels, series, present, values = _alert_instances(rule, out, f"{rules.path}: group {group.name!r}")
    incidents = as_incidents(incidents)
    sources = {_source(dict(lb)) for lb in full.labels}
    weeks = max((end_ms - int(store.first_ms)) / 1000 / 604800, 1e-9)
    names = list(grid)
    watched = watched_sources(full, rule.expr)
    rows = []
    for combo in itertools.product(*(grid[k] for k in names)):
        chosen = dict(zip(names, combo, strict=True))
        cond = present
        expr = rule.expr
        if "threshold" in chosen:
            with np.errstate(invalid="ignore"):
                cond = present & _COMPARE[info["op"]](values, float(chosen["threshold"]))
            expr = _with_threshold(rule.expr, float(chosen["threshold"]))
        for_ms = _ms(chosen["for"]) if "for" in chosen else rule.for_ms
        keep_ms = _ms(chosen["keep_firing_for"]) if "keep_firing_for" in chosen else rule.keep_firing_for_ms
        state, active_at = alert_states(cond, ticks, for_ms, keep_ms, group.limit)
        variant = replace(rule, expr=expr, for_ms=for_ms, keep_firing_for_ms=keep_ms)
        tl = AlertTimeline(variant, group, ticks, labels, series, state, active_at, values, watched)
        alerts, _, stats = tables_from_timelines([tl], [name], (int(store.first_ms), end_ms), incidents, sources)
        row: dict[Any, Any] = {k: (float(v) if k == "threshold" else format_duration(parse_duration(v)))
                               for k, v in chosen.items()}
        row.update(stats.iloc[0].to_dict())
        row["alerts_per_week"] = float(row["alerts"]) / weeks
        pages = int((alerts["severity"] == "page").sum()) if len(alerts) else 0
        row["pages"] = pages
        row["pages_per_week"] = pages / weeks
        rows.append(row)
    return pd.DataFrame(rows)


def _with_threshold(expr: str, value: float) -> str:
    m = _TAIL.search(expr)
    if m is None:
        raise UsageError(f"cannot find the threshold number at the end of {expr!r}")
    text = repr(float(value))
    text = text[:-2] if text.endswith(".0") else text
    return expr[:m.start("num")] + text + expr[m.end("num"):]


def update_prometheus_rule(path: str | Path, name: str, *, threshold: float | None = None, for_: Any = None,
                           keep_firing_for: Any = None, out: str | Path | None = None) -> Path:
    """Write new values of alert rule ``name`` into the rule file (comments and key order kept).

    Only the changed values are touched: the number of the expression's top-level
    comparison, ``for`` and ``keep_firing_for``. Written atomically to ``out``
    (default: the file itself); the result loads as the same file with the new values.
    """
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    from .._io import atomic_write_text
    from ..rules.promfile import parse_prometheus_rules

    src = Path(path)
    original = src.read_text(encoding="utf-8")
    _, indent, block_indent = load_yaml_guess_indent(original)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=block_indent or 2, sequence=indent or 2, offset=block_indent or 0)
    doc = yaml.load(original)
    target = None
    for group in (doc or {}).get("groups") or []:
        for rule in group.get("rules") or []:
            if rule.get("alert") == name:
                target = rule
    if target is None:
        raise RulesError(f"{src}: no alert rule named {name!r}")
    if threshold is not None:
        style = type(target["expr"])  # a folded or quoted scalar stays folded or quoted
        new = _with_threshold(str(target["expr"]), float(threshold))
        target["expr"] = new if style is str else style(new)
    for key, value in (("for", for_), ("keep_firing_for", keep_firing_for)):
        if value is None:
            continue
        text = format_duration(parse_duration(value))
        if key in target:
            target[key] = text
        else:  # after expr (for), after for or expr (keep_firing_for): where people write them
            keys = list(target.keys())
            after = "for" if key == "keep_firing_for" and "for" in keys else "expr"
            target.insert(keys.index(after) + 1, key, text)
    buf = io.StringIO()
    yaml.dump(doc, buf)
    text = buf.getvalue()
    parse_prometheus_rules(text, name=str(out or src))  # never write a file that does not load
    return atomic_write_text(Path(out or src), text)
