"""Compiled kernels on demand: small inputs never pay for numba.

``@kernel`` marks a loop written for numba. Until an input is large enough to repay loading
numba and the kernel's cached machine code (about 0.3 s in a fresh process), the kernel runs
as the plain Python function it is, the same code line for line; the first large call
compiles every kernel of its module (numba's on-disk cache makes that a load after the first
run) and from then on the compiled code runs whatever the size. So a notebook's first small
backtest and a quick CLI run do not import numba at all, and big inputs run at kernel speed.

``PERFALERT_JIT`` (or :func:`set_mode`) chooses: ``auto`` (the default; compiled from
``SMALL`` elements on), ``always`` (compiled; the tests hold the compiled kernels to the
reference this way) or ``never`` (plain Python; the tests run the same cases so, too).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["SMALL", "Kernel", "kernel", "mode", "set_mode"]

SMALL = 20_000  # elements of the largest array argument below which a kernel runs as Python
_MODES = ("auto", "always", "never")
_mode = os.environ.get("PERFALERT_JIT", "auto")
if _mode not in _MODES:  # pragma: no cover - a typo in the environment
    raise ValueError(f"PERFALERT_JIT={_mode!r}: expected one of {', '.join(_MODES)}")
_registry: dict[str, list[Kernel]] = {}


def mode() -> str:
    return _mode


def set_mode(value: str) -> str:
    """Set the mode (``auto``, ``always`` or ``never``); returns the previous one."""
    global _mode
    if value not in _MODES:
        raise ValueError(f"jit mode {value!r}: expected one of {', '.join(_MODES)}")
    previous, _mode = _mode, value
    return previous


def _size(args: tuple[Any, ...]) -> int:
    return max((getattr(a, "size", 0) for a in args if hasattr(a, "dtype")), default=0)


class Kernel:
    """A numba-style function that compiles itself (and its module's other kernels) when worth it."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = fn
        self.options = options
        self.compiled: Any = None
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        _registry.setdefault(fn.__module__, []).append(self)

    def __call__(self, *args: Any) -> Any:
        if not self.runs_compiled(*args):
            return self.py_func(*args)
        if self.compiled is None:
            compile_module(self.py_func.__module__)
        return self.compiled(*args)

    def runs_compiled(self, *args: Any) -> bool:
        """Whether a call with ``args`` runs the compiled kernel (a caller with a vectorised way of its own
        can take that below the size that repays compiling)."""
        if _mode == "never":
            return False
        return self.compiled is not None or _mode == "always" or _size(args) >= SMALL

    def __repr__(self) -> str:
        state = "compiled" if self.compiled is not None else "not compiled yet"
        return f"<kernel {self.py_func.__module__}.{self.__name__} ({state})>"


def compile_module(module: str) -> None:
    """Compile every kernel of ``module`` with numba (cached on disk). The helpers that kernels call
    (declared ``@kernel(inline="always")``) are then named by their compiled functions in the
    module's globals, where numba looks them up; the other kernels stay wrappers (so the mode
    still applies to them)."""
    import numba

    mod = sys.modules[module]
    kernels = _registry.get(module, [])
    for k in kernels:
        if k.compiled is None:
            k.compiled = numba.njit(cache=True, **k.options)(k.py_func)
    for k in kernels:
        if "inline" in k.options and getattr(mod, k.__name__, None) is k:
            setattr(mod, k.__name__, k.compiled)  # numba reads helpers from the module's globals


def kernel(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``@kernel`` (``nogil``) or ``@kernel(inline="always")``: see the module docstring."""
    if fn is None:
        return lambda f: Kernel(f, options)
    return Kernel(fn, {"nogil": True})
