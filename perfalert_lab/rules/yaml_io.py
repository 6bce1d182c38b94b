"""Rules files in YAML: safe loading with located errors, and writing.

Loading composes the YAML node graph with PyYAML's *safe* loader and converts it
here, so that:

* only plain YAML types are accepted (a tag that would construct an object, such as
  ``!!python/object``, is an error naming its line);
* aliases are expanded under a node budget (an "alias bomb" is an error, not a hang);
* nesting depth is bounded, duplicate keys are errors;
* every problem of the whole file is reported at once as ``FILE:LINE: rule 'id':
  key 'k': message``.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .._io import atomic_write_text
from .._secrets import literal_secrets
from .._time import format_duration
from ..errors import InputFileNotFound, RulesError
from .model import (
    CHANNELS,
    Channel,
    ChannelLimits,
    FieldProblems,
    LognormalDelay,
    Responders,
    Rule,
    RuleSet,
    Silence,
)

__all__ = ["load_rules", "num_text", "parse_rules", "rules_to_yaml", "save_rules"]

MAX_BYTES = 5 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64
TOP_KEYS = ("version", "rules", "channels", "silences", "responders")
RULE_KEYS = {  # YAML key -> Rule attribute, in the order files are written
    "id": "id", "name": "name", "metric": "metric", "match": "match", "op": "op",
    "threshold": "threshold", "clear": "clear", "window": "window", "aggregate": "aggregate",
    "mode": "mode", "for": "for_", "keep_firing_for": "keep_firing_for", "cooldown": "cooldown",
    "severity": "severity", "notify": "notify", "repeat_interval": "repeat_interval",
    "send_resolved": "send_resolved", "escalation": "escalation", "labels": "labels",
    "annotations": "annotations", "enabled": "enabled",
}
SILENCE_KEYS = ("matchers", "start", "end", "comment")
RESPONDER_KEYS = ("ack_after", "resolve_after")
_PLAIN_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
}
Path_ = tuple[str | int, ...]


class LocatedDoc:
    """Plain Python values from a composed YAML node graph, with the line of each path."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: dict[Path_, int] = {}
        self.problems: list[tuple[int | None, str]] = []
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, path: Path_ = (), depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise RulesError(f"{self.name}:{node.start_mark.line + 1}: more than {MAX_NODES} YAML nodes "
                             "(an alias bomb?); rules files are small, flatten the anchors")
        if depth > MAX_DEPTH:
            raise RulesError(f"{self.name}:{node.start_mark.line + 1}: YAML nested deeper than {MAX_DEPTH} levels")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _PLAIN_TAGS:
                self.problems.append((node.start_mark.line + 1, f"tag {node.tag!r} is not allowed; "
                                      "rules files hold plain YAML values only"))
                return None
            value = self.constructor.construct_object(node, deep=True)
            if isinstance(value, float) and not math.isfinite(value):
                return value  # reported by the field check
            return value
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.problems.append((node.start_mark.line + 1, f"tag {node.tag!r} is not allowed"))
                return None
            return [self.convert(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                self.problems.append((node.start_mark.line + 1, f"tag {node.tag!r} is not allowed"))
                return None
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problems.append(
                        (key_node.start_mark.line + 1, "merge keys ('<<') are not supported; write the keys out")
                    )
                    continue
                key = self.convert(key_node, (*path, "<key>"), depth + 1)
                if isinstance(key, list | dict):
                    self.problems.append((key_node.start_mark.line + 1, "a mapping key must be a plain value"))
                    continue
                if key in out:
                    self.problems.append((key_node.start_mark.line + 1, f"duplicate key {key!r}"))
                    continue
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, (*path, key), depth + 1)
            return out
        raise RulesError(f"{self.name}: unexpected YAML node {node!r}")  # pragma: no cover

    def line(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def compose_located(text: str, name: str) -> tuple[Any, LocatedDoc] | None:
    """Plain values of a YAML text read safely, with the line of every path (None for an empty file).

    A syntax error is a :class:`RulesError` naming ``name`` and the line. Shared by our
    rules, Prometheus rule files and Alertmanager configurations.
    """
    with _yaml_errors(name):
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        doc = LocatedDoc(name)
        return doc.convert(node), doc


@contextlib.contextmanager
def _yaml_errors(name: str) -> Iterator[None]:
    """YAML's errors as one located :class:`RulesError` line."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RulesError(f"{name}:{mark.line + 1 if mark else 1}: YAML syntax error: "
                         f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{name}: YAML error: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise RulesError(f"{name}: YAML nested too deeply") from None


def compose_documents(text: str, name: str) -> list[tuple[Any, LocatedDoc]]:
    """Every document of a YAML text, read safely as :func:`compose_located` reads one (empty
    documents left out): for formats that allow several documents in a file."""
    out = []
    with _yaml_errors(name):
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if node is not None:
                doc = LocatedDoc(name)
                out.append((doc.convert(node), doc))
    return out


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Load and validate a rules file; raises :class:`RulesError` listing every problem.

    Examples
    --------
    >>> import perfalert_lab as pal, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "rules.yaml"
    >>> _ = p.write_text("version: 1\\nrules:\\n  - {id: cpu-high, metric: cpu, op: '>', threshold: 80}\\n")
    >>> pal.load_rules(p)["cpu-high"].threshold
    80.0
    """
    p = Path(path)
    if not p.exists():
        raise InputFileNotFound(f"{p}: no such file")
    if p.is_dir():
        raise InputFileNotFound(f"{p}: is a directory, expected a rules YAML file")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise RulesError(f"{p}: {size} bytes is too large for a rules file (limit {MAX_BYTES // 1024 // 1024} MiB)")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return parse_rules(text, name=str(p))


def parse_rules(text: str, *, name: str = "<rules>") -> RuleSet:
    """Parse and validate rules from YAML text (see :func:`load_rules`)."""
    if "\x00" in text:
        raise RulesError(f"{name}: binary data, expected a YAML text file")
    located = compose_located(text, name)
    if located is None:
        raise RulesError(f"{name}: empty file; expected 'version: 1' and a 'rules:' list")
    data, doc = located
    return _build(data, doc)


def _build(data: Any, doc: LocatedDoc) -> RuleSet:
    problems: list[tuple[int | None, str]] = list(doc.problems)

    def add(path: Path_, msg: str) -> None:
        problems.append((doc.line(path), msg))

    def add_fields(base: Path_, exc: FieldProblems, owner: str) -> None:
        for key, msg in exc.items:
            sub: Path_ = tuple(int(k) if k.isdigit() else k for k in key.split(".")) if key else ()
            label = f"{owner}: key {key!r}: {msg}" if key else f"{owner}: {msg}"
            add((*base, *sub), label)

    if not isinstance(data, dict):
        raise RulesError(f"{doc.name}:1: expected a mapping with 'version' and 'rules', got {type(data).__name__}")
    for key in data:
        if key not in TOP_KEYS:
            add((key,), f"unknown top-level key {key!r} (expected {', '.join(TOP_KEYS)})")
    version = data.get("version", None)
    if "version" not in data:
        add((), "missing 'version: 1'")
    elif version != 1 or isinstance(version, bool):
        add(("version",), f"unsupported version {version!r}; this release reads version: 1")
    raw_rules = data.get("rules")
    rules: list[Rule] = []
    if raw_rules is None:
        add(("rules",) if "rules" in data else (), "missing 'rules:' list")
        raw_rules = []
    elif not isinstance(raw_rules, list):
        add(("rules",), "'rules' must be a list of rules")
        raw_rules = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_rules):
        base: Path_ = ("rules", i)
        if not isinstance(raw, dict):
            add(base, f"rule #{i + 1}: expected a mapping of keys, got {raw!r}")
            continue
        rid = raw.get("id")
        owner = f"rule {rid!r}" if isinstance(rid, str) else f"rule #{i + 1}"
        kwargs = {}
        for key, value in raw.items():
            if key not in RULE_KEYS:
                add((*base, key), f"{owner}: unknown key {key!r}" + _suggest(key, RULE_KEYS))
            else:
                kwargs[RULE_KEYS[key]] = value
        for required in ("id", "metric", "threshold"):
            if required not in raw:
                add(base, f"{owner}: missing key {required!r}")
        if any(k not in raw for k in ("id", "metric", "threshold")):
            continue
        try:
            rule = Rule(**kwargs)
        except FieldProblems as exc:
            add_fields(base, exc, owner)
            continue
        if rule.id in seen:
            add(
                (*base, "id"),
                f"{owner}: duplicate rule id (first defined at line {doc.line(('rules', seen[rule.id]))})",
            )
            continue
        seen[rule.id] = i
        rules.append(rule)
    channels: dict[str, ChannelLimits] = {}
    raw_channels = data.get("channels") or {}
    if not isinstance(raw_channels, dict):
        add(("channels",), "'channels' must map channel names to limits, e.g. sms: {max_per_hour: 6}")
        raw_channels = {}
    for name, limits in raw_channels.items():
        base = ("channels", name)
        if name not in CHANNELS:
            add(base, f"channels: unknown channel {name!r} (expected one of {', '.join(CHANNELS)})")
            continue
        if not isinstance(limits, dict):
            add(base, f"channels: {name}: expected a mapping such as {{max_per_hour: 6}}")
            continue
        unknown = [k for k in limits if k != "max_per_hour"]
        for k in unknown:
            add((*base, k), f"channels: {name}: unknown key {k!r} (expected max_per_hour)")
        if unknown:
            continue
        try:
            channels[name] = ChannelLimits(**limits)
        except FieldProblems as exc:
            add_fields(base, exc, f"channels: {name}")
    silences: list[Silence] = []
    raw_silences = data.get("silences") or []
    if not isinstance(raw_silences, list):
        add(("silences",), "'silences' must be a list")
        raw_silences = []
    for i, raw in enumerate(raw_silences):
        base = ("silences", i)
        if not isinstance(raw, dict):
            add(base, f"silence #{i + 1}: expected a mapping with matchers, start, end")
            continue
        bad = [k for k in raw if k not in SILENCE_KEYS]
        for k in bad:
            add((*base, k), f"silence #{i + 1}: unknown key {k!r} (expected {', '.join(SILENCE_KEYS)})")
        missing = [k for k in ("matchers", "start", "end") if k not in raw]
        for k in missing:
            add(base, f"silence #{i + 1}: missing key {k!r}")
        if bad or missing:
            continue
        try:
            silences.append(Silence(**raw))
        except FieldProblems as exc:
            add_fields(base, exc, f"silence #{i + 1}")
    responders = Responders()
    raw_resp = data.get("responders")
    if raw_resp is not None:
        if not isinstance(raw_resp, dict):
            add(("responders",), "'responders' must be a mapping with ack_after and/or resolve_after")
        else:
            bad = [k for k in raw_resp if k not in RESPONDER_KEYS]
            for k in bad:
                add(("responders", k), f"responders: unknown key {k!r} (expected {', '.join(RESPONDER_KEYS)})")
            if not bad:
                try:
                    responders = Responders(**raw_resp)
                except FieldProblems as exc:
                    add_fields(("responders",), exc, "responders")
    if problems:
        problems.sort(key=lambda p: (p[0] or 0))
        raise RulesError([f"{doc.name}:{line}: {msg}" if line else f"{doc.name}: {msg}" for line, msg in problems])
    return RuleSet(tuple(rules), channels, tuple(silences), responders)


def _suggest(key: object, options: Mapping[str, str]) -> str:
    close = difflib.get_close_matches(str(key), list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (expected one of {', '.join(options)})"


# --------------------------------------------------------------------------- writing


def _duration(d: timedelta | None) -> str | None:
    return None if d is None else format_duration(d)


def num_text(x: float) -> int | float:
    """A number as YAML should show it: ``80`` rather than ``80.0``."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def _channel_doc(ch: Channel) -> Any:
    if not ch.settings and ch.enabled:
        return ch.channel
    d: dict[str, Any] = {"channel": ch.channel, **dict(ch.settings)}
    if not ch.enabled:
        d["enabled"] = False
    return d


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """A rule as the mapping written to YAML (defaults left out), keys in file order."""
    d: dict[str, Any] = {"id": rule.id}
    if rule.name != rule.id:
        d["name"] = rule.name
    d["metric"] = rule.metric
    if rule.match:
        d["match"] = dict(rule.match)
    d["op"] = rule.op
    d["threshold"] = num_text(rule.threshold)
    if rule.clear is not None:
        d["clear"] = num_text(rule.clear)
    if rule.window is not None:
        d["window"] = _duration(rule.window)
        d["aggregate"] = rule.aggregate
    if rule.mode != "episode":
        d["mode"] = rule.mode
    if rule.for_:
        d["for"] = _duration(rule.for_)
    if rule.keep_firing_for:
        d["keep_firing_for"] = _duration(rule.keep_firing_for)
    if rule.cooldown:
        d["cooldown"] = _duration(rule.cooldown)
    d["severity"] = rule.severity
    d["notify"] = [_channel_doc(c) for c in rule.notify]
    if rule.repeat_interval is not None:
        d["repeat_interval"] = _duration(rule.repeat_interval)
    if rule.send_resolved:
        d["send_resolved"] = True
    if rule.escalation is not None:
        e = rule.escalation
        esc: dict[str, Any] = {"delay": _duration(e.delay), "max": e.max}
        if e.check_every is not None:
            esc["check_every"] = _duration(e.check_every)
        if e.levels:
            esc["levels"] = [{"notify": [_channel_doc(c) for c in lv.notify]} for lv in e.levels]
        d["escalation"] = esc
    if rule.labels:
        d["labels"] = dict(rule.labels)
    if rule.annotations:
        d["annotations"] = dict(rule.annotations)
    if not rule.enabled:
        d["enabled"] = False
    return d


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat().replace("+00:00", "Z")


def ruleset_to_dict(rules: RuleSet) -> dict[str, Any]:
    """The whole rule set as the mapping written to YAML."""
    d: dict[str, Any] = {"version": 1, "rules": [rule_to_dict(r) for r in rules]}
    if rules.channels:
        d["channels"] = {k: {"max_per_hour": v.max_per_hour} for k, v in rules.channels.items()}
    if rules.silences:
        d["silences"] = [
            {"matchers": dict(s.matchers), "start": _iso(s.start), "end": _iso(s.end),
             **({"comment": s.comment} if s.comment else {})}
            for s in rules.silences
        ]
    r = rules.responders
    if r.ack_after is not None or r.resolve_after is not None:
        resp: dict[str, Any] = {}
        a = r.ack_after
        if isinstance(a, timedelta):
            resp["ack_after"] = _duration(a)
        elif isinstance(a, LognormalDelay):
            resp["ack_after"] = {
                "distribution": "lognormal",
                "median": _duration(a.median),
                "sigma": a.sigma,
                "seed": a.seed,
            }
        elif isinstance(a, Mapping):
            resp["ack_after"] = {k: _duration(v) for k, v in a.items()}
        if r.resolve_after is not None:
            resp["resolve_after"] = _duration(r.resolve_after)
        d["responders"] = resp
    return d


def rules_to_yaml(rules: RuleSet | Rule) -> str:
    """YAML text of a rule set (or one rule, wrapped in a rule set).

    Literal secrets (a webhook URL that is not an ``${ENV_VAR}`` reference) are kept,
    since the file is the user's own, with a warning suggesting a reference.
    """
    rs = RuleSet.of(rules)
    for rule in rs:
        for ch in (*rule.notify, *(c for lv in (rule.escalation.levels if rule.escalation else ()) for c in lv.notify)):
            for key in literal_secrets(dict(ch.settings)):
                warnings.warn(
                    f"rule {rule.id!r}: channel {ch.channel!r} setting {key!r} is written as a literal secret; "
                    f"prefer an ${{ENV_VAR}} reference", UserWarning, stacklevel=2)
    return yaml.safe_dump(ruleset_to_dict(rs), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def save_rules(rules: RuleSet | Rule, path: str | os.PathLike[str]) -> Path:
    """Write rules as YAML, atomically (a temporary file renamed into place)."""
    return atomic_write_text(Path(path), rules_to_yaml(rules))


# --------------------------------------------------------------------------- comment-keeping update

