"""The compiled engine equals the reference engine on randomized inputs.

Series have gaps, duplicate timestamps, NaN and irregular spacing on a coarse time
grid (so that boundaries such as ``t - pending_since == for`` happen often); values
are small integers so window sums are exact in floating point. Operators,
thresholds, ``for``, ``keep_firing_for``, ``clear``, ``cooldown``, windows, both
modes and both clocks are drawn at random.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfalert_lab as pal
from perfalert_lab.engine.reference import reference_alerts
from perfalert_lab.rules.model import AGGREGATES

GRID_S = 30
T0 = pd.Timestamp("2026-01-01T00:00:00Z")
AGGS = ["mean", "min", "max", "sum", "count", "rate", "median", "p90", "p25"]


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = []
    for s in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 40))
        steps = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))  # 0 = duplicate timestamp
        values = draw(st.lists(st.one_of(st.integers(0, 10).map(float), st.just(math.nan)), min_size=n, max_size=n))
        t = draw(st.integers(0, 10))
        for step, v in zip(steps, values, strict=True):
            t += step
            rows.append((T0 + pd.Timedelta(seconds=t * GRID_S), f"s{s}", "m", v))
    if draw(st.booleans()):  # another metric that no rule watches
        rows.append((T0, "s0", "other", 99.0))
    frame = pd.DataFrame(rows, columns=["timestamp", "source", "metric", "value"])
    if len(frame) and draw(st.booleans()):
        frame = frame.sample(frac=1.0, random_state=draw(st.integers(0, 1000)))  # out of order
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def dur(draw: st.DrawFn, max_steps: int) -> str:
    return f"{draw(st.integers(0, max_steps)) * GRID_S}s"


@st.composite
def rules(draw: st.DrawFn) -> pal.Rule:
    mode = draw(st.sampled_from(["episode", "episode", "sample"]))
    op = draw(st.sampled_from([">", ">=", "<", "<=", "==", "!="]))
    threshold = float(draw(st.integers(0, 10)))
    kw: dict = {"id": "r", "metric": "m", "op": op, "threshold": threshold, "mode": mode,
                "cooldown": dur(draw, 12)}
    if draw(st.booleans()):
        kw["window"] = f"{draw(st.integers(1, 8)) * GRID_S}s"
        kw["aggregate"] = draw(st.sampled_from(AGGS))
    if mode == "episode":
        kw["for_"] = dur(draw, 6)
        kw["keep_firing_for"] = dur(draw, 6) if draw(st.booleans()) else "0s"
        if op in (">", ">=", "<", "<=") and draw(st.booleans()):
            gap = float(draw(st.integers(0, 5)))
            kw["clear"] = threshold - gap if op in (">", ">=") else threshold + gap
    return pal.Rule(**kw)


class DelayedClock:
    """A user's clock: each sample is seen ``delay`` after it was taken (ingestion delay)."""

    lookback_ns = None

    def __init__(self, delay_s: int) -> None:
        self.delay = delay_s * 10**9

    def evaluation_times(self, sample_times, start_ns, end_ns):  # type: ignore[no-untyped-def]
        return sample_times + self.delay


class JitteredClock:
    """A user's clock: Prometheus-like ticks with a deterministic jitter, lookback 2 grid steps."""

    lookback_ns = 2 * GRID_S * 10**9

    def evaluation_times(self, sample_times, start_ns, end_ns):  # type: ignore[no-untyped-def]
        import numpy as np

        ticks = np.arange(start_ns, end_ns + 1, 45 * 10**9, dtype=np.int64)
        return ticks + (ticks // 10**9 % 7) * 10**9


@st.composite
def clocks(draw: st.DrawFn) -> pal.Clock:
    kind = draw(st.sampled_from(["sample", "sample", "interval", "interval", "delayed", "jittered"]))
    if kind == "sample":
        return pal.SampleClock()
    if kind == "delayed":
        return DelayedClock(draw(st.integers(0, 3)) * GRID_S)
    if kind == "jittered":
        return JitteredClock()
    every = draw(st.integers(1, 6)) * GRID_S
    lookback = draw(st.integers(1, 10)) * GRID_S
    offset = draw(st.integers(0, every // GRID_S)) * GRID_S
    return pal.IntervalClock(f"{every}s", lookback=f"{lookback}s", offset=f"{offset}s")


def as_rows(alerts: list) -> list[tuple]:
    return sorted(alerts, key=lambda r: (r[0], r[1], r[2]))


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.filterwarnings("ignore::perfalert_lab.errors.NoSeriesWarning")  # empty inputs are drawn on purpose
@given(frame=frames(), rule=rules(), clock=clocks(), resolve=st.one_of(st.none(), st.integers(1, 20)))
def test_compiled_engine_equals_reference(frame: pd.DataFrame, rule: pal.Rule, clock: pal.Clock,
                                          resolve: int | None) -> None:
    resolve_after = f"{resolve * GRID_S}s" if resolve else None
    rs = pal.RuleSet((rule,), responders=pal.rules.Responders(resolve_after=resolve_after))
    result = pal.backtest(frame, rs, clock=clock)
    ref = reference_alerts(frame, rule, clock, resolve_after=resolve * GRID_S * 10**9 if resolve else None)
    fast = [
        (a.source, a.pending_since.value, a.fired_at.value, None if pd.isna(a.resolved_at) else a.resolved_at.value,
         a.status == "suppressed", a.peak_value)
        for a in result.alerts.itertuples()
    ]
    slow = [(r.source, r.pending_since, r.fired_at, r.resolved_at, r.suppressed, r.peak_value) for r in ref]
    fast, slow = as_rows(fast), as_rows(slow)
    assert [r[:5] for r in fast] == [r[:5] for r in slow]
    assert all(same_float(a[5], b[5]) for a, b in zip(fast, slow, strict=True)), (fast, slow)


def test_every_aggregate_is_drawn() -> None:
    # the strategies above cover each family of aggregate the rule model accepts
    families = {a if not a.startswith("p") else "p" for a in AGGREGATES}
    assert families <= {a if not a.startswith("p") else "p" for a in AGGS}


@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=30),
       agg=st.sampled_from(AGGS), window=st.integers(1, 10))
def test_window_aggregates_equal_reference_on_real_floats(values: list[float], agg: str, window: int) -> None:
    # non-integer floats: sums must still agree exactly (both add left to right)
    frame = pd.DataFrame({"timestamp": pd.date_range(T0, periods=len(values), freq="30s"), "source": "s",
                          "metric": "m", "value": np.array(values, dtype=np.float64)})
    rule = pal.Rule(id="r", metric="m", threshold=0.0, window=f"{window * 30}s", aggregate=agg)
    from perfalert_lab.engine.conditions import evaluate_values
    from perfalert_lab.engine.reference import value_at
    from perfalert_lab.frames import SeriesSet

    series = SeriesSet.from_frame(frame)
    ev = evaluate_values(series, np.array([0]), rule, pal.SampleClock())
    samples = list(zip(series.times.tolist(), series.values.tolist(), strict=True))
    for k, t in enumerate(ev.times.tolist()):
        ref = value_at(samples, t, None, rule)
        if ref is None:
            assert not ev.present[k]
        else:
            assert ev.present[k] and ev.values[k] == ref
