"""Random Prometheus rule files, and promtool's alert timeline for them.

``random_rule_file(rng)`` draws a group of recording and alert rules (expressions from
the PromQL grammar of ``promql_oracle``, compared with a threshold so that alerts come
and go; random ``for``/``keep_firing_for``; static and templated labels; recording
rules that later alert rules read). ``promtool_alerts`` queries ``ALERTS`` and
``ALERTS_FOR_STATE`` at every evaluation with a sentinel expectation, so promtool
prints each active alert's labels, state and ``activeAt``.
"""

from __future__ import annotations

import random
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from promql_oracle import INTERVAL_S, _selector, _values_text, _vector, random_series
from promtool_oracle import need_promtool


def _compared(rng: random.Random) -> str:
    inner = _vector(rng, rng.randint(0, 2))
    return f"({inner}) {rng.choice(['>', '<', '>=', '<='])} {rng.choice(['0', '1', '5', '10', '20', '40', '0.5'])}"


def _alert_expr(rng: random.Random) -> str:
    """The shapes real alert rules have (SPEC 11's subset): ``(expr) > N`` mostly, and aggregations
    without ``instance``, ``and``/``unless``/``or`` of comparisons, ``absent()``, bare selectors."""
    import promql_parser

    while True:  # an expression Prometheus would refuse stops promtool loading the whole file
        r = rng.random()
        if r < 0.5:
            expr = _compared(rng)
        elif r < 0.6:
            expr = f"sum by (a) ({_vector(rng, rng.randint(0, 1))}) > {rng.choice(['0', '10', '50'])}"
        elif r < 0.8:
            expr = f"({_compared(rng)}) {rng.choice(['and', 'unless', 'or'])} ({_compared(rng)})"
        elif r < 0.9:
            expr = f'absent({_selector(rng, "g")})' if rng.random() < 0.5 else 'absent(g{a="w"})'
        else:
            expr = _selector(rng, "g") if rng.random() < 0.5 else f"({_vector(rng, 1)})"
        if "count_values" in expr and "^" in expr:
            # a value written into a label: Go's math.Pow and C's pow may differ in the last bit,
            # which changes the label (the value comparison elsewhere allows for that; labels cannot)
            continue
        try:
            promql_parser.parse(expr)
        except Exception:  # noqa: BLE001 - the parser's own error types
            continue
        return expr


def random_rule_file(rng: random.Random, prefix: str = "") -> dict:
    """A rule file of one group; ``prefix`` keeps the names of several cases apart in one promtool run."""
    rules: list[dict] = []
    record = f"{prefix.lower()}a:g:sum"
    if rng.random() < 0.5:
        rules.append({"record": record, "expr": f"sum by (a) ({_selector(rng, 'g')})"})
    if rng.random() < 0.3:
        rules.append({"record": f"{prefix.lower()}a:c:rate2m", "expr": "sum by (a) (rate(c_total[2m]))"})
    for k in range(rng.randint(1, 3)):
        rule: dict = {"alert": f"{prefix}A{k}", "expr": _alert_expr(rng)}
        if rules and rules[0].get("record") == record and rng.random() < 0.4:
            rule["expr"] = f"{record} {rng.choice(['>', '<'])} {rng.choice(['0', '30', '60', '100'])}"
        if rng.random() < 0.7:
            rule["for"] = rng.choice(["1m", "2m", "3m", "5m", "90s"])
        if rng.random() < 0.4:
            rule["keep_firing_for"] = rng.choice(["1m", "2m", "4m"])
        labels = {}
        if rng.random() < 0.5:
            labels["severity"] = rng.choice(["page", "ticket"])
        if rng.random() < 0.3:
            labels["where"] = "{{ $labels.a }}-x"
        if labels:
            rule["labels"] = labels
        rules.append(rule)
    return {"groups": [{"name": f"{prefix}g", "rules": rules}]}


_HEAD = re.compile(r'^\s*expr: "(?P<expr>ALERTS(?:_FOR_STATE)?)\{.*\}", time: (?P<time>[^,]+),(?: err: (?P<err>.*))?$')
_EXP = re.compile(r'^\s*exp: \{__case__="(?P<case>\d+)", __time__="(?P<time>\d+)"\}')
_SAMPLE = re.compile(r'(\{[^}]*\}) (\S+?)(?:, |$)')


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text))


