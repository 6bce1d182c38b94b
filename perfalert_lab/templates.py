"""The Go templates of alert labels and annotations, as Prometheus renders them.

Templates are Go ``text/template`` (:mod:`perfalert_lab.gotemplate`: ``if``/``else``,
``with``, ``range``, variables, pipelines, Go's built-ins ``and or not len index slice printf
eq ne lt le gt ge`` ...), executed as Prometheus executes them: ``$labels``, ``$value``,
``$externalLabels`` and ``$externalURL`` declared first, ``.`` the alert's data (``.Labels``,
``.Value``, ...), and Prometheus's functions: ``query`` (a PromQL instant query at the
alert's evaluation time, over the history, where the caller gives one), ``first``, ``label``,
``value``, ``strvalue``, ``sortByLabel``, ``args``, ``reReplaceAll``, ``match``, ``title``,
``toUpper``, ``toLower``, ``stripPort``, ``stripDomain``, ``parseDuration``, ``safeHtml``,
``externalURL``, ``pathPrefix``, ``humanize*``, ``toTime``, ``tableLink``, ``graphLink``.
A template Go would not parse (or an unknown function) is refused at load time with
:class:`TemplateError`; an error while rendering is written into the text as Prometheus
writes it (``<error expanding template: ...>``), and the alert is kept.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ._arrow import repeated
from ._time import format_duration, parse_duration
from .errors import TemplateError, TemplateExecError, UnsupportedTemplate
from .gotemplate import Struct, Template, go_float, go_print, parse
from .re2 import to_python

__all__ = ["TemplateError", "UnsupportedTemplate", "check_template", "format_labels", "format_labels_many",
           "go_float", "metric_unit", "render", "render_many", "summary_template"]


def format_labels(labels: tuple[tuple[str, str], ...]) -> str:
    """``{a="1", b="x"}``, as Prometheus prints a label set."""
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def format_labels_many(columns: dict[str, Any], n: int) -> Any:
    """:func:`format_labels` of ``n`` label sets given as one Arrow string column per name (every set has
    every name), as one Arrow string array, the text made in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not columns:
        return repeated(format_labels(()), n)
    parts: list[Any] = []
    for i, name in enumerate(sorted(columns)):
        escaped = columns[name]
        for old, new in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n")):
            escaped = pc.replace_substring(escaped, old, new)
        parts += [pa.scalar(("{" if i == 0 else '", ') + f'{name}="', pa.string()), escaped]
    return pc.binary_join_element_wise(*parts, pa.scalar('"}', pa.string()), pa.scalar("", pa.string()))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_UNITS = (  # (suffix or word, unit): the first that the metric's name ends with (or holds) wins
    ("_percent", "%"), ("_pct", "%"), ("percent", "%"), ("utilization", "%"), ("utilisation", "%"),
    ("_milliseconds", " ms"), ("_ms", " ms"), ("_seconds", " s"), ("_bytes", " B"), ("_celsius", " °C"),
)


def metric_unit(metric: str) -> str:
    """The unit a metric's name announces, as written after a number (``''`` when none).

    >>> metric_unit("cpu_utilization"), metric_unit("http_request_duration_seconds"), metric_unit("load")
    ('%', ' s', '')
    """
    name = metric.lower()
    for key, unit in _UNITS:
        if name.endswith(key) or (not key.startswith("_") and key in name):
            return unit
    return ""


def summary_template(rule: Any, metric: str | None = None) -> str:
    """The seed's alert message as a Go template: rule name, what was compared, operator and
    threshold, the current value (``$value``, humanized in the metric's unit) and severity. Our
    default summary renders it, and :func:`to_prometheus` exports it, so both pages read the same
    (``rule`` is one of our rules).

    >>> from perfalert_lab.rules import Rule
    >>> summary_template(Rule(id="cpu-high", name="High CPU usage", metric="cpu_utilization", threshold=80,
    ...                       severity="high"))
    'High CPU usage: cpu_utilization > 80% (current: {{ $value | humanize }}%, severity: high)'
    """
    metric = metric if metric is not None else rule.metric
    unit = metric_unit(metric)
    what = metric
    if rule.window is not None:
        what = f"{rule.aggregate}({metric}[{format_duration(rule.window)}])"
    current = "{{ $value | humanizeDuration }}" if unit == " s" else "{{ $value | humanize }}" + unit
    head = f"{rule.name}: {what} {rule.op} {rule.threshold:g}{unit}"
    if "{{" in head:  # literal text that looks like an action is printed as a string
        head = "{{ " + '"' + head.replace("\\", "\\\\").replace('"', '\\"') + '"' + " }}"
    return f"{head} (current: {current}, severity: {rule.severity})"


