"""Pictures of results: compute once, then draw on an axis (scikit-learn's Display pattern).

Every display is built from computed results (``from_result``/``from_sweep``) and
``plot(ax=None)`` only draws, keeping its artists. Nothing here recomputes a
backtest, imports pyplot or changes matplotlib's global state: without an ``ax`` a
standalone figure is made.

Pictures show themselves in any fresh kernel (JupyterLab, Notebook 7, VS Code),
with no ``%matplotlib inline`` and no backend: a display (drawn on first show if
``plot`` was not called) and the figure it made both have ``_repr_png_``. A
matplotlib Figure built without pyplot has no picture of its own until an inline
backend registers one, which is why ``Figure(...)`` alone shows as
``<Figure size ...>``.

Long series are decimated per horizontal pixel (min and max of each bin), so a
plot of ten million points stays quick and every spike stays visible.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._arrow import arrow_strings
from ._time import NAT_NS, col_ns
from .errors import UsageError
from .stats import notification_pages

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .result import BacktestResult

__all__ = [
    "FrontierDisplay",
    "LoadDisplay",
    "ReceiverTimeline",
    "QueryDisplay",
    "StackedTimelines",
    "SweepDisplay",
    "TimelineDisplay",
    "decimate",
    "PictureFigure",
    "SweepCurvePainter",
    "TimelinePainter",
    "new_figure",
    "report_figures",
    "sweep_png",
]

SEVERITY_COLORS = {"low": "#7fb3d5", "medium": "#f2c14e", "high": "#f08a4b", "critical": "#d1495b"}
# the severity labels Prometheus rule files use, on the same scale
_SEVERITY_ALIASES = {"page": "critical", "error": "critical", "warning": "high", "warn": "high", "ticket": "medium",
                     "info": "low", "none": "low"}


def severity_color(severity: str) -> str:
    """The colour of an alert's firing span and threshold line: ours, Prometheus's usual labels, else red."""
    sev = str(severity).lower()
    return SEVERITY_COLORS.get(sev) or SEVERITY_COLORS.get(_SEVERITY_ALIASES.get(sev, ""), "#c0392b")
KIND_MARKERS = {"firing": ("v", "#444444"), "escalation": ("^", "#8e44ad"), "repeat": ("o", "#999999"),
                "resolved": ("s", "#2e8b57")}
DAY_NS = 86_400 * 10**9


def _mpl_days(ns: np.ndarray) -> np.ndarray:
    """int64 UTC nanoseconds to matplotlib date numbers (days since 1970)."""
    return np.asarray(ns, dtype=np.float64) / DAY_NS


TIMELINE_SIZE = (11.0, 3.6)
TIMELINE_MARGINS = {"left": 0.07, "right": 0.99, "top": 0.91, "bottom": 0.24}
PNG_DPI = 100  # pictures shown in a notebook
REPORT_DPI = 110  # pictures in the HTML report and sweep.png


def _png(fig: Figure, dpi: int = PNG_DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class PictureFigure(Figure):
    """A matplotlib Figure with a picture of its own for IPython's display formatter."""

    def _repr_png_(self) -> bytes:
        return _png(self)


def new_figure(**kwargs: Any) -> PictureFigure:
    """A standalone figure that shows itself as PNG in Jupyter (no pyplot, no backend).

    >>> fig = new_figure(figsize=(2, 1))
    >>> fig._repr_png_()[1:4]
    b'PNG'
    """
    return PictureFigure(**kwargs)


class _Picture:
    """Rich display for Displays: a PNG of the figure (drawn on first show), and a short text."""

    figure_: Any

    def _repr_png_(self) -> bytes:
        if self.figure_ is None:
            self.plot()  # type: ignore[attr-defined]
        return _png(self.figure_)

    def _summary(self) -> str:
        return ""

    def __repr__(self) -> str:
        state = "drawn" if self.figure_ is not None else "not drawn yet"
        summary = self._summary()
        return f"<{type(self).__name__}{' ' + summary if summary else ''} ({state})>"


def _new_axes(ax: Axes | None, figsize: tuple[float, float], margins: dict[str, float] | None = None
              ) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    if margins is not None:  # fixed margins: a constrained layout costs more than the drawing
        fig = new_figure(figsize=figsize)
        fig.subplots_adjust(**margins)
    else:
        fig = new_figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def merge_spans(starts: np.ndarray, ends: np.ndarray, min_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Intervals merged where less than ``min_gap`` apart: what a pixel can show of thousands of alerts.

    >>> merge_spans(np.array([0.0, 1.0, 5.0]), np.array([1.5, 2.0, 6.0]), 0.5)
    (array([0., 5.]), array([2., 6.]))
    """
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.r_[True, s[1:] > reach[:-1] + min_gap]
    return s[new], np.maximum.reduceat(e, np.flatnonzero(new)) if len(s) else e[:0]


def _date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def decimate(times: np.ndarray, values: np.ndarray, bins: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * bins`` points that keep each time bin's minimum and maximum, in time order.

    >>> t = np.arange(10_000, dtype=np.int64)
    >>> v = np.zeros(10_000); v[1234] = 99.0
    >>> dt, dv = decimate(t, v, bins=100)
    >>> len(dv) <= 200, float(dv.max())
    (True, 99.0)
    """
    n = len(times)
    if n <= 2 * bins:
        return times, values
    edges = np.linspace(times[0], times[-1], bins + 1)
    idx = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, bins - 1)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    ends = np.r_[starts[1:], n]
    # position of the min and of the max inside each bin, emitted in time order
    pos_lo = np.empty(len(starts), dtype=np.int64)
    pos_hi = np.empty(len(starts), dtype=np.int64)
    for j, (a, b) in enumerate(zip(starts, ends, strict=True)):  # bins <= 2000: cheap
        seg = values[a:b]
        pos_lo[j] = a + int(np.argmin(seg))
        pos_hi[j] = a + int(np.argmax(seg))
    first = np.minimum(pos_lo, pos_hi)
    second = np.maximum(pos_lo, pos_hi)
    keep = np.empty(2 * len(starts), dtype=np.int64)
    keep[0::2] = first
    keep[1::2] = second
    return times[keep], values[keep]


# --------------------------------------------------------------------------- timeline


