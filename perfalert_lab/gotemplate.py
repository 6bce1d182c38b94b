"""Go's ``text/template``, as Prometheus uses it for alert labels and annotations.

A template is parsed once (:func:`parse`, refusing what Go's parser refuses, with the
construct named) and executed many times (:meth:`Template.execute`) with a function map.
What is here is what alert templates use:

- text and actions, ``{{-``/``-}}`` trim markers, comments ``{{/* ... */}}``;
- pipelines (``x | f a``), parenthesised pipelines, fields of maps and structs
  (``.Labels.job``, ``$labels.job``, ``(first $r).Value``), string, raw string, number, char,
  ``true``/``false``/``nil`` literals;
- variables: ``$x := pipeline`` (scoped to the enclosing block), ``$x = pipeline``;
- ``if``/``else if``/``else``, ``with``/``else with``/``else``, ``range`` over lists and maps
  (keys in sorted order, as Go ranges over a map) with ``$i, $e :=`` and ``else``, ``break``,
  ``continue``;
- Go's built-in functions ``and or not len index slice print printf println eq ne lt le gt ge
  html js urlquery``, with Go's rules (``and``/``or`` return an operand and stop early; comparing
  an integer with a float is an error).

``define``, ``template`` and ``block`` (named templates) and ``call`` are refused at parse time:
alert templates have no other templates to call. An execution error raises
:class:`ExecError`; Prometheus then writes ``<error expanding template: ...>`` in the text and
keeps the alert, which :mod:`perfalert_lab.templates` does too.
"""

from __future__ import annotations

import html
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import TemplateError as GoTemplateError
from .errors import TemplateExecError as ExecError
from .errors import UnsupportedTemplate

__all__ = ["ExecError", "GoTemplateError", "Struct", "Template", "go_float", "go_print", "parse", "truth"]


