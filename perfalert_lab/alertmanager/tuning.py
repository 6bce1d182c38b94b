"""Tuning Alertmanager's timers and grouping on the alerts of one backtest (SPEC 12).

:func:`sweep_alertmanager` re-runs the simulation for every combination of
``group_wait``, ``group_interval``, ``repeat_interval`` and ``group_by`` (applied to
every route of the tree) and reports what people pay and get: notifications and
pages per week, and how long after firing an alert is first told. :func:`recommend_alertmanager`
picks the quickest combination within a page budget.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
import pandas as pd

from .._time import format_duration, parse_duration, to_ns
from ..errors import UsageError
from ..recommendation import Recommendation
from .config import AlertmanagerConfig, Route
from .outputs import apply_alertmanager

__all__ = ["recommend_alertmanager", "sweep_alertmanager"]


def _with(route: Route, changes: dict[str, Any]) -> Route:
    children = tuple(_with(c, changes) for c in route.routes)
    return dataclasses.replace(route, routes=children, **changes)


def sweep_alertmanager(result: Any, config: AlertmanagerConfig, *, group_wait: Any = None, group_interval: Any = None,
                       repeat_interval: Any = None, group_by: Any = None) -> pd.DataFrame:
    """One row per combination: notifications, pages and the delay to the first notification."""
    grid: dict[str, list[Any]] = {}
    for key, values in (("group_wait", group_wait), ("group_interval", group_interval),
                        ("repeat_interval", repeat_interval)):
        if values is not None:
            grid[key] = [to_ns(parse_duration(v)) // 1_000_000 for v in values]
    if group_by is not None:
        grid["group_by"] = [tuple(g) for g in group_by]
    if not grid:
        raise UsageError("sweep_alertmanager: give at least one of group_wait, group_interval, repeat_interval, "
                         "group_by")
    weeks = max((result.span[1] - result.span[0]).total_seconds() / 604800, 1e-9)
    fired = result.alerts.set_index("alert_id")["fired_at"] if len(result.alerts) else pd.Series(dtype="object")
    rows = []
    for combo in itertools.product(*grid.values()):
        chosen = dict(zip(grid, combo, strict=True))
        changes = {f"{k}_ms" if k != "group_by" else k: v for k, v in chosen.items()}
        variant = dataclasses.replace(config, route=_with(config.route, changes))
        out = apply_alertmanager(result, variant)
        notes, carried = out.notifications, out.notification_alerts
        first = carried[carried["state"] == "firing"].drop_duplicates("alert_id")
        at = notes.set_index("notification_id")["at"]
        delays = (first["notification_id"].map(at) - first["alert_id"].map(fired)).dt.total_seconds() \
            if len(first) else pd.Series(dtype="float64")
        row: dict[str, Any] = {}
        for k, v in chosen.items():
            row[k] = ",".join(v) if k == "group_by" else format_duration(pd.Timedelta(milliseconds=v).to_pytimedelta())
        pages = int(out.receivers["pages"].sum()) if len(out.receivers) else 0
        row.update({"notifications": int(len(notes)), "notifications_per_week": len(notes) / weeks,
                    "pages": pages, "pages_per_week": pages / weeks,
                    "alerts_told": int(len(first)), "alerts": int((result.alerts["status"] != "suppressed").sum()),
                    "mean_first_notice_s": float(delays.mean()) if len(delays) else np.nan,
                    "max_first_notice_s": float(delays.max()) if len(delays) else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def recommend_alertmanager(table: pd.DataFrame, *, max_pages_per_week: float,
                           config: AlertmanagerConfig | None = None) -> Recommendation:
    """The combination that tells people soonest (then with fewest notifications) within the page
    budget, as a :class:`Recommendation` (with ``config``, the tuned configuration too)."""
    params = [k for k in ("group_wait", "group_interval", "repeat_interval", "group_by") if k in table.columns]
    ok = table[table["pages_per_week"] <= max_pages_per_week]
    if ok.empty:
        quietest = table.sort_values("pages_per_week").iloc[0]
        said = {k: quietest[k] for k in params}
        raise UsageError(f"no combination stays within {max_pages_per_week:g} pages a week; the quietest, {said}, "
                         f"pages {quietest['pages_per_week']:.3g} a week: widen the sweep or the budget")
    row = ok.sort_values(["mean_first_notice_s", "notifications"], kind="stable").iloc[0]
    setting = ", ".join(f"{k}={row[k]}" for k in params)
    text = (f"Chose {setting}: {row['pages_per_week']:.3g} pages/week, {row['notifications_per_week']:.3g} "
            f"notifications/week, first notice after {row['mean_first_notice_s']:.3g} s on average. Of {len(table)} "
            f"combinations {len(ok)} stay within {max_pages_per_week:g} pages/week; this one tells people soonest.")
    tuned = None
    if config is not None:
        changes: dict[str, Any] = {f"{k}_ms": to_ns(parse_duration(row[k])) // 1_000_000
                                   for k in params if k != "group_by"}
        if "group_by" in params:
            changes["group_by"] = tuple(str(row["group_by"]).split(",")) if row["group_by"] else ()
        tuned = dataclasses.replace(config, route=_with(config.route, changes))
    return Recommendation(row, None, text, alertmanager=tuned)
