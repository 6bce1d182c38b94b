"""Prometheus rule files (SPEC 11): loading as strict as promtool, alerts as Prometheus's rule manager.

The alert timeline is judged by promtool 2.42 (compat "2"): random groups of recording
and alert rules (random PromQL, ``for``, ``keep_firing_for``, static and templated
labels, recording rules read by alert rules) over random series; every active alert at
every evaluation, with its labels, state and ``activeAt``, must equal promtool's.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prom_rules_oracle import promtool_alerts, random_case
from promql_oracle import Case
from promtool_oracle import need_promtool

import perfalert_lab as pal
from perfalert_lab.errors import RulesError
from perfalert_lab.prometheus.alerting import active_since, alert_states, evaluate_rule_file
from perfalert_lab.promql_engine import store_from_frame
from perfalert_lab.rules.promfile import is_prometheus_rules, load_prometheus_rules, parse_prometheus_rules
from perfalert_lab.templates import TemplateError, check_template, render

CORPUS = Path(__file__).parent / "corpus" / "prom_rules"
CASES = int(os.environ.get("PERFALERT_RULE_CASES", "150"))


def _ours(doc: dict, series: dict, minutes: int) -> dict[int, dict[tuple, tuple[str, int]]]:
    rules = parse_prometheus_rules(yaml.safe_dump(doc, sort_keys=False))
    timelines, _ = evaluate_rule_file(store_from_frame(Case("", series, []).frame()), rules, 0,
                                      (minutes - 1) * 60_000, compat="2")
    out: dict[int, dict[tuple, tuple[str, int]]] = {}
    for tl in timelines:
        for i, labels in enumerate(tl.labels):
            for j in np.flatnonzero(tl.state[i]):
                state = "pending" if tl.state[i, j] == 1 else "firing"
                out.setdefault(int(tl.ticks[j] // 1000), {})[labels] = (state, int(tl.active_at[i, j] // 1000))
    return out


def test_random_rule_files_alert_as_promtool(tmp_path):
    rng = random.Random(3)
    cases = [random_case(rng, n) for n in range(CASES)]
    theirs = promtool_alerts(tmp_path, cases)
    seen = {"pending": 0, "firing": 0}
    for n, (doc, series, minutes) in enumerate(cases):
        ours = _ours(doc, series, minutes)
        for t in sorted(set(ours) | set(theirs[n])):
            assert ours.get(t) == theirs[n].get(t), (doc, t, theirs[n].get(t), ours.get(t))
        for by in theirs[n].values():
            for state, _ in by.values():
                seen[state] += 1
    assert seen["pending"] > 50 and seen["firing"] > 500, seen  # the cases reach both states often


def test_every_random_rule_file_writes_every_output(tmp_path):
    """What a user sees of each shape the oracle draws (aggregations without instance, and/unless/or,
    absent(), bare selectors): ``backtest --out`` writes every file and the report draws a picture of
    every alert, without a crash. Before, an alert without a source or a top-level number crashed."""
    from perfalert_lab.cli import main
    from perfalert_lab.plot import TimelineDisplay

    rng = random.Random(11)
    shapes = {"and": 0, "unless": 0, "or": 0, "absent": 0, "sum by": 0, "bare": 0}
    fired = 0
    for n in range(max(CASES // 5, 20)):
        doc, series, minutes = random_case(rng, n)
        for e in [r["expr"] for g in doc["groups"] for r in g["rules"] if "alert" in r]:
            for shape, needle in (("and", " and "), ("unless", " unless "), ("or", " or "), ("absent", "absent("),
                                  ("sum by", "sum by (a) (")):
                shapes[shape] += needle in e
            shapes["bare"] += not any(c in e for c in "<>") and "absent(" not in e
        rules_path = tmp_path / f"rules{n}.yml"
        rules_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        frame = Case("", series, []).frame()
        metrics = tmp_path / f"m{n}.csv"
        frame.to_csv(metrics, index=False)
        out = tmp_path / f"out{n}"
        assert main(["backtest", str(metrics), "--rules", str(rules_path), "--out", str(out)]) == 0, doc
        for name in ("alerts.csv", "notifications.csv", "stats.csv", "report.html"):
            assert (out / name).stat().st_size > 0
        result = pal.backtest(frame, load_prometheus_rules(rules_path))
        _drawn_series_hold_together(result.series)
        for row in result.alerts.drop_duplicates(["rule_id", "labels"]).itertuples():
            d = TimelineDisplay.from_result(result, metric=row.rule_id, labels={"labels": row.labels}).plot()
            assert len(d.alerts) >= 1 and d.figure_ is not None
            fired += 1
    assert fired > 50, fired
    assert all(v > 0 for v in shapes.values()), shapes  # every shape was drawn at least once


def _drawn_series_hold_together(drawn) -> None:
    """The drawn series (kept as the replay's matrices, gathered on demand) are one SeriesSet: each
    series' points are its slice of ``times``/``values`` (time-ordered, finite), spans agree."""
    from perfalert_lab.frames import SeriesSet

    if drawn is None:
        return
    plain = SeriesSet(drawn.times, drawn.values, drawn.offsets, drawn.keys, drawn.start_ns, drawn.end_ns)
    assert drawn.offsets[-1] == len(drawn.times) == len(drawn.values)
    for s in range(drawn.n_series):
        t, v = drawn.points(s)
        pt, pv = plain.points(s)
        assert np.array_equal(t, pt) and np.array_equal(v, pv) and len(t) > 0
        assert (np.diff(t) > 0).all() and np.isfinite(v).all()
        assert drawn.span_of(np.array([s])) == plain.span_of(np.array([s]))
    assert drawn.span_of(np.arange(drawn.n_series)) == plain.span_of(np.arange(drawn.n_series))
    keys = list(drawn.keys.itertuples(index=False, name=None))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@pytest.mark.filterwarnings("ignore:.*YAML document:perfalert_lab.errors.PerfAlertWarning")  # ok_multidoc.yml
@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yml")), ids=lambda p: p.name)
def test_the_same_files_as_promtool_check_rules(path):
    promtool = need_promtool()
    theirs = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode == 0
    try:
        load_prometheus_rules(path)
        ours = True
    except RulesError as exc:
        ours = False
        assert all(re.match(rf"{re.escape(str(path))}:\d+: ", p) for p in exc.problems), exc.problems
    assert ours == theirs == path.name.startswith("ok_")


def test_problems_name_file_line_group_and_rule(tmp_path):
    p = tmp_path / "alerts.yml"
    p.write_text("groups:\n- name: api\n  rules:\n  - alert: Slow\n    expr: sort(latency)\n"
                 "    for: soon\n  - alert: Up\n    expr: up == 0\n    labels: {sev: '{{ if $value }}x'}\n")
    with pytest.raises(RulesError) as info:
        load_prometheus_rules(p)
    problems = info.value.problems
    assert any(re.fullmatch(rf"{re.escape(str(p))}:5: group 'api': rule 'Slow': expr: the function sort\(\) "
                            r"at position 1 is not supported .*", x) for x in problems), problems
    assert any(x.startswith(f"{p}:6: group 'api': rule 'Slow': for: expected a duration") for x in problems)
    assert any(x.startswith(f"{p}:9: group 'api': rule 'Up': label 'sev': unexpected EOF: {{{{if}}}} has no")
               for x in problems), problems


def test_query_offset_shifts_the_query_not_the_ticks(tmp_path):
    """query_offset (newer than promtool 2.42): the alert at tick t sees the data of t - offset."""
    import pandas as pd

    frame = pd.DataFrame({"timestamp": pd.to_datetime(np.arange(20) * 60, unit="s", utc=True), "metric": "x",
                          "value": [0.0] * 10 + [1.0] * 10})
    text = "groups:\n- name: g\n  query_offset: 3m\n  rules:\n  - alert: X\n    expr: x > 0\n"
    timelines, _ = evaluate_rule_file(store_from_frame(frame), parse_prometheus_rules(text), 0, 19 * 60_000)
    first = int(np.flatnonzero(timelines[0].state[0])[0])
    assert timelines[0].ticks[first] == 13 * 60_000  # the value went up at 10m; seen 3m later


def test_states_by_hand():
    """pending -> firing after `for`, kept firing for keep_firing_for, limit drops all (Prometheus's rules)."""
    ticks = np.arange(8, dtype=np.int64) * 60_000
    present = np.array([[1, 1, 1, 0, 0, 0, 1, 0], [0, 1, 0, 1, 1, 1, 1, 1]], dtype=bool)
    state = alert_states(present, ticks, for_ms=60_000, keep_firing_for_ms=120_000)
    assert state[0].tolist() == [1, 2, 2, 2, 2, 0, 1, 0]
    assert state[1].tolist() == [0, 1, 0, 1, 2, 2, 2, 2]
    active = active_since(state, ticks)
    assert (active[0] // 60_000).tolist() == [0, 0, 0, 0, 0, 0, 6, 0]  # kept firing keeps its activeAt
    assert (active[1] // 60_000).tolist() == [0, 1, 0, 3, 3, 3, 3, 3]
    limited = alert_states(present, ticks, for_ms=0, limit=1)
    assert limited[:, 1].tolist() == [0, 0] and limited[:, 0].tolist() == [2, 0]


def test_telling_the_two_rule_formats_apart(tmp_path):
    ours = tmp_path / "ours.yaml"
    ours.write_text("version: 1\nrules:\n  - {id: a, metric: cpu, threshold: 80}\n")
    theirs = tmp_path / "alerts.rules.yml"
    theirs.write_text("groups:\n- name: g\n  rules: []\n")
    assert is_prometheus_rules(theirs) and not is_prometheus_rules(ours)


def _promtool_annotations(tmp_path: Path, promtool: str, annotations: dict[str, str], values: list[float]
                          ) -> list[tuple[float, dict[str, str], dict[str, str]]]:
    """One alert ``A`` (``expr: x``) with ``annotations`` over one series per value (labels ``instance="i<k>"``
    and ``job="j<k>"``; NaN and the infinities as promtool reads them), rendered by ``promtool test rules``
    at 0m: per alert, its value, its labels (without ``alertname``) and promtool's annotations, unquoted."""
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "x", "annotations": annotations}]}]}))
    go = {"nan": "NaN", "inf": "Inf", "-inf": "-Inf"}
    series = [{"series": f'x{{instance="i{i}", job="j{i}"}}', "values": go.get(repr(v), repr(v))}
              for i, v in enumerate(values)]
    (tmp_path / "t.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series,
                   "alert_rule_test": [{"eval_time": "0m", "alertname": "A", "exp_alerts": []}]}]}))
    proc = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True)
    blocks = re.findall(r"Labels:\{([^}]*)\}\s*Annotations:\{([^}]*)\}", proc.stdout + proc.stderr)
    assert len(blocks) == len(values), proc.stdout[-2000:] + proc.stderr[-2000:]
    out = []
    for lab, ann in blocks:
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', lab))
        labels.pop("alertname")
        theirs = {k: re.sub(r"\\(.)", r"\1", v)  # (promtool quotes the text: \" is ")
                  for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', ann)}
        out.append((values[int(labels["instance"][1:])], labels, theirs))
    return out


def test_templates_render_as_promtool(tmp_path):
    """{{ $value }}, humanize*, toTime, printf, title, toUpper, on values that include NaN, the infinities and
    times beyond int64 nanoseconds (an error, as promtool's): promtool renders, we compare."""
    promtool = need_promtool()
    rng = random.Random(9)
    values = [0.0, 1e6, 123456.0, 1e-4, 1e-5, -2.5, 3.0, 42.42, 1048576 * 3.5, 176461.0, 0.012]
    values += [round(rng.uniform(-1, 1) * 10 ** rng.randint(-9, 12), rng.randint(0, 6)) for _ in range(30)]
    values += [math.nan, math.inf, -math.inf, -0.0, 1e-300, -86400.0 * 400, 1e300, 1700000000.123456789, -1.5,
               -0.0015, 1e12]
    annotations = {"v": "{{ $value }}", "h": "{{ $value | humanize }}", "h2": "{{ humanize1024 $value }}",
                   "d": "{{ humanizeDuration $value }}", "p": "{{ humanizePercentage $value }}",
                   "f": '{{ printf "%.2f" $value }}', "t": '{{ $labels.instance }} is {{ title "down now" }}',
                   "u": "{{ $labels.job | toUpper }}", "ts": "{{ humanizeTimestamp $value }}",
                   "tt": "{{ $value | toTime }}"}
    for value, labels, theirs in _promtool_annotations(tmp_path, promtool, annotations, values):
        for key, template in annotations.items():
            ours = render(template, {**labels, "__name__": "x"}, value)
            if theirs[key].startswith("<error expanding template:"):  # (promtool adds the template's place)
                detail = ours.removeprefix("<error expanding template: error executing template: ")
                assert ours != detail and theirs[key].endswith(detail), (value, key, ours, theirs[key])
            else:
                assert ours == theirs[key], (value, key)


def test_printf_of_floats_prints_as_promtool(tmp_path):
    """printf of a float with every verb (%f %F %e %E %g %G %v %x %X, and %d %s %q, which Go names as wrong
    for a float: %!d(float64=3)) and random flags, widths and precisions, on values that include NaN and the
    infinities (Go spells them NaN, +Inf, -Inf, signs NaN only when asked, never pads them with zeros) and
    values whose shortest digits are many (Go's %g without a precision prints them all, as %v): promtool
    renders, we compare."""
    promtool = need_promtool()
    rng = random.Random(31)
    values = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.25, 2.675, 1234567.891, 123456.7, 1e21, 1e-7,
              0.30000000000000004, -2.5e-5, 12345678901234567890.0, 100000.0, 0.1]
    values += [round(rng.uniform(-1, 1) * 10 ** rng.randint(-9, 22), rng.randint(0, 12)) for _ in range(14)]

    def verb() -> str:
        letter = rng.choice("fFeEgGfeg" + "vdsqxX")
        flags = "".join(f for f in "+- 0" if rng.random() < 0.2)
        width = str(rng.randint(1, 14)) if rng.random() < 0.4 else ""
        prec = f".{rng.randint(0, 8)}" if rng.random() < 0.5 and letter not in "xX" else ""  # (%.3x: not done)
        return f"%{flags}{width}{prec}{letter}"

    formats = ["%g", "%G", "%.1f", "%+.1f", "% .1f", "%06.1f", "%-8g|", "%10g", "%e", "%.0e", "%5.2f%%",
               "%d|%5d|%+d|%s|%q|%8v|%-6v|%+v|%05v|%.2v", "%x|%X|%+x|%012x"]
    formats += [" ".join(verb() for _ in range(rng.randint(1, 3))) for _ in range(40)]
    def call(f: str) -> str:  # printf with the value once per verb
        return f"{{{{ printf {json.dumps(f)} {' '.join(['$value'] * (f.count('%') - 2 * f.count('%%')))} }}}}"

    annotations = {f"a{i}": call(f) for i, f in enumerate(formats)}
    # other arguments than the value, verbs for another type, a missing and an extra argument
    annotations.update({
        "m1": '{{ printf "%.2f|%d|%5.1f|%s|%v|%x|%q|%e" $labels.instance (len $labels) $labels.instance (len $labels) '
              '$labels.instance $labels.instance $labels.instance 3 }}',
        "m2": '{{ printf "%d %d" 1 }}|{{ printf "%s" 1 2 }}|{{ printf "%v" }}',
        "m3": '{{ printf "%t|%v|%6t|%d|%-6v|" true false true true false }}',
        "m4": '{{ printf "%x|%X|%o|%+d|%05d|%-4d|%6.3d|%v" 255 255 8 3 -3 7 5 -12 }}',
        "m5": '{{ printf "%-6s|%.1s|%6q|%X" "xy" "xyz" "a" "hi" }}|{{ printf "%s %v" $value (len $labels) }}',
        "m6": '{{ printf "%b|%c|%y|%.f|%5b|%U|%t|%b|%b" 5 65 3 2.5 2 65 $value $value -1e300 }}',
        "m7": '{{ printf "%b|%b|%b|%b|%b" 5e-324 -1e-310 0.0 -0.0 2.2250738585072014e-308 }}',
        "m8": '{{ printf "50%" }}|{{ printf "%-" 1 }}|{{ printf "%.1f%" $value }}',
    })
    for value, labels, theirs in _promtool_annotations(tmp_path, promtool, annotations, values):
        for key, template in annotations.items():
            assert render(template, {**labels, "__name__": "x"}, value) == theirs[key], (value, template)


