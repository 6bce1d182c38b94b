"""Exceptions raised by perfalert_lab.

Every error the toolkit raises on purpose derives from :class:`PerfAlertError`, and
also from the built-in exception a caller would otherwise catch, so both
``except PerfAlertError`` and ``except ValueError`` work::

    PerfAlertError (Exception)
    ├── InputError (ValueError)            bad input of any kind: exit code 2 in the CLI
    │   ├── DataError                      a metrics or incidents file / frame is unusable
    │   ├── RulesError                     a rules file or Rule is invalid (all problems listed)
    │   ├── UsageError                     a wrong argument to a command or function
    │   ├── TemplateError                  a Go template Prometheus would not load
    │   │   └── UnsupportedTemplate        a valid template using what is not rendered here
    │   ├── PromQLError                    an expression Prometheus would refuse to evaluate
    │   └── UnsupportedPromQL              a PromQL construct outside the supported subset
    ├── InputFileNotFound (InputError, FileNotFoundError)
    ├── TemplateExecError (RuntimeError)   a template failed while rendering (written into the text)
    └── MissingDependency (PerfAlertError, ImportError)   an optional extra is not installed

    PerfAlertWarning (UserWarning)
    └── NoSeriesWarning                    a rule matches no series (an error with strict=True)

Messages are one line per problem and say what was given, what was expected and
how to fix it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

__all__ = [
    "DataError",
    "InputError",
    "InputFileNotFound",
    "MissingDependency",
    "NoSeriesWarning",
    "PerfAlertError",
    "PerfAlertWarning",
    "PromQLError",
    "RulesError",
    "TemplateError",
    "TemplateExecError",
    "UnsupportedPromQL",
    "UnsupportedTemplate",
    "UsageError",
]


class PerfAlertError(Exception):
    """Base class of every error perfalert_lab raises on purpose."""


class InputError(PerfAlertError, ValueError):
    """Bad input: a file, a frame, a rule or an argument. The CLI exits with code 2.

    ``problems`` holds one line per problem; ``str(error)`` joins them with newlines.
    """

    def __init__(self, problems: str | Iterable[str]) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems) or ["invalid input"]
        super().__init__("\n".join(self.problems))


class DataError(InputError):
    """A metrics or incidents file (or DataFrame) cannot be used as given."""


class RulesError(InputError):
    """A rules file or rule object is invalid; ``problems`` lists every problem found."""


class UsageError(InputError):
    """A command or function was called with wrong arguments."""


class TemplateError(InputError):
    """A Go template of a label or annotation that Prometheus would not load, with the construct named."""


class UnsupportedTemplate(TemplateError):
    """A valid Go template using what perfalert_lab does not render (named templates, ``call``):
    the rule is left out with a warning (an error with ``strict``)."""


class PromQLError(InputError):
    """The expression is valid but Prometheus would refuse to evaluate it on this data."""


class UnsupportedPromQL(InputError):
    """The expression uses a PromQL construct outside the supported subset (SPEC 11)."""


class TemplateExecError(PerfAlertError, RuntimeError):
    """A template failed while rendering (Go: ``error executing template``); Prometheus writes the
    error into the text and keeps the alert, and so does perfalert_lab."""


class InputFileNotFound(InputError, FileNotFoundError):
    """An input path does not exist or is not a readable file."""


class PerfAlertWarning(UserWarning):
    """Base class of the warnings perfalert_lab gives (the CLI prints them as one line each)."""


class NoSeriesWarning(PerfAlertWarning):
    """A rule matches no series of the input: it would be silently quiet."""


class MissingDependency(PerfAlertError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""


def require_module(module: str, extra: str, feature: str):  # type: ignore[no-untyped-def]
    """Import ``module`` lazily or raise :class:`MissingDependency` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependency(
            f"{feature} needs the '{module}' package: pip install 'perfalert_lab[{extra}]'"
        ) from exc
