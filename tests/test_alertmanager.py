"""The simulated Alertmanager (SPEC 12).

Routing of random label sets through random route trees equals ``amtool config routes
test``; configurations are accepted and refused as ``amtool check-config`` does; each
timing and deduplication rule has a literal case with the facts of Alertmanager's
documentation and its dispatcher's and notification log's behaviour.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from alertmanager_oracle import amtool_routes, need_amtool, random_config, random_labels

from perfalert_lab.alertmanager import parse_alertmanager
from perfalert_lab.alertmanager.config import parse_matchers
from perfalert_lab.alertmanager.simulate import Alert, Silence, simulate
from perfalert_lab.errors import RulesError
from perfalert_lab.recommendation import Recommendation

CORPUS = Path(__file__).parent / "corpus" / "alertmanager"
S, M, H = 1000, 60_000, 3_600_000


def test_routing_equals_amtool(tmp_path):
    rng = random.Random(4)
    checked = multi = 0
    for _ in range(12):
        config = random_config(rng)
        labels = [random_labels(rng) for _ in range(20)]
        theirs = amtool_routes(tmp_path, config, labels)
        am = parse_alertmanager(yaml.safe_dump(config))
        for lb, want in zip(labels, theirs, strict=True):
            got = [r.receiver for r in am.routes_for(lb)]
            assert got == want, (config, lb)
            checked += 1
            multi += len(want) > 1
    assert checked == 240 and multi >= 10  # `continue` really fans out in these trees


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yml")), ids=lambda p: p.name)
def test_the_same_configurations_as_amtool_check_config(path):
    amtool = need_amtool()
    theirs = subprocess.run([amtool, "check-config", str(path)], capture_output=True).returncode == 0
    try:
        parse_alertmanager(path.read_text(), name=str(path))
        ours = True
    except RulesError as exc:
        ours = False
        assert all(p.startswith(f"{path}:") for p in exc.problems), exc.problems
    assert ours == theirs == path.name.startswith("ok_")


BASE = """
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
"""


def _alert(name: str, start: int, end: int | None = None, **labels: str) -> Alert:
    lb = tuple(sorted({"alertname": name, **labels}.items()))
    return Alert(f"{name}-{start}", lb, start, end)


def _times(notes) -> list[tuple[int, int, int]]:
    return [(n.at // S, len(n.firing), len(n.resolved)) for n in notes]


def test_group_wait_then_group_interval_and_resolved():
    """First notification group_wait after the group appears; the resolution at the next group_interval tick."""
    am = parse_alertmanager(BASE)
    notes = simulate([_alert("A", 0, 10 * M)], am, end_ms=H)
    assert _times(notes) == [(30, 1, 0), (630, 0, 1)]  # 30 s, then the tick at 30 s + 2 x 5 m


def test_a_new_alert_in_a_notified_group_waits_for_the_next_tick():
    am = parse_alertmanager(BASE)
    notes = simulate([_alert("A", 0, instance="a"), _alert("A", M, instance="b")], am, end_ms=20 * M)
    assert _times(notes) == [(30, 1, 0), (330, 2, 0)]
    assert not notes[1].repeat


def test_repeat_interval_is_strictly_exceeded_at_a_flush_tick():
    am = parse_alertmanager(BASE)
    notes = simulate([_alert("A", 0)], am, end_ms=3 * H)
    # ticks at 30 s + k x 5 m; the repeat needs the last notification *before* now - 1h
    assert [n.at // S for n in notes] == [30, 3930, 7830]
    assert [n.repeat for n in notes] == [False, True, True]


def test_without_send_resolved_nothing_is_sent_but_the_log_forgets():
    am = parse_alertmanager(BASE.replace('webhook_configs: [{url: "http://127.0.0.1:9/hook"}]',
                                         'webhook_configs: [{url: "http://127.0.0.1:9/hook", send_resolved: false}]'))
    notes = simulate([_alert("A", 0, 2 * M), _alert("A", 20 * M)], am, end_ms=40 * M)
    # resolved at 2m: silent; the group is deleted; the same alert firing again is a new group
    assert _times(notes) == [(30, 1, 0), (20 * 60 + 30, 1, 0)]


def test_flapping_inside_a_group_interval_is_not_notified_again():
    am = parse_alertmanager(BASE)
    notes = simulate([_alert("A", 0, 2 * M), _alert("A", 4 * M)], am, end_ms=30 * M)
    assert _times(notes) == [(30, 1, 0)]  # at 5m30s it fires again, as last told: nothing new


def test_inhibition_mutes_targets_with_equal_labels():
    am = parse_alertmanager(BASE + """
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
""")
    alerts = [_alert("Down", 0, 20 * M, severity="critical", cluster="c1"),
              _alert("Slow", 0, severity="warning", cluster="c1"),
              _alert("Slow2", 0, severity="warning", cluster="c2")]
    notes = simulate(alerts, am, end_ms=25 * M + 1)
    sent = [(n.at // S, a.split("-")[0]) for n in notes for a in n.firing]
    assert [x for x in sent if x[0] < 20 * 60] == [(30, "Down"), (30, "Slow2")]  # Slow is muted by Down
    assert (20 * 60 + 30, "Slow") in sent  # Down resolved at 20m: Slow at its group's next tick


def test_continue_sends_to_every_matching_route():
    am = parse_alertmanager("""
