"""Sweeps equal separate backtests; frontier, recommendation and rule-set diff."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import NAB
from hypothesis import given
from hypothesis import strategies as st
from series import at, series_frame
from test_engine_property import GRID_S, T0, clocks, frames
from test_lifecycle_property import rule_sets

import perfalert_lab as pal
from perfalert_lab.cli import main
from perfalert_lab.stats import SCORE_COLUMNS, STATS_COLUMNS


@st.composite
def incident_tables(draw: st.DrawFn) -> pd.DataFrame | None:
    if draw(st.booleans()):
        return None
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        s = draw(st.integers(0, 60))
        e = s + draw(st.integers(0, 20))
        p = draw(st.integers(s, e))
        rows.append((T0 + pd.Timedelta(seconds=s * GRID_S), T0 + pd.Timedelta(seconds=e * GRID_S),
                     draw(st.sampled_from(["s0", "s1", None])), None, T0 + pd.Timedelta(seconds=p * GRID_S)))
    return pd.DataFrame(rows, columns=["start", "end", "source", "metric", "point"])


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.filterwarnings("ignore::perfalert_lab.errors.NoSeriesWarning")  # empty inputs are drawn on purpose
@given(frame=frames(), rules=rule_sets(), clock=clocks(), incidents=incident_tables(),
       thresholds=st.lists(st.integers(0, 10), min_size=1, max_size=3, unique=True),
       fors=st.lists(st.integers(0, 4), min_size=1, max_size=2, unique=True),
       cooldowns=st.lists(st.integers(0, 8), min_size=1, max_size=2, unique=True),
       clears=st.lists(st.one_of(st.none(), st.integers(0, 10)), min_size=1, max_size=2, unique=True))
def test_each_sweep_row_equals_a_separate_backtest(frame, rules, clock, incidents, thresholds, fors, cooldowns,
                                                   clears) -> None:
    rule = rules.rules[0]
    rules = rules.replace(rules=(rule,))
    kw: dict = {"threshold": thresholds, "cooldown": [f"{c * GRID_S}s" for c in cooldowns]}
    if rule.mode == "episode":
        kw["for_"] = [f"{f * GRID_S}s" for f in fors]
        if rule.op in (">", ">=", "<", "<="):
            kw["clear"] = clears
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # invalid clear/threshold pairs are left out
        table = pal.sweep(frame, rule, incidents=incidents, clock=clock, rules=rules, **kw)
    cols = STATS_COLUMNS[1:] + (SCORE_COLUMNS if incidents is not None else [])
    for row in table.to_dict("records"):
        changes = {"threshold": row["threshold"], "cooldown": row["cooldown"]}
        if "for" in row:
            changes["for_"] = row["for"]
        if "clear" in row:
            changes["clear"] = None if row["clear"] is None or pd.isna(row["clear"]) else row["clear"]
        single = rules.with_rule(rule.replace(**changes))
        stats = pal.backtest(frame, single, clock=clock, incidents=incidents).stats.iloc[0]
        for c in cols:
            assert same(row[c], stats[c]), (c, row[c], stats[c], changes)


def test_sweep_table_shape_and_names() -> None:
    frame = series_frame("0 90 90 0 90 0 0 95 0")
    rule = pal.Rule(id="r", metric="m", threshold=80)
    with pytest.warns(UserWarning, match="2 combination"):
        table = pal.sweep(frame, rule, threshold=[80, 92], clear=[None, 85], for_=["0s", "1m"])
    assert list(table.columns[:3]) == ["threshold", "for", "clear"]  # the order of the rule keys
    assert len(table) == 6  # (80, 85) is invalid with either for: clear above a > threshold
    assert table["for"].tolist()[:3] == ["0s", "1m", "0s"]  # (80, None) x for, then 92 ...
    with pytest.raises(pal.UsageError, match="give at least one"):
        pal.sweep(frame, rule)


def test_frontier_is_pareto_optimal() -> None:
    t = pd.DataFrame({"threshold": [1, 2, 3, 4, 5], "alerts_per_day": [10, 5, 5, 1, 1],
                      "recall": [1.0, 0.9, 0.8, 0.5, np.nan]})
    f = pal.frontier(t, {"alerts_per_day": "min", "recall": "max"})
    assert f["threshold"].tolist() == [4, 2, 1]  # 3 is dominated by 2; 5 (no recall) by 4


def test_recommend_meets_the_budget_with_best_recall() -> None:
    t = pd.DataFrame({"threshold": [70.0, 80.0, 90.0], "alerts_per_day": [5.0, 1.0, 0.2],
                      "alerts_per_week": [35.0, 7.0, 1.4], "pages_per_week": [10.0, 2.0, 0.5],
                      "recall": [1.0, 0.8, 0.4], "precision": [0.2, 0.7, 1.0],
                      "mean_detection_delay_s": [60.0, 120.0, 600.0]})
    t.attrs["perfalert_sweep"] = {"rule": pal.Rule(id="r", metric="m", threshold=50), "params": ["threshold"]}
    rec = pal.recommend(t, max_pages_per_week=3)
    assert rec.row["threshold"] == 80.0 and rec.rule is not None and rec.rule.threshold == 80.0
    assert "threshold=80" in rec.explanation and "best recall" in rec.explanation
    with pytest.raises(pal.UsageError, match="no combination meets at most 0.1 pages/week"):
        pal.recommend(t, max_pages_per_week=0.1)


def test_sweep_frontier_and_recommendation_on_nab() -> None:
    frame, incidents = pal.datasets.load_nab(["machine_temperature_system_failure"])
    rule = pal.Rule(id="temp-low", metric="machine_temperature_system_failure", op="<", threshold=50, for_="10m")
    table = pal.sweep(frame, rule, threshold=np.arange(20, 80, 2.5), for_=["0s", "10m", "30m"],
                      cooldown=["0s", "1h"], incidents=incidents)
    assert len(table) == 24 * 3 * 2
    f = pal.frontier(table)
    assert 0 < len(f) < len(table)
    rec = pal.recommend(table, max_alerts_per_week=2)
    assert rec.row["alerts_per_week"] <= 2 and rec.row["recall"] > 0
    assert rec.rule is not None
    # the recommended rule really behaves as its row says
    stats = pal.backtest(frame, rec.rule, incidents=incidents).stats.iloc[0]
    assert stats["alerts"] == rec.row["alerts"] and stats["recall"] == rec.row["recall"]


def test_diff_of_a_rule_set_with_itself_is_empty_and_a_change_is_seen() -> None:
    frame = series_frame("0 90 0 85 0 95 0")
    old = pal.RuleSet((pal.Rule(id="r", metric="m", threshold=80),))
    assert pal.diff(old, old, frame).empty
    new = old.with_rule(old["r"].replace(threshold=88))
    inc = pd.DataFrame({"start": [at(3)], "end": [at(3)], "source": ["s1"], "metric": [None], "point": [at(3)]})
    d = pal.diff(old, new, frame, incidents=inc)
    assert not d.empty
    assert d.lost["fired_at"].tolist() == [at(3)] and d.gained.empty
    assert d.incidents[["old", "new"]].values.tolist() == [[True, False]]
    assert "1 newly missed" in d.summary()


def test_cli_sweep_writes_sweep_frontier_and_picture(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - {id: lat, metric: ec2_request_latency_system_failure, threshold: 50}\n")
    out = tmp_path / "out"
    metrics = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    code = main(["sweep", str(metrics), "--rules", str(rules), "--rule", "lat", "--param", "threshold=45:60:2.5",
                 "--param", "for=0m,5m", "--incidents", str(NAB / "labels" / "combined_windows.json"),
                 "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "sweep.csv")
    assert table["threshold"].tolist()[::2] == [45.0, 47.5, 50.0, 52.5, 55.0, 57.5, 60.0]
    assert set(table["for"]) == {"0s", "5m"}
    assert (out / "frontier.csv").exists() and (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("param", ["threshold=1:0:1", "threshold=a,b", "speed=1,2", "threshold"])
def test_cli_sweep_bad_params_exit_2(tmp_path: Path, param: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - {id: lat, metric: m, threshold: 50}\n")
    metrics = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    assert main(["sweep", str(metrics), "--rules", str(rules), "--rule", "lat", "--param", param]) == 2


def test_cli_diff_exit_codes(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("version: 1\nrules:\n  - {id: lat, metric: ec2_request_latency_system_failure, threshold: 50}\n")
    b = tmp_path / "b.yaml"
    b.write_text("version: 1\nrules:\n  - {id: lat, metric: ec2_request_latency_system_failure, threshold: 60}\n")
    metrics = str(NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv")
    assert main(["diff", str(a), str(a), metrics]) == 0
    assert main(["diff", str(a), str(b), metrics]) == 3


def test_pages_in_a_sweep_equal_the_backtests_on_call_load() -> None:
    frame = pd.concat([series_frame("0 90 90 0 85 0 95 95 95 0 90 0", source=s) for s in ("a", "b")])
    rules = pal.RuleSet((pal.Rule(id="r", metric="m", threshold=80, severity="critical",
                                  notify=("log", "email", {"channel": "webhook", "url": "${HOOK}"}, "sms"),
                                  escalation={"delay": "1m", "max": 1, "levels": [{"notify": ["slack"]}]}),),
                        channels={"sms": pal.rules.ChannelLimits(max_per_hour=3)})
    table = pal.sweep(frame, rules["r"], threshold=[80, 88], rules=rules)
    for row in table.itertuples():
        result = pal.backtest(frame, rules.with_rule(rules["r"].replace(threshold=row.threshold)))
        load = result.oncall().set_index("rule_id").loc["r"]
        assert row.pages == load["pages"] > 0
    # SPEC 5: an alert pages once when it fires and once per escalation, when its severity is critical
    # or page, or when that moment notifies an sms or pagerduty channel; repeats and resolutions never page
    from perfalert_lab.stats import notification_pages

    alerts = pd.DataFrame({"alert_id": ["crit", "low"], "severity": ["critical", "low"]})
    notes = pd.DataFrame({
        "alert_id": ["crit", "crit", "crit", "crit", "crit", "low", "low", "low", "low"],
        "channel": ["log", "email", "slack", "log", "log", "log", "sms", "sms", "email"],
        "kind": ["firing", "firing", "escalation", "repeat", "resolved", "firing", "firing", "escalation",
                 "escalation"],
        "level": [0, 0, 1, 0, 0, 0, 0, 2, 1],
        "delivered": [True, True, True, True, True, True, False, True, True],
    })
    assert notification_pages(notes, alerts).tolist() == [
        True, False,  # the critical alert's firing: one page, however many channels
        True,  # its escalation: a page
        False, False,  # a repeat and a resolution wake nobody
        False, False,  # the low alert's firing: log, and an sms that was not delivered
        True,  # its level-2 escalation by sms pages
        False]  # e-mail informs


def test_recommend_says_when_the_budget_buys_nothing_and_when_the_choice_is_at_the_edge() -> None:
    t = pd.DataFrame({"threshold": [70.0, 80.0, 90.0, 95.0], "for": ["0s", "0s", "5m", "5m"],
                      "alerts": [35, 7, 2, 0], "alerts_per_day": [5.0, 1.0, 0.3, 0.0],
                      "alerts_per_week": [35.0, 7.0, 2.1, 0.0], "pages_per_week": [35.0, 7.0, 2.1, 0.0],
                      "recall": [1.0, 0.8, 0.4, 0.0], "precision": [0.2, 0.7, 1.0, math.nan],
                      "mean_detection_delay_s": [-54_900.0, 120.0, 600.0, math.nan]})
    t.attrs["perfalert_sweep"] = {"rule": pal.Rule(id="r", metric="m", threshold=50), "params": ["threshold", "for"]}
    quiet = pal.recommend(t, max_pages_per_week=1).explanation
    assert "No combination within the budget catches an incident; the quietest that does is threshold=90, for=5m" \
        in quiet
    assert "threshold=95 is the top of the swept range: widen the range above it." in quiet
    assert "for=5m is the longest swept: try longer." in quiet
    assert "nan" not in quiet.lower()
    loud = pal.recommend(t, max_pages_per_week=40).explanation
    assert "recall 1.00, precision 0.20, detection 15h15m early on average" in loud
    assert "threshold=70 is the bottom of the swept range: widen the range below it." in loud
    assert "for=0s" not in loud.split(". ", 1)[1]  # nothing is shorter than 0s: no advice about it
    middle = pal.recommend(t, max_pages_per_week=10).explanation
    assert "widen" not in middle and "No combination" not in middle


def test_diff_reports_an_alert_that_only_moved_in_time_as_moved() -> None:
    frame = series_frame("0 90 90 90 90 0 0 95 0 0 0 91 91 91 0")
    old = pal.RuleSet((pal.Rule(id="r", metric="m", threshold=80),))
    new = old.with_rule(old["r"].replace(for_="2m"))  # the long episodes fire 2m later; the blip no more
    d = pal.diff(old, new, frame)
    assert d.moved[["fired_at_old", "fired_at_new"]].values.tolist() == [[at(1), at(3)], [at(11), at(13)]]
    assert (d.moved["shift"] == pd.Timedelta("2m")).all()
    assert d.gained.empty and d.lost["fired_at"].tolist() == [at(7)]  # the 1-minute blip is really lost
    assert d.summary().splitlines()[0] == "0 alert(s) gained, 1 lost, 2 moved (2 later, 0 earlier; median shift +2m)"
    assert not d.empty


def test_cli_small_things_explain_themselves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n# the team's rules\nrules:\n  # latency\n  - id: lat   # keep me\n"
                     "    metric: m\n    threshold: 50\n")
    metrics = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    assert main(["sweep", str(metrics), "--rules", str(rules), "--rule", "lat", "--param", "threshold=60-95"]) == 2
    assert "a range is START:STOP:STEP (inclusive), e.g. threshold=60:95:1" in capsys.readouterr().err
    assert main(["export", str(rules), "--format", "yaml"]) == 0
    assert capsys.readouterr().out == rules.read_text()  # the user's file, comments kept
    bad = tmp_path / "op.yaml"
    bad.write_text("version: 1\nrules:\n  - id: lat\n    metric: m\n    op: >\n    threshold: 50\n")
    assert main(["validate", str(bad)]) == 2
    assert "in YAML an unquoted > or < starts a block of text; quote the operator" in capsys.readouterr().err
    assert repr(pal.Rule(id="r", metric="m", threshold=1, for_="5m", cooldown="1h30m")) == \
        "Rule(id='r', metric='m', threshold=1.0, for_='5m', cooldown='1h30m')"


def test_sweeping_a_disabled_rule_says_so() -> None:
    rule = pal.Rule(id="r", metric="m", threshold=80, enabled=False)
    with pytest.raises(pal.UsageError, match=r"rule 'r' is disabled \(enabled: false\)"):
        pal.sweep(series_frame("0 90 0"), rule, threshold=[70, 80])
    assert len(pal.sweep(series_frame("0 90 0"), rule.replace(enabled=True), threshold=[70, 80])) == 2
