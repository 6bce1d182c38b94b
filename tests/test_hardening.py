"""Bad input never crashes: exit 2, one clear message naming the file, no traceback, no output.

Also fuzzes the loaders and the rules parser (any input gives a result or a
PerfAlertError), and plants a webhook token to check that no output shows it.
"""

from __future__ import annotations

import io
import math
import re
import string
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import NAB
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import perfalert_lab as pal
from perfalert_lab.cli import main
from perfalert_lab.rules.yaml_io import RULE_KEYS

CORPUS = Path(__file__).parent / "corpus"
GOOD_CSV = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
GOOD_RULES = "version: 1\nrules:\n  - {id: lat, metric: ec2_request_latency_system_failure, threshold: 55}\n"


def run_cli(*args: str) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    t = time.perf_counter()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - t


def assert_clean_failure(code: int, err: str, name: str, seconds: float) -> list[str]:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines and all(line.startswith("perfalert: error: ") for line in lines), err
    assert all(name in line for line in lines), err
    assert "Traceback" not in err
    assert seconds < 10
    return lines


@pytest.mark.parametrize("path", sorted((CORPUS / "csv").iterdir()), ids=lambda p: p.name)
def test_bad_csv_is_rejected_cleanly(tmp_path: Path, path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(GOOD_RULES)
    out = tmp_path / "out"
    code, _, err, seconds = run_cli("backtest", str(path), "--rules", str(rules), "--out", str(out))
    lines = assert_clean_failure(code, err, path.name, seconds)
    assert len(lines) == 1
    assert not out.exists()


EXPECTED_YAML = {  # what each corpus file must be told (besides its name)
    "syntax_error.yaml": r":5: YAML syntax error",
    "tab_indent.yaml": r":3: YAML syntax error",
    "wrong_version.yaml": r":1: unsupported version 2",
    "no_version.yaml": r"missing 'version: 1'",
    "duplicate_ids.yaml": r":4: rule 'a': duplicate rule id",
    "unknown_key.yaml": r"unknown key 'treshold'; did you mean 'threshold'",
    "unknown_operator.yaml": r"key 'op': expected one of",
    "wrong_types.yaml": r"key 'metric': expected a non-empty string",
    "negative_duration.yaml": r"key 'for': expected a duration",
    "malformed_duration.yaml": r"key 'cooldown': expected a duration",
    "bare_number_duration.yaml": r"write '300s' for seconds",
    "for_in_sample_mode.yaml": r"key 'for': is not valid with mode: sample",
    "unknown_channel.yaml": r"key 'notify.0.channel': expected one of log",
    "insecure_url.yaml": r"must be an https:// URL",
    "malformed_number.yaml": r"key 'threshold': expected a number, got '1.2.3'",
    "malformed_email.yaml": r"'oncall-at-example' is not an e-mail address",
    "malformed_phone.yaml": r"is not an E.164 number",
    "python_object_tag.yaml": r":2: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
    "python_name_tag.yaml": r"tag 'tag:yaml.org,2002:python/name:os.system' is not allowed",
    "custom_tag.yaml": r"tag '!rule' is not allowed",
    "deep_nesting.yaml": r"nested",
    "not_a_mapping.yaml": r"expected a mapping",
    "binary.yaml": r"binary data",
    "invalid_clear.yaml": r"must not be above the threshold",
    "aggregate_without_window.yaml": r"needs a 'window'",
    "bad_escalation.yaml": r"key 'escalation.every': unknown key",
    "bad_silence.yaml": r"key 'start': expected a time",
    "bad_responders.yaml": r"distribution must be 'lognormal'",
    "merge_key.yaml": r"merge keys",
    "alias_bomb.yaml": r"alias bomb",
}


def test_every_yaml_corpus_file_has_an_expectation() -> None:
    assert sorted(EXPECTED_YAML) == sorted(p.name for p in (CORPUS / "yaml").iterdir())


@pytest.mark.parametrize("path", sorted((CORPUS / "yaml").iterdir()), ids=lambda p: p.name)
def test_bad_rules_are_rejected_cleanly(tmp_path: Path, path: Path) -> None:
    code, _, err, seconds = run_cli("validate", str(path))
    lines = assert_clean_failure(code, err, path.name, seconds)
    assert any(re.search(EXPECTED_YAML[path.name], line) for line in lines), err
    assert "T0K3N" not in err and "echo pwned" not in err
    out = tmp_path / "out"
    code, _, err, seconds = run_cli("backtest", str(GOOD_CSV), "--rules", str(path), "--out", str(out))
    assert_clean_failure(code, err, path.name, seconds)
    assert not out.exists()


def test_a_rules_file_with_many_problems_lists_them_all(tmp_path: Path) -> None:
    p = tmp_path / "many.yaml"
    p.write_text((CORPUS / "yaml" / "wrong_types.yaml").read_text())
    code, _, err, _ = run_cli("validate", str(p))
    assert code == 2 and len(err.strip().splitlines()) == 3  # metric, threshold and enabled


def test_huge_rules_file_is_refused_quickly(tmp_path: Path) -> None:
    p = tmp_path / "huge.yaml"
    p.write_text("version: 1\nrules:\n" + "  - {id: a, metric: m, threshold: 1}\n" * 200_000)
    code, _, err, seconds = run_cli("validate", str(p))
    assert_clean_failure(code, err, "huge.yaml", seconds)
    assert "too large" in err


def test_planted_token_appears_in_no_output(tmp_path: Path) -> None:
    token = "xoxb-PLANTED-7f3a9c"
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""version: 1
rules:
  - id: lat
    metric: ec2_request_latency_system_failure
    threshold: 55
    notify:
      - {{channel: slack, url: "https://hooks.slack.com/services/{token}"}}
      - {{channel: webhook, url: "https://hooks.example.com/x", token: "{token}"}}
    escalation: {{delay: 5m, max: 2, levels: [{{notify: [{{channel: webhook, url: "https://e.example.com/{token}"}}]}}]}}
""")
    out = tmp_path / "out"
    code, stdout, stderr, _ = run_cli("backtest", str(GOOD_CSV), "--rules", str(rules), "--out", str(out))
    assert code == 0
    assert token not in stdout + stderr
    for f in out.iterdir():
        assert token not in f.read_text(errors="replace"), f.name
    code, stdout, stderr, _ = run_cli("export", str(rules), "--format", "prometheus")
    assert code == 0 and token not in stdout + stderr
    rs = pal.load_rules(rules)
    result = pal.backtest(pal.read_metrics(GOOD_CSV), rs)
    assert token not in repr(rs) + repr(result) + rs._repr_html_() + result._repr_html_()
    # the YAML export is the user's own file: it keeps the secret, and warns
    with pytest.warns(UserWarning, match="literal secret"):
        assert token in pal.rules.rules_to_yaml(rs)


# --------------------------------------------------------------------------- fuzzing

CELLS = ["", "1", "-2.5", "1e309", "nan", "NaN", "inf", "abc", "2026-01-01", "2026-01-01 00:00:00",
         "2026-01-01T00:00:00Z", "2026-13-45 25:61:00", "1767225600", "1767225600000", "\"quoted,comma\"",
         "web-1", "☃", "0x10", " 3 ", "2026-01-01T00:00:00+05:30", "TRUE"]
HEADERS = ["timestamp", "value", "source", "metric", "host", "cpu", "", "time", "value"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=600),
    st.builds(lambda header, rows, sep: "\n".join([sep.join(header)] + [sep.join(r) for r in rows]).encode("utf-8"),
              st.lists(st.sampled_from(HEADERS), min_size=1, max_size=5),
              st.lists(st.lists(st.sampled_from(CELLS), min_size=0, max_size=6), max_size=8),
              st.sampled_from([",", ";", "\t"]))))
def test_fuzz_read_metrics(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "fuzz.csv"
    p.write_bytes(data)
    try:
        frame = pal.read_metrics(p)
    except pal.PerfAlertError:
        return
    assert list(frame.columns[:4]) == ["timestamp", "source", "metric", "value"]
    assert not frame["value"].isna().any() and frame["timestamp"].is_monotonic_increasing


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                         st.text(max_size=12), st.sampled_from(["5m", "0s", ">", "sample", "log", "https://x.example/a",
                                                                 "${ENV}", "p95", "critical", "1h30m"]))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from([*RULE_KEYS, "channel", "url", "to", "delay",
                                                                  "max", "levels", "notify"]), inner, max_size=6)),
    max_leaves=20)


@settings(max_examples=400)
@given(
    doc=st.one_of(
        st.text(alphabet=string.printable, max_size=300),
        st.builds(
            lambda rules, extra: {"version": 1, "rules": rules, **extra},
            st.lists(st.dictionaries(st.sampled_from(list(RULE_KEYS)), yaml_values, max_size=10), max_size=3),
            st.dictionaries(st.sampled_from(["channels", "silences", "responders", "extra"]), yaml_values, max_size=2),
        ),
    )
)
def test_fuzz_parse_rules(doc: object) -> None:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True)
    try:
        rules = pal.parse_rules(text)
    except pal.RulesError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    assert isinstance(rules, pal.RuleSet)
    # whatever loads must survive a round trip
    assert pal.parse_rules(pal.rules.rules_to_yaml(rules)) == rules


@settings(max_examples=200)
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3), st.none()),
        min_size=1,
        max_size=6,
    ),
    stamps=st.lists(st.one_of(st.integers(-(10**12), 10**13), st.text(max_size=25), st.none()), min_size=1, max_size=6),
)
def test_fuzz_normalize_frame(values: list, stamps: list) -> None:
    n = min(len(values), len(stamps))
    frame = pd.DataFrame({"timestamp": pd.Series(stamps[:n], dtype=object), "metric": "m",
                          "value": pd.Series(values[:n], dtype=object)})
    try:
        out = pal.normalize_frame(frame)
    except pal.PerfAlertError:
        return
    assert out["value"].map(lambda x: not math.isnan(x)).all()


def test_outputs_written_side_by_side_land_all_or_nothing(tmp_path: Path) -> None:
    """The output files are written on several threads (``_io.write_outputs``): when one writer fails,
    the first failure in the writers' order is raised (not whichever thread failed first), what was in
    the directory before is left as it was, and no staging directory is left behind."""
    import threading

    from perfalert_lab._io import write_outputs

    out = tmp_path / "out"
    out.mkdir()
    (out / "alerts.csv").write_text("before\n")
    late = threading.Event()

    def slow_failure(path: Path) -> None:
        late.wait(5)  # fails after the second writer has failed
        raise pal.errors.DataError("first in order")

    def quick_failure(path: Path) -> None:
        late.set()
        raise ValueError("second in order")

    def good(path: Path) -> None:
        path.write_text("new\n")

    with pytest.raises(pal.errors.DataError, match="first in order"):
        write_outputs(out, {"alerts.csv": good, "a.csv": slow_failure, "b.csv": quick_failure, "c.csv": good})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["alerts.csv"] and (out / "alerts.csv").read_text() == "before\n"
    done = write_outputs(out, {"alerts.csv": good, "c.csv": good})
    assert [p.name for p in done] == ["alerts.csv", "c.csv"] and (out / "alerts.csv").read_text() == "new\n"