class Struct(dict):  # type: ignore[type-arg]
    """A Go struct: a missing field is an error (a map's missing key is the zero value)."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# --------------------------------------------------------------------------- lexing

_ACTION = re.compile(r"\{\{(- )?(.*?)( -)?\}\}", re.S)
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>/\*.*?\*/)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\)(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.X | re.S)
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block", "nil",
             "true", "false"}


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(body: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None:
            raise GoTemplateError(f"unexpected {body[pos]!r} in action {{{{{body.strip()}}}}}")
        kind = m.lastgroup or ""
        if kind not in ("space", "comment"):
            text = m.group(0)
            if kind == "ident" and text in _KEYWORDS:
                kind = "keyword"
            out.append(_Tok(kind, text))
        pos = m.end()
    return out


# --------------------------------------------------------------------------- nodes


@dataclass
class _Arg:
    kind: str  # field | var | dot | lit | ident | pipe | nil
    value: Any = None
    chain: tuple[str, ...] = ()


@dataclass
class _Pipe:
    cmds: list[list[_Arg]]
    decl: list[str] = field(default_factory=list)
    assign: bool = False


@dataclass
class _Node:
    kind: str  # text | action | if | with | range | break | continue
    text: str = ""
    pipe: _Pipe | None = None
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)


# --------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = self._split(text)
        self.pos = 0
        self.vars: list[list[str]] = [["$"]]
        self.loops = 0

    @staticmethod
    def _split(text: str) -> list[tuple[str, Any]]:
        """Text pieces and actions' tokens, trim markers applied."""
        out: list[tuple[str, Any]] = []
        pos = 0
        trim_next = False
        for m in _ACTION.finditer(text):
            chunk = text[pos:m.start()]
            if trim_next:
                chunk = chunk.lstrip()
            if m.group(1):
                chunk = chunk.rstrip()
            if chunk:
                out.append(("text", chunk))
            body = m.group(2)
            if body.strip().startswith("/*"):
                if not body.strip().endswith("*/"):
                    raise GoTemplateError("comment ends before closing delimiter")
            else:
                toks = _tokens(body)
                if not toks:
                    raise GoTemplateError("missing value for command")
                out.append(("action", toks))
            trim_next = bool(m.group(3))
            pos = m.end()
        tail = text[pos:]
        if trim_next:
            tail = tail.lstrip()
        if "{{" in tail:
            raise GoTemplateError("unclosed action")
        if tail:
            out.append(("text", tail))
        return out

    def parse(self) -> list[_Node]:
        nodes, stop = self._list()
        if stop is not None:
            raise GoTemplateError(f"unexpected {{{{{stop}}}}}")
        return nodes

    def _list(self) -> tuple[list[_Node], str | None]:
        """Nodes up to ``{{end}}`` or ``{{else ...}}`` (returned as the stop word, tokens left in place)."""
        nodes: list[_Node] = []
        while self.pos < len(self.items):
            kind, value = self.items[self.pos]
            if kind == "text":
                nodes.append(_Node("text", text=value))
                self.pos += 1
                continue
            toks: list[_Tok] = value
            head = toks[0]
            if head.kind == "keyword" and head.text in ("end", "else"):
                return nodes, head.text
            self.pos += 1
            if head.kind == "keyword" and head.text in ("if", "with", "range"):
                nodes.append(self._control(head.text, toks[1:]))
            elif head.kind == "keyword" and head.text in ("break", "continue"):
                if len(toks) > 1:
                    raise GoTemplateError(f"unexpected {toks[1].text!r} in {head.text}")
                nodes.append(_Node(head.text))
            elif head.kind == "keyword" and head.text in ("define", "template", "block"):
                raise UnsupportedTemplate(f"template action '{head.text}' is not supported (alert templates "
                                          "have no named templates to call)")
            else:
                nodes.append(_Node("action", pipe=self._pipeline(toks, declare_ok=True)))
        return nodes, None

    def _control(self, word: str, toks: list[_Tok]) -> _Node:
        self.vars.append([])
        node = _Node(word, pipe=self._pipeline(toks, declare_ok=True, in_range=word == "range"))
        if word == "range":
            self.loops += 1
        node.body, stop = self._list()
        if word == "range":
            self.loops -= 1
        if stop is None:
            raise GoTemplateError(f"unexpected EOF: {{{{{word}}}}} has no {{{{end}}}}")
        toks_stop: list[_Tok] = self.items[self.pos][1]
        self.pos += 1
        if stop == "else":
            rest = toks_stop[1:]
            self.vars[-1] = []
            if rest and rest[0].kind == "keyword" and rest[0].text in ("if", "with") and word in ("if", "with"):
                if rest[0].text != word:
                    raise GoTemplateError(f"{{{{else {rest[0].text}}}}} inside {{{{{word}}}}}")
                node.orelse = [self._control(word, rest[1:])]  # 'else if' / 'else with': a nested one
                self.vars.pop()
                return node
            if rest:
                raise GoTemplateError(f"unexpected {rest[0].text!r} in else")
            node.orelse, stop2 = self._list()
            if stop2 != "end":
                raise GoTemplateError(f"expected {{{{end}}}} after {{{{else}}}} of {{{{{word}}}}}")
            end_toks: list[_Tok] = self.items[self.pos][1]
            if len(end_toks) > 1:
                raise GoTemplateError(f"unexpected {end_toks[1].text!r} in end")
            self.pos += 1
        elif len(toks_stop) > 1:
            raise GoTemplateError(f"unexpected {toks_stop[1].text!r} in end")
        self.vars.pop()
        return node

    def _known(self, name: str) -> bool:
        return any(name in scope for scope in self.vars)

    def _pipeline(self, toks: list[_Tok], *, declare_ok: bool = False, in_range: bool = False) -> _Pipe:
        decl: list[str] = []
        assign = False
        # '$x :=', '$x =', and in range '$i, $e :='
        names = []
        i = 0
        while declare_ok and i + 1 < len(toks) and toks[i].kind == "var" and "." not in toks[i].text[1:] and \
                toks[i + 1].kind in ("declare", "assign", "comma"):
            names.append(toks[i].text)
            if toks[i + 1].kind == "comma":
                if not in_range or len(names) > 1:
                    raise GoTemplateError("too many declarations in command")
                i += 2
                continue
            assign = toks[i + 1].kind == "assign"
            i += 2
            break
        else:
            if names:  # '$i,' without ':='
                raise GoTemplateError("expected := after range variables")
        if names:
            for n in names:
                if assign and not self._known(n):
                    raise GoTemplateError(f"undefined variable: {n}")
            decl = names
        pipe = _Pipe(self._commands(toks[i:]), decl, assign)
        if decl and not assign:
            self.vars[-1].extend(decl)
        if not pipe.cmds:
            raise GoTemplateError("missing value for command")
        return pipe

    def _commands(self, toks: list[_Tok]) -> list[list[_Arg]]:
        cmds: list[list[_Arg]] = [[]]
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "pipe":
                if not cmds[-1]:
                    raise GoTemplateError("missing command before '|'")
                cmds.append([])
                i += 1
                continue
            if t.kind == "lparen":
                depth, j = 1, i + 1
                while j < len(toks) and depth:
                    depth += {"lparen": 1, "rparen": -1}.get(toks[j].kind, 0)
                    j += 1
                if depth:
                    raise GoTemplateError("unclosed left paren")
                close = toks[j - 1].text
                chain = tuple(close.split(".")[1:])
                cmds[-1].append(_Arg("pipe", _Pipe(self._commands(toks[i + 1:j - 1])), chain))
                i = j
                continue
            cmds[-1].append(self._operand(t))
            i += 1
        if not cmds[-1]:
            raise GoTemplateError("missing command after '|'" if len(cmds) > 1 else "missing value for command")
        for k, cmd in enumerate(cmds[1:], start=1):
            if cmd[0].kind not in ("ident",) and len(cmd) == 1:
                raise GoTemplateError(f"non executable command in pipeline stage {k + 1}")
        return cmds

    def _operand(self, t: _Tok) -> _Arg:
        if t.kind == "field":
            return _Arg("field", chain=tuple(t.text.split(".")[1:]))
        if t.kind == "dot":
            return _Arg("dot")
        if t.kind == "var":
            name, *chain = t.text.split(".")
            if not self._known(name):
                raise GoTemplateError(f"undefined variable \"{name}\"")
            return _Arg("var", name, tuple(chain))
        if t.kind == "string":
            return _Arg("lit", json.loads(t.text) if "\\" not in t.text else _go_unquote(t.text))
        if t.kind == "raw":
            return _Arg("lit", t.text[1:-1])
        if t.kind == "char":
            return _Arg("lit", ord(_go_unquote('"' + t.text[1:-1] + '"')))
        if t.kind == "number":
            return _Arg("lit", _number(t.text))
        if t.kind == "keyword" and t.text in ("true", "false"):
            return _Arg("lit", t.text == "true")
        if t.kind == "keyword" and t.text == "nil":
            return _Arg("nil")
        if t.kind == "ident":
            return _Arg("ident", t.text)
        if t.kind == "rparen":
            raise GoTemplateError("unexpected right paren")
        raise GoTemplateError(f"unexpected {t.text!r} in operand")


