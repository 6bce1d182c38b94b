"""``alertmanager.yml`` (SPEC 12): the route tree, receivers, inhibition rules and time intervals.

:func:`load_alertmanager` reads the file safely (the located YAML reader of our rules)
and refuses what ``amtool check-config`` refuses, each problem as ``FILE:LINE:
message``. Receivers keep their integrations' names and kinds and their
``send_resolved``; settings are checked but never contacted, and secrets never leave
this module (``repr`` and the report show them redacted).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .._time import parse_duration, to_ns
from ..errors import InputFileNotFound, RulesError
from ..rules.yaml_io import MAX_BYTES, compose_located
from ..stats import PAGING_INTEGRATIONS

__all__ = ["AlertmanagerConfig", "InhibitRule", "Matcher", "Receiver", "Route", "load_alertmanager",
           "parse_alertmanager", "parse_matchers"]

TOP_KEYS = ("global", "route", "receivers", "inhibit_rules", "templates", "time_intervals", "mute_time_intervals")
ROUTE_KEYS = ("receiver", "group_by", "continue", "matchers", "match", "match_re", "group_wait", "group_interval",
              "repeat_interval", "mute_time_intervals", "active_time_intervals", "routes")
# integration kind -> (send_resolved default, keys that must be set here or in global)
INTEGRATIONS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "email": (False, ("to",)), "pagerduty": (True, ()), "slack": (False, ()), "webhook": (True, ("url",)),
    "opsgenie": (True, ()), "wechat": (False, ()), "pushover": (True, ("user_key", "token")),
    "victorops": (True, ("routing_key",)), "sns": (True, ()), "telegram": (True, ("chat_id",)),
    "webex": (True, ()), "discord": (True, ("webhook_url",)), "msteams": (True, ("webhook_url",)),
}
PAGING = set(PAGING_INTEGRATIONS)  # integrations whose notifications are pages (SPEC 5, in ``stats``)
_SECRET_KEYS = re.compile(r"(key|token|password|secret|api_url|url|webhook)", re.I)
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*$')


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(f"(?:{self.value})", have, re.DOTALL) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matchers(text: str) -> list[Matcher]:
    """Alertmanager's matcher syntax: ``a="b"``, ``a=~"x|y"``, several separated by commas, braces optional."""
    s = text.strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    parts, buf, quoted, escaped = [], "", False, False
    for ch in s:
        if escaped:
            buf += ch
            escaped = False
        elif ch == "\\":
            buf += ch
            escaped = True
        elif ch == '"':
            buf += ch
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    if buf.strip():
        parts.append(buf)
    out = []
    for part in parts:
        m = _MATCHER.match(part)
        if m is None:
            raise ValueError(f"bad matcher format: {part.strip()!r} (expected name=\"value\", name!=, =~ or !~)")
        value = m.group(3) if m.group(3) is not None else (m.group(4) or "")
        value = value.replace('\\"', '"').replace("\\\\", "\\")
        if m.group(2) in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        out.append(Matcher(m.group(1), m.group(2), value))
    return out


@dataclass(frozen=True)
class Integration:
    kind: str
    send_resolved: bool
    index: int

    @property
    def name(self) -> str:
        return f"{self.kind}[{self.index}]"

    @property
    def paging(self) -> bool:
        return self.kind in PAGING


@dataclass(frozen=True)
class Receiver:
    name: str
    integrations: tuple[Integration, ...] = ()


@dataclass(frozen=True)
class Route:
    receiver: str
    group_by: tuple[str, ...] | None  # None: inherit; ("...",): every label
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    group_wait_ms: int = 30_000
    group_interval_ms: int = 300_000
    repeat_interval_ms: int = 14_400_000
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    path: str = "0"  # position in the tree: one aggregation-group family per route
    key: str = "{}"  # Alertmanager's route key: the matchers from the root, '{}/{severity="page"}'

    def match(self, labels: dict[str, str]) -> list[Route]:
        """The routes an alert goes to (Alertmanager's depth-first match with ``continue``)."""
        if not all(m.matches(labels) for m in self.matchers):
            return []
        found: list[Route] = []
        for child in self.routes:
            hit = child.match(labels)
            found += hit
            if hit and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
        by = self.group_by or ()
        if "..." in by:
            return tuple(sorted(labels.items()))
        return tuple(sorted((k, labels[k]) for k in set(by) if labels.get(k)))


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimeInterval:
    """One ``time_intervals`` entry: times of day, weekdays, days of month, months, years, a zone."""

    times: tuple[tuple[int, int], ...] = ()  # minutes of the day [start, end)
    weekdays: tuple[tuple[int, int], ...] = ()  # 0 = Sunday, inclusive ranges
    days_of_month: tuple[tuple[int, int], ...] = ()
    months: tuple[tuple[int, int], ...] = ()
    years: tuple[tuple[int, int], ...] = ()
    location: str = "UTC"