def _g4(v: float) -> str:
    """Go's ``%.4g`` (Python's, with Go's spelling of NaN and infinities)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.4g}"


def humanize(v: Any) -> str:
    v = float(v)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return f"{_g4(v)}{prefix}"
    v, prefix = _small(v)
    return f"{_g4(v)}{prefix}"


def _small(v: float) -> tuple[float, str]:
    """A value below 1 scaled up by thousands, with its prefix (m, u, n, ... as Prometheus writes)."""
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return v, prefix


def humanize1024(v: Any) -> str:
    v = float(v)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return f"{_g4(v)}{prefix}"


def humanize_duration(v: Any) -> str:
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return f"{v:.4g}s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        d = int(v) if v < 2**63 else -(2**63)  # Go's int64(v) on amd64: out of range is the smallest int64
        days, hours = _go_quo(d, 86400), _go_quo(d, 3600) - _go_quo(d, 86400) * 24
        minutes, seconds = _go_quo(d, 60) - _go_quo(d, 3600) * 60, d - _go_quo(d, 60) * 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    v, prefix = _small(v)
    return f"{_g4(v)}{prefix}s"


def _go_quo(a: int, b: int) -> int:
    """Go's integer division (toward zero; Python's ``//`` floors)."""
    return -(-a // b) if a < 0 else a // b


def humanize_percentage(v: Any) -> str:
    return f"{_g4(float(v) * 100)}%"


def humanize_timestamp(v: Any) -> str:
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return to_time(v)


def to_time(v: Any) -> str:
    """Prometheus's ``toTime`` (and ``humanizeTimestamp`` of a finite value): seconds since the epoch to
    nanoseconds as an int64 (an error where they overflow it), then to Prometheus's millisecond time,
    printed as Go prints a UTC time (``2023-11-14 22:13:20.123 +0000 UTC``)."""
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        raise ValueError("value is NaN or Inf")
    ns = v * 1e9
    if ns > 2.0**63 or ns < -(2.0**63):
        raise ValueError(f"{go_float(v)} cannot be represented as a nanoseconds timestamp since it overflows int64")
    n = int(ns) if ns < 2.0**63 else -(2**63)  # (Go's int64 of exactly 2^63 on amd64)
    t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=_go_quo(n, 10**6))  # model.TimeFromUnixNano
    return t.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".") + " +0000 UTC"


@functools.lru_cache(maxsize=256)
def _printf_parts(fmt: str) -> tuple[tuple[str, str, str], ...]:
    """``fmt`` as (text before, flags, verb) per verb, and the text after the last (verb ``""``); a ``%`` that
    ends the format has the verb ``$`` (Go writes ``%!(NOVERB)``)."""
    out, i = [], 0
    for m in re.finditer(r"%([-+ 0#]*\d*(?:\.\d*)?)([a-zA-Z%]|\Z)", fmt):
        out.append((fmt[i:m.start()], m.group(1), m.group(2) or "$"))  # "$": a % that ends the format
        i = m.end()
    out.append((fmt[i:], "", ""))
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _float_format(fmt: str) -> tuple[str, int] | None:
    """``fmt`` as one Python format and its number of verbs when every verb is a float one that Python writes
    as Go does for finite values (``%.1f``, ``%e``, ``%F``, ``%.3g``; not ``%g`` without a precision, which is
    Go's shortest form) and ``%%``: what ``_printf`` writes for finite float arguments, in one ``%`` (None
    otherwise)."""
    out, verbs = [], 0
    for before, flags, verb in _printf_parts(fmt):
        out.append(before.replace("%", "%%"))
        if verb == "%":
            out.append("%%")
        elif (verb in ("f", "F", "e", "E") or (verb in ("g", "G") and "." in flags)) and "#" not in flags:
            out.append(f"%{flags}{'f' if verb == 'F' else verb}")
            verbs += 1
        elif verb:
            return None
    return "".join(out), verbs


