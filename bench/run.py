"""perfalert_lab benchmarks: print a table (and save it as JSON with --save).

Every number is a median over repeats measured in this one run, so ratios compare
like with like on the same (shared, noisy) machine. Nothing here fails a build.

    python bench/run.py                 # full: 1M and 10M points
    python bench/run.py --quick         # 1M only, fewer repeats
    python bench/run.py --save bench/results/latest.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import perfalert_lab as pal
from perfalert_lab.backtesting import backtest_series
from perfalert_lab.engine.conditions import conditions, evaluate_values, match_series
from perfalert_lab.engine.episodes import run_episodes
from perfalert_lab.engine.pipeline import run_rule
from perfalert_lab.engine.reference import reference_alerts
from perfalert_lab.frames import SeriesSet

ROWS: list[dict] = []


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def record(name: str, **values: object) -> None:
    ROWS.append({"benchmark": name, **values})
    shown = "  ".join(f"{k}={_fmt(v)}" for k, v in values.items())
    print(f"{name:<46} {shown}", flush=True)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def make_frame(points: int, series: int, seed: int = 0) -> pd.DataFrame:
    """``points`` samples over ``series`` series, one a minute, a random walk with bursts."""
    rng = np.random.default_rng(seed)
    per = points // series
    t0 = np.datetime64("2026-01-01T00:00:00", "ns").astype(np.int64)
    times = t0 + np.arange(per, dtype=np.int64) * 60 * 10**9
    vals = 50 + np.cumsum(rng.normal(0, 1.5, (series, per)), axis=1) % 40 + (rng.random((series, per)) < 0.01) * 45
    frame = pd.DataFrame({
        "timestamp": pd.DatetimeIndex(np.tile(times, series).view("datetime64[ns]")).tz_localize("UTC"),
        "source": pd.array(np.repeat([f"host-{i:04d}" for i in range(series)], per), dtype="str"),
        "metric": pd.array(np.full(per * series, "cpu"), dtype="str"),
        "value": vals.ravel(),
    })
    return frame


def rules_for(kind: str) -> list[pal.Rule]:
    base = [("t70", 70), ("t75", 75), ("t80", 80), ("t85", 85), ("t90", 90)]
    if kind == "plain":
        return [pal.Rule(id=i, metric="cpu", threshold=t) for i, t in base]
    if kind == "stateful":
        return [pal.Rule(id=i, metric="cpu", threshold=t, clear=t - 5, for_="3m", keep_firing_for="2m",
                         cooldown="30m") for i, t in base]
    if kind == "window":
        aggs = ["mean", "max", "min", "sum", "p95"]
        return [pal.Rule(id=i, metric="cpu", threshold=t, window="5m", aggregate=a, for_="2m")
                for (i, t), a in zip(base, aggs, strict=True)]
    raise ValueError(kind)


def engine_only(series: SeriesSet, rules: list[pal.Rule], clock: pal.Clock) -> int:
    """The engine as a backtest runs it: values once per (series, window), then each rule's state machine."""
    n = 0
    shared: dict[tuple, object] = {}
    for r in rules:
        sids = match_series(series.keys, r)
        key = (r.window, r.aggregate)
        if key not in shared:
            shared[key] = evaluate_values(series, sids, r, clock)
        n += run_rule(series, r, clock, sids=sids, evaluations=shared[key]).evaluations.n  # type: ignore[arg-type]
    return n


def one_rule_with_peaks(series: SeriesSet, rule: pal.Rule) -> int:
    """One rule's alerts with their peak values (tracked by the kernel): what the plain loop computes too."""
    eps = run_rule(series, rule, pal.SampleClock()).episodes
    assert eps.peak is not None
    return len(eps)