@dataclass(frozen=True)
class AlertmanagerConfig:
    route: Route
    receivers: dict[str, Receiver]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    time_intervals: dict[str, tuple[TimeInterval, ...]] = field(default_factory=dict)
    resolve_timeout_ms: int = 300_000
    path: str = "<alertmanager>"

    def routes_for(self, labels: dict[str, str]) -> list[Route]:
        return self.route.match(labels)


def load_alertmanager(path: str | os.PathLike[str]) -> AlertmanagerConfig:
    """Load and validate ``alertmanager.yml``; raises :class:`RulesError` listing every problem."""
    p = Path(path)
    if not p.exists():
        raise InputFileNotFound(f"{p}: no such file")
    if p.is_dir() or p.stat().st_size > MAX_BYTES:
        raise RulesError(f"{p}: expected an Alertmanager configuration file")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    return parse_alertmanager(text, name=str(p))


def parse_alertmanager(text: str, *, name: str = "<alertmanager>") -> AlertmanagerConfig:
    located = compose_located(text, name)
    if located is None:
        raise RulesError(f"{name}: empty configuration; expected 'route:' and 'receivers:'")
    data, doc = located
    problems: list[tuple[int | None, str]] = list(doc.problems)

    def add(path: tuple[Any, ...], msg: str) -> None:
        problems.append((doc.line(path), msg))

    if not isinstance(data, dict):
        raise RulesError(f"{name}:1: expected a mapping with 'route' and 'receivers'")
    for key in data:
        if key not in TOP_KEYS:
            add((key,), f"field {key} not found in type config.plain")
    glob = data.get("global") or {}
    resolve_timeout = _duration(glob.get("resolve_timeout", "5m"), ("global", "resolve_timeout"), add) \
        if isinstance(glob, dict) else 300_000
    receivers: dict[str, Receiver] = {}
    for i, r in enumerate(data.get("receivers") or []):
        path = ("receivers", i)
        if not isinstance(r, dict) or not r.get("name"):
            add(path, "missing name in receiver")
            continue
        if r["name"] in receivers:
            add((*path, "name"), f"notification config name {r['name']!r} is not unique")
            continue
        integrations = []
        for key, value in r.items():
            if key == "name":
                continue
            kind = key[:-len("_configs")] if key.endswith("_configs") else None
            if kind not in INTEGRATIONS:
                add((*path, key), f"field {key} not found in type config.plain")
                continue
            default_resolved, required = INTEGRATIONS[kind]
            for j, cfg in enumerate(value or []):
                if not isinstance(cfg, dict):
                    add((*path, key, j), f"receiver {r['name']!r}: {key}[{j}] must be a mapping")
                    continue
                for need in required:
                    if not cfg.get(need):
                        add((*path, key, j), f"receiver {r['name']!r}: missing {need} on {kind}_config")
                if kind == "pagerduty" and not (cfg.get("routing_key") or cfg.get("service_key")
                                                or cfg.get("routing_key_file") or cfg.get("service_key_file")):
                    add((*path, key, j), f"receiver {r['name']!r}: missing service or routing key in PagerDuty config")
                if kind == "email" and not (cfg.get("smarthost") or glob.get("smtp_smarthost")):
                    add((*path, key, j), f"receiver {r['name']!r}: no global SMTP smarthost set")
                if kind == "email" and not (cfg.get("from") or glob.get("smtp_from")):
                    add((*path, key, j), f"receiver {r['name']!r}: no global SMTP from set")
                if kind == "slack" and not (cfg.get("api_url") or cfg.get("api_url_file") or glob.get("slack_api_url")
                                            or glob.get("slack_api_url_file")):
                    add((*path, key, j), f"receiver {r['name']!r}: no global Slack API URL set")
                if kind == "opsgenie" and not (cfg.get("api_key") or cfg.get("api_key_file")
                                               or glob.get("opsgenie_api_key") or glob.get("opsgenie_api_key_file")):
                    add((*path, key, j), f"receiver {r['name']!r}: no global OpsGenie API Key set")
                sr = cfg.get("send_resolved", default_resolved)
                integrations.append(Integration(kind, bool(sr), j))
        receivers[r["name"]] = Receiver(r["name"], tuple(integrations))
    intervals = _time_intervals(data, add)
    raw_route = data.get("route")
    route = None
    if not isinstance(raw_route, dict):
        add(("route",), "no routes provided")
    else:
        if not raw_route.get("receiver"):
            add(("route",), "root route must specify a default receiver")
        if any(k in raw_route for k in ("matchers", "match", "match_re")):
            add(("route",), "root route must not have any matchers")
        if raw_route.get("continue"):
            add(("route", "continue"), "cannot have continue in root route")
        if raw_route.get("mute_time_intervals") or raw_route.get("active_time_intervals"):
            add(("route",), "root route must not have any mute time intervals")
        route = _route(raw_route, ("route",), None, receivers, intervals, add, "0")
    inhibit = []
    for i, r in enumerate(data.get("inhibit_rules") or []):
        path = ("inhibit_rules", i)
        if not isinstance(r, dict):
            add(path, "an inhibit rule must be a mapping")
            continue
        source = _matchers(r, ("source_matchers", "source_match", "source_match_re"), path, add)
        target = _matchers(r, ("target_matchers", "target_match", "target_match_re"), path, add)
        equal = tuple(str(x) for x in r.get("equal") or ())
        for key in r:
            if key not in ("source_matchers", "source_match", "source_match_re", "target_matchers", "target_match",
                           "target_match_re", "equal"):
                add((*path, key), f"field {key} not found in type config.InhibitRule")
        inhibit.append(InhibitRule(tuple(source), tuple(target), equal))
    if problems:
        raise RulesError([f"{name}:{line}: {msg}" if line else f"{name}: {msg}" for line, msg in problems])
    assert route is not None
    return AlertmanagerConfig(route, receivers, tuple(inhibit), intervals, resolve_timeout or 300_000, name)


