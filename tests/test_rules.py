"""The rule model and rules files (SPEC section 2): validation lists every problem."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

import perfalert_lab as pal
from perfalert_lab.rules import Channel, Escalation, Responders, parse_rules, rules_to_yaml

SPEC_EXAMPLE = Path(__file__).parent / "data" / "spec_example.yaml"


def test_spec_example_loads_with_every_key() -> None:
    rules = pal.load_rules(SPEC_EXAMPLE)
    r = rules["cpu-high"]
    assert (r.metric, r.op, r.threshold, r.clear, r.aggregate, r.mode) == (
        "cpu_utilization",
        ">",
        80.0,
        70.0,
        "mean",
        "episode",
    )
    assert (r.window, r.for_, r.cooldown, r.repeat_interval) == (timedelta(minutes=5), timedelta(minutes=5),
                                                                 timedelta(minutes=15), timedelta(hours=4))
    assert dict(r.match) == {"source": "web-*"} and dict(r.labels) == {"team": "infra"}
    assert [c.channel for c in r.notify] == ["log", "slack"]
    assert r.escalation == Escalation(delay="30m", max=3, check_every="1m",
                                      levels=({"notify": ["email"]}, {"notify": ["sms"]}))  # type: ignore[arg-type]
    assert rules.channels["sms"].max_per_hour == 6
    assert rules.silences[0].comment == "maintenance"
    assert rules.responders == Responders(ack_after="10m", resolve_after="2h")  # type: ignore[arg-type]


BAD = """\
version: 1
rules:
  - id: cpu-high
    metric: cpu
    op: "=>"
    threshold: eighty
    for: 5 minutes
    severty: high
  - id: cpu-high
    metric: cpu
    threshold: 90
  - id: lat
    metric: latency
    threshold: 100
    mode: sample
    for: 5m
    notify: [{channel: webhook, url: "http://example.com/hook"}, pager]
    escalation: {delay: -1m, max: 0}
