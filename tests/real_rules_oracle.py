"""History made for real rule files, so that their alerts fire, and promtool's answer on it.

``synthetic_history(rules)`` reads every selector of a rule file's expressions and makes
series for each metric the file does not record itself: label values that satisfy the
selectors' matchers (a string a regular expression matches, another value for ``!=``),
two instances, classic histogram buckets for ``*_bucket`` metrics, counters that climb
(``*_total``, ``*_count``, ``*_sum``, ``*_bucket``) and gauges that sit at 0, jump high for
longer than most ``for:`` durations, fall to 1 and then stop, so that ``>``, ``<``, ``==``,
``absent()`` and rate rules all find a stretch to fire on. The values are the same for both
tools: promtool reads them in its series notation, we as a frame.
"""

from __future__ import annotations

import re
from re import _constants as sre_constants  # (the sre_* aliases are deprecated)
from re import _parser as sre_parse
from typing import Any

import pandas as pd

from perfalert_lab.prometheus.alerting import selectors

MINUTES = 110
HIGH = (10, 80)  # minutes with high values
LOW = (80, 90)  # then 1
GONE = 90  # then no samples
BUCKETS = ["0.005", "0.05", "0.1", "0.5", "1", "2.5", "5", "10", "+Inf"]
COUNTER = re.compile(r"(_total|_count|_sum|_bucket)$")


def _matching(pattern: str) -> str:
    """A short string the (anchored) regular expression matches, built from its parse tree."""
    def walk(items: Any) -> str:
        out = []
        for op, arg in items:
            if op is sre_constants.LITERAL:
                out.append(chr(arg))
            elif op is sre_constants.ANY:
                out.append("x")
            elif op is sre_constants.IN:
                lits = [a for o, a in arg if o is sre_constants.LITERAL]
                ranges = [a for o, a in arg if o is sre_constants.RANGE]
                negate = any(o is sre_constants.NEGATE for o, _ in arg)
                if negate:
                    out.append("_" if "_" not in {chr(c) for c in lits} else "~")
                else:
                    out.append(chr(lits[0]) if lits else chr(ranges[0][0]) if ranges else "x")
            elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                lo, _, sub = arg
                out.append(walk(sub) * max(lo, 1 if lo else 0) if lo else "")
            elif op is sre_constants.BRANCH:
                out.append(walk(arg[1][0]))
            elif op is sre_constants.SUBPATTERN:
                out.append(walk(arg[-1]))
            elif op in (sre_constants.AT, sre_constants.CATEGORY):
                continue
        return "".join(out)

    try:
        text = walk(sre_parse.parse(pattern))
    except (re.error, IndexError, TypeError):
        return "x"
    return text if re.fullmatch(pattern, text) else "x"


def _labels_for(sel: Any) -> dict[str, str]:
    labels: dict[str, str] = {}
    for m in sel.matchers.matchers:
        if m.name == "__name__":
            continue
        op = str(m.op).rsplit(".", 1)[-1]
        if op == "Equal":
            labels[m.name] = m.value
        elif op == "NotEqual":
            labels[m.name] = "other" if m.value != "other" else "another"
        elif op == "Re":
            labels[m.name] = _matching(m.value)
        elif op == "NotRe":
            for candidate in ("zz-other", "q", ""):
                if not re.fullmatch(m.value, candidate):
                    labels[m.name] = candidate
                    break
    return {k: v for k, v in labels.items() if v != ""}


HIGH_VALUES = (977.3, 0.613)  # per instance; not round, so no value sits on a printf rounding tie


def _gauge(instance: int) -> list[float | None]:
    high = HIGH_VALUES[instance]
    return [None if t >= GONE else high if HIGH[0] <= t < HIGH[1] else 1.0 if LOW[0] <= t < LOW[1] else 0.0
            for t in range(MINUTES)]