_FLOAT_FLAGS = re.compile(r"([-+ 0#]*)(\d*)(?:\.(\d*))?")


def _float_verb(flags: str, verb: str, a: float) -> str:
    """Go's ``fmt`` of one float64 with ``%f %F %e %E %g %G`` and ``flags`` (sign, padding, width,
    precision): Python's ``%`` where it writes the same; Go's own spelling of NaN and the infinities
    (``NaN``, ``+Inf``, ``-Inf``; a sign before NaN only when asked for, never zero-padded), and ``%g``
    without a precision as the shortest digits that read back as the value (as ``%v``)."""
    m = _FLOAT_FLAGS.fullmatch(flags)
    finite = math.isfinite(a)
    if m is None or (finite and "#" in flags) or (finite and (verb in "fFeE" or m.group(3) is not None)):
        return f"%{flags}{'f' if verb == 'F' else verb}" % a
    signs, width = m.group(1), int(m.group(2) or 0)
    zero = finite and "0" in signs and "-" not in signs
    if a != a:
        body = _sign(signs) + "NaN"
    else:
        body = go_float(a)
        if verb in ("G", "E"):
            body = body.replace("e", "E")
        if body[0] not in "+-":
            body = _sign(signs) + body
        elif body[0] == "+" and " " in signs and "+" not in signs:  # Go: +Inf with the space flag
            body = " " + body[1:]
    return _padded(body, signs, width, zero)


def _sign(signs: str) -> str:
    """What Go writes before a number that is not negative: ``+`` with the plus flag, else a space with the
    space flag."""
    return "+" if "+" in signs else " " if " " in signs else ""


def _padded(body: str, signs: str, width: int, zero: bool) -> str:
    """``body`` to ``width`` as Go pads: on the right with ``-``, with zeros after the sign with ``0``."""
    pad = width - len(body)
    if pad <= 0:
        return body
    if "-" in signs:
        return body + " " * pad
    if zero:
        sign = body[0] if body[0] in "+- " else ""
        return sign + "0" * pad + body[len(sign):]
    return " " * pad + body


def _hex_float(flags: str, a: float, upper: bool) -> str:
    """Go's ``%x`` of a float64: the shortest hexadecimal mantissa and a binary exponent of at least two
    digits (``0x1.8p+01``; ``%X`` in capitals); NaN and the infinities as ``%g`` writes them."""
    m = _FLOAT_FLAGS.fullmatch(flags)
    if not math.isfinite(a) or m is None:
        return _float_verb(flags, "g", a)
    signs, width = m.group(1), int(m.group(2) or 0)
    sign = "-" if math.copysign(1.0, a) < 0 else _sign(signs)
    body = "0x0p+00"
    if a != 0:
        mant, exp = math.frexp(abs(a))  # abs(a) = mant * 2**exp, 0.5 <= mant < 1
        digits = f"{int((mant * 2 - 1) * (1 << 52)):013x}".rstrip("0")
        body = f"0x1{'.' + digits if digits else ''}p{'+' if exp >= 1 else '-'}{abs(exp - 1):02d}"
    return _padded(sign + (body.upper() if upper else body), signs, width, "0" in signs and "-" not in signs)


def _printf(fmt: str, *args: Any) -> str:
    quick = _float_format(fmt) if isinstance(fmt, str) else None
    if quick is not None and len(args) == quick[1] and all(type(a) is float and a - a == 0.0 for a in args):
        return quick[0] % args  # (finite floats; other arguments: as below, where they fail as they did)
    out = []
    used = 0
    parts = _printf_parts(fmt) if isinstance(fmt, str) else _printf_parts.__wrapped__(fmt)  # (its error as before)
    for before, flags, verb in parts:
        out.append(before)
        if not verb:
            break
        if verb == "%":
            out.append("%")
        elif verb == "$":
            out.append("%!(NOVERB)")
        elif used >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_go_verb(flags, verb, args[used]))
            used += 1
    if used < len(args):  # Go lists the arguments no verb took
        out.append("%!(EXTRA " + ", ".join(f"{_go_type(a)}={go_print(a)}" for a in args[used:]) + ")")
    return "".join(out)


