"""Writing tuned values back into the user's own rule file, for both formats.

Our rules YAML (:func:`update_rules_file`) and Prometheus rule files
(:func:`updated_prometheus_text`) are edited with one ruamel.yaml round trip: comments,
key order, quoting and indentation stay as written, only the tuned values change, and
what is written must load again. :func:`write_back` takes a tuned rule of either kind.
"""

from __future__ import annotations

import io
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from .._time import format_duration, parse_duration
from ..errors import RulesError
from .model import Rule
from .promfile import PromRule, load_prometheus_rules, parse_prometheus_rules, with_threshold
from .yaml_io import load_rules, num_text, parse_rules

__all__ = ["update_prometheus_rule", "update_rules_file", "updated_prometheus_text", "write_back"]


def _round_trip(*, mapping: int, sequence: int, offset: int) -> Any:
    """A ruamel.yaml round-trip reader and writer that keeps quotes and long lines as written."""
    from ruamel.yaml import YAML  # only writing back needs it

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: Any, doc: Any) -> str:
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()


def write_back(path: str | os.PathLike[str], rule: Rule | PromRule) -> str:
    """The text of the user's file at ``path`` with the tuned values of ``rule`` (either kind)."""
    if isinstance(rule, PromRule):  # only what differs from the file's own rule is written
        was = load_prometheus_rules(path).rule(rule.name)
        threshold = rule.comparison.get("threshold")
        return updated_prometheus_text(
            Path(path), rule.name,
            threshold=threshold if threshold != was.comparison.get("threshold") else None,
            for_=f"{rule.for_ms}ms" if rule.for_ms != was.for_ms else None,
            keep_firing_for=f"{rule.keep_firing_for_ms}ms" if rule.keep_firing_for_ms != was.keep_firing_for_ms
            else None)
    return update_rules_file(path, rule)


_TUNABLE = {"threshold": "threshold", "clear": "clear", "for": "for_", "cooldown": "cooldown",
            "keep_firing_for": "keep_firing_for"}


def update_rules_file(path: str | os.PathLike[str], *rules: Rule) -> str:
    """The text of the user's rules file with the tunable keys of ``rules`` updated.

    Comments, key order, quoting and every other rule stay as written (ruamel.yaml
    round trip); only ``threshold``, ``clear``, ``for``, ``cooldown`` and
    ``keep_firing_for`` of the rules with the same ids change. The file itself is
    validated first (safely) and the result is validated again.
    """
    p = Path(path)
    load_rules(p)  # reject invalid or unsafe files before the round-trip parser sees them
    source = p.read_text(encoding="utf-8-sig")
    # keep the file's list style: "  - id: x" (indented dash) or "- id: x"
    dash = re.search(r"^rules:\s*\n(?:\s*#.*\n)*( *)- ", source, flags=re.M)
    offset = len(dash.group(1)) if dash else 2
    yaml_rt = _round_trip(mapping=2, sequence=offset + 2, offset=offset)
    doc = yaml_rt.load(source)
    by_id = {r.id: r for r in rules}
    found = set()
    for entry in doc.get("rules") or []:
        rule = by_id.get(entry.get("id"))
        if rule is None:
            continue
        found.add(rule.id)
        for key, attr in _TUNABLE.items():
            value = getattr(rule, attr)
            if isinstance(value, timedelta):
                text: Any = format_duration(value)
                default = key != "threshold" and not value
            elif value is None:
                if key in entry:
                    del entry[key]
                continue
            else:
                text = num_text(value)
                default = False
            if key in entry or not default:
                entry[key] = text
    missing = set(by_id) - found
    if missing:
        raise RulesError(f"{p}: no rule with id {', '.join(sorted(missing))} to update")
    text_out = _dump(yaml_rt, doc)
    parse_rules(text_out, name=str(p))  # what we write must load again
    return text_out


def update_prometheus_rule(path: str | Path, name: str, *, threshold: float | None = None, for_: Any = None,
                           keep_firing_for: Any = None, out: str | Path | None = None) -> Path:
    """Write new values of alert rule ``name`` into the rule file (comments and key order kept).

    Only the changed values are touched: the number of the expression's top-level
    comparison, ``for`` and ``keep_firing_for``. Written atomically to ``out``
    (default: the file itself); the result loads as the same file with the new values.
    """
    text = updated_prometheus_text(path, name, threshold=threshold, for_=for_, keep_firing_for=keep_firing_for,
                                   name_as=str(out or path))
    return atomic_write_text(Path(out or path), text)


def updated_prometheus_text(path: str | Path, name: str, *, threshold: float | None = None, for_: Any = None,
                            keep_firing_for: Any = None, name_as: str | None = None) -> str:
    """The rule file's text with new values of alert rule ``name`` (see :func:`update_prometheus_rule`)."""
    from ruamel.yaml.util import load_yaml_guess_indent

    src = Path(path)
    original = src.read_text(encoding="utf-8")
    _, indent, block_indent = load_yaml_guess_indent(original)
    yaml = _round_trip(mapping=block_indent or 2, sequence=indent or 2, offset=block_indent or 0)
    doc = yaml.load(original)
    target = None
    for group in (doc or {}).get("groups") or []:
        for rule in group.get("rules") or []:
            if rule.get("alert") == name:
                target = rule
    if target is None:
        raise RulesError(f"{src}: no alert rule named {name!r}")
    if threshold is not None:
        style = type(target["expr"])  # a folded or quoted scalar stays folded or quoted
        new = with_threshold(str(target["expr"]), float(threshold))
        target["expr"] = new if style is str else style(new)
    for key, value in (("for", for_), ("keep_firing_for", keep_firing_for)):
        if value is None:
            continue
        text = format_duration(parse_duration(value))
        if key in target:
            target[key] = text
        else:  # after expr (for), after for or expr (keep_firing_for): where people write them
            keys = list(target.keys())
            after = "for" if key == "keep_firing_for" and "for" in keys else "expr"
            target.insert(keys.index(after) + 1, key, text)
    text = _dump(yaml, doc)
    parse_prometheus_rules(text, name=name_as or str(src))  # never write a file that does not load
    return text
