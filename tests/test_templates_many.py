"""Rendering a template for many alerts at once (``render_many``: each part rendered once per distinct input
it reads, the parts joined in Arrow) gives what ``render`` gives alert by alert: on hand-made templates that
cover every kind of part, and on every annotation of the public rule files teams publish."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import yaml
from conftest import SHARED_RULES, need_shared

from perfalert_lab.errors import TemplateError
from perfalert_lab.gotemplate import Struct
from perfalert_lab.templates import check_template, format_labels, format_labels_many, render, render_many

LABELS = [{"instance": "web-1:9100", "job": "node", "severity": "page"},
          {"instance": "db-2", "job": 'q"uote\\d', "namespace": "prod", "pod": "db-2-abc"},
          {"job": "edge", "le": "0.5", "device": "sda\n1", "mountpoint": "/"},
          {}]
VALUES = [0.0, -0.0, 1.0, 80.5, 1e6, 123456.0, 1e-5, -2.5, math.nan, math.inf, -math.inf, 0.123456789, 99.95, 3.0]

HAND_MADE = [
    "no template at all",
    "{{ $labels.instance }} is down",
    "{{ $value }}",
    "{{ $labels.job }} at {{ $value | humanize }} ({{ printf \"%.1f\" $value }}%, {{ humanizePercentage $value }})",
    "{{ if gt $value 80.0 }}high on {{ $labels.instance }}{{ else }}fine{{ end }}",
    "{{ with $labels.namespace }}ns={{ . }}{{ else }}no namespace{{ end }} {{ .Value }} {{ .Labels.job }}",
    "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
    "{{ $v := $value }}{{ $l := $labels.job }}{{ $l }}: {{ $v | humanize1024 }}",
    "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }} {{ $value }}",
    "{{ if gt $value 50.0 }}{{ $value = 50.0 }}{{ end }}capped at {{ $value }}",  # one part changes another's
    "{{ if $labels.pod }}{{ $p := $labels.pod }}{{ $p | toUpper }}{{ end }}/{{ $value | printf \"%.3e\" }}",
    "{{ $ }}",
    "{{ humanizeDuration $value }} {{ $labels.instance | stripPort }} {{ reReplaceAll \"-.*\" \"\" $labels.instance }}",
    "{{ index $labels \"instance\" 3 }}",  # an error for every alert
    "{{ $labels.job | humanize }} and {{ $value }}",  # an error where the job is not a number
    "{{ $value | printf \"%d\" }} {{ printf \"%s %v\" $labels.job $value }}",
    "{{ len $labels }} {{ eq $value 0.0 }} {{ not (lt $value 1.0) }}",
    "{{ externalURL }}{{ $externalURL }} {{ $externalLabels }}",
]


def _alerts(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inst = rng.integers(0, len(LABELS), n)
    rounded = np.round(rng.normal(70, 30, n) * 10.0 ** rng.integers(0, 4, n)) / 10.0 ** rng.integers(0, 4, n)
    values = np.where(rng.random(n) < 0.5, np.array(VALUES)[rng.integers(0, len(VALUES), n)], rounded)
    return inst, values


def _each(text: str, inst: np.ndarray, values: np.ndarray, query=None, at_ms=None) -> list[str]:
    out = []
    for k in range(len(inst)):
        q = (lambda e, at=int(at_ms[k]): query(e, at)) if query is not None else None
        out.append(render(text, LABELS[inst[k]], float(values[k]), query=q, external_url="http://am"))
    return out


@pytest.mark.parametrize("text", HAND_MADE)
@pytest.mark.parametrize("seed", [0, 1])
def test_many_at_once_is_each_alone(text: str, seed: int) -> None:
    inst, values = _alerts(seed, 300)
    got = render_many(text, LABELS, inst, values, external_url="http://am").to_pylist()
    assert got == _each(text, inst, values)


def test_a_template_that_queries_renders_each_alert_at_its_own_time() -> None:
    seen: list[tuple[str, int]] = []

    def query(expr: str, at: int) -> list[Struct]:
        seen.append((expr, at))
        return [Struct(Labels={"instance": f"i{at % 3}"}, Value=float(at % 7))]

    text = ('{{ $labels.job }} {{ with query "up == 0" }}{{ . | first | value }} on '
            '{{ . | first | label "instance" }}{{ end }}')
    inst, values = _alerts(3, 50)
    at_ms = np.arange(50, dtype=np.int64) * 60_000
    got = render_many(text, LABELS, inst, values, at_ms=at_ms, query=query, external_url="http://am").to_pylist()
    assert {at for _, at in seen} == set(at_ms.tolist())
    assert got == _each(text, inst, values, query, at_ms)


def test_label_sets_are_formatted_as_one_at_a_time() -> None:
    rng = random.Random(4)
    words = ["a", 'q"', "back\\slash", "new\nline", "", "é"]
    rows = [{k: rng.choice(words) for k in ("summary", "description", "runbook_url")} for _ in range(40)]
    import pyarrow as pa

    columns = {k: pa.array([r[k] for r in rows], type=pa.string()) for k in rows[0]}
    assert format_labels_many(columns, len(rows)).to_pylist() == [format_labels(tuple(sorted(r.items()))) for r in rows]
    assert format_labels_many({}, 3).to_pylist() == [format_labels(())] * 3


def _annotation_templates() -> list[str]:
    """Every annotation template of the public rule files (those Prometheus would load and we render)."""
    out: set[str] = set()
    for path in sorted(need_shared(SHARED_RULES).rglob("*.y*ml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        stack: list[object] = docs
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                if isinstance(item.get("annotations"), dict) and "alert" in item:
                    out.update(v for v in item["annotations"].values() if isinstance(v, str) and "{{" in v)
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    good = []
    for text in sorted(out):
        try:
            check_template(text)
        except TemplateError:
            continue
        good.append(text)
    return good


def test_every_annotation_of_the_public_rule_files_renders_alike_many_or_one() -> None:
    templates = _annotation_templates()
    assert len(templates) > 300  # the corpus was read

    def query(expr: str, at: int) -> list[Struct]:
        return [Struct(Labels={"instance": "web-1:9100", "job": "node"}, Value=float(len(expr) % 5 + at % 3))]

    inst, values = _alerts(5, 60)
    at_ms = np.arange(60, dtype=np.int64) * 60_000
    for text in templates:
        got = render_many(text, LABELS, inst, values, at_ms=at_ms, query=query, external_url="http://am").to_pylist()
        assert got == _each(text, inst, values, query, at_ms), text


def _go_float_by_decimal(v: float) -> str:
    """Go's %v of a float64 as first written here (through Decimal): the reference the quick one is held to."""
    from decimal import Decimal

    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    sign, digits, exponent = Decimal(repr(v)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    exp = len(digits) + int(exponent) - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if exp >= len(text) - 1:
        return neg + text + "0" * (exp - len(text) + 1)
    if exp >= 0:
        return neg + text[:exp + 1] + "." + text[exp + 1:]
    return neg + "0." + "0" * (-exp - 1) + text


def test_go_float_reads_the_shortest_digits_as_before() -> None:
    from perfalert_lab.gotemplate import go_float

    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**63, 20_000, dtype=np.int64).view(np.float64)  # every magnitude, subnormals too
    mags = np.sign(rng.normal(size=20_000)) * 10.0 ** rng.uniform(-12, 25, 20_000)
    edges = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-5, 1e6, 999999.0, 999999.5, 123456.0, 1e21, 5e-324,
             1.7976931348623157e308, 0.1, 100.0, 1.5, -2.5e-7, math.nan, math.inf, -math.inf]
    for v in [*bits.tolist(), *mags.tolist(), *np.round(mags, 3).tolist(), *edges]:
        assert go_float(v) == _go_float_by_decimal(v), repr(v)
    assert go_float(np.float64(1234567.0)) == "1.234567e+06"


def test_printf_of_floats_in_one_format_is_printf_verb_by_verb(monkeypatch: pytest.MonkeyPatch) -> None:
    import perfalert_lab.templates as t

    formats = ["%.1f", "%.1f%%", "a %e b %g", "%5.2f|%-8.3E", "100%% %.0f", "%+.2f %g", "%F %.3G", "%-10.2G|%08.3F"]
    rng = np.random.default_rng(2)
    pool = VALUES + [0.5, 2.5, 1e21, 1e-7, math.nan, -math.inf]
    cases = [(fmt, tuple(float(x) for x in rng.choice(pool, fmt.count("%") - 2 * fmt.count("%%"))))
             for fmt in formats for _ in range(40)]
    quick = [t._printf(fmt, *args) for fmt, args in cases]
    monkeypatch.setattr(t, "_float_format", lambda fmt: None)
    assert quick == [t._printf(fmt, *args) for fmt, args in cases]