def _go_type(a: Any) -> str:
    if isinstance(a, bool):
        return "bool"
    if isinstance(a, float):
        return "float64"
    if isinstance(a, int):
        return "int"
    if isinstance(a, str):
        return "string"
    return type(a).__name__


def _go_verb(flags: str, verb: str, a: Any, sign: bool = False) -> str:
    """One argument as Go's ``fmt`` prints it with ``verb`` and ``flags``; a verb for another type is named
    with the argument's type and its value as ``%v`` prints it (``%!d(string=ab)``). Go reads ``%+v`` as a
    request for field names, not for a sign, except inside such a name (``sign``: ``%!d(float64=+3)``)."""
    if verb == "v" and not sign:
        flags = flags.replace("+", "")
    if isinstance(a, bool):
        if verb in "vt":
            return f"%{flags.replace('+', '')}s" % ("true" if a else "false")
    elif isinstance(a, float):  # ($value)
        if verb == "v":
            return _float_verb(flags, "g", a)
        if verb in "fFeEgG":
            return _float_verb(flags, verb, a)
        if verb in "xX":
            return _hex_float(flags, a, verb == "X")
        if verb == "b":  # the integer mantissa and its binary exponent (53 bits; subnormals over 2**-1074)
            if not math.isfinite(a):
                return _float_verb(flags, "g", a)
            if abs(a) < sys.float_info.min:  # zero and the subnormals
                return f"{'-' if math.copysign(1.0, a) < 0 else ''}{abs(int(math.ldexp(a, 1074)))}p-1074"
            mant, exp = math.frexp(a)  # a = mant * 2**exp
            return f"{int(mant * 2**53)}p{exp - 53:+d}"
    elif isinstance(a, int):
        if verb in "vdxXo":
            return f"%{flags}{'d' if verb == 'v' else verb}" % a
        if verb == "b" and (m := _FLOAT_FLAGS.fullmatch(flags)) is not None:
            body = ("+" if "+" in m.group(1) and a >= 0 else "") + format(a, "b")
            return _padded(body, m.group(1), int(m.group(2) or 0), "0" in m.group(1) and "-" not in m.group(1))
        if verb == "c" and 0 <= a < 0x110000:
            return chr(a)
        if verb == "U" and a >= 0:
            return f"U+{a:04X}"
    elif isinstance(a, str):
        if verb in "vs":
            return f"%{flags}s" % a
        if verb == "q":  # (a precision, which Go applies before quoting, is not taken)
            quoted = '"' + a.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
            return f"%{re.sub(r'[.][0-9]*', '', flags)}s" % quoted
        if verb in "xX":
            text = a.encode().hex()
            return text.upper() if verb == "X" else text
    elif verb in "vs":
        return go_print(a)
    else:
        return f"%!{verb}({go_print(a)})" if a is not None else f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(a)}={_go_verb(flags, 'v', a, sign=True)})"


def _title(s: str) -> str:
    return re.sub(r"(^|[^\w])(\w)", lambda m: m.group(1) + m.group(2).upper(), str(s))


def _go_replacement(repl: str) -> str:
    """Go's regexp replacement (``$1``, ``${1}``, ``$name``, ``$$``) in Python's syntax."""
    out = re.sub(r"\$(\$)|\$\{(\w+)\}|\$(\w+)",
                 lambda m: "$" if m.group(1) else f"\\g<{m.group(2) or m.group(3)}>", repl.replace("\\", "\\\\"))
    return out


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    rx = re.compile(to_python(pattern))
    try:
        return rx.sub(_go_replacement(repl), str(text))
    except (re.error, IndexError):  # Go: a group that does not exist is replaced by nothing
        return rx.sub(lambda m: re.sub(r"\\g<(\w+)>", lambda g: (m.groupdict().get(g.group(1)) or (
            m.group(int(g.group(1))) if g.group(1).isdigit() and int(g.group(1)) <= rx.groups else "") or ""),
            _go_replacement(repl)), str(text))


_HOST_PORT = re.compile(r"\[([^\]]*)\]:(\d*)|([^:\[\]]*):(\d*)")