def _random_template(rng: random.Random, depth: int = 2) -> str:
    """A template of the shapes real rule files use: if/else if/else on comparisons, with/else,
    range over labels and over a query's result, variables, pipelines and trim markers."""
    num = rng.choice(["0.5", "10.0", "1000.0", "-3.0", "42.42"])
    conds = [f"gt $value {num}", f"lt $value {num}", 'eq $labels.job "j1"', 'ne $labels.job "j2"',
             "$labels.missing", "$labels.instance", f"and (ge $value {num}) (le (len $labels) 3)",
             f'or (eq $labels.instance "i0") (gt $value {num})', "not $labels.missing",
             f"gt $value {rng.choice(['0', '10'])}"]  # an int against a float: Go's error, written into the text
    leaves = ["{{ $value }}", "{{ $labels.instance }}", "{{ $value | humanize }}", 'v{{ printf "%.1f" $value }}',
              "word", "{{ len $labels }}", "{{ $labels.job | toUpper }}", "{{- \" trimmed \" -}}"]

    def body(d: int) -> str:
        r = rng.random()
        if d <= 0 or r < 0.3:
            return rng.choice(leaves)
        if r < 0.5:
            return (f"{{{{ if {rng.choice(conds)} }}}}{body(d - 1)}{{{{ else if {rng.choice(conds)} }}}}"
                    f"{body(d - 1)}{{{{ else }}}}{body(d - 1)}{{{{ end }}}}")
        if r < 0.6:
            return f"{{{{ with {rng.choice(['$labels.job', '$labels.missing', '$value'])} }}}}[{{{{ . }}}}]" \
                   f"{{{{ else }}}}none{{{{ end }}}}"
        if r < 0.7:
            return "{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}"
        if r < 0.8:
            return ('{{ range query "x" }}{{ .Labels.instance }}:{{ .Value }};{{ else }}empty{{ end }}'
                    if rng.random() < 0.5 else
                    '{{ with query "x > 40" | sortByLabel "instance" }}{{ . | first | value | humanize }}'
                    '{{ else }}calm{{ end }}')
        if r < 0.9:
            return f"{{{{ $x := {rng.choice(['$value', '$labels.job', '3'])} }}}}{body(d - 1)}({{{{ $x }}}})"
        return f"{body(d - 1)} {body(d - 1)}"

    return body(depth)


