"""What a page says: our rules' labels and annotations (Go templates) and the default summary.

The judge is Prometheus: a rule of ours exported with ``to_prometheus`` and run by
``promtool test rules`` must give each firing alert the labels and annotations our backtest
rendered when it fired (same templates, same ``$value``), on random rules and series.
"""

from __future__ import annotations

import random
import re
import subprocess

import pandas as pd
import pytest
import yaml
from promtool_oracle import need_promtool

import perfalert_lab as pal
from perfalert_lab.engine.lifecycle import ALERT_COLUMNS, NOTIFICATION_COLUMNS
from perfalert_lab.errors import RulesError
from perfalert_lab.rules.model import Silence

PAIR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def frame_of(values: dict[str, list[float | None]], metric: str = "m", **labels: str) -> pd.DataFrame:
    rows = [(pd.Timestamp(i * 60, unit="s", tz="UTC"), src, metric, float(v))
            for src, vals in values.items() for i, v in enumerate(vals) if v is not None]
    frame = pd.DataFrame(rows, columns=["timestamp", "source", "metric", "value"])
    for k, v in labels.items():
        frame[k] = v
    return frame


def test_default_summary_is_the_seeds_message_with_the_value_when_it_fired():
    frame = frame_of({"web-1": [10, 90, 95, 97, 20, 91.234, 93, 10]}, metric="cpu_utilization")
    rule = pal.Rule(id="cpu-high", name="High CPU usage", metric="cpu_utilization", threshold=80, for_="1m",
                    severity="high", send_resolved=True)
    result = pal.backtest(frame, rule, texts=True)
    # fired one evaluation after pending: the value then (95, then 93), not the first holding one
    assert result.notifications["summary"].tolist() == [
        "High CPU usage: cpu_utilization > 80% (current: 95%, severity: high)",
        "High CPU usage: cpu_utilization > 80% (current: 95%, severity: high)",
        "High CPU usage: cpu_utilization > 80% (current: 93%, severity: high)",
        "High CPU usage: cpu_utilization > 80% (current: 93%, severity: high)"]
    assert result.notifications["kind"].tolist() == ["firing", "resolved", "firing", "resolved"]
    annotations = result.alerts["annotations"].tolist()
    assert annotations[0] == '{summary="High CPU usage: cpu_utilization > 80% (current: 95%, severity: high)"}'


def test_the_summary_names_the_window_and_the_unit():
    frame = frame_of({"api": [0.1, 0.2, 0.9, 1.1, 0.1]}, metric="http_request_duration_seconds")
    rule = pal.Rule(id="slow", name="Slow", metric="http_request_duration_seconds", threshold=0.5, window="2m",
                    aggregate="max")
    summary = pal.backtest(frame, rule, texts=True).notifications["summary"].iloc[0]
    assert summary == "Slow: max(http_request_duration_seconds[2m]) > 0.5 s (current: 900ms, severity: medium)"
    frame = frame_of({"db": [1.0, 2.0e9, 3.0]}, metric="queue_depth")
    rule = pal.Rule(id="deep", metric="queue_depth", threshold=1e6, mode="sample")
    assert pal.backtest(frame, rule, texts=True).notifications["summary"].tolist() == [
        "deep: queue_depth > 1e+06 (current: 2G, severity: medium)"]


def test_templates_render_labels_and_annotations_per_alert():
    frame = pd.concat([frame_of({"web-1": [10, 90, 20]}, region="eu"),
                       frame_of({"web-2": [10, 20, 85.5]}, region="us")], ignore_index=True)
    rule = pal.Rule(id="hot", metric="m", threshold=80,
                    labels={"team": "infra", "where": "{{ $labels.region }}-{{ $labels.source | toUpper }}",
                            "severity": "page"},
                    annotations={"description": "{{ $labels.source }} at {{ $value | humanize }} "
                                                "({{ $labels.metric }})",
                                 "summary": '{{ printf "%.0f" $value }} on {{ $labels.source }}'})
    result = pal.backtest(frame, rule)  # labels and annotations set: texts by default
    alerts = result.alerts
    assert list(alerts.columns) == [*ALERT_COLUMNS, "labels", "annotations", "region"]  # the series label follows
    assert alerts["labels"].tolist() == [
        '{alertname="hot", metric="m", region="eu", severity="page", source="web-1", team="infra", where="eu-WEB-1"}',
        '{alertname="hot", metric="m", region="us", severity="page", source="web-2", team="infra", where="us-WEB-2"}']
    assert alerts["annotations"].tolist() == ['{description="web-1 at 90 (m)", summary="90 on web-1"}',
                                              '{description="web-2 at 85.5 (m)", summary="86 on web-2"}']
    assert result.notifications["summary"].tolist() == ["90 on web-1", "86 on web-2"]


