"""A simulated Alertmanager (SPEC 12): how many notifications would people really have got?

:mod:`.config` reads ``alertmanager.yml`` (routes, receivers, inhibition, time intervals);
:mod:`.simulate` replays an alert timeline through routing, aggregation groups and
their timers, the notification log's deduplication, inhibition, silences and time
intervals, one event at a time, as Alertmanager's dispatcher and notification pipeline do.
"""

from .config import AlertmanagerConfig, load_alertmanager, parse_alertmanager, parse_matchers

__all__ = ["AlertmanagerConfig", "load_alertmanager", "parse_alertmanager", "parse_matchers"]