def promtool_alerts(tmp: Path, cases: list[tuple[dict, dict[str, list[float | None]], int]]
                    ) -> list[dict[int, dict[tuple, tuple[str, int]]]]:
    """For each case (rule file, series, minutes): ``{tick_s: {labels: (state, activeAt_s)}}``.

    Each case runs in its own promtool process; the sentinel in every expectation names
    the case and the time, so promtool prints what it got for each.
    """
    promtool = need_promtool()
    outputs: list[str] = []

    def run(n: int) -> str:
        rule_doc, series, minutes = cases[n]
        (tmp / f"rules{n}.yml").write_text(yaml.safe_dump(rule_doc, sort_keys=False))
        test = {
            "interval": f"{INTERVAL_S}s",
            "input_series": [{"series": k, "values": _values_text(v)} for k, v in series.items()],
            "promql_expr_test": [{
                "expr": f"{expr}{{alertname=~\".+\"}}", "eval_time": f"{t * INTERVAL_S}s",
                "exp_samples": [{"labels": f'{{__case__="{n}", __time__="{t * INTERVAL_S}"}}', "value": 0}],
            } for t in range(minutes) for expr in ("ALERTS", "ALERTS_FOR_STATE")],
        }
        # promtool orders groups by group_eval_order and, without one, at random (Go's map order): file order
        # is what we evaluate, and what makes a group reading another's recordings deterministic
        doc = {"rule_files": [f"rules{n}.yml"], "evaluation_interval": f"{INTERVAL_S}s", "tests": [test],
               "group_eval_order": [g["name"] for g in rule_doc.get("groups") or []]}
        (tmp / f"test{n}.yml").write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
        proc = subprocess.run([promtool, "test", "rules", f"test{n}.yml"], cwd=tmp, capture_output=True,
                              text=True, timeout=300)
        out = proc.stdout + proc.stderr
        if "got:" not in out:
            raise AssertionError(f"promtool did not run case {n}:\n{out[:3000]}")
        return out

    # one promtool process per case (a group evaluated on another case's series could fail
    # there), several at a time
    with ThreadPoolExecutor(max_workers=8) as pool:
        outputs = list(pool.map(run, range(len(cases))))
    out = "\n".join(outputs)
    states: list[dict[int, dict[tuple, str]]] = [{} for _ in cases]
    active: list[dict[int, dict[tuple, int]]] = [{} for _ in cases]
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        head = _HEAD.match(lines[i])
        if head is None:
            i += 1
            continue
        if head["err"] is not None:
            raise AssertionError(f"promtool error: {head['err']}")
        exp = _EXP.match(lines[i + 1])
        assert exp is not None, lines[i:i + 3]
        n, t = int(exp["case"]), int(exp["time"])
        body = lines[i + 2].strip()[4:].strip()
        for lbl_text, value in ([] if body == "nil" else _SAMPLE.findall(body)):
            lb = _labels(lbl_text)
            lb.pop("__name__", None)
            state = lb.pop("alertstate", None)
            key = tuple(sorted(lb.items()))
            if head["expr"] == "ALERTS":
                states[n].setdefault(t, {})[key] = str(state)
            else:
                active[n].setdefault(t, {})[key] = int(float(value))
        i += 3
    return [{t: {k: (s, act[t][k]) for k, s in by.items()} for t, by in st.items()}
            for st, act in zip(states, active, strict=True)]


def random_case(rng: random.Random, n: int, minutes: int = 30) -> tuple[dict, dict[str, list[float | None]], int]:
    """A rule file and series that evaluate without a PromQL error at every tick (an evaluation
    error leaves Prometheus's alerts as they were, which is not what these tests are about)."""
    from promql_oracle import Case

    from perfalert_lab.errors import RulesError
    from perfalert_lab.prometheus.alerting import evaluate_rule_file
    from perfalert_lab.promql_engine import store_from_frame
    from perfalert_lab.rules.promfile import parse_prometheus_rules

    while True:
        series = random_series(rng)
        doc = random_rule_file(rng, prefix=f"C{n}_")
        try:
            rules = parse_prometheus_rules(yaml.safe_dump(doc, sort_keys=False), name=f"case{n}")
            evaluate_rule_file(store_from_frame(Case("", series, []).frame()), rules, 0, (minutes - 1) * 60_000,
                               compat="2")
        except RulesError:
            continue
        return doc, series, minutes
