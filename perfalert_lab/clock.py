"""Clocks decide *when* rules are evaluated (SPEC section 3).

The engine never reads the wall clock: a clock turns each series' sample times and
the span of the whole input into evaluation times, and says how old a sample may be
and still count (``lookback_ns``).

* :class:`SampleClock` (default): every sample is an evaluation, as the seed's
  ``AlertSystem.evaluate_metric`` saw data arriving.
* :class:`IntervalClock`: Prometheus rule evaluation, ticks ``offset + k*every``
  aligned to the Unix epoch; the value at tick ``t`` is the newest sample in
  ``(t - lookback, t]``, else the series is absent.
* Anything that implements :class:`Clock` (for example jittered ticks or an
  ingestion delay) plugs in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, runtime_checkable

import numpy as np

from ._time import format_duration, parse_duration, to_ns
from .errors import UsageError

__all__ = ["Clock", "IntervalClock", "SampleClock", "parse_clock"]


@runtime_checkable
class Clock(Protocol):
    """What the engine asks of a clock.

    ``lookback_ns``: samples older than this at an evaluation are ignored (the series
    is absent); ``None`` means the newest sample at or before the evaluation counts
    however old it is.
    """

    @property
    def lookback_ns(self) -> int | None: ...

    def evaluation_times(self, sample_times: np.ndarray, start_ns: int, end_ns: int) -> np.ndarray:
        """Sorted int64 UTC nanoseconds at which to evaluate one series.

        ``sample_times`` are that series' samples; ``start_ns``/``end_ns`` the first
        and latest sample of the whole input. Times after ``end_ns`` are dropped by
        the engine (nothing is simulated past the end of the data).
        """
        ...

    def shared_times(self, start_ns: int, end_ns: int) -> np.ndarray | None:
        """The evaluation times of every series when they do not depend on its samples (a
        Prometheus-style interval clock), else ``None``. Optional for a custom clock: one
        without it is asked per series (see :func:`shared_times`)."""
        ...


def shared_times(clock: Clock, start_ns: int, end_ns: int) -> np.ndarray | None:
    """``clock.shared_times(...)``, or ``None`` for a custom clock that does not define it.

    >>> shared_times(SampleClock(), 0, 10) is None
    True
    >>> shared_times(IntervalClock("1s"), 0, 2_000_000_000).tolist()
    [0, 1000000000, 2000000000]
    """
    method = getattr(clock, "shared_times", None)  # the one place that tolerates clocks without it
    if method is None:
        return None
    ticks = method(start_ns, end_ns)
    return None if ticks is None else np.asarray(ticks, dtype=np.int64)


@dataclass(frozen=True)
class SampleClock:
    """Every sample of a series is an evaluation of it (the seed's model)."""

    @property
    def lookback_ns(self) -> int | None:
        return None

    def evaluation_times(self, sample_times: np.ndarray, start_ns: int, end_ns: int) -> np.ndarray:
        return sample_times

    def shared_times(self, start_ns: int, end_ns: int) -> np.ndarray | None:
        return None  # each series is evaluated at its own samples

    def __str__(self) -> str:
        return "sample"


@dataclass(frozen=True)
class IntervalClock:
    """Prometheus-style evaluation every ``every``, aligned to the Unix epoch.

    >>> clock = IntervalClock("1m", lookback="5m")
    >>> clock.ticks(90 * 10**9, 200 * 10**9) // 10**9
    array([120, 180])
    """

    every: timedelta | str
    lookback: timedelta | str = "5m"
    offset: timedelta | str = "0s"
    _every_ns: int = field(init=False, repr=False, compare=False)
    _lookback_ns: int = field(init=False, repr=False, compare=False)
    _offset_ns: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            every, lookback, offset = (parse_duration(x) for x in (self.every, self.lookback, self.offset))
        except ValueError as exc:
            raise UsageError(f"IntervalClock: {exc}") from None
        if every <= timedelta(0) or lookback <= timedelta(0):
            raise UsageError("IntervalClock: 'every' and 'lookback' must be longer than 0")
        for name, value in (("every", every), ("lookback", lookback), ("offset", offset)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_every_ns", to_ns(every))
        object.__setattr__(self, "_lookback_ns", to_ns(lookback))
        object.__setattr__(self, "_offset_ns", to_ns(offset) % to_ns(every))

    @property
    def lookback_ns(self) -> int | None:
        return self._lookback_ns

    def ticks(self, start_ns: int, end_ns: int) -> np.ndarray:
        """All ticks ``offset + k*every`` with ``start_ns <= tick <= end_ns``."""
        e, o = self._every_ns, self._offset_ns
        first = -((-(start_ns - o)) // e) * e + o  # ceil to the grid
        if first > end_ns:
            return np.zeros(0, dtype=np.int64)
        n = (end_ns - first) // e + 1
        return first + np.arange(n, dtype=np.int64) * e

    # every series is evaluated at the same ticks: the engine asks once
    def shared_times(self, start_ns: int, end_ns: int) -> np.ndarray:
        return self.ticks(start_ns, end_ns)

    def evaluation_times(self, sample_times: np.ndarray, start_ns: int, end_ns: int) -> np.ndarray:
        return self.ticks(start_ns, end_ns)

    def __str__(self) -> str:
        text = f"interval:{format_duration(self.every)}:{format_duration(self.lookback)}"  # type: ignore[arg-type]
        return text + (f" offset {format_duration(self.offset)}" if self._offset_ns else "")  # type: ignore[arg-type]


def parse_clock(text: str | None) -> Clock:
    """Parse the CLI form: ``sample`` or ``interval:EVERY[:LOOKBACK[:OFFSET]]``.

    >>> str(parse_clock("interval:1m:5m"))
    'interval:1m:5m'
    >>> parse_clock("interval:1m:5m").every
    datetime.timedelta(seconds=60)
    """
    if text is None or text == "sample":
        return SampleClock()
    parts = text.split(":")
    if parts[0] == "interval" and 2 <= len(parts) <= 4:
        return IntervalClock(*parts[1:])
    raise UsageError(f"--clock {text!r}: expected 'sample' or 'interval:EVERY[:LOOKBACK]' such as interval:1m:5m")