def _go_unquote(text: str) -> str:
    try:
        return str(json.loads(text))
    except ValueError:
        return bytes(text[1:-1], "utf-8").decode("unicode_escape")


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    try:
        if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", t):
            return int(t, 16)
        if re.fullmatch(r"[-+]?0[bB][01]+", t):
            return int(t, 2)
        if re.fullmatch(r"[-+]?0[oO][0-7]+", t):
            return int(t, 8)
        if re.fullmatch(r"[-+]?\d+", t):
            return int(t)
        return float(t)
    except ValueError:
        raise GoTemplateError(f"bad number syntax: {text!r}") from None


# --------------------------------------------------------------------------- values


def truth(v: Any) -> bool:
    """Go's truth of a value in ``if``/``with``/``and``/``or``/``not``."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, Struct):
        return True
    if isinstance(v, str | list | tuple | dict):
        return len(v) > 0
    return True


def go_float(v: float) -> str:
    """Go's ``%v`` of a float64 (``strconv.FormatFloat(v, 'g', -1, 64)``): 1e+06, 0.1, 100000."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    # the shortest digits that read back as v (Python's repr finds the same as Go's), and where the point is
    r = float.__repr__(v)
    neg = "-" if r[0] == "-" else ""
    mant, _, e = r.lstrip("-").partition("e")
    whole, _, frac = mant.partition(".")
    digits = whole + frac
    significant = digits.lstrip("0")
    exp = len(whole) + (int(e) if e else 0) - (len(digits) - len(significant)) - 1  # of the first digit
    text = significant.rstrip("0") or "0"
    if exp < -4 or exp >= 6:  # as Go prints a float64 with %v: 1e+06, 123456, 0.0001, 1e-05
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if exp >= len(text) - 1:
        return neg + text + "0" * (exp - len(text) + 1)
    if exp >= 0:
        return neg + text[:exp + 1] + "." + text[exp + 1:]
    return neg + "0." + "0" * (-exp - 1) + text



