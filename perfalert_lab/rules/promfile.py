"""Prometheus rule files (SPEC 11): ``groups:`` of ``alert`` and ``record`` rules.

:func:`load_prometheus_rules` reads a file safely (the same located YAML reader as our
own rules) and refuses what ``promtool check rules`` refuses, listing every problem as
``FILE:LINE: group 'g': rule 'r': message``; expressions outside the PromQL subset are
named with their position. :func:`is_prometheus_rules` tells the two formats apart by
content, for the CLI's ``--rules`` and ``validate``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .._time import parse_duration, to_ns
from ..errors import InputFileNotFound, PerfAlertWarning, RulesError, UsageError
from ..templates import TemplateError, UnsupportedTemplate, check_template
from .yaml_io import MAX_BYTES, LocatedDoc, compose_documents

__all__ = ["PromGroup", "PromRule", "PromRuleFile", "is_prometheus_rules", "load_prometheus_rules",
           "parse_prometheus_rules"]

GROUP_KEYS = ("name", "interval", "query_offset", "limit", "rules", "labels")
RULE_KEYS = ("alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations")
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class PromRule:
    """One ``alert`` or ``record`` rule; durations in milliseconds."""

    kind: str  # "alert" | "record"
    name: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    line: int | None = None

    @property
    def id(self) -> str:
        return self.name

    def replace(self, *, threshold: float | None = None, for_: Any = None, keep_firing_for: Any = None
                ) -> PromRule:
        """The rule with a new threshold (the number of its top-level comparison), ``for`` or
        ``keep_firing_for`` (``None`` keeps the rule's own): what a sweep and the tuner try."""
        expr = with_threshold(self.expr, float(threshold)) if threshold is not None else self.expr
        for_ms = to_ns(parse_duration(for_)) // 1_000_000 if for_ is not None else self.for_ms
        keep_ms = to_ns(parse_duration(keep_firing_for)) // 1_000_000 if keep_firing_for is not None \
            else self.keep_firing_for_ms
        return dataclasses.replace(self, expr=expr, for_ms=for_ms, keep_firing_for_ms=keep_ms)

    @functools.cached_property
    def comparison(self) -> dict[str, Any]:
        """``{"op": ">", "threshold": 0.05}`` when the expression is ``<something> <op> <number>``,
        ``{"op": ">"}`` for a comparison of two expressions, else ``{}`` (``x and y``, ``absent(x)``,
        a bare selector): what a sweep can tune and a timeline can draw as a line."""
        return comparison_of(self.expr)


_TAIL = re.compile(r"(?P<op>>=|<=|==|!=|>|<)(?P<space>\s*)(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def with_threshold(expr: str, value: float) -> str:
    """``expr`` with the number at the end of its top-level comparison replaced by ``value``."""
    m = _TAIL.search(expr)
    if m is None:
        raise UsageError(f"cannot find the threshold number at the end of {expr!r}")
    text = repr(float(value))
    text = text[:-2] if text.endswith(".0") else text
    return expr[:m.start("num")] + text + expr[m.end("num"):]


def comparison_of(expr: str) -> dict[str, Any]:
    """The top-level comparison of a PromQL expression (see :attr:`PromRule.comparison`)."""
    import promql_parser as pp  # parsing is the PromQL layer's; loading a rule file needs it anyway

    node = pp.parse(expr)
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    if not isinstance(node, pp.BinaryExpr) or str(node.op) not in (">", "<", ">=", "<=", "==", "!="):
        return {}
    rhs = node.rhs
    while isinstance(rhs, pp.ParenExpr):
        rhs = rhs.expr
    if isinstance(rhs, pp.NumberLiteral):
        return {"op": str(node.op), "threshold": float(rhs.val)}
    return {"op": str(node.op)}


@dataclass(frozen=True)
class PromGroup:
    name: str
    interval_ms: int
    rules: tuple[PromRule, ...]
    query_offset_ms: int = 0
    limit: int = 0
    line: int | None = None


@dataclass(frozen=True)
class PromRuleFile:
    """A loaded rule file: its groups in order, and where it came from."""

    groups: tuple[PromGroup, ...]
    path: str = "<rules>"
    kind: ClassVar[str] = "prometheus"  # which kind of rule source (``RuleSet.kind`` is "perfalert")

    def __len__(self) -> int:
        return sum(len(g.rules) for g in self.groups)

    @property
    def ids(self) -> list[str]:
        return [r.name for g in self.groups for r in g.rules]

    @property
    def alert_rules(self) -> list[PromRule]:
        return [r for g in self.groups for r in g.rules if r.kind == "alert"]

    def rule(self, name: str) -> PromRule:
        for g in self.groups:
            for r in g.rules:
                if r.name == name:
                    return r
        names = ", ".join(r.name for g in self.groups for r in g.rules)
        raise KeyError(f"no rule named {name!r} in {self.path} (rules: {names})")


def is_prometheus_rules(path: str | os.PathLike[str]) -> bool:
    """Whether a YAML file is read as a Prometheus rule file: every file but ours, which has
    ``version:``, ``rules:``, ``channels:``, ``silences:`` or ``responders:`` at its top level.
    The choice never depends on the file having rules: an empty file is an empty rule file, as
    promtool reads it; a ``PrometheusRule`` manifest is a rule file too."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")[:MAX_BYTES]
    except OSError:
        return False
    return not re.search(r"^(rules|version|channels|silences|responders)\s*:", text, re.M)


def load_prometheus_rules(path: str | os.PathLike[str], *, default_interval: str = "1m",
                          strict: bool = False) -> PromRuleFile:
    """Load and validate a Prometheus rule file; raises :class:`RulesError` listing every problem.

    >>> import perfalert_lab as pal, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "alerts.rules.yml"
    >>> _ = p.write_text('''groups:
    ... - name: api
    ...   rules:
    ...   - alert: HighErrorRate
    ...     expr: rate(errors_total[5m]) > 0.05
    ...     for: 10m
    ... ''')
    >>> f = pal.load_prometheus_rules(p)
    >>> f.groups[0].rules[0].for_ms, f.groups[0].interval_ms
    (600000, 60000)
    """
    p = Path(path)
    if not p.exists():
        raise InputFileNotFound(f"{p}: no such file")
    if p.is_dir():
        raise InputFileNotFound(f"{p}: is a directory, expected a Prometheus rule file")
    if p.stat().st_size > MAX_BYTES:
        raise RulesError(f"{p}: too large for a rule file (limit {MAX_BYTES // 1024 // 1024} MiB)")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return parse_prometheus_rules(text, name=str(p), default_interval=default_interval, strict=strict)


def parse_prometheus_rules(text: str, *, name: str = "<rules>", default_interval: str = "1m",
                           strict: bool = False) -> PromRuleFile:
    """Parse and validate rule-file text (see :func:`load_prometheus_rules`).

    What Prometheus reads, it reads: an empty file (``null``, ``{}``, nothing) has no rules; of a
    file of several YAML documents only the first counts, and a :class:`PerfAlertWarning` says
    how many rules the others hold. Rules kept as Kubernetes ``PrometheusRule`` manifests (what
    kube-prometheus and the Prometheus operator use: ``kind: PrometheusRule``, ``spec.groups``)
    are read directly, every manifest of the file. A rule whose template Prometheus loads but
    perfalert_lab does not render (``define``/``template``/``block``, ``call``) is left out with a
    warning; ``strict`` refuses the file instead.
    """
    docs = compose_documents(text, name)
    if not docs:
        return PromRuleFile((), name)  # promtool accepts an empty file
    problems: list[tuple[int | None, str]] = []
    skipped: list[tuple[int | None, str]] = []  # rules whose templates use what is not rendered here
    groups: list[PromGroup] = []
    seen_groups: set[str] = set()
    manifests = [(d, doc) for d, doc in docs if _is_manifest(d)]
    if manifests:
        for d, doc in manifests:
            problems += doc.problems
            spec = d.get("spec")
            if not isinstance(spec, dict):
                problems.append((doc.line(("kind",)), "a PrometheusRule manifest needs 'spec: {groups: [...]}'"))
                continue
            groups += _groups(spec.get("groups") or [], ("spec", "groups"), doc, problems, seen_groups,
                              default_interval, skipped)
        others = len(docs) - len(manifests)
        if others:
            _warn(f"{name}: {others} YAML document(s) that are not PrometheusRule manifests ignored")
    else:
        data, doc = docs[0]
        problems += doc.problems
        if data is None or data == {}:  # 'null' or '{}': promtool reads no rules
            return PromRuleFile((), name)
        if not isinstance(data, dict):
            raise RulesError(f"{name}:1: expected a mapping with 'groups:', got {type(data).__name__}")
        ours = "" if "groups" in data else " (or, for perfalert's own format, start with 'version: 1' and 'rules:')"
        for key in data:
            if key != "groups":
                problems.append((doc.line((key,)), f"field {key} not found in type rulefmt.RuleGroups (a rule file "
                                                   f"has only 'groups:'){ours}"))
        groups = _groups(data.get("groups") or [], ("groups",), doc, problems, seen_groups, default_interval,
                         skipped)
        ignored = sum(_count_rules(d) for d, _ in docs[1:])
        if len(docs) > 1:  # Prometheus reads the first document only, silently: we say so
            _warn(f"{name}: {len(docs) - 1} more YAML document(s) after the first ignored, as Prometheus ignores "
                  f"them ({ignored} rule(s) in them); put every group under one 'groups:'")
    if strict:
        problems += skipped
    if problems:
        raise RulesError([f"{name}:{line}: {msg}" if line else f"{name}: {msg}" for line, msg in problems])
    for line, msg in skipped:
        _warn(f"{name}:{line}: {msg}" if line else f"{name}: {msg}")
    return PromRuleFile(tuple(groups), name)


def _is_manifest(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "PrometheusRule"


def _count_rules(data: Any) -> int:
    if not isinstance(data, dict):
        return 0
    groups = data.get("groups") if not _is_manifest(data) else (data.get("spec") or {}).get("groups")
    return sum(len(g.get("rules") or []) for g in groups or [] if isinstance(g, dict))


def _warn(message: str) -> None:
    warnings.warn(message, PerfAlertWarning, stacklevel=3)


def _groups(raw_groups: Any, prefix: tuple[Any, ...], doc: LocatedDoc, problems: list[tuple[int | None, str]],
            seen_groups: set[str], default_interval: str, skipped: list[tuple[int | None, str]]
            ) -> list[PromGroup]:
    """The groups of one ``groups:`` list (at ``prefix`` in ``doc``), every problem added to ``problems``."""

    def add(path: tuple[Any, ...], msg: str) -> None:
        problems.append((doc.line(path), msg))

    if not isinstance(raw_groups, list):
        add(prefix, "'groups' must be a list of groups")
        raw_groups = []
    groups: list[PromGroup] = []
    for gi, g in enumerate(raw_groups):
        gp: tuple[Any, ...] = (*prefix, gi)
        if not isinstance(g, dict):
            add(gp, "a group must be a mapping with 'name' and 'rules'")
            continue
        gname = g.get("name")
        where = f"group {gname!r}" if gname else f"group {gi + 1}"
        for key in g:
            if key not in GROUP_KEYS:
                add((*gp, key), f"{where}: field {key} not found in type rulefmt.RuleGroup")
        if not isinstance(gname, str) or not gname:
            add(gp, f"{where}: groupname must not be empty")
        elif gname in seen_groups:
            add((*gp, "name"), f"{where}: repeated in the same file; group names must be unique")
        else:
            seen_groups.add(gname)
        interval = _duration(g.get("interval", default_interval), (*gp, "interval"), where, "interval", add)
        offset = _duration(g.get("query_offset", "0"), (*gp, "query_offset"), where, "query_offset", add)
        if interval == 0 and "interval" in g:
            add((*gp, "interval"), f"{where}: interval must be greater than 0")
        limit = g.get("limit", 0)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            add((*gp, "limit"), f"{where}: limit must be a non-negative integer, got {limit!r}")
            limit = 0
        raw_rules = g.get("rules") or []
        if not isinstance(raw_rules, list):
            add((*gp, "rules"), f"{where}: 'rules' must be a list")
            raw_rules = []
        rules = []
        for ri, r in enumerate(raw_rules):
            rule = _rule(r, (*gp, "rules", ri), where, ri, add, doc, skipped)
            if rule is not None:
                rules.append(rule)
        groups.append(PromGroup(str(gname or ""), interval or 60_000, tuple(rules), offset or 0, limit,
                                doc.line(gp)))
    return groups


def _duration(value: Any, path: tuple[Any, ...], where: str, key: str, add: Any) -> int | None:
    try:
        return to_ns(parse_duration(value if not isinstance(value, int) or isinstance(value, bool)
                                    else f"{value}s" if value == 0 else value)) // 1_000_000
    except ValueError as exc:
        add(path, f"{where}: {key}: {exc}")
        return None


def _rule(r: Any, path: tuple[Any, ...], where: str, index: int, add: Any, doc: LocatedDoc,
          skipped: list[tuple[int | None, str]]) -> PromRule | None:
    from ..promql_engine import PromQLError, UnsupportedPromQL, parse
    from ..promql_engine.evaluate import check_supported

    if not isinstance(r, dict):
        add(path, f"{where}: rule {index + 1}: a rule must be a mapping with 'alert' or 'record' and 'expr'")
        return None
    name = r.get("alert", r.get("record"))
    who = f"{where}: rule {name!r}" if isinstance(name, str) and name else f"{where}: rule {index + 1}"
    ok = True
    for key in r:
        if key not in RULE_KEYS:
            add((*path, key), f"{who}: field {key} not found in type rulefmt.Rule")
            ok = False
    kind = "alert" if "alert" in r else "record"
    if ("alert" in r) == ("record" in r):
        add(path, f"{who}: exactly one of 'record' and 'alert' must be set")
        return None
    if not isinstance(name, str) or not name.strip():
        add((*path, kind), f"{who}: {kind} name must not be empty")
        return None
    if kind == "record":
        if not _METRIC.match(name):
            add((*path, "record"), f"{who}: invalid recording rule name: {name}")
            ok = False
        for key in ("for", "keep_firing_for", "annotations"):
            if key in r:
                add((*path, key), f"{who}: invalid field '{key}' in recording rule")
                ok = False
    expr = r.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        add((*path, "expr"), f"{who}: field 'expr' must be set in rule")
        return None
    try:
        tree = parse(expr)
        check_supported(tree, expr)
    except UnsupportedPromQL as exc:
        add((*path, "expr"), f"{who}: expr: {exc}")
        ok = False
    except PromQLError as exc:
        add((*path, "expr"), f"{who}: could not parse expression: {exc}")
        ok = False
    fors = {}
    for key in ("for", "keep_firing_for"):
        if key in r:
            fors[key] = _duration(r[key], (*path, key), who, key, add)
            ok = ok and fors[key] is not None
    maps = {}
    for key in ("labels", "annotations"):
        value = r.get(key) or {}
        if not isinstance(value, dict):
            add((*path, key), f"{who}: '{key}' must be a mapping of names to text")
            ok = False
            continue
        clean = {}
        for k, v in value.items():
            if not isinstance(k, str) or not _LABEL.match(k) or (key == "labels" and k == "__name__"):
                add((*path, key, k), f"{who}: invalid {key[:-1]} name: {k}")
                ok = False
            elif isinstance(v, dict | list):
                add((*path, key, k), f"{who}: {key[:-1]} {k!r} must be text")
                ok = False
            else:
                clean[k] = "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
        maps[key] = clean
    if ok:
        for key in ("labels", "annotations"):
            for k, v in maps.get(key, {}).items():
                try:
                    check_template(v)
                except UnsupportedTemplate as exc:  # valid for Prometheus: this rule alone is left out
                    skipped.append((doc.line((*path, key, k)), f"{who}: {key[:-1]} {k!r}: {exc}; the rule is left "
                                                               "out (--strict refuses the file)"))
                    ok = False
                except TemplateError as exc:
                    add((*path, key, k), f"{who}: {key[:-1]} {k!r}: {exc}")
                    ok = False
    if not ok:
        return None
    return PromRule(kind, name, expr, fors.get("for") or 0, fors.get("keep_firing_for") or 0,
                    maps.get("labels", {}), maps.get("annotations", {}), doc.line(path))
