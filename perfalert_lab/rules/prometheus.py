"""Export rules as a Prometheus rule file (``promtool check rules`` accepts it).

Each enabled episode-mode rule becomes one alerting rule named after its id:

* the metric keeps its name, made valid for Prometheus (``[a-zA-Z_:][a-zA-Z0-9_:]*``);
  the series' source is the label ``source``; ``match`` globs become ``=~`` regexes;
* ``window``/``aggregate`` become ``*_over_time`` functions (``p95`` ->
  ``quantile_over_time(0.95, ...)``); ``rate`` has no exact PromQL equivalent and is
  exported as ``deriv`` with a note;
* ``for``, ``keep_firing_for``, ``severity`` and the rule's labels and annotations (Go
  templates, as Prometheus reads them) carry over; the default summary is the template our
  backtest renders (the seed's alert message), the condition becomes the description;
* hysteresis (``clear``) uses the ALERTS-series pattern::

      (X > 80) or (X > 70 and on(source) ALERTS{alertname="cpu-high", alertstate="firing"})

  a firing alert is held while ``X > 70``: Prometheus reads its own ``ALERTS`` series
  from the previous evaluation, which is the state our engine holds (checked against
  promtool in the tests).

What has no Prometheus equivalent — cooldown, escalation, channels, repeats, sample
mode, silences, responders, channel limits — is reported through ``report`` and
listed in a comment at the top of the file, never silently dropped. No channel
setting (and so no secret) is ever written.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import yaml

from .._time import format_duration
from ..templates import summary_template
from .model import Rule, RuleSet

__all__ = ["promql_expr", "prometheus_metric_name", "to_prometheus"]

_AGG = {"mean": "avg_over_time", "min": "min_over_time", "max": "max_over_time", "sum": "sum_over_time",
        "count": "count_over_time", "rate": "deriv"}


def prometheus_metric_name(name: str) -> str:
    """A metric name made valid for Prometheus: other characters become ``_``.

    >>> prometheus_metric_name("cpu.utilization-%")
    'cpu_utilization__'
    >>> prometheus_metric_name("5xx_rate")
    '_5xx_rate'
    """
    out = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    return "_" + out if not out or out[0].isdigit() else out


def _label_name(name: str) -> str:
    out = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return "_" + out if not out or out[0].isdigit() else out


def glob_to_regex(pattern: str) -> str:
    """A shell glob as an RE2 regex (Prometheus anchors it)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def _selector(rule: Rule) -> str:
    matchers = []
    for key, pattern in rule.match.items():
        label = _label_name(key)
        if any(ch in pattern for ch in "*?["):
            matchers.append(f"{label}=~{_quote(glob_to_regex(pattern))}")
        else:
            matchers.append(f"{label}={_quote(pattern)}")
    name = prometheus_metric_name(rule.metric)
    return name + ("{" + ", ".join(matchers) + "}" if matchers else "")


def promql_expr(rule: Rule, notes: list[str] | None = None) -> str:
    """The PromQL condition of a rule (with the ALERTS pattern for hysteresis)."""
    notes = notes if notes is not None else []
    sel = _selector(rule)
    if rule.window is not None:
        agg = rule.aggregate or "mean"
        rng = f"{sel}[{format_duration(rule.window)}]"
        if agg == "median" or agg.startswith("p"):
            q = 0.5 if agg == "median" else int(agg[1:]) / 100
            value = f"quantile_over_time({_number(q)}, {rng})"
        else:
            value = f"{_AGG[agg]}({rng})"
            if agg == "rate":
                notes.append(f"rule {rule.id!r}: aggregate 'rate' ((last - first) / seconds) is exported as "
                             "deriv() (a least-squares slope): close, not equal")
    else:
        value = sel
    cond = f"{value} {rule.op} {_number(rule.threshold)}"
    if rule.clear is None:
        return cond
    on = ", ".join(["source", *sorted(_label_name(k) for k in rule.match if k != "source")])
    held = f"{value} {rule.op} {_number(rule.clear)}"
    return f'({cond}) or ({held} and on({on}) ALERTS{{alertname={_quote(rule.id)}, alertstate="firing"}})'


