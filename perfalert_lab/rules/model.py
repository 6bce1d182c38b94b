"""The rule model: frozen, validated value objects (SPEC section 2).

Every object validates itself on construction and reports **all** of its problems
at once in a :class:`~perfalert_lab.errors.RulesError`; change one with
``dataclasses.replace`` or the ``replace`` method, which validates again::

    >>> from perfalert_lab.rules import Rule
    >>> from perfalert_lab.errors import RulesError
    >>> rule = Rule(id="cpu-high", metric="cpu", op=">", threshold=80, for_="5m")
    >>> rule.replace(threshold=90).threshold
    90.0
    >>> try:
    ...     Rule(id="bad id", metric="cpu", op="~", threshold="x")
    ... except RulesError as exc:
    ...     print(*exc.problems, sep="\\n")
    rule 'bad id': key 'id': 'bad id' may hold only letters, digits, '-' and '_'
    rule 'bad id': key 'op': expected one of >, >=, <, <=, ==, !=, got '~'
    rule 'bad id': key 'threshold': expected a number, got 'x'

Durations are ``datetime.timedelta`` (given as Prometheus strings like ``"5m"``);
times are ``int`` nanoseconds since the epoch (UTC).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Literal

from .._secrets import is_env_ref, redact_settings
from .._time import format_duration, parse_duration, parse_instant
from ..errors import RulesError
from ..report import rules_html
from ..templates import TemplateError, check_template

__all__ = [
    "AGGREGATES",
    "CHANNELS",
    "OPERATORS",
    "SEVERITIES",
    "Channel",
    "ChannelLimits",
    "Escalation",
    "EscalationLevel",
    "LognormalDelay",
    "Responders",
    "Rule",
    "RuleSet",
    "Silence",
]

OPERATORS = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES = ("low", "medium", "high", "critical")
CHANNELS = ("log", "console", "email", "sms", "webhook", "slack", "desktop")
AGGREGATES = ("mean", "min", "max", "median", "sum", "count", "rate") + tuple(f"p{i}" for i in range(1, 100))
MODES = ("episode", "sample")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
_CHANNEL_KEYS: dict[str, frozenset[str]] = {
    "log": frozenset(),
    "console": frozenset(),
    "desktop": frozenset(),
    "email": frozenset({"to"}),
    "sms": frozenset({"to"}),
    "webhook": frozenset({"url", "token"}),
    "slack": frozenset({"url", "channel"}),
}


class FieldProblems(RulesError):
    """A :class:`RulesError` that keeps each problem's key, so loaders can add lines."""

    def __init__(self, owner: str, items: list[tuple[str, str]]) -> None:
        self.owner = owner
        self.items = items
        super().__init__([f"{owner}: key {key!r}: {msg}" if key else f"{owner}: {msg}" for key, msg in items])


class _Checker:
    """Collects problems while an object coerces and checks its fields."""

    def __init__(self, obj: object) -> None:
        self.obj = obj
        self.items: list[tuple[str, str]] = []

    def coerce(self, attr: str, fn: Callable[[Any], Any], key: str | None = None) -> bool:
        try:
            object.__setattr__(self.obj, attr, fn(getattr(self.obj, attr)))
            return True
        except FieldProblems as exc:
            prefix = key or attr
            self.items += [(f"{prefix}.{k}" if k else prefix, m) for k, m in exc.items]
        except (ValueError, TypeError) as exc:
            self.items.append((key or attr, str(exc)))
        return False

    def check(self, ok: bool, key: str, msg: str) -> None:
        if not ok:
            self.items.append((key, msg))

    def done(self, owner: str) -> None:
        if self.items:
            raise FieldProblems(owner, self.items)


# --------------------------------------------------------------------------- coercions


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        if isinstance(v, str):
            try:
                x = float(v)
            except ValueError:
                raise ValueError(f"expected a number, got {v!r}") from None
        else:
            raise ValueError(f"expected a number, got {v!r}")
    else:
        x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {v!r}")
    return x


