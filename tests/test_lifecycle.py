"""Escalation, acknowledgement, repeats, resolution notices, silences and horizon, by hand.

The series fires at minute 0 and is held until it resolves at minute 50
(``90x49 0`` is 90 for minutes 0..49, then 0 at 50); times below are minutes.
"""

from __future__ import annotations

import pandas as pd
from series import at, series_frame

import perfalert_lab as pal
from perfalert_lab.rules import Channel, Responders, Silence

FRAME = series_frame("90x49 0")  # fires at 0, resolves at 50; data ends at 50


def run(frame: pd.DataFrame = FRAME, responders: Responders | None = None, silences: tuple = (),
        channels: dict | None = None, **rule_kw: object) -> pal.BacktestResult:
    kw = {"id": "r", "metric": "m", "threshold": 80, "notify": ("log",), **rule_kw}
    rs = pal.RuleSet((pal.Rule(**kw),), responders=responders or Responders(), silences=silences,
                     channels=channels or {})
    return pal.backtest(frame, rs)


def notes(result: pal.BacktestResult) -> list[tuple]:
    n = result.notifications
    minutes = ((n["at"] - at(0)) / pd.Timedelta(minutes=1)).astype(int)
    return list(zip(n["kind"], n["level"], n["channel"], minutes, n["delivered"], n["reason"], strict=True))


def test_escalation_every_delay_up_to_max_with_levels() -> None:
    r = run(escalation={"delay": "10m", "max": 3, "levels": [{"notify": ["email"]}, {"notify": ["sms"]}]})
    assert notes(r) == [("firing", 0, "log", 0, True, ""), ("escalation", 1, "email", 10, True, ""),
                        ("escalation", 2, "sms", 20, True, ""), ("escalation", 3, "sms", 30, True, "")]
    assert r.alerts["escalation_level"].tolist() == [3]  # the seed stopped after one: not reproduced


def test_escalation_without_levels_renotifies_the_rules_channels() -> None:
    r = run(notify=("log", "slack"), escalation={"delay": "20m", "max": 5})
    assert [(k, lv, c, t) for k, lv, c, t, _, _ in notes(r)] == [
        ("firing", 0, "log", 0),
        ("firing", 0, "slack", 0),
        ("escalation", 1, "log", 20),
        ("escalation", 1, "slack", 20),
        ("escalation", 2, "log", 40),
        ("escalation", 2, "slack", 40),
    ]  # the third (60) is after the resolution


def test_escalation_on_polling_ticks() -> None:
    # check_every 4m: e1 = first tick >= 0+10 = 12; e2 >= 12+10 -> 24; e3 >= 24+10 -> 36
    r = run(escalation={"delay": "10m", "max": 3, "check_every": "4m"})
    assert [t for k, _, _, t, _, _ in notes(r) if k == "escalation"] == [12, 24, 36]


def test_an_ack_at_the_same_instant_wins_over_escalation() -> None:
    r = run(escalation={"delay": "10m", "max": 3}, responders=Responders(ack_after="10m"))
    assert [k for k, *_ in notes(r)] == ["firing"]
    a = r.alerts.iloc[0]
    assert a["acknowledged_at"] == at(10) and a["escalation_level"] == 0 and a["status"] == "resolved"


def test_escalation_stops_at_the_ack() -> None:
    r = run(escalation={"delay": "10m", "max": 3}, responders=Responders(ack_after="25m"))
    assert [t for k, _, _, t, _, _ in notes(r) if k == "escalation"] == [10, 20]


def test_repeats_while_firing_and_unacknowledged_and_a_resolved_notice() -> None:
    r = run(repeat_interval="15m", send_resolved=True)
    assert [(k, t) for k, _, _, t, _, _ in notes(r)] == [("firing", 0), ("repeat", 15), ("repeat", 30),
                                                         ("repeat", 45), ("resolved", 50)]
    assert r.alerts["notifications"].tolist() == [5]
    acked = run(repeat_interval="15m", responders=Responders(ack_after="20m"))
    assert [(k, t) for k, _, _, t, _, _ in notes(acked)] == [("firing", 0), ("repeat", 15)]


def test_nothing_is_recorded_after_the_end_of_the_data() -> None:
    open_frame = series_frame("90x40")  # still firing when the data ends at 40
    r = run(open_frame, repeat_interval="15m", send_resolved=True, escalation={"delay": "25m", "max": 3},
            responders=Responders(ack_after="45m"))
    assert [(k, t) for k, _, _, t, _, _ in notes(r)] == [("firing", 0), ("repeat", 15), ("escalation", 25),
                                                         ("repeat", 30)]
    a = r.alerts.iloc[0]
    assert pd.isna(a["resolved_at"]) and pd.isna(a["acknowledged_at"]) and a["status"] == "active"


def test_a_silence_marks_notifications_in_it_undelivered() -> None:
    r = run(repeat_interval="15m", silences=(Silence({"source": "s1"}, start=at(25), end=at(35)),))
    assert [(k, t, d, why) for k, _, _, t, d, why in notes(r)] == [
        ("firing", 0, True, ""), ("repeat", 15, True, ""), ("repeat", 30, False, "silenced"), ("repeat", 45, True, "")]
    assert r.alerts["status"].tolist() == ["resolved"]  # it fired outside the silence
    assert r.stats.iloc[0]["undelivered"] == 1


def test_a_disabled_channel_is_not_notified() -> None:
    r = run(notify=("log", Channel("sms", enabled=False)))
    assert [c for _, _, c, *_ in notes(r)] == ["log"]


def test_sample_mode_alerts_resolve_by_the_responder() -> None:
    frame = series_frame("90 90 90 0 0 0 0 0 0 0 0")  # data ends at 10
    r = run(frame, mode="sample", cooldown="2m", responders=Responders(resolve_after="5m", ack_after="1m"))
    a = r.alerts
    assert a["fired_at"].tolist() == [at(0), at(2)]
    assert a["resolved_at"].tolist() == [at(5), at(7)]
    assert a["acknowledged_at"].tolist() == [at(1), at(3)]
    late = run(series_frame("0 0 0 0 0 0 0 90 0 0 0"), mode="sample", responders=Responders(resolve_after="5m"))
    assert late.alerts["resolved_at"].isna().all()  # 7 + 5 is past the end of the data


def test_per_severity_and_random_acknowledgement() -> None:
    per = run(severity="critical", responders=Responders(ack_after={"critical": "3m", "low": "1h"}))
    assert per.alerts["acknowledged_at"].tolist() == [at(3)]
    none = run(severity="high", responders=Responders(ack_after={"critical": "3m"}))
    assert none.alerts["acknowledged_at"].isna().all()
    frame = pd.concat([series_frame("0 90x60 0 " * 3, source=f"h{i}") for i in range(5)])
    rnd = {"distribution": "lognormal", "median": "10m", "sigma": 0.8, "seed": 4}
    a = run(frame, responders=Responders(ack_after=rnd)).alerts
    delays = (a["acknowledged_at"] - a["fired_at"]).dt.total_seconds()
    assert delays.notna().sum() >= 12 and delays.nunique() >= 10  # random, mostly before the resolution
    assert 4 * 60 < delays.median() < 25 * 60  # around the 10m median
    b = run(frame.iloc[::-1], responders=Responders(ack_after=rnd)).alerts  # same alerts, other input order
    assert a["acknowledged_at"].tolist() == b["acknowledged_at"].tolist()  # reproducible per alert
    other_seed = run(frame, responders=Responders(ack_after={**rnd, "seed": 5})).alerts
    assert other_seed["acknowledged_at"].tolist() != a["acknowledged_at"].tolist()