route:
  receiver: default
  routes:
    - {matchers: ['severity="page"'], receiver: pager, continue: true}
    - {matchers: ['team="db"'], receiver: db}
receivers:
  - {name: default, webhook_configs: [{url: "http://127.0.0.1:9/d"}]}
  - {name: pager, pagerduty_configs: [{routing_key: "k"}]}
  - {name: db, webhook_configs: [{url: "http://127.0.0.1:9/db"}]}
""")
    notes = simulate([_alert("X", 0, severity="page", team="db")], am, end_ms=M)
    assert sorted((n.receiver, n.paging) for n in notes) == [("db", False), ("pager", True)]


def test_silences_and_mute_time_intervals():
    am = parse_alertmanager(BASE.replace("  repeat_interval: 1h\n", "  repeat_interval: 1h\n  routes:\n"
                                         "    - {matchers: ['env=\"dev\"'], mute_time_intervals: [nights]}\n") + """
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: "00:00", end_time: "06:00"}]
""")
    dev = simulate([_alert("A", 0, env="dev")], am, end_ms=7 * H)
    assert dev and all(n.at >= 6 * H for n in dev)  # 1970-01-01 00:00 UTC is night
    silenced = simulate([_alert("A", 0, env="prod")], am, end_ms=2 * H,
                        silences=(Silence(tuple(parse_matchers('env="prod"')), 0, H),))
    assert [n.at // S for n in silenced] == [3630]  # the first tick after the silence ends


def test_matchers_are_parsed_as_alertmanager_writes_them():
    assert [str(m) for m in parse_matchers('{a="1", b=~"x|y",c!=z}')] == ['a="1"', 'b=~"x|y"', 'c!="z"']
    with pytest.raises(ValueError, match="bad matcher"):
        parse_matchers("a~1")


AM_FILE = """
route:
  receiver: team
  group_by: [alertname]
  routes:
    - {matchers: ['severity=~"page|critical"'], receiver: pager}
receivers:
  - {name: team, webhook_configs: [{url: "http://127.0.0.1:9/hook"}]}
  - {name: pager, pagerduty_configs: [{routing_key: "secret-routing-key-123"}]}
