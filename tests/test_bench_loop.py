"""The plain-Python loop that `make bench` compares the pipeline with has the pipeline's semantics
(else the ratio would compare different work): same alerts, same instants, same peaks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import perfalert_lab as pal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


def test_the_benchmarks_plain_loop_finds_the_engines_alerts() -> None:
    from run import make_frame, python_backtest, rules_for  # bench/run.py

    frame = make_frame(60_000, series=3, seed=5)
    rules = rules_for("stateful")
    loop = python_backtest(frame, rules)
    alerts = pal.backtest(frame, pal.RuleSet(tuple(rules))).alerts
    assert len(alerts) > 50
    ours = sorted((a.rule_id, a.source, a.pending_since.value, a.fired_at.value,
                   None if a.resolved_at is pd.NaT else a.resolved_at.value, round(a.peak_value, 9))
                  for a in alerts.itertuples())
    theirs = sorted((rid, src, p, f, r, round(pk, 9)) for rid, src, p, f, r, pk in loop)
    assert ours == theirs
    assert np.isfinite([a[-1] for a in theirs]).all()
