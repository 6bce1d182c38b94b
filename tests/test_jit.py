"""Small inputs run the engine's kernels as plain Python (no numba import, no compile); the same
code compiled must give the same tables, and the first backtest in a fresh process stays cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

import perfalert_lab as pal
from perfalert_lab import _jit

RULES = """
version: 1
rules:
  - {id: cpu, metric: cpu, threshold: 85, for: 3m, clear: 80, cooldown: 10m, keep_firing_for: 2m,
     notify: [log, sms], repeat_interval: 30m, escalation: {delay: 10m, max: 2}}
  - {id: lat, metric: latency_ms, threshold: 300, window: 5m, aggregate: p90}
  - {id: lat-mean, metric: latency_ms, op: "<", threshold: 120, window: 10m, aggregate: mean}
  - {id: spikes, metric: cpu, mode: sample, threshold: 95, cooldown: 5m}
channels: {sms: {max_per_hour: 2}}
responders: {ack_after: {distribution: lognormal, median: 8m, sigma: 0.8, seed: 1}, resolve_after: 20m}
"""


@pytest.mark.parametrize("clock", [pal.SampleClock(), pal.IntervalClock("1m", lookback="5m")], ids=str)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plain_python_kernels_equal_the_compiled_ones(clock: pal.Clock, seed: int) -> None:
    frame, incidents = pal.datasets.synthetic_fleet(hosts=4, days=1, seed=seed)
    rules = pal.parse_rules(RULES)
    previous = _jit.set_mode("always")
    try:
        compiled = pal.backtest(frame, rules, clock=clock, incidents=incidents)
        _jit.set_mode("never")
        plain = pal.backtest(frame, rules, clock=clock, incidents=incidents)
    finally:
        _jit.set_mode(previous)
    assert len(compiled.alerts) > 10
    for a, b in ((compiled.alerts, plain.alerts), (compiled.notifications, plain.notifications),
                 (compiled.stats, plain.stats)):
        pd.testing.assert_frame_equal(a, b)


FIRST_CALL = r"""
import json, sys, time
import numpy as np, pandas as pd
import perfalert_lab as pal
frame = pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=2000, freq="1min", tz="UTC"),
                      "source": "web-1", "metric": "cpu", "value": np.random.default_rng(0).uniform(0, 100, 2000)})
rule = pal.Rule(id="cpu", metric="cpu", threshold=80, for_="3m", clear=75, cooldown="30m")
t0 = time.perf_counter(); first = pal.backtest(frame, rule); t1 = time.perf_counter()
small_numba = "numba" in sys.modules
big = pd.concat([frame.assign(source=f"h{i}") for i in range(20)], ignore_index=True)
pal.backtest(big, rule)
print(json.dumps({"first_s": t1 - t0, "small_numba": small_numba, "big_numba": "numba" in sys.modules,
                  "alerts": first.alerts.to_json()}))
"""


def run_fresh(mode: str) -> dict:
    env = {**os.environ, "PERFALERT_JIT": mode}
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_small_first_backtest_does_not_load_numba_and_a_big_one_compiles() -> None:
    auto = run_fresh("auto")
    assert not auto["small_numba"], "a small backtest imported numba"
    assert auto["big_numba"], "40k evaluations should run compiled"
    assert auto["alerts"] == run_fresh("always")["alerts"]