def go_print(v: Any) -> str:
    """A value as Go's ``fmt.Print`` writes it."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, Struct):
        return "{" + " ".join(go_print(x) for x in v.values()) + "}"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_print(k)}:{go_print(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(go_print(x) for x in v) + "]"
    return str(v)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _comparable(a: Any, b: Any, name: str) -> None:
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka == "other":
        if ka == "other" or kb == "other":
            raise ExecError(f"error calling {name}: invalid type for comparison")
        raise ExecError(f"error calling {name}: incompatible types for comparison")


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise ExecError("error calling eq: missing argument for comparison")
    for b in others:
        if a is None or b is None:
            if a is None and b is None:
                return True
            continue
        _comparable(a, b, "eq")
        if a == b:
            return True
    return False


def _ordered(name: str, test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        _comparable(a, b, name)
        if _kind(a) == "bool":
            raise ExecError(f"error calling {name}: invalid type for comparison")
        return test(a, b)
    return compare


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(item, dict):
            if not isinstance(k, str) and not isinstance(item, Struct):
                raise ExecError(f"error calling index: value has type {_kind(k)}; should be string")
            item = item.get(k, "")
        elif isinstance(item, list | tuple | str):
            if not isinstance(k, int) or isinstance(k, bool):
                raise ExecError("error calling index: cannot index slice/array with non-integer")
            if not 0 <= k < len(item):
                raise ExecError(f"error calling index: index out of range: {k}")
            item = item[k] if not isinstance(item, str) else ord(item[k])
        elif item is None:
            raise ExecError("error calling index: index of untyped nil")
        else:
            raise ExecError(f"error calling index: can't index item of type {type(item).__name__}")
    return item


def _slice(item: Any, *idx: Any) -> Any:
    if not isinstance(item, str | list | tuple):
        raise ExecError(f"error calling slice: can't slice item of type {type(item).__name__}")
    if len(idx) > 3 or (len(idx) == 3 and isinstance(item, str)):
        raise ExecError("error calling slice: too many slice indexes")
    bounds = [int(i) for i in idx]
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise ExecError(f"error calling slice: index out of range: {lo}:{hi}")
    return item[lo:hi]


def _len(v: Any) -> int:
    if isinstance(v, str | list | tuple | dict):
        return len(v)
    raise ExecError(f"error calling len: len of type {type(v).__name__}")


def _sprint(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(a))
    return "".join(out)


BUILTINS: dict[str, Callable[..., Any]] = {
    "not": lambda v: not truth(v),
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "println": lambda *a: " ".join(go_print(x) for x in a) + "\n",
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _ordered("lt", lambda a, b: a < b),
    "le": _ordered("le", lambda a, b: a <= b),
    "gt": _ordered("gt", lambda a, b: a > b),
    "ge": _ordered("ge", lambda a, b: a >= b),
    "html": lambda *a: html.escape(_sprint(*a), quote=True).replace("&#x27;", "&#39;"),
    "js": lambda *a: json.dumps(_sprint(*a))[1:-1].replace("'", "\\'").replace("<", "\\u003C")
    .replace(">", "\\u003E"),
    "urlquery": lambda *a: urllib.parse.quote_plus(_sprint(*a)),
}
# and/or take their operands unevaluated (they stop early); printf is the caller's (Go's fmt)
_LAZY = {"and", "or"}


# --------------------------------------------------------------------------- execution


@dataclass
class Template:
    """A parsed template; :meth:`execute` renders it."""

    text: str
    nodes: list[_Node]
    functions: frozenset[str]

    def execute(self, dot: Any, functions: dict[str, Callable[..., Any]],
                variables: dict[str, Any] | None = None) -> str:
        """Render with ``dot`` as ``.`` (and ``$``); ``variables`` are declared first (``$labels`` ...)."""
        out: list[str] = []
        scope: list[dict[str, Any]] = [{"$": dot, **(variables or {})}]
        self._walk(self.nodes, dot, scope, {**BUILTINS, **functions}, out)
        return "".join(out)

    def parts(self) -> list[Template]:
        """The template as parts that render on their own (their texts joined are the whole's): one per
        top-level node, or the whole when a node declares or assigns a variable (another could read it)."""
        declares = any(n.kind == "action" and n.pipe is not None and n.pipe.decl for n in self.nodes)
        assigns = any(n.pipe is not None and n.pipe.assign for n in _all_nodes(self.nodes))
        if declares or assigns:  # (a variable declared inside if/with/range ends with it)
            return [self]
        return [Template(self.text, [n], self.functions) for n in self.nodes]

    def value_function(self, functions: dict[str, Callable[..., Any]], variable: str, field_name: str
                       ) -> Callable[[Any], str] | None:
        """For a template that is one action whose pipeline calls functions on literals and one value (the
        variable ``variable`` or the field ``field_name`` of ``.``), a plain Python function of that value
        giving what :meth:`execute` gives, without the interpreter; None for any other template. It may
        raise where :meth:`execute` would raise: a caller renders those values with :meth:`execute`, for
        its error text."""
        if len(self.nodes) != 1 or self.nodes[0].kind != "action" or self.nodes[0].pipe is None:
            return None
        pipe = self.nodes[0].pipe
        fns = {**BUILTINS, **functions}

        def operand(a: _Arg) -> tuple[bool, Any] | None:  # (is the value, literal)
            if a.kind == "lit":
                return False, a.value
            if (a.kind == "var" and a.value == variable and not a.chain) or (a.kind == "field"
                                                                             and a.chain == (field_name,)):
                return True, None
            return None

        steps: list[tuple[Callable[..., Any] | None, list[tuple[bool, Any]]]] = []
        for i, cmd in enumerate(pipe.cmds):
            head = cmd[0]
            if head.kind == "ident":
                fn = fns.get(head.value)
                got = [operand(a) for a in cmd[1:]]
                if fn is None or head.value in _LAZY or any(o is None for o in got):
                    return None
                steps.append((fn, [o for o in got if o is not None]))
            elif i == 0 and len(cmd) == 1 and operand(head) is not None:
                op = operand(head)
                assert op is not None
                steps.append((None, [op]))
            else:
                return None
        if pipe.decl or not steps:
            return None

        def text(x: Any) -> str:
            return x if type(x) is str else go_print(x)

        # one function of literals then the value ({{ $value | printf "%.1f" }}, {{ humanize $value }}): one call
        first, ops = steps[0], steps[-1][1]
        one: Callable[..., Any] | None = None
        if len(steps) == 2 and first[0] is None and first[1][0][0] and not any(v for v, _ in ops):
            one = steps[1][0]
        elif len(steps) == 1 and first[0] is not None and ops and ops[-1][0] and not any(v for v, _ in ops[:-1]):
            one, ops = first[0], ops[:-1]
        if one is not None:
            fn, lits = one, tuple(lit for _, lit in ops)
            return lambda value: text(fn(*lits, value))

        def run(value: Any) -> str:
            x: Any = _NONE
            for fn, ops in steps:
                args = [value if is_value else lit for is_value, lit in ops]
                if fn is None:
                    x = args[0]
                else:
                    x = fn(*args) if x is _NONE else fn(*args, x)
            return text(x)

        return run

    def reads(self) -> tuple[frozenset[str], bool, frozenset[str]]:
        """What rendering reads: the variables named, whether ``.`` (or a field of it) is read, and the
        functions called."""
        args = list(_walk_args(self.nodes))
        return (frozenset(a.value for a in args if a.kind == "var"), any(a.kind in ("dot", "field") for a in args),
                frozenset(a.value for a in args if a.kind == "ident"))

    def _walk(self, nodes: list[_Node], dot: Any, scope: list[dict[str, Any]],
              fns: dict[str, Callable[..., Any]], out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                assert node.pipe is not None
                value = self._pipe(node.pipe, dot, scope, fns)
                if not node.pipe.decl:
                    out.append(go_print(value))
            elif node.kind in ("if", "with"):
                assert node.pipe is not None
                scope.append({})
                try:
                    value = self._pipe(node.pipe, dot, scope, fns)
                    if truth(value):
                        self._walk(node.body, value if node.kind == "with" else dot, scope, fns, out)
                    else:
                        self._walk(node.orelse, dot, scope, fns, out)
                finally:
                    scope.pop()
            elif node.kind == "range":
                self._range(node, dot, scope, fns, out)
            elif node.kind == "break":
                raise _Break
            elif node.kind == "continue":
                raise _Continue

    def _range(self, node: _Node, dot: Any, scope: list[dict[str, Any]], fns: dict[str, Callable[..., Any]],
               out: list[str]) -> None:
        assert node.pipe is not None
        pipe = node.pipe
        scope.append({})
        try:
            value = self._pipe(_Pipe(pipe.cmds), dot, scope, fns)
            items: Iterator[tuple[Any, Any]]
            if isinstance(value, dict) and not isinstance(value, Struct):
                items = ((k, value[k]) for k in sorted(value))
                n = len(value)
            elif isinstance(value, list | tuple):
                items = iter(enumerate(value))
                n = len(value)
            elif value is None:
                items, n = iter(()), 0
            else:
                raise ExecError(f"range can't iterate over {go_print(value)}")
            if n == 0:
                self._walk(node.orelse, dot, scope, fns, out)
                return
            for key, elem in items:
                if len(pipe.decl) == 1:
                    scope[-1][pipe.decl[0]] = elem
                elif len(pipe.decl) == 2:
                    scope[-1][pipe.decl[0]] = key
                    scope[-1][pipe.decl[1]] = elem
                try:
                    self._walk(node.body, elem, scope, fns, out)
                except _Continue:
                    continue
                except _Break:
                    break
        finally:
            scope.pop()

    def _pipe(self, pipe: _Pipe, dot: Any, scope: list[dict[str, Any]], fns: dict[str, Callable[..., Any]]) -> Any:
        value: Any = None
        for i, cmd in enumerate(pipe.cmds):
            value = self._command(cmd, dot, scope, fns, value if i else _NONE)
        if pipe.decl:
            if pipe.assign:
                name = pipe.decl[0]
                for frame in reversed(scope):
                    if name in frame:
                        frame[name] = value
                        break
            else:
                scope[-1][pipe.decl[-1]] = value
        return value

    def _command(self, cmd: list[_Arg], dot: Any, scope: list[dict[str, Any]],
                 fns: dict[str, Callable[..., Any]], final: Any) -> Any:
        head = cmd[0]
        if head.kind == "ident":
            name = head.value
            if name in _LAZY:
                args = cmd[1:]
                if not args and final is _NONE:
                    raise ExecError(f"wrong number of args for {name}: want at least 1 got 0")
                value: Any = None
                # operands are evaluated one at a time: and/or stop at the first that decides
                for k in range(len(args) + (final is not _NONE)):
                    value = self._arg(args[k], dot, scope, fns) if k < len(args) else final
                    if truth(value) != (name == "and"):
                        return value
                return value
            fn = fns.get(name)
            if fn is None:
                raise ExecError(f"function {name!r} not defined")
            values = [self._arg(a, dot, scope, fns) for a in cmd[1:]]
            if final is not _NONE:
                values.append(final)
            try:
                return fn(*values)
            except (ExecError, _Break, _Continue):
                raise
            except TypeError as exc:
                raise ExecError(f"wrong number or type of args for {name}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - a function's error, as Go's 'error calling f'
                raise ExecError(f"error calling {name}: {exc}") from None
        if len(cmd) > 1 or final is not _NONE:
            raise ExecError(f"can't give argument to non-function {_describe(head)}")
        return self._arg(head, dot, scope, fns)

    def _arg(self, arg: _Arg, dot: Any, scope: list[dict[str, Any]], fns: dict[str, Callable[..., Any]]) -> Any:
        if arg.kind == "lit":
            return arg.value
        if arg.kind == "nil":
            raise ExecError("nil is not a command")
        if arg.kind == "dot":
            return dot
        if arg.kind == "field":
            return _fields(dot, arg.chain)
        if arg.kind == "var":
            for frame in reversed(scope):
                if arg.value in frame:
                    return _fields(frame[arg.value], arg.chain)
            raise ExecError(f"undefined variable: {arg.value}")
        if arg.kind == "ident":
            return self._command([arg], dot, scope, fns, _NONE)
        if arg.kind == "pipe":
            return _fields(self._pipe(arg.value, dot, scope, fns), arg.chain)
        raise AssertionError(arg)


_NONE = object()  # no value piped in


def _describe(arg: _Arg) -> str:
    if arg.kind == "lit":
        return go_print(arg.value)
    return arg.kind


def _fields(value: Any, chain: tuple[str, ...]) -> Any:
    for name in chain:
        if isinstance(value, Struct):
            if name not in value:
                raise ExecError(f"can't evaluate field {name}")
            value = value[name]
        elif isinstance(value, dict):
            value = value.get(name, "")  # Prometheus executes with missingkey=zero
        elif value is None:
            raise ExecError(f"nil pointer evaluating .{name}")
        else:
            raise ExecError(f"can't evaluate field {name} in type {type(value).__name__}")
    return value


def parse(text: str, functions: Callable[[str], bool] | frozenset[str] | set[str],
          variables: tuple[str, ...] = ()) -> Template:
    """Parse ``text``; ``functions`` are the names it may call besides Go's built-ins, ``variables``
    those declared before it (Prometheus declares ``$labels``, ``$value`` ...)."""
    p = _Parser(text)
    p.vars[0].extend(variables)
    nodes = p.parse()
    known = functions if callable(functions) else (lambda n: n in functions)
    _check_functions(nodes, lambda n: n in BUILTINS or n in _LAZY or n == "printf" or known(n))
    _check_loops(nodes, False)
    names: frozenset[str] = frozenset(functions) if not callable(functions) else frozenset()
    return Template(text, nodes, names)


def _walk_args(nodes: list[_Node]) -> Iterator[_Arg]:
    def pipe_args(pipe: _Pipe) -> Iterator[_Arg]:
        for cmd in pipe.cmds:
            for a in cmd:
                yield a
                if a.kind == "pipe":
                    yield from pipe_args(a.value)

    for n in nodes:
        if n.pipe is not None:
            yield from pipe_args(n.pipe)
        yield from _walk_args(n.body)
        yield from _walk_args(n.orelse)


def _all_nodes(nodes: list[_Node]) -> Iterator[_Node]:
    for n in nodes:
        yield n
        yield from _all_nodes(n.body)
        yield from _all_nodes(n.orelse)


def _check_functions(nodes: list[_Node], known: Callable[[str], bool]) -> None:
    for a in _walk_args(nodes):
        if a.kind == "ident" and not known(a.value):
            raise GoTemplateError(f"function {a.value!r} not defined")
        if a.kind == "ident" and a.value == "call":
            raise UnsupportedTemplate("function 'call' is not supported (alert templates have no functions as "
                                      "values)")


def _check_loops(nodes: list[_Node], in_range: bool) -> None:
    for n in nodes:
        if n.kind in ("break", "continue") and not in_range:
            raise GoTemplateError(f"{{{{{n.kind}}}}} outside {{{{range}}}}")
        _check_loops(n.body, in_range or n.kind == "range")
        _check_loops(n.orelse, in_range)