def python_loop(times: list[int], values: list[float], thr: float, clear: float, for_ns: int, keep_ns: int,
                cooldown_ns: int) -> list[tuple]:
    """A tight plain-Python loop of the same episode semantics (one series), with peak values."""
    out = []
    state = 0
    ps = fired = 0
    last = None
    blocked = None
    keep = None
    peak = 0.0
    for t, v in zip(times, values, strict=True):
        if state == 2:
            if v > peak:
                peak = v
            if v > clear:
                keep = None
                continue
            if keep_ns:
                if keep is None:
                    keep = t
                if t - keep < keep_ns:
                    continue
            out.append((ps, fired, t, peak))
            state = 0
            keep = None
            continue
        active = v > thr
        if state == 0:
            if not active:
                continue
            state, ps, blocked, peak = 1, t, None, v
        elif not active:
            if blocked is not None:
                out.append((ps, blocked, t, peak))
            state = 0
            continue
        if v > peak:
            peak = v
        if t - ps >= for_ns:
            if last is not None and t < last + cooldown_ns:
                if blocked is None:
                    blocked = t
            else:
                state, fired, last, keep = 2, t, t, None
    return out


def python_backtest(frame, rules):
    """A tight plain-Python loop over the frame's rows: per rule, per (source, metric) state in a dict."""
    ts = frame["timestamp"].astype("int64").tolist()
    src = frame["source"].tolist()
    met = frame["metric"].tolist()
    val = frame["value"].tolist()
    out = []
    for r in rules:
        thr, clear = r.threshold, r.clear
        for_ns, keep_ns, cool_ns = [int(d.total_seconds() * 1e9) for d in (r.for_, r.keep_firing_for, r.cooldown)]
        states = {}
        for t, s, m, v in zip(ts, src, met, val, strict=True):
            if m != r.metric:
                continue
            st = states.get(s)
            if st is None:
                st = states[s] = [0, 0, 0, None, None, None, 0.0]  # state, pending, fired, last, blocked, keep, peak
            state = st[0]
            if state == 2:
                if v > st[6]:
                    st[6] = v
                if v > clear:
                    st[5] = None
                    continue
                if keep_ns:
                    if st[5] is None:
                        st[5] = t
                    if t - st[5] < keep_ns:
                        continue
                out.append((r.id, s, st[1], st[2], t, st[6]))
                st[0] = 0
                st[5] = None
                continue
            if not v > thr:
                if state == 1:
                    if st[4] is not None:
                        out.append((r.id, s, st[1], st[4], t, st[6]))
                    st[0] = 0
                continue
            if state == 0:
                st[0], st[1], st[4], st[6] = 1, t, None, v
            elif v > st[6]:
                st[6] = v
            if t - st[1] >= for_ns:
                if st[3] is not None and t < st[3] + cool_ns:
                    if st[4] is None:
                        st[4] = t
                else:
                    st[0], st[2], st[3], st[5] = 2, t, t, None
        for s, st in states.items():  # the data ends: open alerts, and a waiting one is suppressed
            if st[0] == 2:
                out.append((r.id, s, st[1], st[2], None, st[6]))
            elif st[0] == 1 and st[4] is not None:
                out.append((r.id, s, st[1], st[4], None, st[6]))
    return out


FIRST_CALL = r"""
import json, time
import numpy as np, pandas as pd
import perfalert_lab as pal
frame = pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=2000, freq="1min", tz="UTC"),
                      "source": "web-1", "metric": "cpu", "value": np.random.default_rng(0).uniform(0, 100, 2000)})
rule = pal.Rule(id="cpu", metric="cpu", threshold=80, for_="3m", clear=75, cooldown="30m")
t0 = time.perf_counter(); pal.backtest(frame, rule); first = time.perf_counter() - t0
t0 = time.perf_counter(); pal.backtest(frame, rule); warm = time.perf_counter() - t0
print(json.dumps({"first": first, "warm": warm}))
"""


def _pipeline_10m(rs: pal.RuleSet) -> None:
    big = make_frame(10_000_000, series=100)
    pal.backtest(big.iloc[:2_000_000], rs)
    t_big = median_time(lambda: pal.backtest(big, rs), 3)
    record("pipeline 10M x5 stateful end to end", seconds=t_big, evals_per_s=5 * len(big) / t_big)


