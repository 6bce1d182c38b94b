"""The Go templates of alert labels and annotations, as Prometheus renders them.

Supported: text with ``{{ ... }}`` actions (``{{-``/``-}}`` trim), pipelines
(``{{ $value | humanize }}``), the variables ``$value``, ``$labels``
(``$labels.instance``), ``$externalLabels``, ``$externalURL`` and their dot forms
(``.Value``, ``.Labels.x``), string and number literals, and the functions
``humanize``, ``humanize1024``, ``humanizeDuration``, ``humanizePercentage``,
``humanizeTimestamp``, ``printf``, ``title``, ``toUpper``, ``toLower``, ``index``,
``reReplaceAll``, ``match``, ``stripPort``, ``first``/``value``/``label`` are not (they
need a live query). Control actions (``if``, ``range``, ``with``) are refused at load
time with :class:`TemplateError`, naming them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ._time import format_duration

__all__ = ["TemplateError", "check_template", "format_labels", "go_float", "metric_unit", "render",
           "summary_template"]


def format_labels(labels: tuple[tuple[str, str], ...]) -> str:
    """``{a="1", b="x"}``, as Prometheus prints a label set."""
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


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


class TemplateError(ValueError):
    """A template outside the supported subset, or malformed."""


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||\(|\)|[^\s|()]+)')
_CONTROL = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}


def go_float(v: float) -> str:
    """Go's ``%v`` of a float64 (``strconv.FormatFloat(v, 'g', -1, 64)``): 1e+06, 0.1, 100000."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    d = Decimal(repr(v))
    sign, digits, exponent = d.as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    exp = len(digits) + int(exponent) - 1  # decimal exponent of the first digit
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:  # as Go prints a float64 with %v: 1e+06, 123456, 0.0001, 1e-05
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if exp >= len(text) - 1:
        return neg + text + "0" * (exp - len(text) + 1)
    if exp >= 0:
        return neg + text[:exp + 1] + "." + text[exp + 1:]
    return neg + "0." + "0" * (-exp - 1) + text


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
        days = int(v) // 86400
        hours = int(v) // 3600 % 24
        minutes = int(v) // 60 % 60
        seconds = int(v) % 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    v, prefix = _small(v)
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(v: Any) -> str:
    return f"{_g4(float(v) * 100)}%"


def humanize_timestamp(v: Any) -> str:
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    t = datetime.fromtimestamp(v, tz=UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".") + " +0000 UTC"


def _printf(fmt: str, *args: Any) -> str:
    out = []
    i = 0
    it = iter(args)
    for m in re.finditer(r"%([-+ 0#]*\d*(?:\.\d+)?)([vdfsgeEqx%])", fmt):
        out.append(fmt[i:m.start()])
        flags, verb = m.groups()
        if verb == "%":
            out.append("%")
        else:
            a: Any = next(it, None)
            if verb == "v":
                out.append(go_float(a) if isinstance(a, float) else str(a))
            elif verb == "s":
                out.append(f"%{flags}s" % (go_float(a) if isinstance(a, float) else a))
            elif verb == "q":
                out.append('"' + str(a).replace('"', '\\"') + '"')
            elif verb == "d":
                out.append(f"%{flags}d" % int(a) if float(a).is_integer() else f"%!d(float64={go_float(a)})")
            else:
                out.append(f"%{flags}{verb}" % float(a))
        i = m.end()
    out.append(fmt[i:])
    return "".join(out)


def _title(s: str) -> str:
    return re.sub(r"(^|[^\w])(\w)", lambda m: m.group(1) + m.group(2).upper(), str(s))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "humanize": humanize, "humanize1024": humanize1024, "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage, "humanizeTimestamp": humanize_timestamp,
    "printf": _printf, "title": _title, "toUpper": lambda s: str(s).upper(), "toLower": lambda s: str(s).lower(),
    "index": lambda m, k: (m or {}).get(k, ""), "reReplaceAll": lambda p, r, s: re.sub(p, r.replace("$", "\\"), s),
    "match": lambda p, s: re.search(p, s) is not None, "stripPort": lambda s: re.sub(r":\d+$", "", str(s)),
}


def _parse(text: str) -> list[tuple[str, Any]]:
    """Pieces: ("text", str) or ("action", tokens)."""
    pieces: list[tuple[str, Any]] = []
    pos = 0
    for m in _ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if m.group(1):
            chunk = chunk.rstrip()
        pieces.append(("text", chunk))
        body = m.group(2).strip()
        if body.startswith("/*"):
            pos = m.end()
            continue
        tokens = _TOKEN.findall(body)
        if not tokens:
            raise TemplateError("empty action {{ }}")
        if tokens[0] in _CONTROL:
            raise TemplateError(f"template action '{tokens[0]}' is not supported (perfalert_lab renders "
                                "variables and functions: $value, $labels.x, humanize, printf, ...)")
        if len(tokens) >= 2 and tokens[0].startswith("$") and tokens[1] in (":=", "="):
            raise TemplateError("assigning template variables is not supported")
        for t in tokens:
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", t) and t not in FUNCTIONS and t not in ("true", "false"):
                raise TemplateError(f"function {t!r} is not supported in templates here")
        pieces.append(("action", tokens))
        pos = m.end()
        if m.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
    tail = text[pos:]
    if "{{" in tail:
        raise TemplateError("unclosed action '{{'")
    pieces.append(("text", tail))
    return pieces


_cache: dict[str, list[tuple[str, Any]]] = {}


def check_template(text: str) -> None:
    """Raise :class:`TemplateError` if ``text`` cannot be rendered here."""
    if text not in _cache:
        _cache[text] = _parse(text)


def _operand(tok: str, labels: dict[str, str], value: float) -> Any:
    if tok.startswith('"'):
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    if tok.startswith("`"):
        return tok[1:-1]
    if tok in ("$value", ".Value"):
        return value
    if tok in ("$labels", ".Labels"):
        return labels
    for prefix in ("$labels.", ".Labels."):
        if tok.startswith(prefix):
            return labels.get(tok[len(prefix):], "")
    if tok.startswith(("$externalLabels", ".ExternalLabels")):
        return "" if "." in tok.lstrip(".$")[1:] else {}
    if tok in ("$externalURL", ".ExternalURL"):
        return ""
    if tok in ("true", "false"):
        return tok == "true"
    try:
        return int(tok) if re.fullmatch(r"-?\d+", tok) else float(tok)
    except ValueError:
        raise TemplateError(f"cannot read {tok!r} in a template") from None


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{v[k]}" for k in sorted(v)) + "]"
    return str(v)


def render(text: str, labels: dict[str, str], value: float) -> str:
    """Render ``text`` with ``$labels`` and ``$value`` as Prometheus does for one alert."""
    if "{{" not in text:
        return text
    check_template(text)
    out = []
    for kind, body in _cache[text]:
        if kind == "text":
            out.append(body)
            continue
        result: Any = None
        for cmd in _split_pipe(body):
            if cmd[0] in FUNCTIONS:
                args = [_operand(t, labels, value) for t in cmd[1:]]
                if result is not None:
                    args.append(result)
                result = FUNCTIONS[cmd[0]](*args)
            else:
                result = _operand(cmd[0], labels, value)
        out.append(_show(result))
    return "".join(out)


def _split_pipe(tokens: list[str]) -> list[list[str]]:
    cmds: list[list[str]] = [[]]
    for t in tokens:
        if t == "|":
            cmds.append([])
        elif t not in ("(", ")"):
            cmds[-1].append(t)
    return [c for c in cmds if c]
