"""Sweep benchmarks: thousands of combinations against looping single backtests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import perfalert_lab as pal
from perfalert_lab.frames import SeriesSet


def bench_sweeps(record: Callable[..., None], median_time: Callable[..., float], make_frame: Callable[..., object],
                 quick: bool = False) -> None:
    frame = make_frame(1_000_000, series=10)
    series = SeriesSet.from_frame(frame)
    rule = pal.Rule(id="cpu", metric="cpu", threshold=80, for_="3m", cooldown="30m", notify=("log", "sms"))
    thresholds = np.round(np.linspace(60, 95, 1000), 4)
    pal.sweep(series, rule, threshold=thresholds[:5])  # compile
    t = median_time(lambda: pal.sweep(series, rule, threshold=thresholds), 1 if quick else 3)
    # the same combinations as separate backtests, timed on a sample and scaled
    sample = thresholds[::100]
    t_loop = median_time(lambda: [pal.backtest(frame, rule.replace(threshold=x)) for x in sample], 1) * (
        len(thresholds) / len(sample))
    record("sweep 1000 thresholds x 1M points", combos=len(thresholds), seconds=t, combos_per_s=len(thresholds) / t,
           loop_of_backtests_s=t_loop, speedup=t_loop / t)
    grid = dict(threshold=thresholds, for_=["0s", "3m", "10m"], cooldown=["0s", "30m", "2h"])
    n = len(thresholds) * 9
    t2 = median_time(lambda: pal.sweep(series, rule, **grid), 1)
    record("sweep 1000 thresholds x 3 for x 3 cooldown x 1M", combos=n, seconds=t2, combos_per_s=n / t2,
           loop_of_backtests_s=t_loop * 9, speedup=t_loop * 9 / t2)