def _counter(instance: int, scale: float = 1.0) -> list[float | None]:
    total, out = 0.0, []
    for t in range(MINUTES):
        if t >= GONE:
            out.append(None)
            continue
        total += scale * (HIGH_VALUES[instance] if HIGH[0] <= t < HIGH[1] else 1.0 if t >= LOW[0] else 0.0)
        out.append(total)
    return out


def synthetic_history(exprs: list[str], recorded: set[str], instances: int = 2) -> dict[str, list[float | None]]:
    """Series (promtool notation -> values per minute) for every selector of ``exprs`` whose metric
    is not one of the ``recorded`` names; ``instances`` series per label set (one where two would
    make a rule's matching many-to-many, which Prometheus refuses)."""
    wanted: dict[str, list[dict[str, str]]] = {}
    for expr in exprs:
        for sel in selectors(expr):
            name = sel.name or next((m.value for m in sel.matchers.matchers if m.name == "__name__"
                                     and str(m.op).endswith("Equal") and not str(m.op).endswith("NotEqual")), None)
            if not name or name in recorded or name.startswith("ALERTS"):
                continue
            labels = _labels_for(sel)
            if labels not in wanted.setdefault(name, []):
                wanted[name].append(labels)
    series: dict[str, list[float | None]] = {}
    for name, sets in wanted.items():
        for labels in sets:
            for i in range(instances):
                lb = {"instance": f"i{i}:9100", "job": "job", **labels}
                if name.endswith("_bucket"):
                    les = list(dict.fromkeys([*BUCKETS, *([labels["le"]] if "le" in labels else [])]))
                    for k, le in enumerate(les):
                        text = _series_text(name, {**lb, "le": le})
                        series[text] = _counter(i, scale=(k + 1) / len(les))
                else:
                    series[_series_text(name, lb)] = _counter(i) if COUNTER.search(name) else _gauge(i)
    return series


def _series_text(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


def history_frame(series: dict[str, list[float | None]]) -> pd.DataFrame:
    """The same series as our long frame (label columns, an absent label empty)."""
    rows = []
    for text, values in series.items():
        name, _, rest = text.partition("{")
        labels = {k: bytes(v, "utf-8").decode("unicode_escape")
                  for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest)}
        for t, v in enumerate(values):
            if v is not None:
                rows.append({"timestamp": pd.Timestamp(t * 60, unit="s", tz="UTC"), "metric": name, "value": v,
                             **labels})
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        if col not in ("timestamp", "metric", "value"):
            frame[col] = frame[col].fillna("").astype(str)
    return frame


def promtool_annotations(tmp: Any, doc: dict, series: dict[str, list[float | None]], at_minute: int,
                         alertnames: list[str]) -> dict[tuple[tuple[str, str], ...], dict[str, str]]:
    """The labels and annotations promtool renders for every alert firing at ``at_minute``
    (``alert_rule_test`` expecting none, so each failure prints what fired)."""
    import subprocess

    import yaml
    from promql_oracle import _values_text
    from promtool_oracle import need_promtool

    (tmp / "rules.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    test = {"interval": "1m", "input_series": [{"series": k, "values": _values_text(v)} for k, v in series.items()],
            "alert_rule_test": [{"eval_time": f"{at_minute}m", "alertname": a, "exp_alerts": []}
                                for a in dict.fromkeys(alertnames)]}
    (tmp / "t.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [test],
        "group_eval_order": [g["name"] for g in doc.get("groups") or []]}, sort_keys=False, width=100_000))
    proc = subprocess.run([need_promtool(), "test", "rules", "t.yml"], cwd=tmp, capture_output=True, text=True,
                          timeout=300)
    out: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for lab, ann in re.findall(r"Labels:\{(.*)\}\s*\n\s*Annotations:\{(.*)\},?\n", proc.stdout + proc.stderr):
        labels = tuple(sorted((k, yaml.safe_load(f'"{v}"'))
                              for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', lab)))
        out[labels] = {k: yaml.safe_load(f'"{v}"') for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', ann)}
    return out