def _opt(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else fn(v)


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"expected a non-empty string, got {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def fn(v: Any) -> str:
        if v not in options:
            shown = ", ".join(options) if len(options) < 12 else ", ".join(options[:7]) + ", p1..p99"
            raise ValueError(f"expected one of {shown}, got {v!r}")
        return str(v)

    return fn


def _operator(v: Any) -> str:
    if isinstance(v, str) and v not in OPERATORS and (v == "" or v != v.strip()):
        # YAML reads an unquoted '>' or '<' as the start of a block of text (empty, or the next lines)
        raise ValueError(f"expected one of {', '.join(OPERATORS)}, got {v!r}: in YAML an unquoted > or < starts a "
                         "block of text; quote the operator, e.g. op: \">\"")
    return _choice(OPERATORS)(v)


def _positive_duration(v: Any) -> timedelta:
    d = parse_duration(v)
    if d <= timedelta(0):
        raise ValueError(f"must be longer than 0, got {v!r}")
    return d


def _str_map(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ValueError(f"expected a mapping of names to strings, got {v!r}")
    out = {}
    for k, x in v.items():
        if not isinstance(k, str) or isinstance(x, bool) or not isinstance(x, str | int | float):
            raise ValueError(f"expected string keys and values, got {k!r}: {x!r}")
        out[k] = str(x)
    return out


class _FrozenDict(dict):  # type: ignore[type-arg]
    """A hashable, read-only dict for mapping fields of frozen objects."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted((k, repr(v)) for k, v in self.items())))

    def _ro(self, *a: Any, **k: Any) -> None:
        raise TypeError("rule mappings are read-only; use replace()")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _ro  # type: ignore[assignment]
    __ior__ = _ro  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:  # copy, deepcopy and pickle rebuild it whole
        return (_FrozenDict, (dict(self),))

    def __copy__(self) -> _FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _FrozenDict:
        return _FrozenDict({k: copy.deepcopy(v, memo) for k, v in self.items()})


def _frozen_map(v: Any) -> _FrozenDict:
    return _FrozenDict(_str_map(v))


class _Value:
    """Shared behaviour of the frozen model classes."""

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def _repr_skips(self, name: str, value: Any) -> bool:
        """Fields left out of the repr besides those at their defaults."""
        return False

    def _repr_keeps(self, name: str) -> bool:
        """Fields shown even at their defaults (what a reader needs to know the object)."""
        return False

    def __repr__(self) -> str:
        """The fields that differ from their defaults (required ones always), durations as written in
        a rules file.

        >>> Rule(id="cpu", metric="cpu", threshold=80, for_="5m", escalation={"delay": "30m", "max": 2})
        Rule(id='cpu', metric='cpu', threshold=80.0, for_='5m', escalation=Escalation(delay='30m', max=2))
        """
        shown = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                if self._repr_skips(f.name, value) or (value == default and not self._repr_keeps(f.name)):
                    continue
            if isinstance(value, timedelta):
                value = format_duration(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            shown.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


# --------------------------------------------------------------------------- channels


@dataclass(frozen=True, repr=False)
class Channel(_Value):
    """One notification target: a channel name and its optional settings.

    Secret settings (webhook and slack ``url``, ``token``) are redacted in the repr
    unless written as ``${ENV_VAR}`` references.
    """

    channel: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def __post_init__(self) -> None:
        c = _Checker(self)
        c.coerce("channel", _choice(CHANNELS), "channel")
        c.coerce("enabled", _bool, "enabled")
        if not isinstance(self.settings, Mapping):
            c.items.append(("", f"expected channel settings as a mapping, got {self.settings!r}"))
        else:
            object.__setattr__(self, "settings", _FrozenDict(self.settings))
            allowed = _CHANNEL_KEYS.get(self.channel, frozenset())
            for key, value in self.settings.items():
                if key not in allowed:
                    hint = (
                        f" ({', '.join(sorted(allowed))} allowed)" if allowed else " (this channel takes no settings)"
                    )
                    c.items.append((key, f"unknown setting for channel {self.channel!r}{hint}"))
                    continue
                c.items += [(key, m) for m in _check_setting(self.channel, key, value)]
        c.done(f"channel {self.channel!r}")

    def __repr__(self) -> str:
        extra = f", settings={redact_settings(dict(self.settings))!r}" if self.settings else ""
        off = ", enabled=False" if not self.enabled else ""
        return f"Channel({self.channel!r}{extra}{off})"

    @classmethod
    def coerce(cls, v: Any) -> Channel:
        """From a bare name, a ``{channel: name, ...settings}`` mapping or a Channel."""
        if isinstance(v, Channel):
            return v
        if isinstance(v, str):
            return cls(v)
        if isinstance(v, Mapping):
            d = dict(v)
            if "channel" not in d:
                raise ValueError(f"a channel mapping needs a 'channel' key, got {sorted(d)!r}")
            name = d.pop("channel")
            enabled = d.pop("enabled", True)
            return cls(name, d, enabled)
        raise ValueError(f"expected a channel name or mapping, got {v!r}")


def _check_setting(channel: str, key: str, value: Any) -> list[str]:
    if key == "url":
        if not isinstance(value, str) or not (value.startswith("https://") or is_env_ref(value)):
            return ["must be an https:// URL or an ${ENV_VAR} reference"]
    elif key == "token":
        if not isinstance(value, str) or not value:
            return ["must be a string (prefer an ${ENV_VAR} reference)"]
    elif key == "channel":
        if not isinstance(value, str) or not value:
            return ["must be a Slack channel name such as '#ops'"]
    elif key == "to":
        items = value if isinstance(value, list | tuple) else [value]
        if not items:
            return ["must name at least one recipient"]
        pattern, what = (
            (_EMAIL_RE, "an e-mail address")
            if channel == "email"
            else (_E164_RE, "an E.164 number such as +14155550100")
        )
        bad = [x for x in items if not (isinstance(x, str) and (pattern.match(x) or is_env_ref(x)))]
        if bad:
            return [f"{bad[0]!r} is not {what}"]
    return []


def _coerce_list(v: Any, coerce: Callable[[Any], Any], what: str) -> tuple[Any, ...]:
    """Coerce each item of a list, collecting every item's problems under its index."""
    if not isinstance(v, list | tuple):
        raise ValueError(f"expected a list of {what}, got {v!r}")
    out, items = [], []
    for i, x in enumerate(v):
        try:
            out.append(coerce(x))
        except FieldProblems as exc:
            items += [(f"{i}.{k}" if k else str(i), m) for k, m in exc.items]
        except ValueError as exc:
            items.append((str(i), str(exc)))
    if items:
        raise FieldProblems("", items)
    return tuple(out)


def _channels(v: Any) -> tuple[Channel, ...]:
    return _coerce_list([v] if isinstance(v, str | Mapping) else v, Channel.coerce, "channels")


# --------------------------------------------------------------------------- escalation


@dataclass(frozen=True, repr=False)
class EscalationLevel(_Value):
    """The channels one escalation level notifies."""

    notify: tuple[Channel, ...]

    def __post_init__(self) -> None:
        c = _Checker(self)
        c.coerce("notify", _channels, "notify")
        c.done("escalation level")

    @classmethod
    def coerce(cls, v: Any) -> EscalationLevel:
        if isinstance(v, EscalationLevel):
            return v
        if isinstance(v, Mapping):
            unknown = [k for k in v if k != "notify"]
            if unknown:
                raise FieldProblems(
                    "", [(str(k), "unknown key (only 'notify' is allowed in a level)") for k in unknown]
                )
            if "notify" not in v:
                raise FieldProblems("", [("notify", "missing: a level needs notify: [channels]")])
            return cls(v["notify"])
        raise ValueError(f"expected a level such as {{notify: [sms]}}, got {v!r}")


@dataclass(frozen=True, repr=False)
class Escalation(_Value):
    """Escalation policy: level ``n`` is due ``n * delay`` after firing, up to ``max``.

    With ``check_every`` escalations happen only on polling ticks, as the seed's
    periodic ``check_escalations``. Without ``levels`` every escalation re-notifies
    the rule's own channels (the seed's behaviour).
    """

    delay: timedelta = timedelta(minutes=30)
    max: int = 3
    check_every: timedelta | None = None
    levels: tuple[EscalationLevel, ...] = ()

    def _repr_keeps(self, name: str) -> bool:
        return name in ("delay", "max")

    def __post_init__(self) -> None:
        c = _Checker(self)
        c.coerce("delay", _positive_duration, "delay")
        c.coerce("check_every", _opt(_positive_duration), "check_every")
        c.coerce("max", _positive_int, "max")
        c.coerce("levels", _levels, "levels")
        c.done("escalation")

    @classmethod
    def coerce(cls, v: Any) -> Escalation:
        if isinstance(v, Escalation):
            return v
        if not isinstance(v, Mapping):
            raise ValueError(f"expected a mapping with delay, max, levels, got {v!r}")
        known = {"delay", "max", "check_every", "levels"}
        unknown = [k for k in v if k not in known]
        if unknown:
            raise FieldProblems("", [(str(k), f"unknown key (expected {', '.join(sorted(known))})") for k in unknown])
        return cls(**dict(v))


def _positive_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"expected a whole number of at least 1, got {v!r}")
    return int(v)


def _levels(v: Any) -> tuple[EscalationLevel, ...]:
    return () if v is None else _coerce_list(v, EscalationLevel.coerce, "levels")


# --------------------------------------------------------------------------- rule

Op = Literal[">", ">=", "<", "<=", "==", "!="]


@dataclass(frozen=True, repr=False)
class Rule(_Value):
    """One alert rule (SPEC sections 2 and 4). ``for_`` is the YAML key ``for``."""

    id: str
    metric: str
    threshold: float
    op: Op = ">"
    name: str = ""
    match: Mapping[str, str] = field(default_factory=dict)
    clear: float | None = None
    window: timedelta | None = None
    aggregate: str | None = None
    mode: Literal["episode", "sample"] = "episode"
    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)
    cooldown: timedelta = timedelta(0)
    severity: str = "medium"
    notify: tuple[Channel, ...] = (Channel("log"),)
    repeat_interval: timedelta | None = None
    send_resolved: bool = False
    escalation: Escalation | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True

    def __post_init__(self) -> None:
        c = _Checker(self)
        ok_id = c.coerce("id", _text, "id")
        if ok_id and not _ID_RE.match(self.id):
            c.items.append(("id", f"{self.id!r} may hold only letters, digits, '-' and '_'"))
        c.coerce("metric", _text, "metric")
        ok_op = c.coerce("op", _operator, "op")
        ok_thr = c.coerce("threshold", _number, "threshold")
        if self.name in (None, ""):
            object.__setattr__(self, "name", self.id if isinstance(self.id, str) else "")
        else:
            c.coerce("name", _text, "name")
        c.coerce("match", _frozen_map, "match")
        ok_clear = c.coerce("clear", _opt(_number), "clear")
        c.coerce("window", _opt(_positive_duration), "window")
        c.coerce("aggregate", _opt(_choice(AGGREGATES)), "aggregate")
        ok_mode = c.coerce("mode", _choice(MODES), "mode")
        c.coerce("for_", parse_duration, "for")
        c.coerce("keep_firing_for", parse_duration, "keep_firing_for")
        c.coerce("cooldown", parse_duration, "cooldown")
        c.coerce("severity", _choice(SEVERITIES), "severity")
        if c.coerce("notify", _channels, "notify") and not self.notify:
            c.items.append(("notify", "at least one channel is required (e.g. [log])"))
        c.coerce("repeat_interval", _opt(_positive_duration), "repeat_interval")
        c.coerce("send_resolved", _bool, "send_resolved")
        c.coerce("escalation", _opt(Escalation.coerce), "escalation")
        for key in ("labels", "annotations"):
            if c.coerce(key, _frozen_map, key):
                _check_templates(c, key, getattr(self, key))
        c.coerce("enabled", _bool, "enabled")
        # Cross-field rules, checked only where the fields themselves are valid.
        if self.window is not None and self.aggregate is None:
            object.__setattr__(self, "aggregate", "mean")
        if self.aggregate is not None and self.window is None:
            c.items.append(("aggregate", "needs a 'window' to aggregate over (e.g. window: 5m)"))
        if ok_mode and self.mode == "sample":
            for key, attr in (("for", "for_"), ("keep_firing_for", "keep_firing_for")):
                value = getattr(self, attr)
                if isinstance(value, timedelta) and value > timedelta(0):
                    c.items.append((key, "is not valid with mode: sample (every holding sample raises an alert)"))
            if self.clear is not None:
                c.items.append(("clear", "is not valid with mode: sample (sample-mode alerts do not resolve by value)"))
        if ok_op and ok_thr and ok_clear and self.clear is not None:
            if self.op in ("==", "!="):
                c.items.append(("clear", f"hysteresis needs an ordering operator, not {self.op!r}"))
            elif self.op in (">", ">=") and self.clear > self.threshold:
                c.items.append(("clear", f"must not be above the threshold {self.threshold:g} for op {self.op!r}"))
            elif self.op in ("<", "<=") and self.clear < self.threshold:
                c.items.append(("clear", f"must not be below the threshold {self.threshold:g} for op {self.op!r}"))
        c.done(f"rule {self.id!r}")

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The enabled channels notified on firing."""
        return tuple(ch for ch in self.notify if ch.enabled)

    def _repr_skips(self, name: str, value: Any) -> bool:
        return (name == "name" and value == self.id) or (name == "notify" and value == (Channel("log"),))

    def describe(self) -> str:
        """One line in words: ``cpu > 80 for 5m``."""
        value = f"{self.aggregate}({self.metric}[{format_duration(self.window)}])" if self.window else self.metric
        text = f"{value} {self.op} {self.threshold:g}"
        if self.clear is not None:
            text += f" (clear {self.clear:g})"
        if self.for_:
            text += f" for {format_duration(self.for_)}"
        if self.keep_firing_for:
            text += f" keep {format_duration(self.keep_firing_for)}"
        if self.cooldown:
            text += f" cooldown {format_duration(self.cooldown)}"
        return text


def _check_templates(c: _Checker, key: str, texts: Mapping[str, str]) -> None:
    """Labels and annotations are Go templates (SPEC 2, 11): refuse what cannot be rendered, and
    label names Prometheus would refuse."""
    for name, text in texts.items():
        if key == "labels" and not _LABEL_NAME.match(name):
            c.items.append((f"{key}.{name}", "is not a valid label name (letters, digits and '_', "
                                             "not starting with a digit)"))
        if "{{" not in text:
            continue
        try:
            check_template(text)
        except TemplateError as exc:
            c.items.append((f"{key}.{name}", f"template {text!r}: {exc}"))


# --------------------------------------------------------------------------- rule set


@dataclass(frozen=True, repr=False)
class ChannelLimits(_Value):
    """Per-channel delivery limits: at most ``max_per_hour`` in any sliding hour."""

    max_per_hour: int | None = None

    def __post_init__(self) -> None:
        c = _Checker(self)
        c.coerce("max_per_hour", _opt(_positive_int), "max_per_hour")
        c.done("channel limits")


@dataclass(frozen=True, repr=False)
class Silence(_Value):
    """Silence notifications of matching alerts between ``start`` and ``end``.

    ``matchers`` are glob patterns on ``source``, ``metric``, ``rule_id``,
    ``severity`` or any label.
    """

    matchers: Mapping[str, str]
    start: int
    end: int
    comment: str = ""

    def __post_init__(self) -> None:
        c = _Checker(self)
        c.coerce("matchers", _frozen_map, "matchers")
        ok_s = c.coerce("start", _instant, "start")
        ok_e = c.coerce("end", _instant, "end")
        if ok_s and ok_e and self.end <= self.start:
            c.items.append(("end", "must be after start"))
        if not isinstance(self.comment, str):
            c.items.append(("comment", f"expected a string, got {self.comment!r}"))
        c.done("silence")


def _instant(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return parse_instant(v)


@dataclass(frozen=True, repr=False)
class LognormalDelay(_Value):
    """Random acknowledgement delays: lognormal with the given median (seeded)."""

    median: timedelta
    sigma: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        c = _Checker(self)
        c.coerce("median", _positive_duration, "median")
        c.coerce("sigma", _number, "sigma")
        if isinstance(self.sigma, float) and self.sigma < 0:
            c.items.append(("sigma", "must not be negative"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            c.items.append(("seed", f"expected a whole number, got {self.seed!r}"))
        c.done("responders.ack_after")


AckAfter = timedelta | Mapping[str, timedelta] | LognormalDelay | None


@dataclass(frozen=True, repr=False)
class Responders(_Value):
    """The simulated on-call: when alerts are acknowledged (and sample-mode ones resolved)."""

    ack_after: AckAfter = None
    resolve_after: timedelta | None = None

    def __post_init__(self) -> None:
        c = _Checker(self)
        c.coerce("ack_after", _ack_after, "ack_after")
        c.coerce("resolve_after", _opt(_positive_duration), "resolve_after")
        c.done("responders")


def _ack_after(v: Any) -> AckAfter:
    if v is None or isinstance(v, LognormalDelay):
        return v
    if isinstance(v, Mapping):
        if "distribution" in v:
            d = dict(v)
            if d.pop("distribution") != "lognormal":
                raise ValueError(f"distribution must be 'lognormal', got {v['distribution']!r}")
            unknown = [k for k in d if k not in ("median", "sigma", "seed")]
            if unknown:
                raise ValueError(f"unknown key(s) {', '.join(map(str, unknown))} (expected median, sigma, seed)")
            return LognormalDelay(**d)
        out = {}
        for k, x in v.items():
            if k not in SEVERITIES:
                raise ValueError(f"{k!r} is not a severity ({', '.join(SEVERITIES)})")
            out[k] = parse_duration(x)
        return _FrozenDict(out)
    return parse_duration(v)


@dataclass(frozen=True, repr=False)
class RuleSet(_Value):
    """Rules plus the policies they share: channel limits, silences and responders.

    ``rule_set["cpu-high"]`` is one rule; iterating yields the rules in file order.
    """

    rules: tuple[Rule, ...] = ()
    channels: Mapping[str, ChannelLimits] = field(default_factory=dict)
    silences: tuple[Silence, ...] = ()
    responders: Responders = field(default_factory=Responders)
    version: int = 1
    kind: ClassVar[str] = "perfalert"  # which kind of rule source (``PromRuleFile.kind`` is "prometheus")

    def __post_init__(self) -> None:
        c = _Checker(self)
        if isinstance(self.rules, Rule):
            object.__setattr__(self, "rules", (self.rules,))
        object.__setattr__(self, "rules", tuple(self.rules))
        for i, r in enumerate(self.rules):
            c.check(isinstance(r, Rule), f"rules.{i}", f"expected a Rule, got {type(r).__name__}")
        seen: dict[str, int] = {}
        for i, r in enumerate(self.rules):
            if isinstance(r, Rule):
                if r.id in seen:
                    c.items.append(
                        (f"rules.{i}.id", f"duplicate rule id {r.id!r} (first used by rule #{seen[r.id] + 1})")
                    )
                seen.setdefault(r.id, i)
        object.__setattr__(self, "channels", _FrozenDict(self.channels))
        for name in self.channels:
            c.check(name in CHANNELS, f"channels.{name}", f"unknown channel (expected one of {', '.join(CHANNELS)})")
        object.__setattr__(self, "silences", tuple(self.silences))
        c.check(self.version == 1, "version", f"unsupported version {self.version!r}; this release reads version: 1")
        c.done("rule set")

    def __getitem__(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(f"no rule {rule_id!r}; rules: {', '.join(r.id for r in self.rules)}")

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __contains__(self, rule_id: object) -> bool:
        return any(r.id == rule_id for r in self.rules)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.rules]

    @property
    def uses_templates(self) -> bool:
        """Whether a rule sets labels or annotations (the backtest then shows what the pages say)."""
        return any(r.labels or r.annotations for r in self.rules)

    def with_rule(self, rule: Rule) -> RuleSet:
        """A copy where ``rule`` replaces the rule of the same id (or is appended)."""
        rules = [rule if r.id == rule.id else r for r in self.rules]
        if rule.id not in self:
            rules.append(rule)
        return self.replace(rules=tuple(rules))

    @classmethod
    def of(cls, rules: RuleSet | Rule | list[Rule] | tuple[Rule, ...]) -> RuleSet:
        """Accept a RuleSet, one Rule or a list of Rules."""
        if isinstance(rules, RuleSet):
            return rules
        if isinstance(rules, Rule):
            return cls((rules,))
        if isinstance(rules, list | tuple):
            return cls(tuple(rules))
        raise TypeError(f"expected a RuleSet, a Rule or a list of Rules, got {type(rules).__name__}")

    def _repr_html_(self) -> str:
        return rules_html(self)
