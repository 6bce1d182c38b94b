"""Random PromQL expressions and series, and promtool's answers for them.

``random_case(rng)`` draws series (gaps, counter resets, series that start late and
end early, classic histogram buckets) and an expression from a grammar of the SPEC 11
subset. ``promtool_answers`` runs every case in one ``promtool test rules`` file:
each ``promql_expr_test`` expects a sentinel sample, so every one fails and promtool
prints what it got (or its error) next to the sentinel that names the case.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from promtool_oracle import need_promtool

INTERVAL_S = 60
POINTS = 40
LABEL_A = ["x", "y", "z"]
LABEL_B = ["p", "q"]


@dataclass
class Case:
    expr: str
    series: dict[str, list[float | None]]  # promtool series text -> values at 0, 60s, ...
    times_s: list[int]
    answers: dict[int, object] = field(default_factory=dict)  # time -> {labels: value} or error text

    def frame(self) -> pd.DataFrame:
        rows = []
        for text, values in self.series.items():
            name, labels = _split(text)
            for i, v in enumerate(values):
                if v is not None:
                    rows.append({"timestamp": pd.Timestamp(i * INTERVAL_S, unit="s", tz="UTC"), "metric": name,
                                 "value": v, **labels})
        frame = pd.DataFrame(rows)
        for col in ("a", "b", "le"):
            if col in frame.columns:
                frame[col] = frame[col].fillna("")
        return frame


def _split(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition("{")
    return name, dict(re.findall(r'(\w+)="([^"]*)"', rest))


# ---------------------------------------------------------------------- series


def _gauge(rng: random.Random) -> list[float | None]:
    level = rng.uniform(-5, 50)
    out: list[float | None] = []
    for _ in range(POINTS):
        level += rng.gauss(0, 4)
        out.append(round(level, 2) if rng.random() > 0.12 else None)
    return _start_end(rng, out)


def _counter(rng: random.Random) -> list[float | None]:
    level = rng.uniform(0, 100)
    out: list[float | None] = []
    for _ in range(POINTS):
        if rng.random() < 0.06:
            level = rng.uniform(0, 5)  # a restart
        else:
            level += rng.choice([0, 0, rng.uniform(0, 20)])
        out.append(round(level, 2) if rng.random() > 0.1 else None)
    return _start_end(rng, out)


def _start_end(rng: random.Random, values: list[float | None]) -> list[float | None]:
    if rng.random() < 0.3:
        k = rng.randrange(POINTS // 2)
        values[:k] = [None] * k
    if rng.random() < 0.3:
        k = rng.randrange(POINTS // 2)
        values[POINTS - k:] = [None] * k
    return values


def random_series(rng: random.Random) -> dict[str, list[float | None]]:
    series: dict[str, list[float | None]] = {}
    for a in LABEL_A:
        for b in LABEL_B:
            if rng.random() < 0.8:
                series[f'g{{a="{a}", b="{b}"}}'] = _gauge(rng)
            if rng.random() < 0.8:
                series[f'c_total{{a="{a}", b="{b}"}}'] = _counter(rng)
    for a in LABEL_A[:2]:
        if rng.random() < 0.9:
            series[f'h{{a="{a}"}}'] = _gauge(rng)
        # a classic histogram: cumulative buckets, each a counter
        base = _counter(rng)
        les = ["0.1", "0.5", "1", "+Inf"] if rng.random() < 0.85 else ["0.5", "1"]
        for k, le in enumerate(les):
            series[f'lat_bucket{{a="{a}", le="{le}"}}'] = [
                None if v is None else round(v * (k + 1) / len(les) + k, 2) for v in base]
    return series


# ---------------------------------------------------------------------- expressions

RANGE_FNS = ["rate", "increase", "delta", "irate", "idelta", "deriv", "avg_over_time", "min_over_time",
             "max_over_time", "sum_over_time", "count_over_time", "stddev_over_time", "stdvar_over_time",
             "last_over_time", "present_over_time", "changes", "resets"]
MATH_FNS = ["abs", "ceil", "floor", "sqrt", "exp", "ln", "log2", "log10", "round"]
AGGS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]


def _duration(rng: random.Random, choices: tuple[str, ...] = ("1m", "2m", "3m", "5m", "7m", "10m", "90s")) -> str:
    return rng.choice(choices)


def _selector(rng: random.Random, metric: str | None = None) -> str:
    metric = metric or rng.choice(["g", "c_total", "h"])
    matchers = []
    r = rng.random()
    if r < 0.3:
        matchers.append(f'a="{rng.choice(LABEL_A)}"')
    elif r < 0.45:
        matchers.append(f'a!="{rng.choice(LABEL_A)}"')
    elif r < 0.6:
        matchers.append(f'b=~"{rng.choice(["p", "q|p", ".*", "x|q"])}"')
    elif r < 0.7:
        matchers.append(f'a!~"{rng.choice(["x", "y|z"])}"')
    sel = metric + ("{" + ", ".join(matchers) + "}" if matchers else "")
    if rng.random() < 0.15:
        sel += f" offset {rng.choice(['1m', '3m', '90s'])}"
    return sel


def _range(rng: random.Random, depth: int) -> str:
    if depth > 0 and rng.random() < 0.2:
        inner = _vector(rng, depth - 1, simple=True)
        step = rng.choice(["", "1m", "30s", "2m"])
        sub = f"({inner})[{_duration(rng, ('3m', '5m', '10m'))}:{step}]"
        if rng.random() < 0.2:
            sub += " offset 1m"
        return sub
    sel = _selector(rng)
    if " offset " in sel:
        base, off = sel.split(" offset ")
        return f"{base}[{_duration(rng)}] offset {off}"
    return f"{sel}[{_duration(rng)}]"


def _scalar(rng: random.Random, depth: int) -> str:
    r = rng.random()
    if r < 0.6 or depth <= 0:
        return rng.choice(["0", "1", "2", "0.5", "10", "-3", "1.5", "100"])
    if r < 0.75:
        return "time()"
    if r < 0.9:
        return f"scalar({_vector(rng, depth - 1, simple=True)})"
    return f"({_scalar(rng, depth - 1)} {rng.choice(['+', '-', '*', '/'])} {_scalar(rng, depth - 1)})"


def _grouping(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return ""
    labels = rng.sample(["a", "b", "le"], rng.randint(1, 2))
    return f" {'by' if r < 0.75 else 'without'} ({', '.join(labels)})"


def _vector(rng: random.Random, depth: int, simple: bool = False) -> str:
    r = rng.random()
    if depth <= 0 or r < 0.15:
        return _selector(rng)
    if r < 0.35:
        fn = rng.choice(RANGE_FNS)
        return f"{fn}({_range(rng, depth - 1)})"
    if r < 0.42:
        if rng.random() < 0.5:
            return f"predict_linear({_range(rng, depth - 1)}, {rng.choice(['60', '300', '-120'])})"
        return f"quantile_over_time({rng.choice(['0', '0.25', '0.5', '0.9', '1'])}, {_range(rng, depth - 1)})"
    if r < 0.52:
        op = rng.choice(AGGS)
        return f"{op}{_grouping(rng)} ({_vector(rng, depth - 1)})"
    if r < 0.56 and not simple:
        op = rng.choice(["topk", "bottomk", "quantile"])
        param = rng.choice(["1", "2"]) if op != "quantile" else rng.choice(["0.1", "0.5", "0.95"])
        return f"{op}{_grouping(rng)} ({param}, {_vector(rng, depth - 1)})"
    if r < 0.62:
        fn = rng.choice(MATH_FNS)
        if fn == "round" and rng.random() < 0.5:
            return f"round({_vector(rng, depth - 1)}, {rng.choice(['0.5', '2', '10'])})"
        return f"{fn}({_vector(rng, depth - 1)})"
    if r < 0.66:
        fn = rng.choice(["clamp", "clamp_min", "clamp_max"])
        if fn == "clamp":
            return f"clamp({_vector(rng, depth - 1)}, {rng.choice(['0', '5'])}, {rng.choice(['3', '20'])})"
        return f"{fn}({_vector(rng, depth - 1)}, {rng.choice(['0', '10'])})"
    if r < 0.76:
        op = rng.choice(["+", "-", "*", "/", "%", "^", ">", "<", ">=", "<=", "==", "!="])
        boolean = " bool" if op in (">", "<", ">=", "<=", "==", "!=") and rng.random() < 0.4 else ""
        s = _scalar(rng, depth - 1)
        v = _vector(rng, depth - 1)
        return f"({v}) {op}{boolean} {s}" if rng.random() < 0.6 else f"{s} {op}{boolean} ({v})"
    if r < 0.86:
        return _binary_vectors(rng, depth)
    if r < 0.89:
        return f"histogram_quantile({rng.choice(['0.5', '0.9', '0.99', '0', '1', '1.5'])}, " \
               f"sum by (le{rng.choice(['', ', a'])}) (rate(lat_bucket[{_duration(rng, ('3m', '5m'))}])))"
    if r < 0.91:
        regex = rng.choice(["x", ".*", "y|z"])
        return f'label_replace({_vector(rng, depth - 1)}, "dst", "v-$1", "a", "({regex})")'
    if r < 0.93:
        return f"label_join({_vector(rng, depth - 1)}, \"ab\", \"-\", \"a\", \"b\")"
    if r < 0.95:
        return rng.choice([f"absent({_selector(rng, rng.choice(['g', 'nope']))})",
                           f"absent_over_time({_range(rng, 0)})", "absent(nope{a=\"x\", b=~\"p\"})"])
    if r < 0.97:
        return f"timestamp({_vector(rng, depth - 1)})"
    if r < 0.98:
        return f"count_values{_grouping(rng)} (\"v\", round({_vector(rng, depth - 1)}))"
    return f"vector({_scalar(rng, depth - 1)})"


def _binary_vectors(rng: random.Random, depth: int) -> str:
    """Two vectors matched so that Prometheus accepts them (mostly)."""
    op = rng.choice(["+", "-", "*", "/", ">", "<", "==", "!=", "and", "or", "unless"])
    lhs_metric, rhs_metric = rng.choice(["g", "c_total"]), rng.choice(["g", "c_total"])
    lhs = f"{rng.choice(['', 'rate(', 'abs('])}"
    lhs = (f"rate({_selector(rng, lhs_metric)}[5m])" if lhs == "rate(" else
           f"abs({_selector(rng, lhs_metric)})" if lhs == "abs(" else _selector(rng, lhs_metric))
    r = rng.random()
    if op in ("and", "or", "unless"):
        matching = rng.choice(["", " on (a)", " ignoring (b)", " on (a, b)"])
        return f"({lhs}) {op}{matching} ({_selector(rng, rhs_metric)})"
    boolean = " bool" if op in (">", "<", "==", "!=") and rng.random() < 0.3 else ""
    if r < 0.4:
        return f"({lhs}) {op}{boolean} ({_selector(rng, rhs_metric)})"
    if r < 0.7:  # many-to-one: the right side aggregated to the matching label
        agg = rng.choice(["sum", "max", "count"])
        mod = rng.choice(["on (a) group_left", "on (a) group_left (b)", "ignoring (b) group_left"])
        return f"({lhs}) {op}{boolean} {mod} ({agg} by (a) ({_selector(rng, rhs_metric)}))"
    agg = rng.choice(["sum", "min"])
    return f"({agg} by (a) ({lhs})) {op}{boolean} on (a) group_right ({_selector(rng, rhs_metric)})"


def random_case(rng: random.Random) -> Case:
    series = random_series(rng)
    expr = _vector(rng, rng.randint(1, 3)) if rng.random() < 0.93 else _scalar(rng, 2)
    times = sorted(rng.sample(range(0, (POINTS + 8) * INTERVAL_S, 30), 6))
    return Case(expr, series, times)


# ---------------------------------------------------------------------- promtool


def _values_text(values: list[float | None]) -> str:
    return " ".join("_" if v is None else repr(float(v)) for v in values)


_HEAD = re.compile(r'^\s*expr: "(?P<expr>.*)", time: (?P<time>[^,]+),(?: err: (?P<err>.*))?$')
_EXP = re.compile(r'^\s*exp: \{__case__="(?P<case>\d+)", __time__="(?P<time>\d+)"\}')
_GOT_SAMPLE = re.compile(r'(\{[^}]*\}) (\S+?)(?:, |$)')


def promtool_answers(tmp: Path, cases: list[Case]) -> None:
    """Fill each case's ``answers``: ``{time_s: {labels_text: value}}`` or ``{time_s: 'error: ...'}``."""
    promtool = need_promtool()
    tests = []
    for n, case in enumerate(cases):
        tests.append({
            "interval": f"{INTERVAL_S}s",
            "input_series": [{"series": k, "values": _values_text(v)} for k, v in case.series.items()],
            "promql_expr_test": [{
                "expr": case.expr, "eval_time": f"{t}s",
                "exp_samples": [{"labels": f'{{__case__="{n}", __time__="{t}"}}', "value": 0}],
            } for t in case.times_s],
        })
    doc = {"evaluation_interval": f"{INTERVAL_S}s", "tests": tests}
    (tmp / "promql.yml").write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
    proc = subprocess.run([promtool, "test", "rules", "promql.yml"], cwd=tmp, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    pending_err: str | None = None
    lines = out.splitlines()
    i = 0
    seen = 0
    while i < len(lines):
        head = _HEAD.match(lines[i])
        if head is None:
            i += 1
            continue
        pending_err = head["err"]
        if pending_err is not None:
            # an error names no sentinel: it belongs to the next case/time in order not yet answered
            n, t = _next_unanswered(cases)
            cases[n].answers[t] = "error: " + pending_err
            seen += 1
            i += 1
            continue
        exp = _EXP.match(lines[i + 1])
        got = lines[i + 2].strip()
        assert exp is not None and got.startswith("got:"), lines[i:i + 3]
        n, t = int(exp["case"]), int(exp["time"])
        samples: dict[str, float] = {}
        body = got[4:].strip()
        if body != "nil":
            for labels, value in _GOT_SAMPLE.findall(body):
                samples[labels] = float(value)
        cases[n].answers[t] = samples
        seen += 1
        i += 3
    expected = sum(len(c.times_s) for c in cases)
    if seen != expected:
        raise AssertionError(f"promtool answered {seen} of {expected} evaluations:\n{out[:3000]}")


def _next_unanswered(cases: list[Case]) -> tuple[int, int]:
    for n, case in enumerate(cases):
        for t in case.times_s:
            if t not in case.answers:
                return n, t
    raise AssertionError("more promtool answers than evaluations")


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def ours(case: Case, compat: str = "2") -> dict[int, object]:
    """Our answers for the case, in the same shape as promtool's."""
    from perfalert_lab.promql_engine import PromQLError, Scalar, evaluate, format_labels, store_from_frame

    store = store_from_frame(case.frame())
    result: dict[int, object] = {}
    for t in case.times_s:  # one call per instant keeps errors per instant, as promtool's
        try:
            out = evaluate(store, case.expr, np.array([t * 1000]), prometheus_compat=compat,
                           subquery_step_ms=INTERVAL_S * 1000)
        except PromQLError as exc:
            result[t] = f"error: {exc}"
            continue
        if isinstance(out, Scalar):
            result[t] = {"{}": float(out.values[0])}
        else:
            result[t] = {format_labels(lb): float(out.values[i, 0]) for i, lb in enumerate(out.labels)
                         if out.present[i, 0]}
    return result


def batch(case: Case, compat: str = "2") -> dict[int, object]:
    """Our answers from one vectorised call over all the case's instants (errors: per instant)."""
    from perfalert_lab.promql_engine import PromQLError, Scalar, evaluate, format_labels, store_from_frame

    store = store_from_frame(case.frame())
    times = np.array(case.times_s) * 1000
    try:
        out = evaluate(store, case.expr, times, prometheus_compat=compat, subquery_step_ms=INTERVAL_S * 1000)
    except PromQLError:
        return ours(case, compat)
    result: dict[int, object] = {}
    for j, t in enumerate(case.times_s):
        if isinstance(out, Scalar):
            result[t] = {"{}": float(out.values[j])}
        else:
            result[t] = {format_labels(lb): float(out.values[i, j]) for i, lb in enumerate(out.labels)
                         if out.present[i, j]}
    return result


def same(expr: str, a: object, b: object) -> bool:
    """One instant's answers agree: the same series and values; errors on both sides.

    topk/bottomk choose among equal values in an order Prometheus does not define, so
    there only the chosen values must agree.
    """
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str)
    assert isinstance(a, dict) and isinstance(b, dict)
    if a.keys() == b.keys() and all(close(a[k], b[k]) for k in a):
        return True
    if "topk" in expr or "bottomk" in expr:
        va, vb = sorted(a.values(), key=repr), sorted(b.values(), key=repr)
        return len(va) == len(vb) and all(close(x, y) for x, y in zip(sorted(va), sorted(vb), strict=True))
    return False