def test_control_structures_and_query_render_as_promtool(tmp_path):
    """Go text/template as Prometheus runs it (if/else if/else, with, range, variables, query,
    comparison errors written into the text): promtool 2.42 renders, we compare, on literal and
    random templates."""
    promtool = need_promtool()
    rng = random.Random(21)
    literal = {
        "sev": "{{ if gt $value 10.0 }}page{{ else }}ticket{{ end }}",
        "intcmp": "{{ if gt $value 10 }}page{{ end }}",
        "with": "{{ with $labels.job }}job {{ . }}{{ else }}no job{{ end }}",
        "rng": "{{ range $i, $e := args 1 \"a\" }}{{ $i }}={{ $e }} {{ end }}",
        "q": '{{ with query "sum(x)" }}{{ . | first | value }}{{ end }}',
        "first": '{{ query "x{job=\\"none\\"}" | first | value }}',
        "sort": '{{ range sortByLabel "instance" (query "x") }}{{ label "instance" . }} {{ end }}',
        "strip": "{{ $labels.instance | stripPort }}|{{ reReplaceAll \"i(.*)\" \"n$1\" $labels.instance }}",
        "vars": "{{ $a := 1 }}{{ if true }}{{ $a = 2 }}{{ end }}{{ $a }}",
        "trim": "a  {{- /* note */ -}}  b {{- 3 }}",
        "idx": '{{ index $labels "job" }}{{ slice "abcdef" 1 3 }}{{ len "four" }}',
    }
    annotations = dict(literal)
    annotations.update({f"r{k}": _random_template(rng, 3) for k in range(max(CASES // 3, 40))})
    for text in annotations.values():
        check_template(text)  # Prometheus would load each
    values = [0.0, 3.0, 12.5, 42.42, 1500.0, -7.25]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "x > -1e300", "annotations": annotations}]}]}, width=10_000))
    series = [{"series": f'x{{instance="i{i}:9{i}", job="j{i % 3}"}}', "values": repr(v)} for i, v in enumerate(values)]
    (tmp_path / "t.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series,
                   "alert_rule_test": [{"eval_time": "0m", "alertname": "A", "exp_alerts": []}]}]}))
    proc = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    blocks = re.findall(r"Labels:\{([^}]*)\}\s*Annotations:\{(.*)\},?\n", out)
    assert len(blocks) == len(values), out[:2000]
    frame = Case("", {s["series"]: [float(s["values"])] for s in series}, []).frame()
    store = store_from_frame(frame)

    def query(q: str) -> list:
        from perfalert_lab.prometheus.alerting import instant_query

        return instant_query(store, q, 0, lookback_ms=300_000, compat="2")

    errors = 0
    for lab, ann in blocks:
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', lab))
        theirs = {k: yaml.safe_load(f'"{v}"') for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', ann)}
        value = values[int(labels["instance"][1])]
        labels.pop("alertname")
        for key, template in annotations.items():
            ours = render(template, {**labels, "__name__": "x"}, value, query=query)
            if theirs[key].startswith("<error expanding template:"):
                errors += 1  # the same error; Go's text adds the template's name and position
                detail = ours.removeprefix("<error expanding template: error executing template: ")
                assert ours.startswith("<error expanding template:") and theirs[key].endswith(detail), \
                    (key, template, value, theirs[key], ours)
            elif 'range query "x"' in template:  # promtool lists a query's series in a random order
                # (its test loader's map order, differing between runs); ours is by label set
                assert sorted(re.split("[; ]", ours)) == sorted(re.split("[; ]", theirs[key])), (key, theirs[key], ours)
            else:
                assert ours == theirs[key], (key, template, value, theirs[key], ours)
    assert errors > 0  # the int-against-float comparison and first() of nothing are among them


def test_a_template_prometheus_loads_but_we_do_not_render_leaves_out_that_rule_only(tmp_path):
    promtool = need_promtool()
    p = tmp_path / "alerts.yml"
    p.write_text("groups:\n- name: g\n  rules:\n  - alert: Named\n    expr: up == 0\n"
                 "    annotations: {summary: '{{ template \"x\" }}'}\n  - alert: Plain\n    expr: up == 0\n")
    assert subprocess.run([promtool, "check", "rules", str(p)], capture_output=True).returncode == 0
    with pytest.warns(pal.PerfAlertWarning, match=rf"{re.escape(str(p))}:6: group 'g': rule 'Named': annotation "
                                                  r"'summary': template action 'template' is not supported"):
        rules = load_prometheus_rules(p)
    assert rules.ids == ["Plain"]
    with pytest.raises(RulesError, match="left out"):
        load_prometheus_rules(p, strict=True)


def test_templates_prometheus_would_refuse_say_so():
    for bad, word in (("{{ if $value }}x", "has no {{end}}"), ("{{ nope }}", "'nope' not defined"),
                      ("{{ $value", "unclosed"), ('{{ template "x" }}', "'template' is not supported"),
                      ("{{ $y }}", "undefined variable")):
        with pytest.raises(TemplateError, match=re.escape(word)):
            check_template(bad)


FLEET_RULES = """\
groups:
- name: api
  rules:
  - record: instance:errors:ratio5m
    expr: >-
      sum by (instance) (rate(http_requests_total{code="500"}[5m]))
      / sum by (instance) (rate(http_requests_total[5m]))
  - alert: HighErrorRate
    expr: instance:errors:ratio5m > 0.05
    for: 5m
    labels: {severity: page}
    annotations: {summary: "{{ $labels.instance }} error ratio {{ $value | humanizePercentage }}"}
  - alert: TargetDown
    expr: up == 0
    for: 2m
"""


def test_backtest_of_a_rule_file_gives_the_section_5_tables(tmp_path):
    import perfalert_lab as pal
    from perfalert_lab.engine.lifecycle import ALERT_COLUMNS, NOTIFICATION_COLUMNS

    frame, incidents = pal.datasets.prometheus_fleet()
    path = tmp_path / "alerts.rules.yml"
    path.write_text(FLEET_RULES)
    result = pal.backtest(frame, pal.load_prometheus_rules(path), incidents=incidents)
    alerts = result.alerts
    assert list(alerts.columns) == [*ALERT_COLUMNS, "labels", "annotations"]
    assert list(result.notifications.columns) == [*NOTIFICATION_COLUMNS, "summary"]
    by_rule = alerts.set_index("rule_id")
    errors = by_rule.loc["HighErrorRate"]
    burst = incidents.set_index("metric").loc["errors"]
    assert errors["source"] == burst["source"] and errors["severity"] == "page"
    # pending when the ratio first exceeds 5 %, firing 5 minutes later, inside the burst
    assert errors["fired_at"] - errors["pending_since"] == pd.Timedelta("5min")
    assert burst["start"] <= errors["fired_at"] <= burst["end"]
    assert errors["annotations"].startswith(f'{{summary="{burst["source"]} error ratio ')
    assert errors["labels"] == f'{{alertname="HighErrorRate", instance="{burst["source"]}", severity="page"}}'
    down = by_rule.loc["TargetDown"]
    assert down["metric"] == "up" and down["fired_at"] - down["pending_since"] == pd.Timedelta("2min")
    kinds = result.notifications.groupby("rule_id")["kind"].apply(list).to_dict()
    assert kinds == {"HighErrorRate": ["firing", "resolved"], "TargetDown": ["firing", "resolved"]}
    assert set(result.notifications["channel"]) == {"alertmanager"}
    stats = result.stats.set_index("rule_id")
    assert list(stats.index) == ["HighErrorRate", "TargetDown", "TOTAL"]
    assert stats.loc["TOTAL", "precision"] == 1.0 and stats.loc["TOTAL", "alerts"] == 2


def test_cli_backtests_a_rule_file_end_to_end(tmp_path, capsys):
    import perfalert_lab as pal
    from perfalert_lab.cli import main

    frame, incidents = pal.datasets.prometheus_fleet()
    frame.to_parquet(tmp_path / "fleet.parquet")
    incidents.to_csv(tmp_path / "incidents.csv", index=False)
    rules = tmp_path / "alerts.rules.yml"
    rules.write_text(FLEET_RULES)
    assert main(["validate", str(rules)]) == 0
    assert "(Prometheus rule file), 3 rule(s)" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["backtest", str(tmp_path / "fleet.parquet"), "--rules", str(rules), "--incidents",
                 str(tmp_path / "incidents.csv"), "--out", str(out)]) == 0
    alerts = pd.read_csv(out / "alerts.csv")
    assert sorted(alerts["rule_id"]) == ["HighErrorRate", "TargetDown"]
    html = (out / "report.html").read_text()
    assert "Prometheus rule file" in html and "instance:errors:ratio5m &gt; 0.05" in html
    assert html.count("<img") >= 2  # a timeline per alerting rule and source
    shifted = tmp_path / "shifted"
    assert main(["backtest", str(tmp_path / "fleet.parquet"), "--rules", str(rules), "--group-offset", "30s",
                 "--out", str(shifted)]) == 0
    fired = pd.to_datetime(pd.read_csv(shifted / "alerts.csv")["fired_at"])
    assert (fired.dt.second == 30).all()  # every tick moved by the group offset
    assert main(["backtest", str(tmp_path / "fleet.parquet"), "--rules", str(rules), "--clock", "interval:1m"]) == 2
    assert "--clock does not apply to a Prometheus rule file" in capsys.readouterr().err


