"""One test per transition of the state machine (SPEC section 4), on literal series.

Each series is written in promtool's notation, one sample per minute from t=0; the
expected alerts are (pending_since, fired_at, resolved_at, status) in minutes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from series import series_frame

import perfalert_lab as pal
from perfalert_lab.engine.reference import reference_alerts

T0 = pd.Timestamp("2026-01-01T00:00:00Z")


def minutes(ts: pd.Timestamp) -> float | None:
    return None if pd.isna(ts) else (ts - T0) / pd.Timedelta(minutes=1)


def alerts_of(notation: str, clock: pal.Clock | None = None, **rule_kw: object) -> list[tuple]:
    kw = {"id": "r", "metric": "m", "op": ">", "threshold": 80, **rule_kw}
    rule = pal.Rule(**kw)  # type: ignore[arg-type]
    frame = series_frame(notation)
    result = pal.backtest(frame, rule, clock=clock)
    got = [(minutes(a.pending_since), minutes(a.fired_at), minutes(a.resolved_at), a.status)
           for a in result.alerts.itertuples()]
    # the reference engine must agree on every literal case too
    ref = reference_alerts(frame, rule, clock)
    ref_rows = sorted((r.pending_since, r.fired_at, r.resolved_at or 0, r.suppressed) for r in ref)
    fast = result.alerts.sort_values(["fired_at"])
    fast_rows = sorted(
        (p.value, f.value, 0 if pd.isna(r) else r.value, s == "suppressed")
        for p, f, r, s in zip(fast.pending_since, fast.fired_at, fast.resolved_at, fast.status, strict=True))
    assert fast_rows == ref_rows
    return got


def test_inactive_to_pending_to_firing_with_for() -> None:
    # active from minute 2; for 2m: pending at 2, fires at 4, resolves at 6
    assert alerts_of("0 0 90x3 0 0", for_="2m") == [(2, 4, 6, "resolved")]


def test_for_zero_fires_in_the_same_evaluation() -> None:
    assert alerts_of("0 90 0") == [(1, 1, 2, "resolved")]


def test_pending_drops_back_to_inactive_without_alert() -> None:
    assert alerts_of("0 90 90 0 0", for_="5m") == []


def test_firing_stays_while_held_and_open_at_end_of_data() -> None:
    assert alerts_of("0 90x4", for_="1m") == [(1, 2, None, "active")]


def test_hysteresis_holds_until_value_reaches_clear() -> None:
    # > 80 fires at 1; stays firing while > 70 (75, 71), resolves at 70 (not > 70)
    assert alerts_of("0 85 75 71 70 85", clear=70) == [(1, 1, 4, "resolved"), (5, 5, None, "active")]


def test_hysteresis_does_not_start_an_alert_between_clear_and_threshold() -> None:
    assert alerts_of("0 75 79 75", clear=70) == []


def test_keep_firing_for_keeps_then_resolves_at_first_evaluation_past_k() -> None:
    # not held from minute 2: timer starts at 2; stays while t-2 < 2, resolves at 4
    assert alerts_of("0 90 0 0 0 0", keep_firing_for="2m") == [(1, 1, 4, "resolved")]


def test_keep_firing_for_timer_resets_on_a_held_evaluation() -> None:
    # not held at 2, held at 3 (reset), not held from 4: resolves at 6
    assert alerts_of("0 90 0 90 0 0 0 0", keep_firing_for="2m") == [(1, 1, 6, "resolved")]


def test_cooldown_delays_firing_until_its_end() -> None:
    # first alert fires at 1, resolves at 2; active again from 3 with cooldown 5m:
    # waits pending and fires at 6 (= 1 + 5), still pending then
    assert alerts_of("0 90 0 90 90 90 90 90 0", cooldown="5m") == [(1, 1, 2, "resolved"), (3, 6, 8, "resolved")]


def test_cooldown_suppresses_an_episode_that_ends_while_waiting() -> None:
    got = alerts_of("0 90 0 90 90 0 0", cooldown="10m")
    assert got == [(1, 1, 2, "resolved"), (3, 3, 5, "suppressed")]


def test_cooldown_suppressed_when_data_ends_while_waiting() -> None:
    assert alerts_of("0 90 0 90 90", cooldown="10m") == [(1, 1, 2, "resolved"), (3, 3, None, "suppressed")]


def test_suppressed_fired_at_is_when_it_would_first_have_fired() -> None:
    # for 1m: fires at 2; pending again at 4, would fire at 5 (cooldown until 12), drops at 6
    got = alerts_of("0 90 90 0 90 90 0", for_="1m", cooldown="10m")
    assert got == [(1, 2, 3, "resolved"), (4, 5, 6, "suppressed")]


def test_cooldown_counts_from_fired_not_from_suppressed_alerts() -> None:
    # fired at 1; suppressed episode at 3-4; at 6 (>= 1+5) a new episode fires at once
    got = alerts_of("0 90 0 90 0 0 90 0", cooldown="5m")
    assert got == [(1, 1, 2, "resolved"), (3, 3, 4, "suppressed"), (6, 6, 7, "resolved")]


def test_sample_mode_alerts_on_every_holding_sample_outside_cooldown() -> None:
    got = alerts_of("90 90 90 0 90 90", mode="sample", cooldown="2m")
    assert got == [(0, 0, None, "active"), (2, 2, None, "active"), (4, 4, None, "active")]


def test_sample_mode_without_cooldown_alerts_on_each_sample() -> None:
    assert len(alerts_of("90x4", mode="sample")) == 5


@pytest.mark.parametrize(("op", "notation", "fired"), [
    (">", "80 81", [1]), (">=", "79 80", [1]), ("<", "80 79", [1]), ("<=", "81 80", [1]),
    ("==", "1 80 2", [1]), ("!=", "80 80 1", [2]),
])
def test_operators(op: str, notation: str, fired: list[int]) -> None:
    assert [a[1] for a in alerts_of(notation, op=op)] == fired


def test_missing_samples_are_not_evaluations_under_the_sample_clock() -> None:
    # the gap is no evaluation: the alert pending at 1 fires at 4 (for 3m)
    assert alerts_of("0 90 _ _ 90 0", for_="3m") == [(1, 4, 5, "resolved")]


def test_interval_clock_series_goes_absent_after_lookback() -> None:
    # samples at 0..2 then none; lookback 2m: present at 0,1,2,3; absent from 4 -> resolves at 4
    clock = pal.IntervalClock("1m", lookback="2m")
    assert alerts_of("90 90 90 _x3 0", clock=clock) == [(0, 0, 4, "resolved")]


def test_interval_clock_sees_a_sample_until_lookback_is_reached() -> None:
    clock = pal.IntervalClock("1m", lookback="5m")
    # one sample at 1 > 80; present at ticks 1..5 (in (t-5m, t]), absent at 6
    assert alerts_of("0 90 _x5 0", clock=clock) == [(1, 1, 6, "resolved")]


def test_window_mean_aggregates_the_half_open_window() -> None:
    # mean over (t-2m, t]: at 1 -> mean(0, 90) = 45; at 2 -> mean(90, 90) = 90 > 80;
    # at 3 -> mean(90, 0) = 45 (the sample at t-2m is outside)
    assert alerts_of("0 90 90 0 0", window="2m", aggregate="mean") == [(2, 2, 3, "resolved")]


def test_window_rate_needs_two_samples() -> None:
    # rate over 2m: (v_last - v_first) / seconds; 0 -> 120 in 60s = 2/s
    got = alerts_of("0 120 120", window="2m", aggregate="rate", threshold=1)
    assert got == [(1, 1, 2, "resolved")]


def test_peak_value_is_extreme_in_direction_of_operator() -> None:
    frame = series_frame("0 90 95 85 0")
    result = pal.backtest(frame, pal.Rule(id="r", metric="m", op=">", threshold=80))
    assert result.alerts["peak_value"].tolist() == [95.0]
    low = pal.backtest(series_frame("9 3 1 2 9"), pal.Rule(id="r", metric="m", op="<", threshold=5))
    assert low.alerts["peak_value"].tolist() == [1.0]


def test_disabled_rule_raises_nothing() -> None:
    assert alerts_of("90x3", enabled=False) == []


def test_matchers_select_series_by_source_glob() -> None:
    frame = pd.concat([series_frame("90 0", source="web-1"), series_frame("90 0", source="db-1")])
    rule = pal.Rule(id="r", metric="m", threshold=80, match={"source": "web-*"})
    assert pal.backtest(frame, rule).alerts["source"].tolist() == ["web-1"]


def test_matchers_on_labels() -> None:
    frame = pd.concat([series_frame("90 0", source="a", env="prod"), series_frame("90 0", source="b", env="dev")])
    rule = pal.Rule(id="r", metric="m", threshold=80, match={"env": "prod"})
    assert pal.backtest(frame, rule).alerts["source"].tolist() == ["a"]


def test_alert_ids_are_deterministic_and_unique() -> None:
    frame = series_frame("0 90 0 90 0 90")
    rule = pal.Rule(id="r", metric="m", threshold=80)
    a = pal.backtest(frame, rule).alerts["alert_id"].tolist()
    b = pal.backtest(frame.copy(), rule).alerts["alert_id"].tolist()
    assert a == b and len(set(a)) == 3


def test_input_frame_is_not_mutated() -> None:
    frame = series_frame("0 90 0")
    before = frame.copy()
    pal.backtest(frame, pal.Rule(id="r", metric="m", threshold=80))
    pd.testing.assert_frame_equal(frame, before)


def test_evaluations_are_counted_per_clock() -> None:
    frame = series_frame("0 90 _ 0")  # samples at 0, 1, 3
    rule = pal.Rule(id="r", metric="m", threshold=80)
    assert pal.backtest(frame, rule).stats["evaluations"].iloc[0] == 3
    clock = pal.IntervalClock("30s")
    assert pal.backtest(frame, rule, clock=clock).stats["evaluations"].iloc[0] == 7  # 0, 0.5, ..., 3


def test_empty_result_has_the_contract_columns() -> None:
    result = pal.backtest(series_frame("0 0"), pal.Rule(id="r", metric="m", threshold=80))
    assert list(result.alerts.columns) == [
        "alert_id", "rule_id", "source", "metric", "severity", "mode", "pending_since", "fired_at",
        "resolved_at", "acknowledged_at", "status", "suppressed_by", "escalation_level", "peak_value",
        "notifications"]
    assert list(result.notifications.columns) == [
        "alert_id", "rule_id", "source", "channel", "kind", "level", "at", "delivered", "reason"]
    assert result.stats["rule_id"].tolist() == ["r", "TOTAL"]
    assert math.isnan(result.stats["mean_duration_s"].iloc[0])


def test_alert_ids_name_the_series_of_each_backtest() -> None:
    # one backtest after another on same-shaped frames: ids must follow each frame's own series
    from perfalert_lab._hashing import stable_hash

    for source in ("a", "b", "c"):
        ids = pal.backtest(series_frame("0 90 0", source=source), pal.Rule(id="r", metric="m", threshold=80)).alerts
        assert ids["alert_id"].iloc[0].startswith(f"r-{stable_hash(source + chr(0) + 'm'):016x}-")


@pytest.mark.parametrize("clock", [pal.SampleClock(), pal.IntervalClock("2m", lookback="5m")], ids=str)
def test_batches_of_series_give_the_same_tables(monkeypatch: pytest.MonkeyPatch, clock: pal.Clock) -> None:
    import perfalert_lab.engine.pipeline as run_module

    frame, incidents = pal.datasets.synthetic_fleet(hosts=6, days=1, seed=4)
    rules = pal.parse_rules("""
