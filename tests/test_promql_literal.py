"""Literal PromQL cases with facts from Prometheus's own test data (compat "3").

``tests/data/promqltest/*.test`` are in the format of Prometheus's
``promql/promqltest/testdata``: ``load <interval>`` followed by series in expanding
notation, ``clear``, ``eval instant at <time> <expr>`` or ``eval range from <a> to
<b> step <s> <expr>`` followed by the expected series (``expect fail`` for an error).
This file reads that format and checks ``perfalert_lab.promql_engine`` against each case.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfalert_lab._time import parse_duration
from perfalert_lab.promql_engine import PromQLError, Scalar, evaluate, format_labels, store_from_frame

DATA = Path(__file__).parent / "data" / "promqltest"
_SERIES = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?(?P<labels>\{[^}]*\})?\s+(?P<values>.+)$")


def _ms(text: str) -> int:
    return 0 if text == "0" else int(round(parse_duration(text).total_seconds() * 1000))


def _number(text: str) -> float:
    return float(text.replace("Inf", "inf"))


def expand(values: str) -> list[float | None]:
    """Prometheus's expanding notation: ``1 2 _ 0+10x3 5x2 _x2 NaN``."""
    out: list[float | None] = []
    for token in values.split():
        m = re.fullmatch(r"(?P<a>[^x+]+?|[-+]?[0-9.e]+)(?:(?P<op>[+-])(?P<b>[0-9.e]+))?x(?P<n>\d+)", token)
        if token == "_":
            out.append(None)
        elif re.fullmatch(r"_x\d+", token):
            out.extend([None] * int(token[2:]))
        elif m:
            a, n = _number(m["a"]), int(m["n"])
            b = _number(m["b"]) * (-1 if m["op"] == "-" else 1) if m["b"] else 0.0
            out.extend(a + b * i for i in range(n + 1))
        else:
            out.append(_number(token))
    return out


def _labels(text: str | None) -> dict[str, str]:
    return dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"', text or ""))


@dataclass
class Eval:
    line: int
    expr: str
    times_ms: list[int]
    expected: dict[str, list[float | None]] = field(default_factory=dict)
    fail: bool = False
    frame: pd.DataFrame | None = None
    compat: str = "3"


def read_cases(path: Path) -> list[Eval]:
    cases: list[Eval] = []
    rows: list[dict] = []
    lines = path.read_text().splitlines()
    compat = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("# compat:")), "3")
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("load "):
            step = _ms(line.split()[1])
            i += 1
            while i < len(lines) and lines[i].strip() and lines[i][0] in " \t":
                m = _SERIES.match(lines[i].strip())
                assert m, f"{path.name}:{i + 1}: cannot read series {lines[i]!r}"
                labels = _labels(m["labels"])
                name = m["name"] or labels.pop("__name__")
                for k, v in enumerate(expand(m["values"])):
                    if v is not None:
                        rows.append({"timestamp": k * step, "metric": name, "value": v, **labels})
                i += 1
            continue
        if line == "clear":
            rows = []
        elif line.startswith(("eval ", "eval_ordered ", "eval_warn ", "eval_fail ")):
            fails = line.startswith("eval_fail ")
            line = "eval " + line.split(" ", 1)[1]
            m = re.match(r"eval instant at (\S+) (.+)$", line)
            if m:
                case = Eval(i + 1, m[2], [_ms(m[1])])
            else:
                m = re.match(r"eval range from (\S+) to (\S+) step (\S+) (.+)$", line)
                assert m, f"{path.name}:{i + 1}: cannot read {line!r}"
                start, end, step = _ms(m[1]), _ms(m[2]), _ms(m[3])
                case = Eval(i + 1, m[4], list(range(start, end + 1, step)))
            frame = pd.DataFrame(rows)
            if len(frame):
                frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
                for col in frame.columns:
                    if col not in ("timestamp", "value"):
                        frame[col] = frame[col].fillna("")
            case.frame = frame
            case.fail = fails
            case.compat = compat
            i += 1
            while i < len(lines) and lines[i].strip() and lines[i][0] in " \t":
                body = lines[i].strip()
                i += 1
                if body.startswith("expect fail"):
                    case.fail = True
                    continue
                if body.startswith("expect") or body.startswith("#"):
                    continue
                m = _SERIES.match(body)
                if m and (m["name"] or m["labels"]):
                    labels = _labels(m["labels"])
                    if m["name"]:
                        labels["__name__"] = m["name"]
                    key = format_labels(tuple(sorted(labels.items())))
                    case.expected[key] = expand(m["values"])
                else:  # a scalar
                    case.expected["{}"] = expand(body)
            cases.append(case)
            continue
        i += 1
    return cases


CASES = [(p.name, c) for p in sorted(DATA.glob("*.test")) for c in read_cases(p)]


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)  # promqltest's own tolerance


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[f"{n}:{c.line}" for n, c in CASES])
def test_literal_case(case: Eval):
    assert case.frame is not None
    frame = case.frame if len(case.frame) else pd.DataFrame(
        {"timestamp": pd.to_datetime([], utc=True), "metric": [], "value": []})
    store = store_from_frame(frame)
    times = np.array(case.times_ms, dtype=np.int64)
    if case.fail:
        with pytest.raises(PromQLError):
            evaluate(store, case.expr, times, prometheus_compat=case.compat)
        return
    out = evaluate(store, case.expr, times, prometheus_compat=case.compat)
    got: dict[str, list[float | None]] = {}
    if isinstance(out, Scalar):
        got["{}"] = [float(v) for v in out.values]
    else:
        for r, lb in enumerate(out.labels):
            got[format_labels(lb)] = [float(out.values[r, j]) if out.present[r, j] else None
                                      for j in range(len(times))]
    assert set(got) == set(case.expected), f"line {case.line}: {case.expr}\n got {got}\n expected {case.expected}"
    for key, want in case.expected.items():
        have = got[key]
        assert len(have) == len(want)
        for h, w in zip(have, want, strict=True):
            assert (h is None) == (w is None) and (h is None or _close(h, w)), \
                f"line {case.line}: {case.expr} {key}: got {have}, expected {want}"


def test_the_literal_cases_cover_the_subset():
    """Every function, aggregation and operator of SPEC 11 has at least one literal case."""
    text = " ".join(c.expr for _, c in CASES).lower()
    constructs = [
        "rate(", "increase(", "delta(", "irate(", "idelta(", "deriv(", "predict_linear(", "avg_over_time(",
        "min_over_time(", "max_over_time(", "sum_over_time(", "count_over_time(", "quantile_over_time(",
        "stddev_over_time(", "stdvar_over_time(", "last_over_time(", "present_over_time(", "absent(",
        "absent_over_time(", "changes(", "resets(", "histogram_quantile(", "label_replace(", "label_join(",
        "abs(", "ceil(", "floor(", "round(", "clamp(", "clamp_min(", "clamp_max(", "sqrt(", "exp(", "ln(",
        "log2(", "log10(", "time()", "timestamp(", "vector(", "scalar(",
        "sum", "avg", "min(", "max(", "count(", "stddev(", "stdvar(", "quantile without", "topk(", "bottomk(",
        "count_values(", "group(", " by (", " without (",
        " + ", " - ", " * ", " / ", " % ", " ^ ", " == ", " != ", " > ", " < ", " <= ", "bool",
        " and ", " or ", " unless ", "on(", "ignoring(", "group_left", "group_right", "offset", "[5m:",
    ]
    missing = [c for c in constructs if c not in text]
    assert not missing, missing