def _duration(value: Any, path: tuple[Any, ...], add: Any) -> int | None:
    try:
        return to_ns(parse_duration(str(value))) // 1_000_000
    except ValueError as exc:
        add(path, str(exc))
        return None


def _matchers(r: dict[str, Any], keys: tuple[str, str, str], path: tuple[Any, ...], add: Any) -> list[Matcher]:
    out: list[Matcher] = []
    new, eq, rx = keys
    for i, text in enumerate(r.get(new) or []):
        try:
            out += parse_matchers(str(text))
        except ValueError as exc:
            add((*path, new, i), str(exc))
    for key, op in ((eq, "="), (rx, "=~")):
        for k, v in (r.get(key) or {}).items():
            if not _LABEL.match(str(k)):
                add((*path, key, k), f"invalid label name {k!r}")
                continue
            if op == "=~":
                try:
                    re.compile(str(v))
                except re.error as exc:
                    add((*path, key, k), f"invalid regular expression {v!r}: {exc}")
                    continue
            out.append(Matcher(str(k), op, str(v)))
    return out


def _route(r: dict[str, Any], path: tuple[Any, ...], parent: Route | None, receivers: dict[str, Receiver],
           intervals: dict[str, Any], add: Any, key: str) -> Route:
    for k in r:
        if k not in ROUTE_KEYS:
            add((*path, k), f"field {k} not found in type config.plain")
    receiver = r.get("receiver") or (parent.receiver if parent else "")
    if receiver and receiver not in receivers:
        add((*path, "receiver"), f"undefined receiver {receiver!r} used in route")
    group_by = r.get("group_by")
    if group_by:  # an empty list is no list in Alertmanager: the route inherits its parent's grouping
        group_by = tuple(str(x) for x in group_by)
        for g in group_by:
            if g != "..." and not _LABEL.match(g):
                add((*path, "group_by"), f"invalid label name {g!r} in group_by list")
        if "..." in group_by and len(group_by) > 1:
            add((*path, "group_by"), "cannot have wildcard group_by (`...`) and other other labels at the same time")
    else:
        group_by = parent.group_by if parent else ()
    times = {}
    for k, default in (("group_wait", 30_000), ("group_interval", 300_000), ("repeat_interval", 14_400_000)):
        inherited = getattr(parent, f"{k}_ms") if parent else default
        times[k] = _duration(r[k], (*path, k), add) if k in r else inherited
        if times[k] is None:
            times[k] = inherited
    if "group_interval" in r and times["group_interval"] == 0:
        add((*path, "group_interval"), "group_interval cannot be zero")
    if "repeat_interval" in r and times["repeat_interval"] == 0:
        add((*path, "repeat_interval"), "repeat_interval cannot be zero")
    for k in ("mute_time_intervals", "active_time_intervals"):
        for n in r.get(k) or []:
            if n not in intervals:
                add((*path, k), f"undefined time interval {n!r} used in route")
    matchers = _matchers(r, ("matchers", "match", "match_re"), path, add)
    route_key = "{" + ",".join(str(m) for m in matchers) + "}"
    route_key = f"{parent.key}/{route_key}" if parent is not None else route_key
    wait, interval, repeat = (int(times[k] or 0) for k in ("group_wait", "group_interval", "repeat_interval"))
    node = Route(receiver, group_by, tuple(matchers), bool(r.get("continue", False)), wait, interval, repeat,
                 tuple(r.get("mute_time_intervals") or ()), tuple(r.get("active_time_intervals") or ()), (), key,
                 route_key)
    children = tuple(_route(c, (*path, "routes", i), node, receivers, intervals, add, f"{key}.{i}")
                     for i, c in enumerate(r.get("routes") or []) if isinstance(c, dict))
    return Route(node.receiver, node.group_by, node.matchers, node.continue_, node.group_wait_ms,
                 node.group_interval_ms, node.repeat_interval_ms, node.mute_time_intervals,
                 node.active_time_intervals, children, key, route_key)


_WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]


def _ranges(values: Any, names: list[str] | None, lo: int, hi: int, what: str, path: tuple[Any, ...],
            add: Any) -> tuple[tuple[int, int], ...]:
    out = []
    for text in values or []:
        parts = str(text).lower().split(":")
        try:
            nums = [names.index(p) + (1 if what == "month" else 0) if names and not p.lstrip("-").isdigit()
                    else int(p) for p in parts]
        except ValueError:
            add(path, f"{text!r} is not a valid {what}")
            continue
        a, b = nums[0], nums[-1]
        if len(nums) > 2 or (what != "day of month" and (a < lo or b > hi or a > b)):
            add(path, f"{text!r} is not a valid {what} range")
            continue
        out.append((a, b))
    return tuple(out)


def _time_intervals(data: dict[str, Any], add: Any) -> dict[str, tuple[TimeInterval, ...]]:
    out: dict[str, tuple[TimeInterval, ...]] = {}
    for top in ("time_intervals", "mute_time_intervals"):
        for i, ti in enumerate(data.get(top) or []):
            path = (top, i)
            if not isinstance(ti, dict) or not ti.get("name"):
                add(path, "missing name in time interval")
                continue
            if ti["name"] in out:
                add((*path, "name"), f"time interval {ti['name']!r} is not unique")
                continue
            entries = []
            for j, e in enumerate(ti.get("time_intervals") or []):
                p = (*path, "time_intervals", j)
                times = []
                for t in e.get("times") or []:
                    try:
                        h1, m1 = (int(x) for x in str(t["start_time"]).split(":"))
                        h2, m2 = (int(x) for x in str(t["end_time"]).split(":"))
                    except (KeyError, ValueError):
                        add(p, f"invalid time range {t!r}; expected start_time and end_time as HH:MM")
                        continue
                    times.append((h1 * 60 + m1, h2 * 60 + m2))
                location = str(e.get("location") or "UTC")
                try:
                    ZoneInfo(location) if location not in ("UTC", "Local") else None
                except Exception:  # noqa: BLE001 - zoneinfo raises several kinds
                    add(p, f"unknown time zone {location!r}")
                entries.append(TimeInterval(
                    tuple(times), _ranges(e.get("weekdays"), _WEEKDAYS, 0, 6, "weekday", p, add),
                    _ranges(e.get("days_of_month"), None, -31, 31, "day of month", p, add),
                    _ranges(e.get("months"), _MONTHS, 1, 12, "month", p, add),
                    _ranges(e.get("years"), None, 0, 9999, "year", p, add), location))
            out[ti["name"]] = tuple(entries)
    return out


def redact(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with every secret-looking value replaced, for reports."""
    return {k: ("<secret>" if _SECRET_KEYS.search(k) else v) for k, v in settings.items()}