version: 1
rules:
  - {id: cpu, metric: cpu, threshold: 85, for: 3m, clear: 80, cooldown: 10m, notify: [log, sms]}
  - {id: lat, metric: latency_ms, threshold: 300, window: 5m, aggregate: p90}
  - {id: spikes, metric: cpu, mode: sample, threshold: 95, cooldown: 5m}
responders: {resolve_after: 20m}
""")
    whole = pal.backtest(frame, rules, clock=clock, incidents=incidents)
    monkeypatch.setattr(run_module, "BATCH_EVALUATIONS", 1500)  # a few series per batch
    from perfalert_lab.frames import SeriesSet

    assert len(run_module._batches(SeriesSet.from_frame(frame), np.arange(6), clock)) > 1
    batched = pal.backtest(frame, rules, clock=clock, incidents=incidents)
    assert len(whole.alerts) > 10
    pd.testing.assert_frame_equal(batched.alerts, whole.alerts)
    pd.testing.assert_frame_equal(batched.notifications, whole.notifications)
    pd.testing.assert_frame_equal(batched.stats, whole.stats)


def test_a_rule_that_matches_nothing_warns_with_what_exists_and_strict_raises() -> None:
    import warnings

    frame = series_frame("0 90 0", metric="cpu_utilization")
    typo = pal.Rule(id="cpu", metric="cpu_utilisation", threshold=80)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pal.backtest(frame, typo)
    assert [type(w.message) for w in caught] == [pal.errors.NoSeriesWarning]
    assert "did you mean 'cpu_utilization'?" in str(caught[0].message)
    assert len(result.alerts) == 0
    with pytest.raises(pal.RulesError, match="rule 'cpu': metric 'cpu_utilisation' matches no series"):
        pal.backtest(frame, typo, strict=True)
    wrong_source = pal.Rule(id="cpu", metric="cpu_utilization", threshold=80, match={"source": "db-*"})
    with pytest.raises(pal.RulesError, match="exists: check the match patterns"):
        pal.backtest(frame, wrong_source, strict=True)
    disabled = typo.replace(enabled=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pal.backtest(frame, disabled)  # a disabled rule is quiet on purpose


def test_the_clock_protocol_names_everything_the_engine_asks_of_a_clock() -> None:
    asked = ("evaluation_times", "lookback_ns", "shared_times")
    assert all(hasattr(pal.Clock, name) for name in asked)
    for clock in (pal.SampleClock(), pal.IntervalClock("1m")):
        assert all(hasattr(clock, name) for name in asked), clock


def test_explain_follows_the_sample_mode_model() -> None:
    """Sample mode raises an alert per holding evaluation outside the cooldown; explain used to show
    episode states ('firing' at 00:02, which raised nothing)."""
    frame = series_frame("0 90 95 0 91 0")
    rule = pal.Rule(id="s", metric="m", threshold=80, mode="sample", cooldown="90s")
    steps = pal.explain(frame, rule)
    assert steps["state"].tolist() == ["inactive", "alert", "cooldown", "inactive", "alert", "inactive"]
    raised = steps.loc[steps["state"] == "alert", "timestamp"].tolist()
    assert raised == pal.backtest(frame, rule).alerts["fired_at"].tolist()


def test_rules_replayed_on_several_cores_give_the_same_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import perfalert_lab.engine.pipeline as pipeline

    frame, incidents = pal.datasets.synthetic_fleet(hosts=6, days=1, seed=5)
    rules = pal.parse_rules("""
version: 1
rules:
  - {id: cpu, metric: cpu, threshold: 85, for: 3m, clear: 80, cooldown: 10m, notify: [log, sms]}
  - {id: cpu-low, metric: cpu, op: "<", threshold: 20, for: 2m}
  - {id: lat, metric: latency_ms, threshold: 300, window: 5m, aggregate: p90}
  - {id: spikes, metric: cpu, mode: sample, threshold: 95, cooldown: 5m}
channels: {sms: {max_per_hour: 3}}
""")
    monkeypatch.setattr(pipeline, "PARALLEL_EVALUATIONS", 10**12)
    one = pal.backtest(frame, rules, incidents=incidents)
    monkeypatch.setattr(pipeline, "PARALLEL_EVALUATIONS", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    many = pal.backtest(frame, rules, incidents=incidents)
    assert len(one.alerts) > 20
    for a, b in ((one.alerts, many.alerts), (one.notifications, many.notifications), (one.stats, many.stats)):
        pd.testing.assert_frame_equal(a, b)