def test_the_bundled_rule_file_catches_the_fleets_incidents():
    from conftest import ROOT

    import perfalert_lab as pal

    path = ROOT / "data" / "prometheus" / "alerts.rules.yml"
    promtool = need_promtool()
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode == 0
    frame, incidents = pal.datasets.prometheus_fleet()
    total = pal.backtest(frame, pal.load_prometheus_rules(path), incidents=incidents).stats.iloc[-1]
    assert (total["rule_id"], total["recall"], total["precision"]) == ("TOTAL", 1.0, 1.0)


def test_a_sweep_row_equals_a_backtest_of_the_rule_written_back(tmp_path):
    """The sweep re-runs only the comparison and the state machine; the written-back file, backtested
    whole, must give the same statistics (and promtool must accept it)."""
    import shutil

    from conftest import ROOT

    import perfalert_lab as pal
    from perfalert_lab.rules.writeback import update_prometheus_rule

    src = ROOT / "data" / "prometheus" / "alerts.rules.yml"
    frame, incidents = pal.datasets.prometheus_fleet()
    rules = pal.load_prometheus_rules(src)
    table = pal.sweep(frame, rules.rule("HighErrorRatio"), threshold=[0.002, 0.05, 0.15, 0.3],
                      for_=["0s", "5m"], keep_firing_for=["0s", "10m"], incidents=incidents, rules=rules)
    assert len(table) == 16 and table["alerts"].nunique() > 1
    promtool = need_promtool()
    for _, row in table.sample(5, random_state=1).iterrows():
        path = tmp_path / "tuned.yml"
        shutil.copy(src, path)
        update_prometheus_rule(path, "HighErrorRatio", threshold=row["threshold"], for_=row["for"],
                               keep_firing_for=row["keep_firing_for"])
        assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode == 0
        stats = pal.backtest(frame, pal.load_prometheus_rules(path), incidents=incidents).stats.set_index("rule_id")
        whole = stats.loc["HighErrorRatio"]
        for col in ("alerts", "notifications", "recall", "precision", "mean_detection_delay_s"):
            assert (whole[col] == row[col]) or (pd.isna(whole[col]) and pd.isna(row[col])), (row.to_dict(), col)