"""


def test_backtest_through_alertmanager_gives_the_section_12_tables():
    from conftest import ROOT

    import perfalert_lab as pal
    from perfalert_lab.alertmanager.outputs import NOTIFICATION_COLUMNS

    frame, incidents = pal.datasets.prometheus_fleet()
    rules = pal.load_prometheus_rules(ROOT / "data" / "prometheus" / "alerts.rules.yml")
    plain = pal.backtest(frame, rules, incidents=incidents)
    result = pal.backtest(frame, rules, incidents=incidents, alertmanager=parse_alertmanager(AM_FILE))
    assert list(result.notifications.columns) == NOTIFICATION_COLUMNS
    assert list(result.notification_alerts.columns) == ["notification_id", "alert_id", "state"]
    # the same alerts; every alert is carried by a notification (group_wait 30s after it fires)
    assert result.alerts["alert_id"].tolist() == plain.alerts["alert_id"].tolist()
    first = result.notification_alerts[result.notification_alerts["state"] == "firing"].drop_duplicates("alert_id")
    at = result.notifications.set_index("notification_id")["at"]
    fired = result.alerts.set_index("alert_id")["fired_at"]
    assert ((first["notification_id"].map(at).to_numpy() - first["alert_id"].map(fired).to_numpy())
            == pd.Timedelta("30s")).all()
    # a page (SPEC 5): each notification carrying firing alerts to a paging integration (pagerduty here);
    # a notification of resolved alerts alone wakes nobody
    pages = result.receivers.set_index("receiver").loc["pager"]
    n = result.notifications
    to_pager = n["receiver"] == "pager"
    assert pages["notifications"] == to_pager.sum() > 0
    assert pages["pages"] == (to_pager & (n["firing"] > 0)).sum() > 0
    assert result.oncall() is result.receivers


def test_our_own_rules_reach_alertmanager_with_their_labels(tmp_path):
    import perfalert_lab as pal

    frame, _ = pal.datasets.synthetic_fleet(hosts=3, days=7, seed=0)
    rules = pal.RuleSet((pal.Rule(id="cpu-high", metric="cpu", threshold=85, for_="5m", severity="critical"),
                         pal.Rule(id="latency", metric="latency_ms", threshold=400, severity="low")))
    result = pal.backtest(frame, rules, alertmanager=parse_alertmanager(AM_FILE))
    assert set(result.alerts["rule_id"]) == {"cpu-high", "latency"}
    by_receiver = result.notifications.groupby("receiver")["group_labels"].apply(set).to_dict()
    assert by_receiver.get("pager", set()) <= {'{alertname="cpu-high"}'}
    assert '{alertname="latency"}' in by_receiver.get("team", set())


def test_cli_alertmanager_writes_the_tables_and_never_the_secrets(tmp_path):
    from conftest import ROOT

    import perfalert_lab as pal
    from perfalert_lab.cli import main

    frame, incidents = pal.datasets.prometheus_fleet()
    frame.to_parquet(tmp_path / "fleet.parquet")
    (tmp_path / "am.yml").write_text(AM_FILE)
    out = tmp_path / "out"
    assert main(["backtest", str(tmp_path / "fleet.parquet"), "--rules",
                 str(ROOT / "data" / "prometheus" / "alerts.rules.yml"), "--alertmanager", str(tmp_path / "am.yml"),
                 "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"alerts.csv", "notifications.csv", "stats.csv", "report.html",
                                              "notification_alerts.csv", "receivers.csv"}
    for p in out.iterdir():
        assert "secret-routing-key" not in p.read_text()
    (tmp_path / "bad.yml").write_text(AM_FILE.replace("receiver: pager", "receiver: nobody"))
    assert main(["backtest", str(tmp_path / "fleet.parquet"), "--rules",
                 str(ROOT / "data" / "prometheus" / "alerts.rules.yml"), "--alertmanager",
                 str(tmp_path / "bad.yml")]) == 2


def test_sweeping_the_timers_and_recommending_within_a_page_budget():
    import perfalert_lab as pal
    from perfalert_lab.alertmanager.tuning import recommend_alertmanager, sweep_alertmanager
    from perfalert_lab.errors import UsageError

    frame, _ = pal.datasets.synthetic_fleet(hosts=4, days=7, seed=0)
    result = pal.backtest(frame, pal.Rule(id="cpu", metric="cpu", threshold=80, severity="critical"))
    am = parse_alertmanager("route: {receiver: p, group_by: [alertname]}\n"
                            "receivers: [{name: p, pagerduty_configs: [{routing_key: k}]}]\n")
    table = sweep_alertmanager(result, am, group_wait=["0s", "30s", "5m"], repeat_interval=["30m", "4h"],
                               group_by=[["alertname"], ["..."]])
    assert len(table) == 12
    by_wait = table.groupby("group_wait")["mean_first_notice_s"].mean()
    assert by_wait["0s"] < by_wait["30s"] < by_wait["5m"]
    # per-alert groups never merge alerts: at least as many notifications as one group per rule
    per_alert = table[table["group_by"] == "..."].set_index(["group_wait", "repeat_interval"])["notifications"]
    per_rule = table[table["group_by"] == "alertname"].set_index(["group_wait", "repeat_interval"])["notifications"]
    assert (per_alert >= per_rule).all()
    budget = float(table["pages_per_week"].median())
    best = recommend_alertmanager(table, max_pages_per_week=budget, config=am)
    assert isinstance(best, Recommendation)  # one Recommendation for every kind of sweep
    assert best.row["pages_per_week"] <= budget and "tells people soonest" in best.explanation
    # the tuned configuration gives what the chosen row says
    from perfalert_lab.alertmanager.outputs import apply_alertmanager

    again = sweep_alertmanager(result, best.alertmanager, group_wait=[best.row["group_wait"]])
    assert again.iloc[0]["pages_per_week"] == best.row["pages_per_week"]
    assert again.iloc[0]["notifications"] == best.row["notifications"]
    assert apply_alertmanager(result, best.alertmanager).receivers["pages"].sum() == best.row["pages"]
    with pytest.raises(UsageError, match="no combination stays within 0 pages"):
        recommend_alertmanager(table, max_pages_per_week=0)


def _route_keys(route, out):
    out.append(route.key)
    for child in route.routes:
        _route_keys(child, out)
    return out


def test_the_group_by_group_path_equals_the_event_at_a_time_simulation():
    """Random alert timelines and configurations (timers, integrations, inhibition, muting):
    simulate_fast (what the backtest uses) equals the reference simulation notification for notification."""
    from alertmanager_oracle import random_alerts, random_full_config

    from perfalert_lab.alertmanager.fast import simulate_fast

    rng = random.Random(8)
    compared = notes = 0
    while compared < 120:
        config = parse_alertmanager(yaml.safe_dump(random_full_config(rng)))
        keys = _route_keys(config.route, [])
        if len(set(keys)) != len(keys):
            continue  # sibling routes sharing a notification log: the reference only (see fast.py)
        alerts = random_alerts(rng, rng.randint(1, 40))
        silences = (Silence(tuple(parse_matchers('team="web"')), 2 * H, 3 * H),) if rng.random() < 0.3 else ()

        def key(n):
            return (n.at, n.receiver, n.integration, n.group_key, tuple(n.firing), tuple(n.resolved), n.repeat)

        want = sorted(map(key, simulate(alerts, config, end_ms=10 * H, silences=silences)))
        got = sorted(map(key, simulate_fast(alerts, config, end_ms=10 * H, silences=silences)))
        assert got == want
        compared += 1
        notes += len(want)
    assert notes > 1000


def test_the_report_draws_notifications_per_receiver(tmp_path):
    from conftest import ROOT

    import perfalert_lab as pal
    from perfalert_lab.plot import ReceiverTimeline
    from perfalert_lab.report import write_report

    frame, _ = pal.datasets.prometheus_fleet()
    result = pal.backtest(frame, pal.load_prometheus_rules(ROOT / "data" / "prometheus" / "alerts.rules.yml"),
                          alertmanager=parse_alertmanager(AM_FILE))
    picture = ReceiverTimeline.from_result(result)
    assert picture.receivers == ["team", "pager"]
    drawn = sum(len(t) for m in picture.marks.values() for t in m.values())
    assert drawn == len(result.notifications) > 0
    assert picture._repr_png_()[:4] == b"\x89PNG"
    write_report(result, tmp_path / "report.html", title="t")
    assert "<h3>Notifications per receiver</h3><img" in (tmp_path / "report.html").read_text()
    with pytest.raises(pal.UsageError, match="no Alertmanager"):
        ReceiverTimeline.from_result(pal.backtest(frame, pal.load_prometheus_rules(
            ROOT / "data" / "prometheus" / "alerts.rules.yml")))


# --------------------------------------------------------------------------- as the 0.25 binary behaves (issue 21)

SECONDS = """
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
  routes:
    - matchers: ['team="db"']
      group_by: []
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/hook", send_resolved: true}]
inhibit_rules:
  - source_matchers: ['alertname="Source"']
    target_matchers: ['alertname="Target"']