"""


def test_all_problems_are_listed_with_line_rule_and_key() -> None:
    with pytest.raises(pal.RulesError) as e:
        parse_rules(BAD, name="r.yaml")
    lines = e.value.problems
    assert "r.yaml:5: rule 'cpu-high': key 'op': expected one of >, >=, <, <=, ==, !=, got '=>'" in lines
    assert "r.yaml:6: rule 'cpu-high': key 'threshold': expected a number, got 'eighty'" in lines
    assert any(x.startswith("r.yaml:7: rule 'cpu-high': key 'for': expected a duration") for x in lines)
    assert "r.yaml:8: rule 'cpu-high': unknown key 'severty'; did you mean 'severity'?" in lines
    assert any(x.startswith("r.yaml:16: rule 'lat': key 'for': is not valid with mode: sample") for x in lines)
    assert any(x.startswith("r.yaml:17: rule 'lat': key 'notify.0.url': must be an https:// URL") for x in lines)
    assert any(x.startswith("r.yaml:17: rule 'lat': key 'notify.1.channel': expected one of log") for x in lines)
    assert any("key 'escalation.delay'" in x for x in lines) and any("key 'escalation.max'" in x for x in lines)
    assert len(lines) == 9  # the duplicate id is reported once the first rule is valid, not here


def test_duplicate_rule_ids() -> None:
    text = "version: 1\nrules:\n  - {id: a, metric: m, threshold: 1}\n  - {id: a, metric: m, threshold: 2}\n"
    with pytest.raises(pal.RulesError, match=r"<rules>:4: rule 'a': duplicate rule id \(first defined at line 3\)"):
        parse_rules(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("version: 2\nrules: []\n", r"unsupported version 2"),
        ("rules: []\n", r"missing 'version: 1'"),
        ("version: 1\n", r"missing 'rules:' list"),
        ("version: 1\nrules: [{id: a, metric: m}]\n", r"rule 'a': missing key 'threshold'"),
        ("version: 1\nrules: []\nextra: 1\n", r":3: unknown top-level key 'extra'"),
        ("version: 1\nrules:\n  - id: a\n    id: b\n", r":4: duplicate key 'id'"),
        ("version: 1\nrules: [\n", r"YAML syntax error"),
        (
            "version: 1\nrules: !!python/object:os.system {}\n",
            r":2: tag 'tag:yaml.org,2002:python/object:os.system' is not allowed",
        ),
        ("version: 1\nrules: [{id: a, metric: m, threshold: !!binary aGk=}]\n", r"is not allowed"),
        ("", r"empty file"),
        ("- 1\n- 2\n", r"expected a mapping"),
        ("version: 1\nrules: [{id: 'a b', metric: m, threshold: 1}]\n", r"may hold only letters"),
        ("version: 1\nrules: [{id: a, metric: m, threshold: .nan}]\n", r"expected a finite number"),
        (
            "version: 1\nrules: [{id: a, metric: m, threshold: 1, cooldown: -5m}]\n",
            r"key 'cooldown': expected a duration",
        ),
        ("version: 1\nrules: [{id: a, metric: m, threshold: 1, for: 300}]\n", r"write '300s' for seconds"),
        ("version: 1\nrules: [{id: a, metric: m, threshold: 1, aggregate: p95}]\n", r"needs a 'window'"),
        ("version: 1\nrules: [{id: a, metric: m, threshold: 1, clear: 2}]\n", r"must not be above the threshold"),
        (
            "version: 1\nrules: [{id: a, metric: m, threshold: 1, notify: [{channel: email, to: [nobody]}]}]\n",
            r"'nobody' is not an e-mail address",
        ),
        (
            "version: 1\nrules: [{id: a, metric: m, threshold: 1, notify: [{channel: sms, to: ['555-1234']}]}]\n",
            r"is not an E.164 number",
        ),
        ("version: 1\nrules: [{id: a, metric: m, threshold: 1, notify: []}]\n", r"at least one channel"),
        ("version: 1\nrules: []\nchannels: {pager: {max_per_hour: 1}}\n", r"unknown channel 'pager'"),
        (
            "version: 1\nrules: []\nsilences: [{matchers: {source: x}, start: 2026-01-02, end: 2026-01-01}]\n",
            r"must be after start",
        ),
        ("version: 1\nrules: []\nresponders: {ack_after: {urgent: 5m}}\n", r"'urgent' is not a severity"),
        ("version: 1\nrules: []\nresponders: {ack_after: 5m, wake_after: 1m}\n", r"unknown key 'wake_after'"),
    ],
)
def test_invalid_files(text: str, match: str) -> None:
    with pytest.raises(pal.RulesError, match=match):
        parse_rules(text)


def test_alias_bomb_is_bounded() -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 9) + "]")
    lines.append("rules: []")
    with pytest.raises(pal.RulesError, match="alias bomb"):
        parse_rules("\n".join(lines) + "\n")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(pal.RulesError, match="nested"):
        parse_rules("version: 1\nrules: " + "[" * 5000 + "]" * 5000 + "\n")


def test_secrets_are_redacted_in_reprs_and_errors() -> None:
    ch = Channel("slack", {"url": "https://hooks.slack.com/services/T000/B000/SECRETTOKEN"})
    assert "SECRETTOKEN" not in repr(ch)
    assert "hooks.slack.com" in repr(ch)
    rule = pal.Rule(id="a", metric="m", threshold=1, notify=(ch,))
    assert "SECRETTOKEN" not in repr(rule)
    env = Channel("webhook", {"url": "${HOOK_URL}", "token": "${HOOK_TOKEN}"})
    assert "${HOOK_URL}" in repr(env)
    with pytest.raises(pal.RulesError) as e:
        Channel("webhook", {"url": "http://example.com/SECRETTOKEN"})
    assert "SECRETTOKEN" not in str(e.value)


def test_rules_are_frozen_and_replace_validates() -> None:
    rule = pal.Rule(id="a", metric="m", threshold=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.threshold = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        rule.match["x"] = "y"  # type: ignore[index]
    assert rule.replace(for_="5m").for_ == timedelta(minutes=5)
    with pytest.raises(pal.RulesError, match="key 'op'"):
        rule.replace(op="~")
    assert isinstance(pal.RulesError("x"), ValueError)


def test_yaml_round_trip_is_exact(tmp_path: Path) -> None:
    rules = pal.load_rules(SPEC_EXAMPLE)
    out = tmp_path / "out.yaml"
    pal.save_rules(rules, out)
    again = pal.load_rules(out)
    assert again == rules
    assert rules_to_yaml(again) == out.read_text()


def test_writing_a_literal_secret_warns() -> None:
    rule = pal.Rule(id="a", metric="m", threshold=1, notify=({"channel": "slack", "url": "https://h.example/T/SECRET"},))
    with pytest.warns(UserWarning, match=r"literal secret; prefer an \$\{ENV_VAR\}"):
        text = rules_to_yaml(rule)
    assert "https://h.example/T/SECRET" in text  # the user's own file keeps what they wrote


def test_rule_set_access() -> None:
    rules = pal.load_rules(SPEC_EXAMPLE)
    assert "cpu-high" in rules and len(rules) == 1 and rules.ids == ["cpu-high"]
    with pytest.raises(KeyError, match="no rule 'x'"):
        rules["x"]
    tuned = rules.with_rule(rules["cpu-high"].replace(threshold=85))
    assert tuned["cpu-high"].threshold == 85 and rules["cpu-high"].threshold == 80


def test_updating_a_users_file_keeps_comments_and_order(tmp_path: Path) -> None:
    from perfalert_lab.rules.writeback import update_rules_file

    src = tmp_path / "rules.yaml"
    src.write_text(SPEC_EXAMPLE.read_text())
    tuned = pal.load_rules(src)["cpu-high"].replace(threshold=85.5, for_="10m", cooldown="0s")
    text = update_rules_file(src, tuned)
    assert "# unique; letters, digits, - and _" in text and "# optional per-channel limits" in text
    assert "threshold: 85.5" in text and "for: 10m" in text and "cooldown: 0s" in text
    original_keys = [
        line.split(":")[0].strip() for line in SPEC_EXAMPLE.read_text().splitlines() if line.startswith("    ")
    ]
    new_keys = [line.split(":")[0].strip() for line in text.splitlines() if line.startswith("    ")]
    assert new_keys == original_keys
    again = parse_rules(text)["cpu-high"]
    assert (again.threshold, again.for_, again.cooldown) == (85.5, timedelta(minutes=10), timedelta(0))
    assert again.replace(threshold=80, for_="5m", cooldown="15m") == pal.load_rules(SPEC_EXAMPLE)["cpu-high"]


def test_rules_survive_copy_and_pickle() -> None:
    import copy
    import pickle

    rules = pal.load_rules(SPEC_EXAMPLE)
    assert copy.deepcopy(rules) == rules
    assert pickle.loads(pickle.dumps(rules)) == rules
    assert "SECRET" not in repr(copy.copy(rules))