def bench_pipeline(repeats: int) -> None:
    """Issue 11's targets, frame in -> three tables out, side by side in one run."""
    # (a) warm, 1M-row long frame (string source/metric) x 5 stateful rules vs a tight plain-Python loop
    frame = make_frame(1_000_000, series=10)
    rules = rules_for("stateful")
    rs = pal.RuleSet(tuple(rules))
    pal.backtest(frame, rs)
    t_ours = median_time(lambda: pal.backtest(frame, rs), repeats)
    t_loop = median_time(lambda: python_backtest(frame, rules), 3)
    record("pipeline 1M x5 stateful: backtest (frame in, tables out) vs plain-Python loop",
           backtest_s=t_ours, loop_s=t_loop, ratio=t_loop / t_ours)
    # (b) 10M x 5 end to end
    _pipeline_10m(rs)
    gc.collect()
    # (c) the first backtest in a fresh process vs a warm one (small input)
    firsts, warms = [], []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True,
                             env={**os.environ, "PERFALERT_JIT": "auto"})
        got = json.loads(out.stdout.strip().splitlines()[-1])
        firsts.append(got["first"])
        warms.append(got["warm"])
    record("first backtest in a fresh process (2,000 samples)", first_s=statistics.median(firsts),
           warm_s=statistics.median(warms), overhead_s=statistics.median(firsts) - statistics.median(warms))