"""


def _both(alerts: list[Alert], config, end_ms: int, group: str = "", **kw) -> list[tuple[int, int, int]]:
    """The notifications (of groups whose key holds ``group``) of the reference and of the fast path,
    asserted equal."""
    from perfalert_lab.alertmanager.fast import simulate_fast

    ours = _times(n for n in simulate(alerts, config, end_ms=end_ms, **kw) if group in n.group_key)
    assert _times(n for n in simulate_fast(alerts, config, end_ms=end_ms, **kw) if group in n.group_key) == ours
    return ours


def test_an_empty_group_by_list_inherits_the_parents_grouping():
    """Alertmanager reads `group_by: []` as no list: the child route groups by its parent's labels."""
    am = parse_alertmanager(SECONDS)
    child = am.route.routes[0]
    assert child.group_by == ("alertname",)
    notes = simulate([_alert("A", 0, team="db"), _alert("B", 0, team="db")], am, end_ms=10 * S)
    assert sorted(n.group_key for n in notes) == ['{}/{team="db"}:{alertname="A"}', '{}/{team="db"}:{alertname="B"}']


def test_a_group_muted_whole_leaves_the_notification_log_alone():
    """Inhibition mutes every alert of the group at a flush: the pipeline stops before the log, so the
    next flush compares with what was really sent (before: the log said 'nothing firing')."""
    am = parse_alertmanager(SECONDS)
    target = _alert("Target", 0, 20 * S)
    source = _alert("Source", 3 * S, 8 * S)
    # 1 s: Target fires (sent). 6 s: inhibited by Source, nothing sent and nothing logged. 11 s: Target fires
    # again uninhibited, as the log has it: no new notification. 21 s: its resolution is sent.
    assert _both([target, source], am, end_ms=60 * S, group="Target") == [(1, 1, 0), (21, 0, 1)]
    # resolved while the log still says it fires: the resolution is sent once the inhibition lifts
    assert _both([_alert("Target", 0, 9 * S), source], am, end_ms=60 * S, group="Target") == [(1, 1, 0),
                                                                                               (11, 0, 1)]