def _split_host_port(text: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort: ``(host, port)``, or None when the text has no port."""
    m = _HOST_PORT.fullmatch(text)
    if m is None:
        return None
    return (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))


def _strip_port(host_port: str) -> str:
    """The host of ``host:port``, or the input when it has no port."""
    split = _split_host_port(str(host_port))
    return str(host_port) if split is None else split[0]


def _strip_domain(host_port: str) -> str:
    """The host name without its domain (``foo.example.com:9090`` -> ``foo:9090``); IPs unchanged."""
    text = str(host_port)
    split = _split_host_port(text)
    host, port = (text, None) if split is None else split
    if re.fullmatch(r"[\d.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", host):
        return text
    short = host.split(".", 1)[0]
    return f"{short}:{port}" if port is not None else short


def _parse_duration(text: str) -> float:
    return parse_duration(str(text)).total_seconds()


def _first(v: Any) -> Any:
    if not isinstance(v, list) or not v:
        raise ValueError("first() called on vector with no elements")
    return v[0]


def _link(expr: str, tab: int) -> str:
    return f"/graph?g0.expr={urllib.parse.quote_plus(str(expr))}&g0.tab={tab}"


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "humanize": humanize, "humanize1024": humanize1024, "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage, "humanizeTimestamp": humanize_timestamp,
    "printf": _printf, "title": _title, "toUpper": lambda s: str(s).upper(), "toLower": lambda s: str(s).lower(),
    "reReplaceAll": _re_replace_all, "match": lambda p, s: re.search(to_python(p), str(s)) is not None,
    "stripPort": _strip_port, "stripDomain": _strip_domain, "parseDuration": _parse_duration,
    "safeHtml": lambda s: str(s), "first": _first,
    "label": lambda name, sample: (sample or {}).get("Labels", {}).get(name, ""),
    "value": lambda sample: (sample or {}).get("Value"),
    "strvalue": lambda sample: (sample or {}).get("Labels", {}).get("__value__", ""),
    "sortByLabel": lambda name, v: sorted(v or [], key=lambda smp: smp["Labels"].get(name, "")),
    "args": lambda *a: {f"arg{i}": x for i, x in enumerate(a)},
    "tableLink": lambda e: _link(e, 1), "graphLink": lambda e: _link(e, 0),
    "toTime": to_time, "externalURL": lambda: "", "pathPrefix": lambda: "",
}
# rendered per call: query needs the history and the alert's evaluation time
_CONTEXT_FUNCTIONS = ("query",)
_DEFS = ("$labels", "$externalLabels", "$externalURL", "$value")


_cache: dict[str, Template] = {}


def check_template(text: str) -> None:
    """Raise :class:`TemplateError` if ``text`` is not a template Prometheus would load."""
    if text not in _cache:
        _cache[text] = parse(text, frozenset(FUNCTIONS) | frozenset(_CONTEXT_FUNCTIONS), _DEFS)


def render(text: str, labels: dict[str, str], value: float, *,
           query: Callable[[str], list[Any]] | None = None, external_url: str = "") -> str:
    """Render ``text`` for one alert as Prometheus does: ``$labels``, ``$value``; ``query`` runs a
    PromQL instant query at the alert's evaluation time (where the caller has the history)."""
    if "{{" not in text:
        return text
    check_template(text)
    try:
        data, variables = _alert_data(labels, value, external_url)
        return _cache[text].execute(data, _functions(query, external_url), variables)
    except TemplateExecError as exc:  # Prometheus keeps the alert and writes the error into the text
        return f"<error expanding template: error executing template: {exc}>"


def _alert_data(labels: dict[str, str], value: float, external_url: str) -> tuple[Struct, dict[str, Any]]:
    """An alert's ``.`` and the variables Prometheus declares for its templates."""
    data = Struct(Labels=labels, ExternalLabels={}, ExternalURL=external_url, Value=value)
    return data, {"$labels": labels, "$externalLabels": {}, "$externalURL": external_url, "$value": value}


def _functions(query: Callable[[str], list[Any]] | None, external_url: str) -> dict[str, Callable[..., Any]]:
    """The functions a template calls: Prometheus's, with ``query`` where the caller has the history."""
    def no_query(q: str) -> list[Any]:
        raise ValueError("query is not available here (templates of our own rules have no PromQL history)")

    return {**FUNCTIONS, "query": query or no_query, "externalURL": lambda: external_url,
            "pathPrefix": lambda: _path_prefix(external_url)}


def render_many(text: str, labels: Sequence[dict[str, str]], inst: np.ndarray, values: np.ndarray, *,
                at_ms: np.ndarray | None = None, query: Callable[[str, int], list[Any]] | None = None,
                external_url: str = "") -> Any:
    """``render(text, labels[inst[k]], values[k], query=<at at_ms[k]>)`` for every alert ``k``, as one Arrow
    string array, each distinct input rendered once: every part of the template (its top-level nodes,
    :meth:`~perfalert_lab.gotemplate.Template.parts`) is rendered once if it reads neither the labels nor the
    value, once per instance if it reads ``$labels``, per value if ``$value``, per both if both (or ``.``),
    and the parts are joined in Arrow. A template that calls ``query`` reads the alert's time: it is
    rendered per alert. An alert one of whose parts fails is rendered whole, so its text is Prometheus's
    error text. Equal to :func:`render` alert by alert (the tests hold it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    inst = np.asarray(inst, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    n = len(inst)
    if "{{" not in text:
        return repeated(text, n)
    check_template(text)

    def whole(k: int) -> str:
        at = int(at_ms[k]) if at_ms is not None else 0
        q = (lambda e: query(e, at)) if query is not None else None  # noqa: E731 - bound to this alert's time
        return render(text, labels[int(inst[k])], float(values[k]), query=q, external_url=external_url)

    template = _cache[text]
    if "query" in template.reads()[2]:
        return pa.array([whole(k) for k in range(n)], type=pa.string())
    bits = values.view(np.int64)  # a value by its bits: -0.0 is not 0.0 (Go prints "-0"), NaN is one key
    failed = np.zeros(n, dtype=bool)
    pieces = []
    functions = _functions(None, external_url)  # (a part that calls query is not rendered here)
    for part in template.parts():
        names, dot, _ = part.reads()
        by_labels, by_value = dot or bool(names & {"$", "$labels"}), dot or bool(names & {"$", "$value"})
        codes = _groups(inst if by_labels else None, bits if by_value else None, n)
        one = np.zeros(int(codes.max()) + 1 if n else 0, dtype=np.int64)
        one[codes] = np.arange(n)  # an alert of each group (they all render alike)
        out: list[str] = []
        bad = np.zeros(len(one), dtype=bool)
        # a part that only passes the value through functions ({{ $value | humanize }}) is called as Python
        fast = part.value_function(functions, "$value", "Value") if by_value and not by_labels else None
        for g, k in enumerate(one.tolist()):
            value = float(values[k])
            if fast is not None:
                try:
                    out.append(fast(value))
                    continue
                except Exception:  # noqa: BLE001 - the interpreter says what Prometheus would
                    pass
            try:
                data, variables = _alert_data(labels[int(inst[k])], value, external_url)
                out.append(part.execute(data, functions, variables))
            except TemplateExecError:
                out.append("")
                bad[g] = True
        pieces.append(pa.array(out, type=pa.string()).take(pa.array(codes)))
        failed |= bad[codes]
    joined = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, "")
    if failed.any():
        redo = np.flatnonzero(failed)
        joined = pc.replace_with_mask(joined, pa.array(failed), pa.array([whole(int(k)) for k in redo],
                                                                          type=pa.string()))
    return joined


def _groups(inst: np.ndarray | None, bits: np.ndarray | None, n: int) -> np.ndarray:
    """Group codes of the alerts by instance, by value bits, by both or (neither) one group."""
    if inst is None and bits is None:
        return np.zeros(n, dtype=np.int64)
    if bits is None or inst is None:
        one = inst if bits is None else bits
        assert one is not None
        return np.asarray(pd.factorize(one)[0], dtype=np.int64)
    by_value, uniq = pd.factorize(bits)
    width = max(len(uniq), 1)
    if n and int(inst.max()) + 1 > (2**62) // width:  # the pair does not fit one int64: group the pairs
        return np.asarray(pd.factorize(pd.MultiIndex.from_arrays([inst, bits]))[0], dtype=np.int64)
    return np.asarray(pd.factorize(inst * width + by_value)[0], dtype=np.int64)


def _path_prefix(url: str) -> str:
    return urllib.parse.urlparse(url).path