def bench_engine(points: int, repeats: int, ratios: bool) -> None:
    frame = make_frame(points, series=max(1, points // 100_000))
    series = SeriesSet.from_frame(frame)
    sample = pal.SampleClock()
    interval = pal.IntervalClock("1m", lookback="5m")
    for kind in ("plain", "stateful", "window"):
        rules = rules_for(kind)
        for clock_name, clock in (("sample", sample), ("interval", interval)):
            if kind == "window" and clock_name == "interval" and points > 2_000_000:
                continue
            engine_only(series, rules[:1], clock)  # compile / warm
            n = engine_only(series, rules, clock)
            t = median_time(lambda r=rules, c=clock: engine_only(series, r, c), repeats)
            record(f"engine {kind} {clock_name} {points / 1e6:g}M x5", evaluations=n, seconds=t, evals_per_s=n / t)
    # the kernel alone (values given): what the state machine itself costs
    r = rules_for("stateful")[2]
    sids = match_series(series.keys, r)
    ev = evaluate_values(series, sids, r, sample)
    active, held = conditions(ev, r)
    t = median_time(lambda: run_episodes(ev.times, ev.offsets, active, held, 180 * 10**9, 120 * 10**9, 1800 * 10**9),
                    repeats)
    record(f"state-machine kernel only {points / 1e6:g}M", evaluations=ev.n, seconds=t, evals_per_s=ev.n / t)
    # end to end: prepare, engine, lifecycle, stats
    rs = pal.RuleSet(tuple(rules_for("stateful")))
    t_prep = median_time(lambda: SeriesSet.from_frame(frame), max(1, repeats // 2))
    by_time = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)  # as a CSV export comes
    t_prep_time = median_time(lambda f=by_time: SeriesSet.from_frame(f), max(3, repeats // 2))
    # the same without the (time x series) pattern: one row in a thousand missing, as scrapes miss
    gappy = by_time[np.random.default_rng(5).random(len(by_time)) > 0.001].reset_index(drop=True)
    t_prep_gappy = median_time(lambda f=gappy: SeriesSet.from_frame(f), max(3, repeats // 2))
    record(f"prepare {points / 1e6:g}M rows: series-ordered vs time-ordered frame (target <= 15 ms per 1M)",
           series_ordered_ms_per_1m=t_prep * 1e3 / (points / 1e6),
           time_ordered_ms_per_1m=t_prep_time * 1e3 / (points / 1e6),
           time_ordered_gaps_ms_per_1m=t_prep_gappy * 1e3 / (len(gappy) / 1e6))
    del by_time, gappy
    t_all = median_time(lambda: backtest_series(series, rs, sample, None), repeats)
    t_eng = median_time(lambda: engine_only(series, list(rs), sample), repeats)
    record(f"backtest end-to-end {points / 1e6:g}M x5 stateful", prepare_s=t_prep, engine_s=t_eng,
           lifecycle_and_stats_s=t_all - t_eng, total_s=t_prep + t_all,
           evals_per_s=5 * len(frame) / (t_prep + t_all))
    if ratios:
        small = make_frame(20_000, series=2)
        rule = rules_for("stateful")[2]
        t_ref = median_time(lambda: reference_alerts(small, rule), 1)
        loop_n = 200_000
        big = make_frame(loop_n, series=1)
        times = big["timestamp"].astype("int64").tolist()
        values = big["value"].tolist()
        t_loop = median_time(lambda: python_loop(times, values, 80, 75, 180 * 10**9, 120 * 10**9, 1800 * 10**9), 3)
        one = make_frame(1_000_000, series=1)
        one_series = SeriesSet.from_frame(one)
        one_rule_with_peaks(one_series, rule)
        fast = len(one) / median_time(lambda: one_rule_with_peaks(one_series, rule), repeats)
        record("reference engine (plain Python, per evaluation)", evals_per_s=len(small) / t_ref,
               compiled_over_reference=fast / (len(small) / t_ref))
        record("tight plain-Python loop, same semantics", evals_per_s=loop_n / t_loop,
               compiled_over_loop=fast / (loop_n / t_loop))


def bench_busy_lifecycle(points: int, repeats: int) -> None:
    frame = make_frame(points, series=max(1, points // 100_000))
    series = SeriesSet.from_frame(frame)
    busy = pal.Rule(id="busy", metric="cpu", threshold=60, notify=("log", "email", "sms"), repeat_interval="1h",
                    send_resolved=True, escalation={"delay": "10m", "max": 2})
    rs = pal.RuleSet((busy,), responders=pal.rules.Responders(ack_after={"distribution": "lognormal", "median": "8m",
                                                                          "sigma": 0.8, "seed": 1}),
                     channels={"sms": pal.rules.ChannelLimits(max_per_hour=6)})
    result = backtest_series(series, rs, pal.SampleClock(), None)
    t_all = median_time(lambda: backtest_series(series, rs, pal.SampleClock(), None), repeats)
    t_eng = median_time(lambda: run_rule(series, busy, pal.SampleClock()), repeats)
    record(f"busy rule lifecycle share {points / 1e6:g}M", alerts=len(result.alerts),
           notifications=len(result.notifications), engine_s=t_eng, total_s=t_all,
           lifecycle_share=(t_all - t_eng) / t_all)


def bench_io(points: int) -> None:
    frame = make_frame(points, series=max(1, points // 100_000))
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "m.csv"
        out = frame.copy()
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.to_csv(csv, index=False)
        pq = Path(tmp) / "m.parquet"
        frame.to_parquet(pq)
        t_csv = median_time(lambda: pal.read_metrics(csv), 3)
        t_pq = median_time(lambda: pal.read_metrics(pq), 3)
        t_pd = median_time(lambda: pd.read_csv(csv), 3)
        record(f"read CSV {points / 1e6:g}M rows", rows_per_s=points / t_csv, mb=csv.stat().st_size / 1e6,
               pandas_read_csv_rows_per_s=points / t_pd)
        record(f"read Parquet {points / 1e6:g}M rows", rows_per_s=points / t_pq)


_MEM_CHILD = """
import gc, os, sys, threading, time
sys.path.insert(0, {bench!r})
import run as b
import perfalert_lab as pal
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
frame = b.make_frame({points}, series=max(1, {points} // 100_000))
frame_bytes = int(frame.memory_usage(deep=True).sum())
rules = pal.RuleSet(tuple(b.rules_for("stateful")))
pal.backtest(frame.iloc[:50_000], rules)  # compile outside the measure (large enough to compile)
gc.collect()
base = rss()
peak = [base]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
th = threading.Thread(target=sample); th.start()
result = pal.backtest(frame, rules)
done.set(); th.join()
print(frame_bytes, base, peak[0])
"""


def bench_memory(points: int) -> None:
    """Peak resident memory added by a backtest, sampled from /proc while it runs."""
    code = _MEM_CHILD.format(bench=str(Path(__file__).parent), points=points)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    frame_bytes, base, peak = (int(float(x)) for x in out[-3:])
    extra = max(peak - base, 0)
    record(f"peak memory backtest {points / 1e6:g}M x5 stateful", input_mb=frame_bytes / 1e6, extra_peak_mb=extra / 1e6,
           peak_incl_input_over_input=(frame_bytes + extra) / frame_bytes)


def bench_interactive(repeats: int) -> None:
    """What a person waits for: a slider move in the tuner, a 10M-point timeline, one NAB series."""
    import io

    from perfalert_lab.plot import TimelineDisplay

    frame = make_frame(1_000_000, series=1)
    series = SeriesSet.from_frame(frame)
    rule = pal.Rule(id="cpu", metric="cpu", threshold=80, for_="3m", clear=75, notify=("log", "sms"))
    state = {"x": 80.0}

    def slider_move() -> None:  # what the tuner does on a change: replay, statistics, redraw, render
        state["x"] = 81.0 if state["x"] == 80.0 else 80.0
        result = backtest_series(series, pal.RuleSet((rule.replace(threshold=state["x"]),)), pal.SampleClock(), None)
        d = TimelineDisplay.from_result(result, source="host-0000").plot()
        d.figure_.savefig(io.BytesIO(), format="png", dpi=80)

    slider_move()
    t_full = median_time(slider_move, max(repeats, 5))
    record("slider move drawn whole, 1M points (replay+stats+draw+png; before the painter)", seconds=t_full,
           ms=t_full * 1e3)
    tuner = pal.tune(frame, rule)
    moves = iter(np.tile([79.5, 80.5], 1000))

    def tuner_move() -> None:  # the real widget: replay, stats for all and one series, curve marker, painter
        tuner.controls["threshold"].value = float(next(moves))

    tuner_move()
    t_tuner = median_time(tuner_move, max(repeats, 9))
    record("tuner slider move, 1M points (pal.tune: replay, two stats rows, curve, painted timeline)",
           seconds=t_tuner, ms=t_tuner * 1e3, speedup_vs_whole_redraw=t_full / t_tuner)
    big = make_frame(10_000_000, series=1)
    big_series = SeriesSet.from_frame(big)
    result = backtest_series(big_series, pal.RuleSet((rule,)), pal.SampleClock(), None)

    def timeline() -> None:
        d = TimelineDisplay.from_result(result, source="host-0000").plot()
        d.figure_.savefig(io.BytesIO(), format="png", dpi=80)

    timeline()
    record("timeline plot of 10M points (decimate+draw+png)", seconds=median_time(timeline, 3))
    nab = (
        Path(__file__).resolve().parent.parent
        / "data"
        / "nab"
        / "realKnownCause"
        / "machine_temperature_system_failure.csv"
    )
    nab_rule = pal.Rule(id="t", metric=nab.stem, op="<", threshold=50, clear=60, for_="15m", cooldown="2h")
    record("NAB series read + backtest (22.7k samples)",
           seconds=median_time(lambda: pal.backtest(pal.read_metrics(nab), nab_rule), max(repeats, 5)))


def bench_promql(repeats: int, series: int = 1000) -> None:
    """SPEC 11 / issue 12: rate(x[5m]) over 1,000 series x 1 week @1m (10M samples), every minute."""
    from perfalert_lab.promql_engine import evaluate, store_from_frame, to_frame

    steps = 7 * 24 * 60
    rng = np.random.default_rng(0)
    ts = np.tile(np.arange(steps, dtype=np.int64) * 60_000_000_000, series)
    frame = pd.DataFrame({
        "timestamp": pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC"),
        "metric": pd.Categorical.from_codes(np.zeros(len(ts), dtype=np.int64), ["http_requests_total"]),
        "instance": pd.Categorical.from_codes(np.repeat(np.arange(series), steps),
                                              [f"host-{i}:9100" for i in range(series)]),
        "value": np.cumsum(rng.integers(0, 100, size=(series, steps)), axis=1).ravel().astype(float),
    })
    times = np.arange(0, steps * 60_000, 60_000, dtype=np.int64)
    expr = "rate(http_requests_total[5m])"
    store = store_from_frame(frame)
    evaluate(store, expr, times[:5])  # load the compiled loops once
    prep = median_time(lambda: store_from_frame(frame), repeats)
    timed = frame.sort_values("timestamp", kind="stable", ignore_index=True)  # as read_metrics returns it
    store_from_frame(timed)  # load the counting sort's compiled loop once
    prep_timed = median_time(lambda: store_from_frame(timed), repeats)
    ev = median_time(lambda: evaluate(store, expr, times), repeats)
    out = evaluate(store, expr, times)
    table = median_time(lambda: to_frame(out, times), repeats)
    whole = median_time(lambda: pal.promql(frame, expr, step="1m"), repeats)
    record("promql rate 1000x1w: series from frame", seconds=prep, time_ordered_s=prep_timed)
    record("promql rate 1000x1w: evaluate (all steps)", seconds=ev, samples_per_s=len(frame) / ev)
    record("promql rate 1000x1w: output frame", seconds=table, rows=int(out.present.sum()))
    record("promql rate 1000x1w: pal.promql end to end", seconds=whole)


def bench_promql_vs_promtool(series: int = 200) -> None:
    """Issue 12: the same expression over the same week of data, whole process, side by side.

    promtool evaluates an alert rule ``rate(x[5m]) > 1`` every minute of a week of
    ``series`` counters (``promtool test rules``, its only offline evaluator);
    ``perfalert promql`` evaluates the same expression every minute from a Parquet file
    and writes the result as CSV.
    """
    import shutil
    import subprocess

    import yaml

    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool not installed: skipping the PromQL comparison", flush=True)
        return
    steps = 7 * 24 * 60
    rng = np.random.default_rng(1)
    counts = np.cumsum(rng.integers(0, 120, size=(series, steps)), axis=1)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
            {"alert": "Busy", "expr": "rate(x_total[5m]) > 1"}]}]}))
        test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
            "interval": "1m",
            "input_series": [{"series": f'x_total{{instance="i{i}"}}', "values": " ".join(map(str, counts[i]))}
                             for i in range(series)],
            "alert_rule_test": [{"eval_time": f"{steps - 1}m", "alertname": "Busy", "exp_alerts": []}]}]}
        (d / "test.yml").write_text(yaml.safe_dump(test, width=10**9))
        ts = np.tile(np.arange(steps, dtype=np.int64) * 60_000_000_000, series)
        pd.DataFrame({"timestamp": pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC"),
                      "metric": "x_total", "instance": np.repeat([f"i{i}" for i in range(series)], steps),
                      "value": counts.ravel().astype(float)}).to_parquet(d / "x.parquet")
        perfalert = str(Path(sys.executable).parent / "perfalert")

        def run_promtool() -> None:
            subprocess.run([promtool, "test", "rules", "test.yml"], cwd=d, capture_output=True, check=False)

        def run_ours(out: str) -> None:
            subprocess.run([perfalert, "promql", "x.parquet", "-e", "rate(x_total[5m]) > 1", "--start",
                            "1970-01-01T00:00:00Z", "-o", out], cwd=d, capture_output=True, check=True)

        def startup() -> None:
            subprocess.run([perfalert, "--version"], capture_output=True, check=True)

        t_theirs = median_time(run_promtool, 3)
        t_csv = median_time(lambda: run_ours("out.csv"), 3)
        t_pq = median_time(lambda: run_ours("out.parquet"), 3)
        record(f"promql rate > x, {series} series x 1w: promtool whole process", seconds=t_theirs)
        record(f"promql rate > x, {series} series x 1w: perfalert promql -> CSV", seconds=t_csv, ratio=t_theirs / t_csv)
        record(f"promql rate > x, {series} series x 1w: perfalert promql -> Parquet", seconds=t_pq,
               ratio=t_theirs / t_pq)
        record("perfalert --version (interpreter and imports)", seconds=median_time(startup, 3))


def bench_cli_vs_promtool(series: int = 1000) -> None:
    """Issue 11: ``perfalert backtest`` whole process (Parquet in, CSVs and the HTML report out) vs
    ``promtool test rules`` on the same week of ``series`` series and the same rule, side by side;
    peak memory of ours against the input frame."""
    import shutil

    import yaml

    promtool = shutil.which("promtool")
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    steps = 7 * 24 * 60
    frame = make_frame(series * steps, series=series, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        frame.to_parquet(d / "cpu.parquet")
        (d / "rules.yaml").write_text("version: 1\nrules:\n  - {id: cpu-high, metric: cpu, op: '>', threshold: 80, "
                                      "for: 5m}\n")
        perfalert = str(Path(sys.executable).parent / "perfalert")
        cmd = [perfalert, "backtest", "cpu.parquet", "--rules", "rules.yaml", "--clock", "interval:1m:5m",
               "--out", "out"]

        def ours() -> None:
            subprocess.run(cmd, cwd=d, capture_output=True, check=True)

        t_ours = median_time(ours, 3)
        peak_kb = None
        if timer is not None:
            out = subprocess.run([timer, "-f", "%M", *cmd], cwd=d, capture_output=True, text=True, check=True)
            peak_kb = int(out.stderr.strip().splitlines()[-1])
        input_bytes = int(pal.read_metrics(d / "cpu.parquet", order="series").memory_usage(deep=True).sum())
        record(f"perfalert backtest {series} series x 1w Parquet, CSVs + report, whole process", seconds=t_ours,
               peak_mb=peak_kb / 1024 if peak_kb else float("nan"), input_frame_mb=input_bytes / 2**20,
               peak_over_input=(peak_kb * 1024 / input_bytes) if peak_kb else float("nan"))
        if promtool is None:
            print("promtool not installed: skipping the CLI comparison", flush=True)
            return
        vals = frame["value"].to_numpy().reshape(series, steps)
        (d / "prules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
            {"alert": "cpu-high", "expr": "cpu > 80", "for": "5m"}]}]}))
        with open(d / "test.yml", "w") as fh:
            fh.write("rule_files: [prules.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n")
            for i in range(series):
                fh.write(f"  - series: 'cpu{{source=\"host-{i:04d}\"}}'\n    values: '"
                         + " ".join(f"{v:.6g}" for v in vals[i]) + "'\n")
            fh.write(f"  alert_rule_test:\n  - {{eval_time: {steps - 1}m, alertname: cpu-high, exp_alerts: []}}\n")
        t0 = time.perf_counter()
        subprocess.run([promtool, "test", "rules", "test.yml"], cwd=d, capture_output=True, check=False)
        t_theirs = time.perf_counter() - t0
        record(f"promtool test rules, same rule and data ({series} series x 1w), whole process", seconds=t_theirs,
               ratio=t_theirs / t_ours)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1M points only, fewer repeats")
    ap.add_argument("--save", help="write the table as JSON to this file")
    args = ap.parse_args()
    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]
    repeats = 3 if args.quick else 5
    print(f"perfalert_lab {pal.__version__} on {platform.machine()} {platform.processor() or ''} "
          f"{os.cpu_count()} cpus, Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}")
    for i, points in enumerate(sizes):
        bench_engine(points, repeats if points < 5_000_000 else 3, ratios=i == 0)
    bench_pipeline(repeats)
    bench_busy_lifecycle(sizes[-1], 3)
    bench_io(sizes[0])
    bench_memory(sizes[-1])
    bench_interactive(repeats)
    bench_promql(3)
    bench_promql_vs_promtool()
    bench_cli_vs_promtool()
    from vmalert_bench import bench_vs_vmalert  # type: ignore[import-not-found]

    for quiet in (False, True):
        bench_vs_vmalert(record, median_time, make_frame, series=200 if args.quick else 1000, quiet=quiet)
    extra = [b for b in ("sweep",) if hasattr(pal, b)]
    if extra:
        from sweep_bench import bench_sweeps  # type: ignore[import-not-found]

        bench_sweeps(record, median_time, make_frame, quick=args.quick)
    if args.save:
        path = Path(args.save)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        path.write_text(json.dumps({"meta": meta, "rows": ROWS}, indent=1, default=float))
        print(f"saved {path}")


if __name__ == "__main__":
    main()