@dataclass(repr=False)
class TimelineDisplay(_Picture):
    """One series with what a rule did to it: value, threshold and clear lines, pending and
    firing spans (coloured by severity), notifications, escalations, acknowledgements and
    incident windows."""

    source: str
    metric: str
    times: np.ndarray
    values: np.ndarray
    rules: list[dict[str, Any]]
    alerts: pd.DataFrame
    notifications: pd.DataFrame
    incidents: pd.DataFrame | None
    artists: dict[str, list[Any]] = field(default_factory=dict)
    figure_: Any = None
    ax_: Any = None
    extra: dict[str, str] = field(default_factory=dict)  # the series' labels beyond source and metric

    @classmethod
    def from_result(cls, result: BacktestResult, source: str | None = None, metric: str | None = None,
                    rule_id: str | None = None, bins: int = 1200,
                    points: tuple[np.ndarray, np.ndarray] | None = None,
                    labels: dict[str, str] | None = None) -> TimelineDisplay:
        """Collect what to draw for one series (default: the one with most alerts).

        A series is its label set: ``source``, ``metric`` and ``labels`` (the other label
        columns; for a Prometheus rule file ``{"labels": '{k="v", ...}'}``, the alert's label
        text) narrow the choice; the series with most alerts among those is drawn. For a
        Prometheus rule file ``metric`` is the alert rule's name: what is drawn is the value the
        rule compares with its threshold, else the value of its expression.
        ``points`` are the series' (already decimated) times and values, when the caller
        kept them from an earlier display of the same series (the tuner does).
        """
        series = result.series
        if series is None or series.n_series == 0:
            raise UsageError("timeline: the result holds no series")
        alerts = result.alerts if rule_id is None else result.alerts[result.alerts["rule_id"] == rule_id]
        keys = series.keys
        prom = result.rules.kind == "prometheus"
        # the alert columns that name an alert's series, beside the series' own key columns
        by = "rule_id" if prom else "metric"
        key_cols = [str(c) for c in keys.columns]
        alert_cols = ["source", by, *(c for c in key_cols[2:] if c in alerts.columns)]
        wanted = {"source": source, "metric": metric, **(labels or {})}
        wanted = {k: v for k, v in wanted.items() if v is not None}
        keep = (alerts["status"] != "suppressed").to_numpy(dtype=bool)
        for k, want in wanted.items():  # one selection of the rows asked for (not a copy per column)
            col = by if k == "metric" else k
            if col in alerts.columns:
                keep = keep & (alerts[col] == want).to_numpy(dtype=bool)
        pool = alerts[keep]
        chosen: dict[str, str]
        if len(pool):
            top: Any = pool.groupby(alert_cols, sort=False).size().idxmax()
            top = top if isinstance(top, tuple) else (top,)
            chosen = {("metric" if c == by else c): str(x) for c, x in zip(alert_cols, top, strict=True)}
        else:
            mask = np.ones(len(keys), dtype=bool)
            for k, want in wanted.items():
                if k in keys.columns:
                    mask &= (keys[k] == want).to_numpy(dtype=bool)
            hit = np.flatnonzero(mask)
            if len(hit) == 0:
                said = ", ".join(f"{k} {v!r}" for k, v in wanted.items())
                raise UsageError(f"timeline: no series with {said}")
            row = keys.iloc[int(hit[0])]
            chosen = {c: str(row[c]) for c in key_cols}
        mask = np.ones(len(keys), dtype=bool)
        for k, want in chosen.items():
            mask &= (keys[k].astype("str").fillna("") == want).to_numpy(dtype=bool)
        hits = np.flatnonzero(mask)
        if len(hits):  # the series' values; an alert whose expression has no value to draw shows its spans alone
            t, v = points if points is not None else decimate(*series.points(int(hits[0])), bins)
        else:
            t, v = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        source, metric = chosen.get("source", ""), chosen.get("metric", "")
        if prom:
            rule_file: Any = result.rules
            rules = [{"id": r.name, "severity": r.labels.get("severity", ""), "clear": None, **r.comparison}
                     for r in rule_file.alert_rules if r.name == metric]
        else:
            own: Any = result.rules  # our rules
            rules = [{"id": r.id, "op": r.op, "threshold": r.threshold, "clear": r.clear, "severity": r.severity,
                      "cooldown": bool(r.cooldown)}
                     for r in own if r.metric == metric and (rule_id is None or r.id == rule_id)]
        sel = np.ones(len(alerts), dtype=bool)
        for c in alert_cols:
            sel &= (alerts[c].astype("str").fillna("") == chosen["metric" if c == by else c]).to_numpy(dtype=bool)
        mine = alerts[sel]
        n = result.notifications
        mine_ids = set(mine["alert_id"])
        if "receiver" in n.columns:  # Alertmanager's notifications: those carrying this series' alerts
            carried: Any = result.notification_alerts
            nid = set(carried.loc[carried["alert_id"].isin(mine_ids), "notification_id"])
            notes = n[n["notification_id"].isin(nid)]
            notes = notes.assign(kind=np.where(notes["repeat"], "repeat",
                                               np.where(notes["firing"] > 0, "firing", "resolved")))
        else:
            if len(n) and source and "source" in n.columns:  # a notification's source is its alert's
                n = n[(n["source"] == source).to_numpy(dtype=bool)]
            notes = n[_among(n["alert_id"], mine_ids)] if len(n) else n
        inc = None
        if result.incidents is not None:
            src = result.incidents["source"]
            inc = result.incidents[src.isna() | (src == source)]
        extra = {k: v for k, v in chosen.items() if k not in ("source", "metric") and v}
        return cls(source, metric, t, v, rules, mine.reset_index(drop=True), notes.reset_index(drop=True), inc,
                   extra=extra)

    @property
    def name(self) -> str:
        """The series as a person reads it: ``source / metric``, its other labels after."""
        if not self.source:
            name = self.metric
        else:
            name = self.source if self.source == self.metric else f"{self.source} / {self.metric}"
        for k, v in self.extra.items():
            name += f" {v}" if k == "labels" else f" {k}={v}"
        return name

    def _summary(self) -> str:
        return f"{self.name}: {len(self.times)} points, {len(self.alerts)} alerts"

    def plot(self, ax: Axes | None = None, *, title: str | None = None) -> TimelineDisplay:
        fig, ax = _new_axes(ax, TIMELINE_SIZE, TIMELINE_MARGINS)
        self.figure_, self.ax_ = fig, ax
        self.artists = {k: [] for k in ("value", "lines", "spans", "markers", "incidents")}
        self.draw_series(ax)
        self.draw_alerts(ax)
        self.draw_labels(ax, title)
        return self

    def draw_series(self, ax: Axes) -> None:
        """What does not depend on the rule: incident windows, the date axis and the axis label."""
        self.artists.setdefault("incidents", [])
        if self.incidents is not None and len(self.incidents):
            s0, s1 = _mpl_days(col_ns(self.incidents["start"])), _mpl_days(col_ns(self.incidents["end"]))
            self.artists["incidents"].append(ax.broken_barh(
                list(zip(s0, s1 - s0, strict=True)), (0, 1), transform=ax.get_xaxis_transform(), color="#9b59b6",
                alpha=0.12, lw=0, label="incident"))
        _date_axis(ax)
        ax.set_ylabel(self.metric)

    def draw_alerts(self, ax: Axes, value_line: bool = True) -> list[Any]:
        """What the rule did: pending and firing spans, acknowledgements, the value line on top of
        them (unless drawn already), threshold and clear lines, notification markers. Returns the
        artists it added."""
        art = self.artists
        for k in ("value", "lines", "spans", "markers"):
            art[k] = []
        x = _mpl_days(self.times)
        band = ax.get_xaxis_transform()  # x in data, y from 0 to 1 of the axes: spans cover the height
        end = self.times[-1] if len(self.times) else 0
        # one collection per kind of span (thousands of alerts draw as quickly as one)
        a = self.alerts
        if len(a):
            p = col_ns(a["pending_since"])
            f = col_ns(a["fired_at"])
            r = col_ns(a["resolved_at"])
            r = np.maximum(np.where(r == NAT_NS, end, r), f)
            suppressed = (a["status"] == "suppressed").to_numpy()
            severity = a["severity"].to_numpy(dtype=object)
            pixel = int(self.times[-1] - self.times[0]) // 2000 if len(self.times) > 1 else 0

            def spans(lo: np.ndarray, hi: np.ndarray) -> list[tuple[float, float]]:
                lo, hi = merge_spans(lo, hi, pixel)
                return list(zip(_mpl_days(lo), _mpl_days(hi - lo), strict=True))

            pend = f > p
            if pend.any():
                art["spans"].append(ax.broken_barh(spans(p[pend], f[pend]), (0, 1), transform=band, color="#999999",
                                                   alpha=0.15, lw=0, label="pending"))
            for sev in dict.fromkeys(severity.tolist()):  # every severity present, in order of appearance
                color = severity_color(sev)
                for supp in (False, True):
                    m = (severity == sev) & (suppressed == supp)
                    if not m.any():
                        continue
                    label = ("suppressed " if supp else "firing ") + sev
                    if supp:  # hatched: one path of every span, hatched once (hatching each costs ~0.1 ms)
                        art["spans"].append(ax.add_artist(_spans_patch(*merge_spans(f[m], r[m], pixel), transform=band,
                                                                      facecolor=color, alpha=0.12, lw=0, hatch="//",
                                                                      label=label)))
                    else:
                        art["spans"].append(ax.broken_barh(spans(f[m], r[m]), (0, 1), transform=band,
                                                           facecolor=color, alpha=0.35, lw=0, label=label))
            acked = a["acknowledged_at"].notna().to_numpy()
            if acked.any():
                art["markers"].append(ax.vlines(_mpl_days(col_ns(a.loc[acked, "acknowledged_at"])), 0, 1,
                                                transform=band, color="#2e8b57", lw=0.8, ls=":", label="acknowledged"))
        if value_line:
            art["value"] += ax.plot(x, self.values, color="#34495e", lw=0.8, label=f"{self.metric}")
        for line in self.rules:
            if line.get("threshold") is None:  # a rule without a number at the top draws no line
                continue
            color = severity_color(line["severity"])
            art["lines"].append(ax.axhline(line["threshold"], color=color, lw=1.2, ls="--",
                                           label=f"{line['id']} {line['op']} {line['threshold']:g}"))
            if line["clear"] is not None:
                art["lines"].append(ax.axhline(line["clear"], color=color, lw=0.9, ls=":",
                                               label=f"clear {line['clear']:g}"))
        if len(self.notifications):
            ymax = float(np.nanmax(self.values)) if np.isfinite(self.values).any() else 1.0
            for kind, (marker, color) in KIND_MARKERS.items():
                at = self.notifications.loc[self.notifications["kind"] == kind, "at"]
                if len(at):
                    ns = col_ns(at)
                    step = max(int(self.times[-1] - self.times[0]) // 1500, 1) if len(self.times) > 1 else 1
                    xs = _mpl_days(np.unique(ns // step) * step)  # one marker per pixel is all one can see
                    art["markers"].append(ax.scatter(xs, np.full(len(xs), ymax), marker=marker, s=18, color=color,
                                                     zorder=5, label=kind, clip_on=False))
        return [*art["spans"], *art["value"], *art["lines"], *art["markers"]]

    def draw_labels(self, ax: Axes, title: str | None = None, legend: bool = True,
                    conditions: bool = False) -> list[Any]:
        """The title (the series, with ``conditions`` its rules' conditions, and the alert count) and the
        legend; returns the artists."""
        name = self.name
        if conditions:
            name += " " + "; ".join(f"{r['op']} {r['threshold']:g}" + (
                f" (clear {r['clear']:g})" if r["clear"] is not None else "") for r in self.rules
                if r.get("threshold") is not None)
        fired = int((self.alerts["status"] != "suppressed").sum())
        made: list[Any] = [ax.set_title(title or f"{name}: {fired} alert{'s' if fired != 1 else ''}", loc="left",
                                        fontsize=10)]
        ax.margins(x=0)
        if legend:
            made.append(ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=7, ncols=8, frameon=False))
        return made

    def suppressible(self, severity: str | None = None) -> bool:
        """Whether alerts (of ``severity``) can be suppressed here: a rule with a cooldown, or one shown."""
        if self.rules and any(r.get("cooldown") for r in self.rules if severity is None or r["severity"] == severity):
            return True
        a = self.alerts
        if not len(a):
            return False
        held = (a["status"] == "suppressed").to_numpy(dtype=bool)
        if severity is not None:
            held = held & (a["severity"] == severity).to_numpy(dtype=bool)
        return bool(held.any())

    def legend_proxies(self) -> tuple[list[Any], list[str]]:
        """Legend entries for everything a rule of these severities can draw (a legend that never changes)."""
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles: list[Any] = [Line2D([], [], color="#34495e", lw=0.8)]
        labels = [self.metric]
        if self.incidents is not None and len(self.incidents):
            handles.append(Patch(color="#9b59b6", alpha=0.12, lw=0))
            labels.append("incident")
        handles.append(Patch(color="#999999", alpha=0.15, lw=0))
        labels.append("pending")
        for sev in dict.fromkeys(r["severity"] for r in self.rules):
            color = severity_color(sev)
            handles.append(Patch(facecolor=color, alpha=0.35, lw=0))
            labels.append(f"firing {sev}")
            if self.suppressible(sev):  # a cooldown can hold alerts back: their hatched spans need a name
                handles.append(Patch(facecolor=color, edgecolor=color, alpha=0.12, lw=0, hatch="//"))
                labels.append(f"suppressed {sev}")
            if any(r.get("threshold") is not None for r in self.rules if r["severity"] == sev):
                handles.append(Line2D([], [], color=color, lw=1.2, ls="--"))
                labels.append("threshold")
        for kind in ("firing", "resolved"):
            marker, color = KIND_MARKERS[kind]
            handles.append(Line2D([], [], ls="", marker=marker, color=color, ms=4))
            labels.append(f"{kind} notification")
        return handles, labels


def _among(col: pd.Series, values: set[str]) -> np.ndarray:
    """Which rows of a string column hold one of ``values`` (one Arrow hash pass; pandas' ``isin`` builds
    a Python list of the values each time)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = pc.is_in(arrow_strings(col), value_set=pa.array(sorted(values), type=pa.string()))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _spans_patch(lo: np.ndarray, hi: np.ndarray, **style: Any) -> Any:
    """Spans from ``lo`` to ``hi`` (ns), the axes' full height, as one patch: one compound path of
    rectangles, so a hatch is laid once over all of them rather than once per span."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    x0, x1 = _mpl_days(lo), _mpl_days(np.maximum(hi, lo))
    n = len(x0)
    vertices = np.empty((n, 5, 2))
    vertices[:, :, 0] = np.stack([x0, x1, x1, x0, x0], axis=1)
    vertices[:, :, 1] = [0.0, 0.0, 1.0, 1.0, 0.0]
    codes = np.tile(np.array([MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO, MplPath.CLOSEPOLY],
                             dtype=MplPath.code_type), n)
    return PathPatch(MplPath(vertices.reshape(-1, 2), codes), **style)


class TimelinePainter:
    """Redraws one timeline as a PNG quickly while only the rule changes (the tuner's slider).

    The series' axes, ticks and incident windows are rendered once per series into a
    background; each frame restores it and draws only what the rule did (spans, value
    line, rule lines, markers, title, legend) on top, then encodes with light
    compression. The y range is fixed per series (``ylim``) so frames line up.
    """

    def __init__(self, dpi: int = 80) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.figure = new_figure(figsize=TIMELINE_SIZE, dpi=dpi)
        self.figure.subplots_adjust(**TIMELINE_MARGINS)
        self.canvas = FigureCanvasAgg(self.figure)
        self.ax = self.figure.subplots()
        self._key: tuple[Any, ...] | None = None
        self._background: Any = None

    def png(self, display: TimelineDisplay, ylim: tuple[float, float] | None = None) -> bytes:
        ax = self.ax
        inc = display.incidents
        windows = b"" if inc is None or not len(inc) else col_ns(inc["start"]).tobytes() + col_ns(inc["end"]).tobytes()
        key = (display.source, display.metric, ylim, windows, len(display.times), display.suppressible())
        if key != self._key:  # a new series: draw its background once
            ax.clear()
            display.artists = {}
            display.draw_series(ax)
            x = _mpl_days(display.times)
            if len(x) > 1:
                ax.set_xlim(x[0], x[-1])
            lo, hi = (float(np.nanmin(display.values)), float(np.nanmax(display.values))) if len(display.values) \
                else (0.0, 1.0)
            if ylim is not None:
                lo, hi = min(lo, ylim[0]), max(hi, ylim[1])
            pad = (hi - lo) * 0.05 or 1.0
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_autoscale_on(False)
            ax.set_title("")
            # the series itself does not change with the rule: it is part of the background, and the
            # rule's spans are washed over it (a dense line is the most expensive thing to draw)
            ax.plot(x, display.values, color="#34495e", lw=0.8)
            handles, labels = display.legend_proxies()  # drawn once: a legend costs a quarter of a frame
            ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=7, ncols=8,
                      frameon=False)
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
            self._key = key
        else:
            self.canvas.restore_region(self._background)
        artists = display.draw_alerts(ax, value_line=False)
        title = display.draw_labels(ax, legend=False, conditions=True)
        renderer = self.canvas.get_renderer()
        for artist in [*artists, *title]:
            artist.draw(renderer)
        for artist in artists:
            artist.remove()  # the next frame starts again from the background
        display.figure_, display.ax_ = self.figure, ax
        return _encode(self.canvas)


class SweepCurvePainter:
    """The trade-off curve of a threshold sweep with the current threshold marked (the tuner).

    The curves (alerts per week, and recall when incidents were given) are drawn once
    per sweep table; a threshold move draws only the marker on top.
    """

    def __init__(self, dpi: int = 80) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.figure = new_figure(figsize=(4.6, 2.6), dpi=dpi)
        self.figure.subplots_adjust(left=0.15, right=0.85, top=0.87, bottom=0.22)
        self.canvas = FigureCanvasAgg(self.figure)
        self.ax = self.figure.subplots()
        self._table: pd.DataFrame | None = None
        self._background: Any = None

    def png(self, table: pd.DataFrame, current: float, label: str = "") -> bytes:
        ax = self.ax
        if table is not self._table:  # a new sweep: draw its curves once
            self.figure.clear()
            ax = self.ax = self.figure.subplots()
            self.figure.subplots_adjust(left=0.15, right=0.85, top=0.87, bottom=0.22)
            t = table.sort_values("threshold")
            ax.plot(t["threshold"], t["alerts_per_week"], color="#34495e", lw=1.2)
            ax.set_xlabel("threshold", fontsize=8)
            ax.set_ylabel("alerts / week", fontsize=8, color="#34495e")
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if "recall" in t.columns and t["recall"].notna().any():
                right = ax.twinx()
                right.plot(t["threshold"], t["recall"], color="#d1495b", lw=1.2)
                right.set_ylim(-0.05, 1.05)
                right.set_ylabel("recall", fontsize=8, color="#d1495b")
                right.tick_params(labelsize=7)
            ax.set_title("")
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
            self._table = table
        else:
            self.canvas.restore_region(self._background)
        renderer = self.canvas.get_renderer()
        marker = ax.axvline(current, color="#f08a4b", lw=1.5, ls="--")
        title = ax.set_title(label, loc="left", fontsize=8)
        for artist in (marker, title):
            artist.draw(renderer)
        marker.remove()
        return _encode(self.canvas)


def _encode(canvas: Any) -> bytes:
    """The canvas as PNG, lightly compressed (speed over bytes for live widgets)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).save(buf, format="png",
                                                                                 compress_level=1)
    return buf.getvalue()


@dataclass(repr=False)
class StackedTimelines(_Picture):
    """Several series one above the other on a shared time axis."""

    displays: list[TimelineDisplay]
    figure_: Any = None

    @classmethod
    def from_result(cls, result: BacktestResult, series: list[tuple[str, str]] | None = None,
                    limit: int = 6, bins: int = 1500) -> StackedTimelines:
        """The given ``(source, metric)`` pairs, or the ``limit`` series (label sets) with most alerts."""
        if series is not None:
            return cls([TimelineDisplay.from_result(result, source=s, metric=m, bins=bins) for s, m in series])
        displays = []
        for chosen in busiest_series(result, limit):
            source, metric = chosen.pop("source", None), chosen.pop("metric", None)
            displays.append(TimelineDisplay.from_result(result, source=source, metric=metric, labels=chosen,
                                                        bins=bins))
        return cls(displays)

    def _summary(self) -> str:
        return f"{len(self.displays)} series"

    def plot(self, figure: Figure | None = None) -> StackedTimelines:
        n = max(len(self.displays), 1)
        fig = figure if figure is not None else new_figure(figsize=(11, 2.6 * n + 0.6), layout="constrained")
        axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
        for d, ax in zip(self.displays, axes, strict=False):
            d.plot(ax)
            if ax is not axes[-1]:
                ax.get_legend().remove()
        self.figure_ = fig
        return self


# --------------------------------------------------------------------------- sweeps


@dataclass(repr=False)
class SweepDisplay(_Picture):
    """Statistics of a sweep against one parameter, one line per value of the others."""

    table: pd.DataFrame
    x: str
    y: list[str]
    by: list[str]
    artists: list[Any] = field(default_factory=list)
    figure_: Any = None
    axes_: Any = None

    @classmethod
    def from_sweep(cls, table: pd.DataFrame, x: str | None = None, y: list[str] | None = None) -> SweepDisplay:
        params = table.attrs.get("perfalert_sweep", {}).get("params") or [
            c for c in ("threshold", "for", "cooldown", "clear", "keep_firing_for") if c in table.columns]
        x = x or params[0]
        y = y or [c for c in ("alerts_per_day", "recall", "mean_detection_delay_s") if c in table.columns]
        return cls(table, x, y, [p for p in params if p != x])

    def _summary(self) -> str:
        return f"{len(self.table)} combinations: {', '.join(self.y)} against {self.x}"

    def plot(self, axes: Any = None) -> SweepDisplay:
        if axes is None:
            fig = new_figure(figsize=(4.2 * len(self.y), 3.3), layout="constrained")
            axes = fig.subplots(1, len(self.y), squeeze=False)[0]
        else:
            fig = axes[0].figure
        self.figure_, self.axes_ = fig, axes
        groups = [((), self.table)] if not self.by else list(self.table.groupby(self.by, sort=False, dropna=False))
        for ax, col in zip(axes, self.y, strict=True):
            for key, g in groups[:12]:
                label = ", ".join(
                    f"{k}={v}" for k, v in zip(self.by, key if isinstance(key, tuple) else (key,), strict=False)
                )
                g = g.sort_values(self.x)
                self.artists += ax.plot(g[self.x].to_numpy(), g[col].to_numpy(dtype=float), marker=".", lw=1,
                                        label=label or None)
            ax.set_xlabel(self.x)
            ax.set_ylabel(col)
            ax.grid(alpha=0.3)
        if self.by:
            axes[0].legend(fontsize=7, frameon=False)
        return self


@dataclass(repr=False)
class FrontierDisplay(_Picture):
    """All sweep rows as points, the Pareto frontier as a line (alert volume against recall)."""

    table: pd.DataFrame
    front: pd.DataFrame
    x: str
    y: str
    artists: list[Any] = field(default_factory=list)
    figure_: Any = None
    ax_: Any = None

    @classmethod
    def from_sweep(cls, table: pd.DataFrame, x: str = "alerts_per_day", y: str | None = None) -> FrontierDisplay:
        from .tuning import frontier

        y = y or ("recall" if "recall" in table.columns else "mean_duration_s")
        front = frontier(table, {x: "min", y: "max" if y in ("recall", "precision") else "min"})
        return cls(table, front, x, y)

    def _summary(self) -> str:
        return f"{len(self.front)} of {len(self.table)} combinations on the frontier ({self.y} against {self.x})"

    def plot(self, ax: Axes | None = None) -> FrontierDisplay:
        fig, ax = _new_axes(ax, (5.5, 4))
        self.figure_, self.ax_ = fig, ax
        self.artists.append(
            ax.scatter(self.table[self.x], self.table[self.y], s=10, color="#bbbbbb", label="combinations")
        )
        f = self.front.sort_values(self.x)
        self.artists += ax.plot(f[self.x], f[self.y], color="#d1495b", marker="o", ms=4, lw=1.5, label="frontier")
        ax.set_xlabel(self.x)
        ax.set_ylabel(self.y)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
        return self


# --------------------------------------------------------------------------- load


@dataclass(repr=False)
class LoadDisplay(_Picture):
    """Delivered notifications by hour of week (UTC): when the on-call gets woken."""

    counts: np.ndarray  # 7 x 24
    artists: list[Any] = field(default_factory=list)
    figure_: Any = None
    ax_: Any = None

    @classmethod
    def from_result(cls, result: BacktestResult, pages_only: bool = False) -> LoadDisplay:
        n = result.notifications
        if pages_only:  # SPEC 5's pages
            n = n[notification_pages(n, result.alerts)]
        elif "delivered" in n.columns:  # Alertmanager's have no such column: every row was received
            n = n[n["delivered"]]
        counts = np.zeros((7, 24), dtype=np.int64)
        if len(n):
            np.add.at(counts, (n["at"].dt.day_of_week.to_numpy(), n["at"].dt.hour.to_numpy()), 1)
        return cls(counts)

    def _summary(self) -> str:
        return f"{int(self.counts.sum())} notifications by hour of week"

    def plot(self, ax: Axes | None = None) -> LoadDisplay:
        fig, ax = _new_axes(ax, (9, 2.8))
        self.figure_, self.ax_ = fig, ax
        im = ax.imshow(self.counts, aspect="auto", cmap="YlOrRd", interpolation="nearest")
        self.artists.append(im)
        ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
        ax.set_xticks(range(0, 24, 3))
        ax.set_xlabel("hour of day (UTC)")
        fig.colorbar(im, ax=ax, label="notifications")
        return self


@dataclass(repr=False)
class QueryDisplay(_Picture):
    """The series of a ``pal.promql`` result over time, one line per label set.

    ``incidents`` (start/end columns) are shaded; ``threshold`` draws the line a rule
    would compare with. At most ``max_series`` series are drawn (the largest first).
    """

    series: list[tuple[str, np.ndarray, np.ndarray]]  # labels, times (ns), values
    title: str = ""
    threshold: float | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    hidden: int = 0
    artists: list[Any] = field(default_factory=list)
    figure_: Any = None
    ax_: Any = None

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, title: str = "", threshold: float | None = None,
                   incidents: pd.DataFrame | None = None, max_series: int = 8) -> QueryDisplay:
        missing = [c for c in ("timestamp", "value", "labels") if c not in frame.columns]
        if missing:
            raise UsageError(f"QueryDisplay: expected the frame pal.promql returns; missing {', '.join(missing)}")
        groups = []
        for labels, part in frame.groupby("labels", observed=True, sort=True):
            groups.append((str(labels), col_ns(part["timestamp"]), part["value"].to_numpy(dtype=np.float64)))
        groups.sort(key=lambda g: -np.nanmax(np.abs(g[2])) if len(g[2]) and np.isfinite(g[2]).any() else 0)
        spans = []
        if incidents is not None and len(incidents):
            spans = list(zip(col_ns(incidents["start"]).tolist(), col_ns(incidents["end"]).tolist(), strict=True))
        return cls(groups[:max_series], title, threshold, spans, max(0, len(groups) - max_series))

    def _summary(self) -> str:
        return f"{len(self.series) + self.hidden} series"

    def plot(self, ax: Axes | None = None) -> QueryDisplay:
        fig, ax = _new_axes(ax, TIMELINE_SIZE)
        self.figure_, self.ax_ = fig, ax
        for start, end in self.spans:
            self.artists.append(ax.axvspan(_mpl_days(np.array([start]))[0], _mpl_days(np.array([end]))[0],
                                           color="#d1495b", alpha=0.12, lw=0))
        for labels, times, values in self.series:
            t, v = decimate(times, values)
            (line,) = ax.plot(_mpl_days(t), v, lw=1.1, label=labels)
            self.artists.append(line)
        if self.threshold is not None:
            self.artists.append(ax.axhline(self.threshold, color="#d1495b", ls="--", lw=1, label="threshold"))
        if self.series:
            extra = f" (+{self.hidden} more)" if self.hidden else ""
            ax.legend(fontsize=7, loc="upper left", frameon=False, title=f"series{extra}", title_fontsize=7)
        else:
            ax.text(0.5, 0.5, "no series: the expression is empty over this range", ha="center",
                    transform=ax.transAxes, color="#666666")
        ax.set_title(self.title, fontsize=10, loc="left")
        _date_axis(ax)
        return self


@dataclass(repr=False)
class ReceiverTimeline(_Picture):
    """What each Alertmanager receiver got over time: one row per receiver, a mark per notification
    (firing, resolved only, repeat), from ``backtest(..., alertmanager=...)``."""

    receivers: list[str]
    marks: dict[str, dict[str, np.ndarray]]  # receiver -> kind -> times (ns)
    span: tuple[int, int]
    artists: list[Any] = field(default_factory=list)
    figure_: Any = None
    ax_: Any = None

    @classmethod
    def from_result(cls, result: BacktestResult) -> ReceiverTimeline:
        notes = result.notifications
        if result.receivers is None or "receiver" not in notes.columns:
            raise UsageError("ReceiverTimeline: the result has no Alertmanager notifications; "
                             "backtest(..., alertmanager=load_alertmanager(path))")
        names = [str(r) for r in result.receivers["receiver"]]
        kind = np.where(notes["repeat"], "repeat", np.where(notes["firing"] > 0, "firing", "resolved"))
        marks = {name: {k: col_ns(notes.loc[(notes["receiver"] == name).to_numpy() & (kind == k), "at"])
                        for k in ("firing", "resolved", "repeat")} for name in names}
        return cls(names, marks, (pd.Timestamp(result.span[0]).value, pd.Timestamp(result.span[1]).value))

    def _summary(self) -> str:
        return f"{len(self.receivers)} receivers"

    def plot(self, ax: Axes | None = None) -> ReceiverTimeline:
        fig, ax = _new_axes(ax, (TIMELINE_SIZE[0], 0.9 + 0.45 * max(len(self.receivers), 1)))
        self.figure_, self.ax_ = fig, ax
        colors = {"firing": "#d1495b", "resolved": "#2e8b57", "repeat": "#999999"}
        for row, name in enumerate(self.receivers):
            for kind, times in self.marks[name].items():
                if len(times):
                    self.artists.append(ax.scatter(_mpl_days(times), np.full(len(times), row), marker="|", s=180,
                                                   color=colors[kind], label=kind if row == 0 else None))
        ax.set_yticks(range(len(self.receivers)), self.receivers)
        ax.set_ylim(-0.7, len(self.receivers) - 0.3)
        lo, hi = _mpl_days(np.array(self.span))
        ax.set_xlim(float(lo), float(hi))
        ax.set_title("notifications per receiver", fontsize=10, loc="left")
        if any(len(t) for m in self.marks.values() for t in m.values()):
            ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, ncols=3,
                      borderaxespad=0.1)
        _date_axis(ax)
        return self


def busiest_series(result: BacktestResult, limit: int) -> list[dict[str, str]]:
    """The label sets (as :meth:`TimelineDisplay.from_result` takes them) of the ``limit`` series
    with most alerts, busiest first; the first series of the input when none fired."""
    alerts = result.alerts
    by = "rule_id" if result.rules.kind == "prometheus" else "metric"
    extra = [str(c) for c in (result.series.keys.columns[2:] if result.series is not None else [])
             if str(c) in alerts.columns]
    cols = ["source", by, *extra]
    shown = (alerts["status"] != "suppressed").to_numpy(dtype=bool)
    if shown.any():  # only the columns counted by, and rows picked only when some are suppressed (no copy of
        fired = alerts[cols] if shown.all() else alerts.loc[shown, cols]  # a table of a million alerts)
        counts = fired.groupby(cols, sort=False).size().sort_values(ascending=False, kind="stable")
        return [{("metric" if c == by else c): str(v) for c, v in zip(cols, key if isinstance(key, tuple) else (key,),
                                                                        strict=True)}
                for key in list(counts.index)[:limit]]
    if result.series is None:
        return []
    keys = result.series.keys.head(limit)
    return [{str(c): str(row[c]) for c in keys.columns} for _, row in keys.iterrows()]


def _of_sources(result: BacktestResult, sources: set[str | None]) -> BacktestResult:
    """The result with only the alerts (and notifications) of ``sources``: what the report's timelines
    of those series read, picked once rather than by each of them from every alert."""
    if not sources or any(not s for s in sources) or "source" not in result.alerts.columns:
        return result
    alerts = result.alerts[result.alerts["source"].isin(sources).to_numpy(dtype=bool)]
    notes = result.notifications
    if "source" in notes.columns and "receiver" not in notes.columns:
        notes = notes[notes["source"].isin(sources).to_numpy(dtype=bool)]
    return dataclasses.replace(result, alerts=alerts, notifications=notes)


def report_figures(result: BacktestResult, max_series: int = 6) -> list[tuple[str, bytes]]:
    """PNG pictures for the HTML report: timelines of the busiest series, and the load."""
    out = []
    fired = (result.alerts["status"] != "suppressed").to_numpy(dtype=bool).any()
    chosen_series = busiest_series(result, max_series) if fired else []
    narrow = _of_sources(result, {c.get("source") for c in chosen_series})
    for chosen in chosen_series:
        source, metric = chosen.pop("source", None), chosen.pop("metric", None)
        d = TimelineDisplay.from_result(narrow, source=source, metric=metric, labels=chosen).plot()
        out.append((d.name, _png(d.figure_, REPORT_DPI)))
    if result.receivers is not None:
        d3 = ReceiverTimeline.from_result(result).plot()
        out.append(("Notifications per receiver", _png(d3.figure_, REPORT_DPI)))
    if len(result.notifications):
        d2 = LoadDisplay.from_result(result).plot()
        out.append(("Notifications by hour of week", _png(d2.figure_, REPORT_DPI)))
    return out


def sweep_png(table: pd.DataFrame) -> bytes:
    """The sweep curves and the frontier side by side, as PNG."""
    y = [c for c in ("alerts_per_day", "recall", "mean_detection_delay_s") if c in table.columns]
    fig = new_figure(figsize=(4.2 * (len(y) + 1), 3.4), layout="constrained")
    axes = fig.subplots(1, len(y) + 1, squeeze=False)[0]
    SweepDisplay.from_sweep(table, y=y).plot(axes[:len(y)])
    FrontierDisplay.from_sweep(table).plot(axes[-1])
    return _png(fig, REPORT_DPI)



# --------------------------------------------------------------------------- SLOs (SPEC 13)

TIER_COLORS = {"page": "#d1495b", "ticket": "#f2c14e"}


def _to_days(col: pd.Series) -> np.ndarray:
    return _mpl_days(col_ns(col)) if len(col) else np.zeros(0)


def _spans(ax: Axes, starts: pd.Series, ends: pd.Series, y0: float, y1: float, color: str, label: str,
           alpha: float = 0.8, min_width: float = 1 / 1440) -> list[Any]:
    """Horizontal bars from ``starts`` to ``ends`` between ``y0`` and ``y1`` (axes fraction), each at least
    ``min_width`` days wide (a short alert stays visible on a month)."""
    out: list[Any] = []
    s, e = _to_days(starts), _to_days(ends)
    for i, (a, b) in enumerate(zip(s, e, strict=True)):
        out.append(ax.axvspan(a, max(b, a + min_width), ymin=y0, ymax=y1, color=color, alpha=alpha, lw=0,
                              label=label if i == 0 else None))
    return out


@dataclass(repr=False)
class SLOBudgetDisplay(_Picture):
    """An SLO's error budget remaining over time, with each tier's alerts as bars and the events
    (incidents, or the stretches burning too fast) they are scored on."""

    slo: str
    budget: pd.DataFrame  # timestamp, budget_remaining
    alerts: pd.DataFrame  # fired_at, resolved_at, tier
    events: pd.DataFrame  # start, end, kind
    end: pd.Timestamp
    artists: list[Any] = field(default_factory=list)
    figure_: Any = None
    ax_: Any = None

    @classmethod
    def from_slo(cls, result: Any, slo: str | None = None, series: str | None = None) -> SLOBudgetDisplay:
        """From :func:`~perfalert_lab.slo.backtest_slo`'s result (``slo``: its id, default the first; of an
        SLI with several series, ``series``, default the one whose budget ran lowest)."""
        slo = slo or result.slos[0].id
        budget = result.budget[result.budget["slo"] == slo]
        alerts = result.alerts[result.alerts["slo"] == slo]
        name = slo
        if budget["series"].nunique() > 1:
            series = series or str(budget.groupby("series")["budget_remaining"].min().idxmin())
            budget = budget[budget["series"] == series]
            alerts = alerts[alerts["labels"].str.contains(series, regex=False)]
            name = f"{slo} {{{series}}}"
        events = result.events[result.events["slo"] == slo] if len(result.events) else result.events
        return cls(name, budget, alerts, events, result.result.span[1])

    def _summary(self) -> str:
        return f"{self.slo}: budget remaining, {len(self.alerts)} alerts, {len(self.events)} events"

    def plot(self, ax: Axes | None = None) -> SLOBudgetDisplay:
        fig, ax = _new_axes(ax, (11, 3.6))
        self.figure_, self.ax_ = fig, ax
        x = _to_days(self.budget["timestamp"])
        y = self.budget["budget_remaining"].to_numpy(dtype=np.float64) * 100
        self.artists += ax.plot(x, y, color="#2c3e50", lw=1.2, label="budget remaining")
        ax.axhline(0, color="#888888", lw=0.8, ls=":")
        if len(self.events):
            kind = str(self.events["kind"].iloc[0])
            self.artists += _spans(ax, self.events["start"], self.events["end"], 0, 1, "#8e44ad",
                                   "incident" if kind == "incident" else "burning too fast", alpha=0.12)
        ends = self.alerts["resolved_at"].fillna(self.end) if len(self.alerts) else self.alerts["resolved_at"]
        days = float(x[-1] - x[0]) if len(x) > 1 else 1.0
        for k, tier in enumerate(("page", "ticket")):
            mine = self.alerts["tier"] == tier
            self.artists += _spans(ax, self.alerts["fired_at"][mine], ends[mine], 0.94 - 0.06 * k, 1.0 - 0.06 * k,
                                   TIER_COLORS[tier], f"{tier} alert", min_width=days / 250)
        ax.set_ylabel("error budget remaining (%)")
        ax.set_title(f"{self.slo}: error budget remaining, alerts by tier", fontsize=10)
        _date_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="lower left", ncol=4)
        return self


@dataclass(repr=False)
class BurnRateDisplay(_Picture):
    """An SLO's burn rate over each recorded window (log scale), with each alert condition's
    threshold as a dashed line in its long window's colour."""

    slo: str
    burn: pd.DataFrame  # timestamp, window, burn_rate
    thresholds: list[tuple[str, str, float]]  # (tier, long window, factor)
    artists: list[Any] = field(default_factory=list)
    figure_: Any = None
    ax_: Any = None

    @classmethod
    def from_slo(cls, result: Any, slo: str | None = None, series: str | None = None) -> BurnRateDisplay:
        """From :func:`~perfalert_lab.slo.backtest_slo`'s result (of an SLI with several series,
        ``series``, default the one that burned fastest)."""
        obj = result.slos[0] if slo is None else next(s for s in result.slos if s.id == slo)
        burn = result.burn[result.burn["slo"] == obj.id]
        name = obj.id
        if burn["series"].nunique() > 1:
            series = series or str(burn.groupby("series")["burn_rate"].max().idxmax())
            burn = burn[burn["series"] == series]
            name = f"{obj.id} {{{series}}}"
        thresholds = [(w.severity, w.long, obj.factor(w)) for w in obj.windows]
        return cls(name, burn, thresholds)

    def _summary(self) -> str:
        return f"{self.slo}: burn rate over {self.burn['window'].nunique()} windows"

    def plot(self, ax: Axes | None = None) -> BurnRateDisplay:
        fig, ax = _new_axes(ax, (11, 3.6))
        self.figure_, self.ax_ = fig, ax
        colors = {}
        windows = [w for w in dict.fromkeys(self.burn["window"]) if not w.endswith("d") or w in
                   {t[1] for t in self.thresholds}]  # the period's window is a budget, not an alert window
        cmap = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22"]
        for i, w in enumerate(windows):
            g = self.burn[self.burn["window"] == w]
            x, y = decimate(col_ns(g["timestamp"]), g["burn_rate"].to_numpy(dtype=np.float64))
            colors[w] = cmap[i % len(cmap)]
            y = np.where(y > 0, y, np.nan)  # no errors: a gap on the log scale, not a wall to its floor
            short = i < len(windows) - 1 and i < 2  # the shortest windows are noisy: drawn light, below
            self.artists += ax.plot(_mpl_days(x), y, lw=0.7 if short else 1.1, color=colors[w], label=w,
                                    alpha=0.35 if short else 0.95, zorder=1 if short else 2)
        for tier, long, factor in self.thresholds:
            self.artists.append(ax.axhline(factor, ls="--", lw=1, color=colors.get(long, "#444444")))
            ax.annotate(f"{tier} {factor:.3g}x ({long})", xy=(1.0, factor), xycoords=("axes fraction", "data"),
                        fontsize=7, ha="right", va="bottom", color=colors.get(long, "#444444"))
        ax.set_yscale("log")
        finite = self.burn["burn_rate"].to_numpy(dtype=np.float64)
        finite = finite[np.isfinite(finite) & (finite > 0)]
        if finite.size:
            ax.set_ylim(max(float(np.quantile(finite, 0.01)) / 2, 1e-3), float(finite.max()) * 2)
        ax.set_ylabel("burn rate (x budget)")
        ax.set_title(f"{self.slo}: burn rate over each window, alert thresholds dashed", fontsize=10)
        _date_axis(ax)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=len(windows))
        return self