def test_writing_back_touches_only_the_changed_values(tmp_path):
    from conftest import ROOT

    from perfalert_lab.rules.writeback import update_prometheus_rule

    src = (ROOT / "data" / "prometheus" / "alerts.rules.yml").read_text()
    path = tmp_path / "alerts.rules.yml"
    path.write_text(src)
    update_prometheus_rule(path, "SlowRequests", threshold=0.75, for_="20m")
    before, after = src.splitlines(), path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(before) == len(after) and len(changed) == 2, changed
    assert changed[0][1].endswith("[5m]))) > 0.75") and changed[1][1].strip() == "for: 20m"
    with pytest.raises(RulesError, match="no alert rule named 'Nope'"):
        update_prometheus_rule(path, "Nope", threshold=1)


def test_the_tuner_takes_a_prometheus_rule_and_writes_it_back(tmp_path):
    """Each slider move equals a backtest of the rule file with those values written back; writing
    back touches only the changed values and promtool accepts the file."""
    pytest.importorskip("ipywidgets")
    import shutil

    from conftest import ROOT

    import perfalert_lab as pal

    path = tmp_path / "alerts.rules.yml"
    shutil.copy(ROOT / "data" / "prometheus" / "alerts.rules.yml", path)
    frame, incidents = pal.datasets.prometheus_fleet()
    rules = pal.load_prometheus_rules(path)
    tuner = pal.tune(frame, rules.rule("SlowRequests"), rules=rules, incidents=incidents)
    assert isinstance(tuner, pal.widgets.Tuner)
    assert set(tuner.controls) == {"threshold", "for", "keep_firing_for", "series"}
    assert tuner.controls["threshold"].value == 0.9 and tuner.controls["for"].value == "10m"
    assert tuner.plot_view.value and tuner.curve_view.value  # pictures drawn
    slider = tuner.controls["threshold"]
    slider.value = slider.min + (slider.max - slider.min) * 0.4
    chosen = slider.value
    assert chosen != 0.9
    tuner.controls["for"].value = "2m"
    tuner.controls["keep_firing_for"].value = "5m"
    out = tmp_path / "tuned.rules.yml"
    tuner.save(out)
    before, after = path.read_text().splitlines(), out.read_text().splitlines()
    changed = [b for a, b in zip(before, after, strict=False) if a != b]
    assert changed[0].endswith(f") > {chosen!r}") and changed[1].strip() == "for: 2m", changed
    assert "keep_firing_for: 5m" in out.read_text() and len(after) == len(before) + 1
    promtool = need_promtool()
    assert subprocess.run([promtool, "check", "rules", str(out)], capture_output=True).returncode == 0
    whole = pal.backtest(frame, pal.load_prometheus_rules(out), incidents=incidents)
    mine = whole.alerts[whole.alerts["rule_id"] == "SlowRequests"].reset_index(drop=True)
    pd.testing.assert_frame_equal(tuner.result.alerts, mine)
    ours = tuner.result.stats.set_index("rule_id").loc["SlowRequests"]
    theirs = whole.stats.set_index("rule_id").loc["SlowRequests"]
    pd.testing.assert_series_equal(ours, theirs)
    # a rule without a number to move: for and keep_firing_for only
    absent = parse_prometheus_rules(
        "groups:\n- name: g\n  rules:\n  - alert: NoTarget\n    expr: absent(up{job=\"api\"})\n    for: 5m\n",
        name="absent.yml")
    t2 = pal.tune(frame, absent.rule("NoTarget"), rules=absent)
    assert "threshold" not in t2.controls and t2.controls["for"].value == "5m"
    t2.controls["for"].value = "1m"
    assert t2.tuned_rule().for_ms == 60_000


