"""Go's RE2 regular expressions (PromQL matchers, templates' ``match``/``reReplaceAll``) for Python.

The two dialects share almost everything rules use. What differs and is translated:
``\\z`` (end of text) is Python's ``\\Z``; a flag group such as ``(?i)`` may stand anywhere in
RE2 and applies to the rest of its group, where Python wants it at the very start, so it
becomes a scoped group to the end of its group (``a(?i)b`` becomes ``a(?i:b)``); RE2's
ungreedy flag ``U`` has no Python equivalent and is refused.

>>> to_python("foo(?i)bar")
'foo(?i:bar)'
>>> bool(compile_anchored("(?i).*tail.*").match("/loki/api/v1/TAIL"))
True
"""

from __future__ import annotations

import functools
import re

__all__ = ["compile_anchored", "to_python"]

_FLAGS = re.compile(r"\(\?([imsU-]+)\)")


def to_python(pattern: str) -> str:
    """An RE2 pattern in Python's syntax (see the module docstring)."""
    out: list[str] = []
    closers: list[int] = [0]  # per open group: how many scoped flag groups to close with it
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append("\\Z" if pattern[i + 1] == "z" and not in_class else pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]" or bool(out and out[-1] == "[")
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            continue
        flags = _FLAGS.match(pattern, i)
        if flags is not None:
            if "U" in flags.group(1):
                raise re.error("the ungreedy flag (?U) has no Python equivalent")
            out.append(f"(?{flags.group(1)}:")  # scoped: Python takes global flags only at the very start
            closers[-1] += 1
            i = flags.end()
            continue
        if c == "(":
            closers.append(0)
        elif c == ")" and len(closers) > 1:
            out.append(")" * closers.pop())
        out.append(c)
        i += 1
    out.append(")" * closers[0])
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def compile_anchored(pattern: str) -> re.Pattern[str]:
    """The pattern anchored at both ends, as PromQL matches label values (``.`` matches newlines)."""
    return re.compile(f"^(?:{to_python(pattern)})$", re.DOTALL)