def test_contract_columns_stay_exact_unless_texts_are_asked_for():
    frame = frame_of({"a": [90, 10]})
    plain = pal.backtest(frame, pal.Rule(id="r", metric="m", threshold=80))
    assert list(plain.alerts.columns) == ALERT_COLUMNS
    assert list(plain.notifications.columns) == NOTIFICATION_COLUMNS
    asked = pal.backtest(frame, pal.Rule(id="r", metric="m", threshold=80), texts=True)
    assert list(asked.notifications.columns) == [*NOTIFICATION_COLUMNS, "summary"]
    quiet = pal.backtest(frame, pal.Rule(id="r", metric="m", threshold=80, labels={"team": "x"}), texts=False)
    assert list(quiet.alerts.columns) == ALERT_COLUMNS
    # the other columns are the same either way
    pd.testing.assert_frame_equal(plain.alerts, asked.alerts[ALERT_COLUMNS])


def test_bad_templates_and_label_names_are_named_with_their_line(tmp_path, capsys):
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules:\n  - id: cpu\n    metric: cpu\n    threshold: 80\n"
                    "    labels: {team-name: x}\n    annotations:\n      summary: '{{ if $value }}x'\n"
                    "      runbook: '{{ $value | nosuch }}'\n")
    with pytest.raises(RulesError) as err:
        pal.load_rules(path)
    text = str(err.value)
    assert "rules.yaml:6" in text and "labels.team-name" in text and "valid label name" in text
    assert "rules.yaml:8" in text and "{{if}} has no {{end}}" in text
    assert "rules.yaml:9" in text and "'nosuch'" in text
    from perfalert_lab.cli import main

    assert main(["validate", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_annotations_round_trip_through_the_rules_file(tmp_path):
    rule = pal.Rule(id="cpu", metric="cpu", threshold=80, labels={"team": "{{ $labels.source }}"},
                    annotations={"summary": "{{ $value }}", "runbook": "https://runbooks/cpu"})
    pal.save_rules(pal.RuleSet((rule,)), tmp_path / "r.yaml")
    again = pal.load_rules(tmp_path / "r.yaml")["cpu"]
    assert dict(again.annotations) == dict(rule.annotations) and dict(again.labels) == dict(rule.labels)


def test_a_silence_matches_the_rendered_label():
    frame = frame_of({"web-1": [90, 10], "db-1": [90, 10]})
    rules = pal.RuleSet((pal.Rule(id="r", metric="m", threshold=80,
                                  labels={"tier": "{{ reReplaceAll \"-.*\" \"\" $labels.source }}"}),),
                        silences=(Silence(matchers={"tier": "db"}, start="1970-01-01T00:00:00Z",
                                              end="1970-01-02T00:00:00Z"),))
    alerts = pal.backtest(frame, rules).alerts.set_index("source")
    assert alerts.loc["db-1", "status"] == "suppressed" and alerts.loc["web-1", "status"] != "suppressed"


def test_rule_labels_reach_alertmanager_routes(tmp_path):
    (tmp_path / "am.yml").write_text("""
route:
  receiver: default
  group_wait: 0s
  routes:
  - receiver: infra
    matchers: ['team="infra"']
receivers:
- {name: default, webhook_configs: [{url: "http://127.0.0.1:9/d"}]}
- {name: infra, webhook_configs: [{url: "http://127.0.0.1:9/i"}]}
""")
    frame = frame_of({"web-1": [90, 90, 10]})
    rules = pal.RuleSet((pal.Rule(id="a", metric="m", threshold=80, labels={"team": "infra"}),
                         pal.Rule(id="b", metric="m", threshold=85)))
    result = pal.backtest(frame, rules, alertmanager=pal.load_alertmanager(tmp_path / "am.yml"))
    receiver = result.notifications.set_index("notification_id")["receiver"]
    rule_of = result.alerts.set_index("alert_id")["rule_id"]
    got = {(receiver[row.notification_id], rule_of[row.alert_id]) for row in result.notification_alerts.itertuples()}
    assert got == {("infra", "a"), ("default", "b")}


def test_dask_gives_the_same_texts():
    pytest.importorskip("dask.dataframe")
    import dask.dataframe as dd

    frame = frame_of({"web-1": [10, 90, 20, 95], "web-2": [85, 10, 99, 10]})
    rule = pal.Rule(id="r", metric="m", threshold=80, annotations={"summary": "{{ $labels.source }} {{ $value }}"})
    ours = pal.backtest(frame, rule)
    theirs = pal.backtest(dd.from_pandas(frame, npartitions=2), rule)
    pd.testing.assert_frame_equal(ours.alerts, theirs.alerts)
    pd.testing.assert_frame_equal(ours.notifications, theirs.notifications)


TEMPLATES = ["{{ $value }}", "{{ $value | humanize }}", "{{ humanizePercentage $value }}",
             '{{ printf "%.2f" $value }}', "{{ $labels.source }} is {{ $labels.metric | toUpper }}",
             "{{ $labels.zone }}/{{ $labels.source }}", "{{ title $labels.source }} {{ humanize1024 $value }}",
             "static text"]


def random_rule(rng: random.Random, n: int) -> pal.Rule:
    op = rng.choice([">", ">=", "<", "<="])
    labels = {"team": rng.choice(["infra", "{{ $labels.zone }}", "t-{{ $labels.source }}"])}
    annotations = {"description": rng.choice(TEMPLATES)}
    if rng.random() < 0.5:
        annotations["summary"] = rng.choice(TEMPLATES)
    return pal.Rule(id=f"R{n}", name=rng.choice(["High m", "m is off"]), metric="m", op=op,
                    threshold=rng.choice([20, 50, 50.5, 80]), for_=f"{rng.choice([0, 0, 60, 120])}s",
                    severity=rng.choice(["low", "high"]), labels=labels, annotations=annotations)


@pytest.mark.promtool
def test_texts_equal_promtools_for_exported_rules(tmp_path):
    """40 random rules (templates, default summaries, for): every firing alert's labels and
    annotations at the evaluation it fired equal promtool's for the exported rule."""
    promtool = need_promtool()
    rng = random.Random(7)
    checked = 0
    for n in range(40):
        rule = random_rule(rng, n)
        values = {f"s{i}": [rng.choice([None, rng.uniform(0, 100), round(rng.uniform(0, 100))])
                            for _ in range(25)] for i in range(3)}
        frame = frame_of(values, zone="z1")
        result = pal.backtest(frame, rule, clock=pal.IntervalClock("1m", lookback="5m1s"), texts=True)
        fired = result.alerts[result.alerts["status"] != "suppressed"]
        if fired.empty:
            continue
        text = pal.to_prometheus(rule, report=lambda msg: None)
        (tmp_path / "rules.yml").write_text(text)
        times = sorted({int(t.value // 10**9) for t in fired["fired_at"]})
        series = [{"series": f'm{{source="{s}", zone="z1"}}',
                   "values": " ".join("_" if v is None else repr(float(v)) for v in vals)}
                  for s, vals in values.items()]
        (tmp_path / "t.yml").write_text(yaml.safe_dump({
            "rule_files": ["rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [
                {"eval_time": f"{t}s", "alertname": rule.id, "exp_alerts": []} for t in times]}]}, width=10_000))
        proc = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True)
        out = proc.stdout + proc.stderr
        theirs: dict[tuple[int, str], tuple[dict[str, str], dict[str, str]]] = {}
        for block in re.split(r"alertname: \S+, time: ", out)[1:]:
            t = int(pd.Timedelta(block.split(",", 1)[0]).total_seconds())
            for lab, ann in re.findall(r"Labels:\{([^}]*)\}\s*Annotations:\{([^}]*)\}", block):
                labels = dict(PAIR.findall(lab))
                theirs[(t, labels["source"])] = (labels, dict(PAIR.findall(ann)))
        for a in fired.itertuples():
            key = (int(a.fired_at.value // 10**9), a.source)
            assert key in theirs, (n, key, out[:2000])
            labels, annotations = theirs[key]
            ours_labels = dict(PAIR.findall(a.labels))
            ours_labels.pop("metric")  # a column of ours; Prometheus's series name is not an alert label
            assert ours_labels == labels, (n, rule)
            assert dict(PAIR.findall(a.annotations)) == annotations, (n, rule)
            checked += 1
    assert checked > 20



def test_the_report_shows_what_each_page_said_first_and_escaped(tmp_path):
    """The report's notifications open with time, channel, kind and the summary (the CSVs keep SPEC 5's
    order); a summary is text, never markup."""
    from perfalert_lab.report import write_report

    frame = frame_of({"web-1": [10, 90, 20]})
    rule = pal.Rule(id="r", metric="m", threshold=80,
                    annotations={"summary": "<b>{{ $labels.source }}</b> & {{ $value }}"})
    result = pal.backtest(frame, rule)
    path = tmp_path / "report.html"
    write_report(result, path)
    page = path.read_text()
    notes = page[page.index("<h2>Notifications</h2>"):]
    headers = re.findall(r"<th>([^<]*)</th>", notes[:notes.index("</thead>")])
    assert headers[:4] == ["at", "channel", "kind", "summary"]
    assert "&lt;b&gt;web-1&lt;/b&gt; &amp; 90" in notes and "<b>web-1</b>" not in page
