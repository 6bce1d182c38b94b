"""An SLO's Prometheus rules, generated as sloth generates them.

Per SLO three groups: the SLI recordings (``slo:sli_error:ratio_rate<w>`` for every window the
alerts read, and the period's ratio as the mean of the 5-minute one), the meta recordings
(objective, budget, period, current and period burn rate, budget remaining, ``sloth_slo_info``), and
the alerts: one name, a page and a ticket rule, each the ``or`` of its burn-rate conditions, each
condition ``max(short > factor x budget) and max(long > factor x budget)`` without ``sloth_window``.
Numbers are written as Go prints them (``0.0009999999999999432``), so the file equals sloth's.
"""

from __future__ import annotations

from typing import Any

import yaml

from .._time import format_duration, parse_duration, to_ns
from ..rules.promfile import PromRuleFile, parse_prometheus_rules
from .model import SLO, BurnRateWindow

__all__ = ["SLI_RECORD", "slo_rule_text", "slo_rules", "slo_windows"]

SLI_RECORD = "slo:sli_error:ratio_rate{window}"


def go_float(x: float) -> str:
    """A float as Go's ``%v`` prints it (shortest round trip; ``6`` for 6.0)."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _duration(text: str) -> str:
    return format_duration(parse_duration(text))


def slo_windows(slo: SLO) -> list[str]:
    """Every rate window the alerts read, shortest first (each is a recording rule)."""
    seen = {_duration(w) for bw in slo.windows for w in (bw.short, bw.long)}
    seen.add("5m")  # the period's ratio is the mean of the 5-minute one
    return sorted(seen, key=lambda w: to_ns(parse_duration(w)))


def _selector(slo: SLO) -> str:
    return f'{{sloth_id="{slo.id}", sloth_service="{slo.service}", sloth_slo="{slo.name}"}}'


def _sli_expr(slo: SLO, window: str) -> str:
    if slo.error_ratio is not None:
        return "(" + slo.error_ratio.replace("{{.window}}", window).strip() + "\n)\n"
    errors = (slo.errors or "").replace("{{.window}}", window).strip()
    total = (slo.total or "").replace("{{.window}}", window).strip()
    return f"({errors})\n/\n({total})\n"


def _ids(slo: SLO) -> dict[str, str]:
    return {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name}


def _condition(slo: SLO, w: BurnRateWindow) -> str:
    return burn_condition(slo, [w.short, w.long], slo.factor(w))


def burn_condition(slo: SLO, windows: list[str], factor: float) -> str:
    """``(max(ratio_w1 > factor x budget) and max(ratio_w2 > ...))`` over the recorded windows, as sloth
    writes a condition (one window: no ``and``)."""
    bound = f"({go_float(factor)} * {go_float(slo.error_budget)})"
    sel = _selector(slo)
    parts = [f"    max({SLI_RECORD.format(window=_duration(w))}{sel} > {bound}) without (sloth_window)\n"
             for w in windows]
    return "(\n" + "    and\n".join(parts) + ")"


def sli_recordings(slo: SLO, windows: list[str]) -> list[dict[str, Any]]:
    """The recording rules of the SLI's error ratio over each window (sloth's names and labels)."""
    base = {**slo.labels, **_ids(slo)}
    return [{"record": SLI_RECORD.format(window=w), "expr": _sli_expr(slo, w),
             "labels": dict(sorted({**base, "sloth_window": w}.items()))} for w in windows]


def _groups(slo: SLO) -> list[dict[str, Any]]:
    ids = _ids(slo)
    base = {**slo.labels, **ids}
    period = _duration(slo.window)
    sel = _selector(slo)
    records = sli_recordings(slo, slo_windows(slo))
    records.append({
        "record": SLI_RECORD.format(window=period),
        "expr": (f"sum_over_time({SLI_RECORD.format(window='5m')}{sel}[{period}])\n/ ignoring (sloth_window)\n"
                 f"count_over_time({SLI_RECORD.format(window='5m')}{sel}[{period}])\n"),
        "labels": dict(sorted({**base, "sloth_window": period}.items()))})
    meta_labels = dict(sorted(base.items()))
    days = to_ns(parse_duration(slo.window)) / 86_400e9
    meta: list[dict[str, Any]] = [
        {"record": "slo:objective:ratio", "expr": f"vector({go_float(float(slo.objective) / 100)})"},
        {"record": "slo:error_budget:ratio", "expr": f"vector(1-{go_float(float(slo.objective) / 100)})"},
        {"record": "slo:time_period:days", "expr": f"vector({go_float(days)})"},
        {"record": "slo:current_burn_rate:ratio",
         "expr": (f"{SLI_RECORD.format(window='5m')}{sel}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\n"
                  f"slo:error_budget:ratio{sel}\n")},
        {"record": "slo:period_burn_rate:ratio",
         "expr": (f"{SLI_RECORD.format(window=period)}{sel}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\n"
                  f"slo:error_budget:ratio{sel}\n")},
        {"record": "slo:period_error_budget_remaining:ratio", "expr": f"1 - slo:period_burn_rate:ratio{sel}"},
    ]
    for m in meta:
        m["labels"] = meta_labels
    meta.append({"record": "sloth_slo_info", "expr": "vector(1)",
                 "labels": dict(sorted({**base, "sloth_objective": go_float(slo.objective)}.items()))})
    groups: list[dict[str, Any]] = [
        {"name": f"sloth-slo-sli-recordings-{slo.id}", "rules": records},
        {"name": f"sloth-slo-meta-recordings-{slo.id}", "rules": meta},
    ]
    wanted = {"page": slo.page_alert, "ticket": slo.ticket_alert}
    if any(wanted.values()) and slo.windows:
        alerts = []
        for severity, extra, notes, for_ in (("page", slo.page_labels, slo.page_annotations, slo.page_for),
                                              ("ticket", slo.ticket_labels, slo.ticket_annotations, slo.ticket_for)):
            conds = [w for w in slo.windows if w.severity == severity and wanted[severity]]
            if not conds:
                continue
            rule: dict[str, Any] = {"alert": slo.alert_name or f"{slo.name}-burn-rate",
                                    "expr": "\nor\n".join(_condition(slo, w) for w in conds) + "\n"}
            if to_ns(parse_duration(for_)):
                rule["for"] = _duration(for_)
            rule["labels"] = dict(sorted({**slo.alert_labels, **extra, "sloth_severity": severity}.items()))
            title = (f"({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn "
                     "rate is too fast.")
            summary = ("{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over "
                       "expected.")
            rule["annotations"] = dict(sorted({"summary": summary, "title": title, **slo.annotations,
                                               **notes}.items()))
            alerts.append(rule)
        if alerts:
            groups.append({"name": f"sloth-slo-alerts-{slo.id}", "rules": alerts})
    return groups


class _Dumper(yaml.SafeDumper):
    pass


def rule_file_text(groups: list[dict[str, Any]], head: str) -> str:
    """Rule groups as a Prometheus rule file's text (multi-line expressions as ``|`` blocks)."""
    return head + yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                            allow_unicode=True, width=100_000)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def slo_rule_text(slos: SLO | list[SLO] | tuple[SLO, ...]) -> str:
    """The Prometheus rule file of the SLOs, as text (what ``perfalert slo --out`` writes)."""
    many = [slos] if isinstance(slos, SLO) else list(slos)
    groups = [g for slo in many for g in _groups(slo)]
    return rule_file_text(groups, "# Generated by perfalert_lab from SLO specifications, as sloth generates them.\n")


def slo_rules(slos: SLO | list[SLO] | tuple[SLO, ...], *, name: str = "<slo rules>") -> PromRuleFile:
    """The SLOs' rule file, loaded (ready for :func:`perfalert_lab.backtest`)."""
    return parse_prometheus_rules(slo_rule_text(slos), name=name)