def test_tune_of_a_prometheus_rule_without_its_file_says_how():
    pytest.importorskip("ipywidgets")
    import perfalert_lab as pal
    from perfalert_lab.errors import UsageError
    from perfalert_lab.rules.promfile import parse_prometheus_rules

    rules = parse_prometheus_rules("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n", name="x.yml")
    frame, _ = pal.datasets.prometheus_fleet()
    with pytest.raises(UsageError, match="needs its file"):
        pal.tune(frame, rules.rule("A"))
    with pytest.raises(UsageError, match="recording rule|no alert rule|no rule"):
        pal.tune(frame, "nope", rules=rules)


def test_a_forward_reference_sees_the_previous_evaluation(tmp_path, capsys):
    """promtool: a rule reading a series recorded later sees the previous evaluation's (fires at 1m,
    not 0m; kube-prometheus lists its alert groups before the recording groups they read). The
    backtest models it; validate says it."""
    import warnings

    import perfalert_lab as pal
    from perfalert_lab.cli import main

    path = tmp_path / "fw.yml"
    path.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: job:x:sum > 1\n"
                    "  - record: job:x:sum\n    expr: sum by (job) (x)\n")
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    frame = pd.DataFrame({"timestamp": pd.date_range(t0, periods=10, freq="1min"), "metric": "x", "job": "a",
                          "value": 5.0})
    ordered = tmp_path / "ok.yml"
    ordered.write_text("groups:\n- name: g\n  rules:\n  - record: job:x:sum\n    expr: sum by (job) (x)\n"
                       "  - alert: A\n    expr: job:x:sum > 1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        late = pal.backtest(frame, pal.load_prometheus_rules(path)).alerts
        in_order = pal.backtest(frame, pal.load_prometheus_rules(ordered)).alerts
    assert late["fired_at"].tolist() == [t0 + pd.Timedelta("1m")]
    assert in_order["fired_at"].tolist() == [t0]
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as on a command line: the CLI prints it as one line
        assert main(["validate", str(path)]) == 0
    assert "rule 'A' reads 'job:x:sum', recorded by a rule after it" in capsys.readouterr().err


def test_a_labelset_collision_fails_the_rules_evaluation_there_not_the_backtest(tmp_path):
    """Prometheus (rules/alerting.go, recording.go): when two series give one label set after the rule's
    labels apply, the rule's evaluation fails at that tick: an alert rule keeps its alerts as they were, a
    recording rule writes nothing. promtool aborts its whole test there, so these are literal facts."""
    import perfalert_lab as pal
    from perfalert_lab.errors import PerfAlertWarning

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [{"timestamp": t0 + pd.Timedelta(minutes=m), "metric": "a", "job": "j", "value": 1.0} for m in range(10)]
    rows += [{"timestamp": t0 + pd.Timedelta(minutes=m), "metric": "b", "job": "j", "value": 1.0} for m in (4, 5)]
    frame = pd.DataFrame(rows)
    path = tmp_path / "clash.yml"
    path.write_text("groups:\n- name: g\n  rules:\n  - record: r\n    expr: '{__name__=~\"a|b\"}'\n"
                    "  - alert: A\n    expr: '{__name__=~\"a|b\"} > 0'\n    for: 2m\n")
    rules = pal.load_prometheus_rules(path)
    ms = int(t0.value) // 1_000_000
    with pytest.warns(PerfAlertWarning) as seen:  # b is seen from 4m to 9m (its last sample, 5m, for the lookback)
        timelines, store = evaluate_rule_file(store_from_frame(frame), rules, ms, ms + 9 * 60_000, compat="2")
    said = [str(w.message) for w in seen]
    assert any("rule 'r': at 2026-01-01T00:04:00+00:00 and 5 more evaluations" in m and "writes nothing" in m
               for m in said), said
    assert any("rule 'A'" in m and "keeps its alerts as they were" in m for m in said), said
    recorded = [i for i, lb in enumerate(store.labels) if dict(lb).get("__name__") == "r"]
    assert len(recorded) == 1
    r = recorded[0]
    assert ((store.ts[store.offsets[r]:store.offsets[r + 1]] - ms) // 60_000).tolist() == [0, 1, 2, 3]
    (tl,) = timelines
    # pending at 0, firing at 2; from 4 the evaluation fails and the alert stays as it was
    assert tl.state[0].tolist() == [1, 1, 2, 2, 2, 2, 2, 2, 2, 2]
    assert set(tl.active_at[0].tolist()) == {ms}
    with pytest.warns(PerfAlertWarning, match="same labelset"):
        result = pal.backtest(frame, rules)  # the backtest goes on (it stopped with an error before)
    assert len(result.alerts) == 1


def test_a_forward_reference_file_says_each_warning_once(tmp_path):
    """A file with a forward reference is evaluated in passes; what the evaluation says is said once."""
    import warnings

    import perfalert_lab as pal

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [{"timestamp": t0 + pd.Timedelta(minutes=m), "metric": m_, "job": "j", "value": 1.0}
            for m_, minutes in (("a", range(10)), ("b", (4, 5))) for m in minutes]
    rules = parse_prometheus_rules("groups:\n- name: g\n  rules:\n  - alert: F\n    expr: r > 0\n"
                                   "  - record: r\n    expr: '{__name__=~\"a|b\"}'\n")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        pal.backtest(pd.DataFrame(rows), rules)
    assert [str(w.message).split(":")[2] for w in said] == [" rule 'r'"], [str(w.message) for w in said]


def _stretches_by_hand(state, value, present, lower):
    """The fired stretches of a timeline, tick by tick (the reference for ``fired_stretches``)."""
    out = []
    for i in range(state.shape[0]):
        j, S = 0, state.shape[1]
        while j < S:
            if state[i, j] == 0:
                j += 1
                continue
            first = j
            while j < S and state[i, j] != 0:
                j += 1
            states = list(state[i, first:j])
            if 2 in states:
                vals = [v for v, p in zip(value[i, first:j], present[i, first:j], strict=True) if p and not np.isnan(v)]
                finite = any(np.isfinite(v) for v in vals)
                peak = (min(vals) if lower else max(vals)) if finite else np.nan
                out.append((i, first, first + states.index(2), j if j < S else -1, peak))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fired_stretches_are_the_timelines_runs(seed):
    """Stretches found in one compiled pass equal those found tick by tick: runs broken by an inactive
    tick, pending-only runs left out, peaks over the present values with NaN, inf and all-NaN runs."""
    from perfalert_lab.prometheus.alerting import fired_stretches

    rng = np.random.default_rng(seed)
    n, S = 30, 400
    state = rng.choice(np.array([0, 1, 2], dtype=np.int8), (n, S), p=[0.4, 0.2, 0.4])
    value = rng.normal(size=(n, S))
    value[rng.random((n, S)) < 0.3] = np.nan
    value[rng.random((n, S)) < 0.02] = np.inf
    value[:3] = np.nan  # rows with no value at all
    present = rng.random((n, S)) < 0.8
    present[3] = False  # a row never present
    for lower in (False, True):
        got = list(zip(*(a.tolist() for a in fired_stretches(state, value, present, lower)), strict=True))
        want = _stretches_by_hand(state, value, present, lower)
        assert len(got) == len(want) > 100
        for g, w in zip(got, want, strict=True):
            assert g[:4] == w[:4] and (g[4] == w[4] or (np.isnan(g[4]) and np.isnan(w[4]))), (g, w)


def test_active_at_is_the_state_machines_own():
    """``activeAt`` derived from the states (the first tick of each active run) equals the time the state
    machine sets, tick by tick in plain Python, on random presence with ``for``, ``keep_firing_for``,
    ``limit`` and failed evaluations."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        n, S = int(rng.integers(1, 6)), int(rng.integers(1, 60))
        ticks = np.arange(S, dtype=np.int64) * 60_000 + 30_000
        present = rng.random((n, S)) < rng.uniform(0.2, 0.9)
        failed = rng.random(S) < 0.1
        for_ms, keep_ms, limit = (int(rng.integers(0, 4)) * 60_000, int(rng.integers(0, 4)) * 60_000,
                                  int(rng.integers(0, 4)))
        state = alert_states(present, ticks, for_ms, keep_ms, limit, failed)
        cur, since, kept = [0] * n, [0] * n, [-1] * n
        want_state, want_since = np.zeros((n, S), np.int8), np.zeros((n, S), np.int64)
        for j, t in enumerate(ticks.tolist()):
            if not failed[j]:
                for i in range(n):
                    if present[i, j]:
                        kept[i] = -1
                        if cur[i] == 0:
                            cur[i], since[i] = 1, t
                    elif cur[i] == 1:
                        cur[i] = 0
                    elif cur[i] == 2:
                        kept[i] = t if kept[i] < 0 else kept[i]
                        if not (keep_ms > 0 and t - kept[i] < keep_ms):
                            cur[i], kept[i] = 0, -1
                    if cur[i] == 1 and t - since[i] >= for_ms:
                        cur[i] = 2
                if limit and sum(c != 0 for c in cur) > limit:
                    cur, kept = [0] * n, [-1] * n
            want_state[:, j] = cur
            want_since[:, j] = [s if c else 0 for s, c in zip(since, cur, strict=True)]
        np.testing.assert_array_equal(state, want_state)
        np.testing.assert_array_equal(active_since(state, ticks), want_since)