def test_an_empty_group_lives_until_the_dispatchers_maintenance():
    """A group emptied at a flush is removed at the next 30 s maintenance: an alert that joins before it is
    flushed at the group's next tick (not group_wait after it arrives), and a short episode between two
    ticks notifies nobody; after the maintenance a new group waits group_wait again."""
    am = parse_alertmanager(SECONDS)
    first = _alert("A", 0, 2 * S, instance="a")  # 1 s: firing; 6 s: resolved, the group is empty
    assert _both([first, _alert("A", 8 * S, instance="b")], am, end_ms=60 * S) == [(1, 1, 0), (6, 0, 1),
                                                                                    (11, 1, 0)]
    assert _both([first, _alert("A", 7 * S, 9 * S, instance="b")], am, end_ms=60 * S) == [(1, 1, 0), (6, 0, 1)]
    assert _both([first, _alert("A", 31 * S, instance="b")], am, end_ms=60 * S) == [(1, 1, 0), (6, 0, 1),
                                                                                     (32, 1, 0)]
    # the maintenance's phase is the dispatcher's start: by default at 30 s, so an alert at 12.5 s joins the
    # empty group (its tick at 16 s); started at -20 s, it runs at 10 s: the alert makes a new group (13.5 s)
    late = _alert("A", 12_500, instance="b")
    assert _both([first, late], am, end_ms=60 * S) == [(1, 1, 0), (6, 0, 1), (16, 1, 0)]
    assert _both([first, late], am, end_ms=60 * S, dispatcher_start=-20 * S) == [(1, 1, 0), (6, 0, 1), (13, 1, 0)]
