"""The alert states, named once in Prometheus's terms (``rules/alerting.go``'s ``AlertState``).

The compiled kernels use the integer values as compile-time constants, the reference
engine the members themselves, and :func:`~perfalert_lab.engine.reference.explain`
their lower-case names.

>>> AlertState.PENDING, int(AlertState.FIRING), str(AlertState.INACTIVE)
(<AlertState.PENDING: 1>, 2, 'inactive')
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["AlertState"]


class AlertState(IntEnum):
    INACTIVE = 0  # no alert: the condition does not hold (or the series is absent)
    PENDING = 1  # the condition holds, for less than `for` (or a cooldown holds the firing back)
    FIRING = 2  # the alert fired; it stays firing while held, and for keep_firing_for after

    def __str__(self) -> str:
        return self.name.lower()