@dataclass(repr=False)
class StrategiesDisplay(_Picture):
    """The workbook's six alerting strategies side by side: detection and reset times, recall and
    precision, pages per week."""

    table: pd.DataFrame
    artists: list[Any] = field(default_factory=list)
    figure_: Any = None
    axes_: Any = None

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> StrategiesDisplay:
        return cls(table)

    def _summary(self) -> str:
        return f"{len(self.table)} strategies"

    def plot(self, axes: Any = None) -> StrategiesDisplay:
        if axes is None:
            fig = new_figure(figsize=(11, 3.4), layout="constrained")
            axes = fig.subplots(1, 3)
        else:
            fig = axes[0].figure
        self.figure_, self.axes_ = fig, axes
        t = self.table
        names = [f"{n}. {name}" for n, name in zip(t["strategy"], t["name"], strict=True)]
        y = np.arange(len(t))[::-1]
        for ax, (col, label, color) in zip(axes[:2], (("mean_detection_s", "detection time (min)", "#2c7fb8"),
                                                      ("mean_reset_s", "reset time (min)", "#f08a4b")), strict=True):
            v = t[col].to_numpy(dtype=np.float64) / 60
            self.artists.append(ax.barh(y, np.nan_to_num(v), color=color))
            for yi, vi in zip(y, v, strict=True):
                ax.annotate("never alerted" if np.isnan(vi) else f"{vi:.0f}", (max(np.nan_to_num(vi), 0), yi),
                            xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
            ax.set_xlabel(label)
            ax.grid(alpha=0.3, axis="x")
        axes[0].set_yticks(y, names, fontsize=8)
        axes[1].set_yticks(y, [""] * len(y))
        ax = axes[2]
        h = 0.38
        self.artists.append(ax.barh(y + h / 2, t["recall"].fillna(0), h, color="#5b8e7d", label="recall"))
        self.artists.append(ax.barh(y - h / 2, t["precision"].fillna(0), h, color="#bc4b51", label="precision"))
        for yi, p in zip(y, t["pages_per_week"], strict=True):
            ax.annotate(f"{p:.2g} pages/wk", (1.02, yi), fontsize=7, va="center")
        ax.set_xlim(0, 1.45)
        ax.set_ylim(y.min() - 0.6, y.max() + 1.1)
        ax.set_yticks(y, [""] * len(y))
        ax.set_xlabel("recall, precision")
        ax.legend(fontsize=7, frameon=False, loc="upper center", ncol=2)
        ax.grid(alpha=0.3, axis="x")
        return self


def slo_figures(result: Any, strategies: dict[str, pd.DataFrame] | None = None) -> list[tuple[str, bytes]]:
    """The SLO pictures as PNGs, for the report and ``perfalert slo --out``: per SLO its budget and
    burn rates, and (``strategies``: SLO id -> :func:`~perfalert_lab.slo.compare_strategies` table)
    the workbook's strategies side by side."""
    out = []
    for slo in result.slos:
        out.append((f"{slo.id}: budget remaining", _png(SLOBudgetDisplay.from_slo(result, slo.id).plot().figure_,
                                                        REPORT_DPI)))
        out.append((f"{slo.id}: burn rates", _png(BurnRateDisplay.from_slo(result, slo.id).plot().figure_,
                                                  REPORT_DPI)))
        if strategies and slo.id in strategies:
            out.append((f"{slo.id}: the workbook's six strategies",
                        _png(StrategiesDisplay.from_table(strategies[slo.id]).plot().figure_, REPORT_DPI)))
    return out