def _unmapped(rule: Rule) -> list[str]:
    out = []
    if rule.cooldown:
        out.append(f"cooldown {format_duration(rule.cooldown)} (Alertmanager's repeat_interval is the nearest)")
    if rule.escalation is not None:
        out.append("escalation (route it in Alertmanager or your paging tool)")
    channels = [c.channel for c in rule.notify]
    if channels != ["log"]:
        out.append(f"channels {', '.join(channels)} (configure Alertmanager receivers)")
    if rule.repeat_interval is not None:
        out.append(f"repeat_interval {format_duration(rule.repeat_interval)} (Alertmanager route repeat_interval)")
    if rule.send_resolved:
        out.append("send_resolved (Alertmanager receiver send_resolved)")
    return out


_METRIC_LABEL = re.compile(r"(\$labels|\.Labels)\.metric\b")


def _template(text: str) -> str:
    """Our template as Prometheus reads it: the series' metric is ``$labels.__name__`` there."""
    return _METRIC_LABEL.sub(r"\1.__name__", text)


def to_prometheus(rules: RuleSet | Rule, *, group: str = "perfalert",
                  report: Callable[[str], None] | None = None) -> str:
    """A Prometheus rule file (YAML text) for the rule set; see the module docstring.

    ``report`` receives one message per setting that does not map (default: a
    ``UserWarning`` each); the same messages head the file as comments.

    >>> from perfalert_lab.rules import Rule
    >>> rule = Rule(id="cpu-high", metric="cpu", threshold=80, for_="5m")
    >>> print(to_prometheus(rule))  # doctest: +NORMALIZE_WHITESPACE
    groups:
    - name: perfalert
      rules:
      - alert: cpu-high
        expr: cpu > 80
        for: 5m
        labels:
          severity: medium
        annotations:
          summary: 'cpu-high: cpu > 80 (current: {{ $value | humanize }}, severity: medium)'
          description: cpu > 80 for 5m
    <BLANKLINE>
    """
    rs = RuleSet.of(rules)
    notes: list[str] = []
    out_rules = []
    for rule in rs:
        if not rule.enabled:
            notes.append(f"rule {rule.id!r}: disabled, not exported")
            continue
        if rule.mode == "sample":
            notes.append(f"rule {rule.id!r}: mode 'sample' (an alert per holding sample) has no Prometheus "
                         "equivalent; exported as an episode rule")
        if prometheus_metric_name(rule.metric) != rule.metric:
            notes.append(f"rule {rule.id!r}: metric {rule.metric!r} renamed {prometheus_metric_name(rule.metric)!r}")
        notes += [f"rule {rule.id!r}: not mapped: {what}" for what in _unmapped(rule)]
        entry: dict[str, object] = {"alert": rule.id, "expr": promql_expr(rule, notes)}
        if rule.for_:
            entry["for"] = format_duration(rule.for_)
        if rule.keep_firing_for:
            entry["keep_firing_for"] = format_duration(rule.keep_firing_for)
        labels = {"severity": rule.severity, **{_label_name(k): _template(v) for k, v in rule.labels.items()}}
        entry["labels"] = labels
        # the summary our backtest's pages show, as the same Go template; the user's annotations win
        entry["annotations"] = {"summary": summary_template(rule, prometheus_metric_name(rule.metric)),
                                "description": rule.describe(),
                                **{k: _template(v) for k, v in rule.annotations.items()}}
        out_rules.append(entry)
    if rs.silences:
        notes.append(f"{len(rs.silences)} silence(s) not exported (create them in Alertmanager)")
    if rs.channels:
        notes.append("channel limits not exported (Alertmanager has no per-channel hourly cap)")
    if rs.responders.ack_after is not None or rs.responders.resolve_after is not None:
        notes.append("responders are a simulation only; not exported")
    sink = report or (lambda msg: warnings.warn(msg, UserWarning, stacklevel=3))
    for msg in notes:
        sink(msg)
    header = "".join(f"# {n}\n" for n in notes)
    if header:
        header = "# Exported by perfalert_lab. Not mapped to Prometheus:\n" + header
    body = yaml.safe_dump({"groups": [{"name": group, "rules": out_rules}]}, sort_keys=False, width=1000,
                          allow_unicode=True)
    return header + body
