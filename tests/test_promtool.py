"""Our interval clock against Prometheus' own rule evaluation (promtool 2.42).

Random whole-minute series with gaps shorter and longer than the lookback, random
operators, ``for``, ``keep_firing_for`` and window aggregates: at every evaluation
the state of every alert (pending or firing) and its ``activeAt`` must equal
promtool's. promtool 2.42 selects samples in ``[t - 5m, t]`` (left-closed), ours in
``(t - lookback, t]``; on whole-minute data a lookback (and window) one second longer
selects the same samples, so we compare with those rather than bend our semantics.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from promtool_oracle import need_promtool, promtool_states

import perfalert_lab as pal

pytestmark = pytest.mark.promtool
PROM_AGG = {"mean": "avg_over_time", "min": "min_over_time", "max": "max_over_time", "sum": "sum_over_time",
            "count": "count_over_time", "median": "quantile_over_time"}


def our_states(frame: pd.DataFrame, rule: pal.Rule) -> dict[tuple[int, str], tuple[str, int]]:
    """Per tick and source: ('pending'|'firing', activeAt) from our alerts table."""
    clock = pal.IntervalClock("1m", lookback="5m1s")
    result = pal.backtest(frame, rule, clock=clock)
    end = int(result.span[1].value // 10**9)
    out = {}
    for a in result.alerts.itertuples():
        p = a.pending_since.value // 10**9
        f = a.fired_at.value // 10**9
        r = end + 1 if pd.isna(a.resolved_at) else a.resolved_at.value // 10**9
        for t in range(p, r, 60):
            out[(t, a.source)] = ("pending" if t < f else "firing", p)
    return out


def frame_of(values: dict[str, list[int | None]]) -> pd.DataFrame:
    rows = [(pd.Timestamp(i * 60, unit="s", tz="UTC"), src, "m", float(v))
            for src, vals in values.items() for i, v in enumerate(vals) if v is not None]
    return pd.DataFrame(rows, columns=["timestamp", "source", "metric", "value"])


def notation(vals: list[int | None]) -> str:
    return " ".join("_" if v is None else str(v) for v in vals)


def compare(values: dict[str, list[int | None]], rule: pal.Rule, expr: str | None = None,
            rules_text: str | None = None) -> None:
    """promtool's timeline for ``expr`` (or a whole rule file) equals our interval clock's for ``rule``."""
    frame = frame_of(values)
    if frame.empty:
        return
    last_tick = int(frame["timestamp"].max().value // 10**9) // 60
    if rules_text is None:
        rules_text = "groups:\n- name: g\n  rules:\n  - alert: A\n" + f"    expr: '{expr}'\n" + \
            f"    for: {int(rule.for_.total_seconds())}s\n" + \
            f"    keep_firing_for: {int(rule.keep_firing_for.total_seconds())}s\n"
    with tempfile.TemporaryDirectory() as tmp:
        theirs = promtool_states(Path(tmp), rules_text, {f'm{{source="{s}"}}': notation(v) for s, v in values.items()},
                                 last_tick + 1)
    # an alert that stays pending and never fires is no alert in our tables: leave those out
    fired = {(src, at) for (_, src), (state, at) in theirs.items() if state == "firing"}
    theirs = {k: v for k, v in theirs.items() if (k[1], v[1]) in fired}
    ours = our_states(frame, rule)
    assert ours == theirs


def test_promtool_is_used_in_ci() -> None:
    need_promtool()


def test_literal_for_and_keep_firing_for_match_promtool() -> None:
    need_promtool()
    vals = {"s1": [0, 9, 9, 9, 0, 0, 0, None, None, None, None, None, None, None, 9, 9, 9, 9],
            "s2": [9, 9, None, None, None, None, None, None, 9, 0, 9, 0, 0, 0, 0, 0, 0, 0]}
    rule = pal.Rule(id="r", metric="m", op=">", threshold=5, for_="2m", keep_firing_for="1m")
    compare(vals, rule, "m > 5")


series_values = st.lists(st.one_of(st.integers(0, 10), st.none(), st.none()), min_size=3, max_size=30)


@settings(max_examples=int(os.environ.get("PERFALERT_PROMTOOL_EXAMPLES", 300)))
@given(
    values=st.dictionaries(st.sampled_from(["s1", "s2"]), series_values, min_size=1, max_size=2),
    op=st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    threshold=st.integers(0, 10),
    for_m=st.integers(0, 4),
    keep_m=st.integers(0, 4),
    window=st.one_of(st.none(), st.tuples(st.sampled_from(sorted(PROM_AGG)), st.integers(1, 4))),
)
def test_interval_clock_equals_promtool(values: dict, op: str, threshold: int, for_m: int, keep_m: int,
                                        window: tuple[str, int] | None) -> None:
    need_promtool()
    kw: dict = {"id": "r", "metric": "m", "op": op, "threshold": threshold, "for_": f"{for_m}m",
                "keep_firing_for": f"{keep_m}m"}
    selector = "m"
    if window:
        agg, w = window
        kw.update(window=f"{w}m1s", aggregate=agg)
        selector = f"{PROM_AGG[agg]}(m[{w}m])" if agg != "median" else f"quantile_over_time(0.5, m[{w}m])"
    compare(values, pal.Rule(**kw), f"{selector} {op} {threshold}")
