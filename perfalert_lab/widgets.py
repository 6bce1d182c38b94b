"""The threshold tuner: ipywidgets wiring around the engine (no logic of its own).

``pal.tune(frame, rule)`` returns a widget with sliders for threshold, clear, ``for``
and cooldown and a series selector. Every change replays the rule (the series are
prepared once) and redraws the statistics and the timeline; a button shows the
tuned rule as YAML and another saves it. ``tuner.controls`` (by parameter name) and
``tuner.result`` make it testable without a browser::

    tuner = pal.tune(frame, rule)
    tuner.controls["threshold"].value = 85
    tuner.result.stats       # already replayed
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._time import format_duration, parse_duration
from .clock import Clock
from .errors import RulesError, UsageError, require_module
from .plot import SweepCurvePainter, TimelineDisplay, TimelinePainter
from .present import stats_for_people
from .result import BacktestResult
from .stats import compute_stats
from .tuning import tuning_model

ipywidgets = require_module("ipywidgets", "notebook", "The tuner")

__all__ = ["Tuner", "tune"]

DURATION_CHOICES = [
    "0s",
    "30s",
    "1m",
    "2m",
    "3m",
    "5m",
    "10m",
    "15m",
    "20m",
    "30m",
    "45m",
    "1h",
    "2h",
    "4h",
    "12h",
    "1d",
]
CURVE_POINTS = 41  # thresholds in the tuner's trade-off curve
# what a threshold decision needs (the report has the rest)
STAT_COLUMNS = ["alerts", "suppressed", "alerts_per_day", "notifications", "recall", "precision",
                "mean_detection_delay_s"]


def nice_step(lo: float, hi: float, target: int = 200) -> float:
    """A slider step of 1, 2 or 5 times a power of ten giving about ``target`` positions over the range.

    >>> nice_step(0, 100), nice_step(20.3, 98.7), nice_step(0, 0.37), nice_step(5, 5)
    (0.5, 0.5, 0.002, 1.0)
    """
    raw = (hi - lo) / target
    if not np.isfinite(raw) or raw <= 0:
        return 1.0
    mag = 10.0 ** np.floor(np.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag * (1 + 1e-9):
            return float(round(m * mag, 12))
    return float(10 * mag)  # pragma: no cover - the loop always returns


def _choices(current: Any) -> list[str]:
    now = format_duration(parse_duration(current))
    options = list(DURATION_CHOICES)
    if now not in options:
        options.append(now)
        options.sort(key=lambda x: parse_duration(x))
    return options


def tune(frame: Any, rule: Any, *, incidents: pd.DataFrame | None = None, rules: Any = None,
         clock: Clock | None = None, prometheus_compat: str = "3") -> Tuner:
    """A :class:`Tuner` widget over ``frame`` for ``rule`` (needs the ``notebook`` extra).

    ``rule`` may be a Prometheus alert rule (``rules.rule("HighErrorRate")``, or its name with
    ``rules=`` the file from :func:`load_prometheus_rules`): the tuner then moves the number of its
    top-level comparison, ``for`` and ``keep_firing_for``, and writes them back into the file.
    """
    return Tuner(tuning_model(frame, rule, rules=rules, incidents=incidents, clock=clock,
                              prometheus_compat=prometheus_compat))


class Tuner(ipywidgets.VBox):  # type: ignore[misc, name-defined]
    """Sliders over one rule, live statistics and timeline, and the rule written out.

    One widget for both kinds of rule: ``model`` is the rule's tuning model
    (:class:`~perfalert_lab.tuning.RuleReplay` for ours,
    :class:`~perfalert_lab.prometheus.tuning.PromRuleReplay` for a Prometheus alert rule; see
    :func:`~perfalert_lab.tuning.tuning_model`), which replays a variant, sweeps its threshold and
    writes it; the tuner only maps controls to the model's values and shows what it returns."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.incidents = model.incidents
        self.value_range = model.value_range
        style = {"description_width": "110px"}
        layout = ipywidgets.Layout(width="420px")
        start = model.initial()
        self.controls: dict[str, Any] = {}
        left: list[Any] = []
        if model.threshold is not None:
            lo, hi = model.value_range
            step = nice_step(lo, hi)
            lo, hi = float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step)  # round ends
            self.controls["threshold"] = ipywidgets.FloatSlider(
                value=model.threshold, min=lo, max=hi, step=step, description=f"threshold ({model.op})", style=style,
                layout=layout, continuous_update=False, readout_format=".4g")
            if model.has_clear:
                clear = start.get("clear")
                self.controls["clear_enabled"] = ipywidgets.Checkbox(value=clear is not None,
                                                                     description="hysteresis (clear)", style=style)
                self.controls["clear"] = ipywidgets.FloatSlider(
                    value=clear if clear is not None else model.threshold, min=lo, max=hi, step=step,
                    description="clear", style=style, layout=layout, continuous_update=False,
                    readout_format=".4g")
            left = list(self.controls.values())
        for key in model.durations:
            now = format_duration(parse_duration(start[_KEYWORD.get(key, key)]))
            self.controls[key] = ipywidgets.SelectionSlider(options=_choices(now), value=now, description=key,
                                                            style=style, layout=layout)
        self.result: BacktestResult | None = model.run(**self.values())
        names = model.source_names
        busiest = self.result.alerts["source"].value_counts()  # start on the series with most alerts
        first = str(busiest.index[0]) if len(busiest) and str(busiest.index[0]) in names else names[0]
        self.controls["series"] = ipywidgets.Dropdown(options=names, value=first,
                                                      description="series", style=style, layout=layout)
        right = [self.controls[k] for k in (*model.durations, "series")]
        save_as, show_label, save_label = model.button_labels
        self.status = ipywidgets.HTML()
        self.stats_view = ipywidgets.HTML(layout=ipywidgets.Layout(flex="1 1 auto", overflow="auto"))
        self.plot_view = ipywidgets.Image(format="png", layout=ipywidgets.Layout(width="100%"))
        self.curve_view = ipywidgets.Image(format="png", layout=ipywidgets.Layout(width="340px", flex="0 0 auto"))
        self.curve: pd.DataFrame | None = None  # the threshold sweep behind the curve
        self._curve_key: tuple[Any, ...] | None = None
        self.yaml_view = ipywidgets.Textarea(layout=ipywidgets.Layout(width="100%", height="220px", display="none"))
        self.save_path = ipywidgets.Text(value=model.save_as, description=save_as, style=style)
        self.yaml_button = ipywidgets.Button(description=show_label, icon="file-code-o")
        self._show_label = show_label
        save = ipywidgets.Button(description=save_label, icon="save")
        self.yaml_button.on_click(lambda _: self.toggle_yaml())
        save.on_click(lambda _: self.save())
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        self.painter = TimelinePainter(dpi=80)
        self._points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.curve_painter = SweepCurvePainter(dpi=80)
        super().__init__([
            ipywidgets.HBox([ipywidgets.VBox(left), ipywidgets.VBox(right)]),
            self.status, ipywidgets.HBox([self.stats_view, self.curve_view]), self.plot_view,
            ipywidgets.HBox([self.yaml_button, self.save_path, save]), self.yaml_view,
        ])
        self._refresh(self.result)  # the first replay, already run to find the busiest series

    # -- the values -------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The values the controls set, by the model's keywords: ``threshold`` (when the rule has one),
        ``clear`` (ours), ``for_`` and ``cooldown`` or ``keep_firing_for``."""
        c = self.controls
        out: dict[str, Any] = {_KEYWORD.get(k, k): c[k].value for k in self.model.durations}
        if "threshold" in c:
            out["threshold"] = float(c["threshold"].value)
        if "clear" in c:
            out["clear"] = float(c["clear"].value) if c["clear_enabled"].value else None
        return out

    def tuned_rule(self) -> Any:
        """The rule as the controls set it (raises RulesError when they contradict)."""
        return self.model.variant(**self.values())

    # -- wiring -----------------------------------------------------------------

    def _changed(self, change: dict[str, Any]) -> None:
        if change.get("owner") is self.controls["series"]:
            self._show_stats()
            self._draw()
            return
        self._refresh()

    def _refresh(self, result: BacktestResult | None = None) -> None:
        values = self.values()
        try:
            self.result = result if result is not None else self.model.run(**values)
            text = self.model.describe(**values)
        except RulesError as exc:
            self.status.value = f"<span style='color:#c0392b'>{_escape('; '.join(exc.problems))}</span>"
            return
        except UsageError as exc:
            self.status.value = f"<span style='color:#c0392b'>{_escape(str(exc))}</span>"
            return
        self.status.value = f"<code>{_escape(text)}</code>"
        self._draw()  # the new picture first (each view is sent as soon as it is set): what a move is for
        self._show_stats()
        self._show_curve()
        if self.yaml_view.layout.display != "none":
            self._show_yaml()

    def series_stats(self) -> pd.DataFrame:
        """Statistics of the tuned rule for all its series and for the selected one, side by side
        (both kinds of rule: the same statistics, computed the same way)."""
        assert self.result is not None
        rid, source = self.model.name, self.controls["series"].value
        everything = self.result.stats
        alerts = self.result.alerts[self.result.alerts["source"] == source]
        notes = self.result.notifications
        notes = notes[(notes["source"] == source).to_numpy(dtype=bool)]  # one rule: its source is its series
        one = compute_stats(alerts, notes, {rid: 0}, {rid: {source}}, {rid: 1}, [rid],
                            self.model.span_of(source, self.result), self.incidents)
        rows = pd.concat([everything[everything["rule_id"] == rid], one[one["rule_id"] == rid]])
        rows.insert(0, "series", ["all series", source])
        return rows[["series", *[c for c in STAT_COLUMNS if c in rows.columns]]].reset_index(drop=True)

    def _show_stats(self) -> None:
        self.stats_view.value = _stats_html(stats_for_people(self.series_stats()))

    def _show_curve(self) -> None:
        """Where the current threshold sits on the trade-off: alerts per week (and recall) against the
        threshold, swept again only when a value other than the threshold changes."""
        if "threshold" not in self.controls:
            self.curve_view.layout.display = "none"
            return
        values = self.values()
        key = tuple(sorted((k, str(v)) for k, v in values.items() if k != "threshold"))
        if key != self._curve_key:
            lo, hi = self.controls["threshold"].min, self.controls["threshold"].max
            self.curve = self.model.curve(np.linspace(lo, hi, CURVE_POINTS).tolist(), **values)
            self._curve_key = key
        assert self.result is not None and self.curve is not None
        row = self.result.stats.iloc[0]
        label = f"{self.model.op} {values['threshold']:g}: {row['alerts_per_day'] * 7:.3g} alerts/week"
        if "recall" in row.index and not pd.isna(row["recall"]):
            label += f", recall {row['recall']:.2f}"
        self.curve_view.value = self.curve_painter.png(self.curve, values["threshold"], label)

    def _draw(self) -> None:
        if self.result is None or self.result.series is None:
            return
        source = self.controls["series"].value
        display = TimelineDisplay.from_result(self.result, source=source, metric=self.model.metric,
                                              points=self._points.get(source))
        self._points[source] = (display.times, display.values)  # the series does not change: decimate once
        # render at a fixed size into an image widget: the series' axes are drawn once, a slider
        # move redraws only what the rule did (see TimelinePainter)
        self.plot_view.value = self.painter.png(display, ylim=self.value_range)
        self.figure = display.figure_

    def __repr__(self) -> str:
        try:
            text = self.model.describe(**self.values())
        except (RulesError, UsageError):
            text = "(contradicting values)"
        return f"<Tuner {self.model.name}: {text}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The live widget, plus its current timeline as a picture for readers without a kernel
        (a code host shows the PNG; JupyterLab, Notebook and VS Code show the widget)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)
            if self.plot_view.value:
                bundle["image/png"] = bytes(self.plot_view.value)
        return bundle

    # -- writing ----------------------------------------------------------------

    @property
    def yaml(self) -> str:
        """What :meth:`save` writes: our rule set with the tuned rule, or the user's Prometheus rule
        file with the tuned values (nothing else changed)."""
        return str(self.model.text(**self.values()))

    def _show_yaml(self) -> None:
        self.yaml_view.value = self.yaml

    def toggle_yaml(self) -> None:
        """Show the tuned rule's file below the timeline, or hide it again."""
        shown = self.yaml_view.layout.display != "none"
        self.yaml_view.layout.display = "none" if shown else None
        self.yaml_button.description = self._show_label if shown else self._show_label.replace("Show", "Hide")
        if not shown:
            self._show_yaml()

    def save(self, path: str | Path | None = None) -> Path:
        """Write the tuned rule (atomically; default: the path in the box) and return the path."""
        target = Path(path or self.save_path.value)
        written = Path(self.model.save(target, **self.values()))
        self.status.value = f"saved <code>{_escape(str(written))}</code>"
        return written


_KEYWORD = {"for": "for_"}  # a rule file's key -> the model's keyword


def _escape(text: str) -> str:
    return html.escape(text)


def _stats_html(people: pd.DataFrame) -> str:
    """The tuner's statistics table (wrapping headers, compact cells)."""
    people = people.rename(columns=lambda c: c.replace("_", " "))
    return ("<style>.pal-tuner-stats th{white-space:normal;max-width:6.5em;vertical-align:bottom;font-size:.85em;"
            "padding:0 .35em !important}"
            ".pal-tuner-stats td{white-space:nowrap;font-size:.9em;padding:0 .35em !important}</style>"
            + people.to_html(index=False, border=0, na_rep="", classes="pal-tuner-stats"))
