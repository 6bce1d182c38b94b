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

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._time import format_duration, parse_duration, to_ns
from .backtesting import BacktestResult, backtest_series
from .clock import Clock, SampleClock
from .engine.conditions import match_series
from .errors import RulesError, UsageError, require_module
from .frames import SeriesSet, as_incidents
from .plot import SweepCurvePainter, TimelineDisplay, TimelinePainter
from .rules.model import Rule, RuleSet
from .rules.yaml_io import rules_to_yaml, save_rules

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
         clock: Clock | None = None, prometheus_compat: str = "3") -> Any:
    """A :class:`Tuner` widget over ``frame`` for ``rule`` (needs the ``notebook`` extra).

    ``rule`` may be a Prometheus alert rule (``rules.rule("HighErrorRate")``, or its name with
    ``rules=`` the file from :func:`load_prometheus_rules`): the tuner then moves the number of its
    top-level comparison, ``for`` and ``keep_firing_for``, and writes them back into the file.
    """
    from .rules.promfile import PromRule, PromRuleFile

    if isinstance(rule, PromRule) or isinstance(rules, PromRuleFile):
        if clock is not None:
            raise UsageError("tune: a Prometheus rule runs on its group's interval; leave clock out")
        if not isinstance(rules, PromRuleFile):
            raise UsageError("tune: a Prometheus alert rule needs its file: tune(frame, rule, rules=rule_file)")
        return _tuner_class()(frame, rule, incidents=incidents, rules=rules, prometheus_compat=prometheus_compat)
    return _tuner_class()(frame, rule, incidents=incidents, rules=rules, clock=clock)


_TUNER: type | None = None
Tuner: type  # the widget class, made on first access by __getattr__ below (ipywidgets loads lazily)


def __getattr__(name: str) -> Any:
    """``Tuner`` is built on first use, so importing this module does not import ipywidgets."""
    if name == "Tuner":
        return _tuner_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _tuner_class() -> type:
    global _TUNER
    if _TUNER is None:
        _TUNER = _build_tuner_class()
    return _TUNER


def _build_tuner_class() -> type:
    widgets = require_module("ipywidgets", "notebook", "The tuner")

    class Tuner(widgets.VBox):  # type: ignore[misc, name-defined]
        """Sliders over one rule, live statistics and timeline, YAML export."""

        def __new__(cls, frame: Any, rule: Any, **kwargs: Any) -> Any:
            from .rules.promfile import PromRuleFile

            if cls is Tuner and isinstance(kwargs.get("rules"), PromRuleFile):
                return super().__new__(PromTuner)
            return super().__new__(cls)

        def __init__(self, frame: Any, rule: Rule, *, incidents: pd.DataFrame | None = None,
                     rules: RuleSet | None = None, clock: Clock | None = None) -> None:
            self.series = frame if isinstance(frame, SeriesSet) else SeriesSet.from_frame(frame)
            self.rules = (rules or RuleSet((rule,))).with_rule(rule)
            self.rule = rule
            self.clock = clock if clock is not None else SampleClock()
            self.incidents = as_incidents(incidents)
            sids = match_series(self.series.keys, rule)
            if len(sids) == 0:
                raise UsageError(f"tune: no series of metric {rule.metric!r} matches rule {rule.id!r}")
            vals = np.concatenate([self.series.values[self.series.offsets[s]:self.series.offsets[s + 1]] for s in sids])
            lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
            lo, hi = min(lo, rule.threshold), max(hi, rule.threshold)
            if rule.clear is not None:
                lo, hi = min(lo, rule.clear), max(hi, rule.clear)
            self.value_range = (lo, hi)
            step = nice_step(lo, hi)
            lo, hi = float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step)  # round ends
            style = {"description_width": "110px"}
            layout = widgets.Layout(width="420px")
            sources = sorted(set(self.series.keys["source"].iloc[sids].astype("str")))
            self.controls: dict[str, Any] = {
                "threshold": widgets.FloatSlider(value=rule.threshold, min=lo, max=hi, step=step,
                                                 description=f"threshold ({rule.op})", style=style, layout=layout,
                                                 continuous_update=False, readout_format=".4g"),
                "clear_enabled": widgets.Checkbox(value=rule.clear is not None, description="hysteresis (clear)",
                                                  style=style),
                "clear": widgets.FloatSlider(value=rule.clear if rule.clear is not None else rule.threshold, min=lo,
                                             max=hi, step=step, description="clear", style=style, layout=layout,
                                             continuous_update=False, readout_format=".4g"),
                "for": widgets.SelectionSlider(options=_choices(rule.for_), value=format_duration(rule.for_),
                                               description="for", style=style, layout=layout),
                "cooldown": widgets.SelectionSlider(options=_choices(rule.cooldown),
                                                    value=format_duration(rule.cooldown), description="cooldown",
                                                    style=style, layout=layout),
                "series": widgets.Dropdown(options=sources, value=sources[0], description="series", style=style,
                                           layout=layout),
            }
            self._assemble([self.controls[k] for k in ("threshold", "clear_enabled", "clear")],
                           [self.controls[k] for k in ("for", "cooldown", "series")],
                           save_as=f"{rule.id}.yaml", labels=("save as", "Show YAML", "Save YAML"))
            self._refresh()

        def _assemble(self, left: list[Any], right: list[Any], *, save_as: str, labels: tuple[str, str, str]) -> None:
            """The views, buttons and wiring both tuners share, laid out under two columns of controls;
            ``labels``: the save box's, the show button's and the save button's."""
            style = {"description_width": "110px"}
            self.status = widgets.HTML()
            self.stats_view = widgets.HTML(layout=widgets.Layout(flex="1 1 auto", overflow="auto"))
            self.plot_view = widgets.Image(format="png", layout=widgets.Layout(width="100%"))
            self.curve_view = widgets.Image(format="png", layout=widgets.Layout(width="340px", flex="0 0 auto"))
            self.curve: pd.DataFrame | None = None  # the threshold sweep behind the curve
            self._curve_key: tuple[Any, ...] | None = None
            self.yaml_view = widgets.Textarea(layout=widgets.Layout(width="100%", height="220px", display="none"))
            self.save_path = widgets.Text(value=save_as, description=labels[0], style=style)
            show = widgets.Button(description=labels[1], icon="file-code-o")
            save = widgets.Button(description=labels[2], icon="save")
            show.on_click(lambda _: self.toggle_yaml())
            self.yaml_button = show
            save.on_click(lambda _: self.save())
            for control in self.controls.values():
                control.observe(self._changed, names="value")
            self.result: BacktestResult | None = None
            self.painter = TimelinePainter(dpi=80)
            self._points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            self.curve_painter = SweepCurvePainter(dpi=80)
            widgets.VBox.__init__(self, [
                widgets.HBox([widgets.VBox(left), widgets.VBox(right)]),
                self.status, widgets.HBox([self.stats_view, self.curve_view]), self.plot_view,
                widgets.HBox([show, self.save_path, save]), self.yaml_view,
            ])

        # -- wiring ----------------------------------------------------------------

        def _changed(self, change: dict[str, Any]) -> None:
            owner = change.get("owner")
            if owner is self.controls["series"]:
                self._show_stats()
                self._draw()
                return
            self._refresh()

        def series_stats(self) -> pd.DataFrame:
            """Statistics of the tuned rule for all its series and for the selected one, side by side."""
            from .stats import compute_stats

            assert self.result is not None
            rid, source = self._rule_id(), self.controls["series"].value
            everything = self.result.stats
            alerts = self.result.alerts[self.result.alerts["source"] == source]
            notes = self.result.notifications
            notes = notes[(notes["source"] == source).to_numpy(dtype=bool)]  # one rule: its source is its series
            one = compute_stats(alerts, notes, {rid: 0}, {rid: {source}}, {rid: 1}, [rid], self._span_of(source),
                                self.incidents)
            rows = pd.concat([everything[everything["rule_id"] == rid], one[one["rule_id"] == rid]])
            rows.insert(0, "series", ["all series", source])
            return rows[["series", *[c for c in STAT_COLUMNS if c in rows.columns]]].reset_index(drop=True)

        def _rule_id(self) -> str:
            return self.rule.id

        def _span_of(self, source: str) -> tuple[int, int]:
            """The span a series' rates divide by (SPEC 5): its own first to last sample."""
            keys = self.series.keys
            sids = np.flatnonzero((keys["source"] == source).to_numpy(dtype=bool)
                                  & (keys["metric"] == self.rule.metric).to_numpy(dtype=bool))
            return self.series.span_of(sids)

        def _show_curve(self) -> None:
            """Where the current threshold sits on the trade-off: alerts per week (and recall) against the
            threshold, swept again only when for, cooldown or clear change."""
            import warnings

            from .tuning import sweep

            rule = self.rule
            key = (rule.for_, rule.cooldown, rule.clear, rule.keep_firing_for)
            if key != self._curve_key:
                lo, hi = self.controls["threshold"].min, self.controls["threshold"].max
                with warnings.catch_warnings():  # thresholds the clear value contradicts are simply left out
                    warnings.simplefilter("ignore")
                    self.curve = sweep(self.series, rule, threshold=np.linspace(lo, hi, CURVE_POINTS).tolist(),
                                       incidents=self.incidents, rules=self.rules, clock=self.clock)
                self._curve_key = key
            assert self.result is not None and self.curve is not None
            row = self.result.stats.iloc[0]
            label = f"{rule.op} {rule.threshold:g}: {row['alerts_per_day'] * 7:.3g} alerts/week"
            if "recall" in row.index and not pd.isna(row["recall"]):
                label += f", recall {row['recall']:.2f}"
            self.curve_view.value = self.curve_painter.png(self.curve, rule.threshold, label)

        def _show_stats(self) -> None:
            from .present import stats_for_people

            self.stats_view.value = _stats_html(stats_for_people(self.series_stats()))

        def tuned_rule(self) -> Rule:
            """The rule as the controls set it (raises RulesError when they contradict)."""
            c = self.controls
            return self.rule.replace(threshold=float(c["threshold"].value),
                                     clear=float(c["clear"].value) if c["clear_enabled"].value else None,
                                     for_=c["for"].value, cooldown=c["cooldown"].value)

        def _refresh(self) -> None:
            try:
                tuned = self.tuned_rule()
            except RulesError as exc:
                self.status.value = f"<span style='color:#c0392b'>{'; '.join(exc.problems)}</span>"
                return
            self.status.value = f"<code>{tuned.describe()}</code>"
            self.rule = tuned
            self.rules = self.rules.with_rule(tuned)
            self.result = backtest_series(self.series, RuleSet((tuned,), self.rules.channels, self.rules.silences,
                                                                self.rules.responders), self.clock, self.incidents)
            if self.yaml_view.layout.display != "none":
                self._show_yaml()
            self._show_stats()
            self._show_curve()
            self._draw()

        def _draw(self) -> None:
            if self.result is None:
                return
            source = self.controls["series"].value
            points = self._points.get(source)
            display = TimelineDisplay.from_result(self.result, source=source, metric=self.rule.metric, points=points)
            self._points[source] = (display.times, display.values)  # the series does not change: decimate once
            # render at a fixed size into an image widget: the series' axes are drawn once, a slider
            # move redraws only what the rule did (see TimelinePainter)
            self.plot_view.value = self.painter.png(display, ylim=self.value_range)
            self.figure = display.figure_

        def __repr__(self) -> str:
            return f"<Tuner {self.rule.id}: {self.rule.describe()}>"

        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
            """The live widget, plus its current timeline as a picture for readers without a kernel
            (a code host shows the PNG; JupyterLab, Notebook and VS Code show the widget)."""
            bundle = super()._repr_mimebundle_(**kwargs)
            if bundle is not None:
                bundle["text/plain"] = repr(self)
                if self.plot_view.value:
                    bundle["image/png"] = bytes(self.plot_view.value)
            return bundle

        @property
        def yaml(self) -> str:
            """The tuned rule, within its rule set, as YAML."""
            return rules_to_yaml(self.rules)

        def _show_yaml(self) -> None:
            self.yaml_view.value = self.yaml

        def toggle_yaml(self) -> None:
            """Show the tuned rule as YAML below the timeline, or hide it again."""
            shown = self.yaml_view.layout.display != "none"
            self.yaml_view.layout.display = "none" if shown else None
            self.yaml_button.description = "Show YAML" if shown else "Hide YAML"
            if not shown:
                self._show_yaml()

        def save(self, path: str | Path | None = None) -> Path:
            """Save the rule set with the tuned rule (atomically) and return the path."""
            target = Path(path or self.save_path.value)
            written = save_rules(self.rules, target)
            self.status.value = f"saved <code>{written}</code>"
            return written

    class PromTuner(Tuner):  # type: ignore[misc, valid-type]
        """The tuner for a Prometheus alert rule (SPEC 11): the number of its top-level comparison,
        ``for`` and ``keep_firing_for``; the compared value is evaluated once, each move re-runs
        only the comparison and the alert states (:class:`~perfalert_lab.prometheus.tuning.PromRuleReplay`).
        "Write back" puts the values into the rule file, touching nothing else."""

        def __init__(self, frame: Any, rule: Any, *, incidents: pd.DataFrame | None = None, rules: Any = None,
                     prometheus_compat: str = "3") -> None:
            from .prometheus.backtest import alert_source
            from .prometheus.tuning import PromRuleReplay

            self.replay = replay = PromRuleReplay(frame, rule, rules, incidents=incidents,
                                                  prometheus_compat=prometheus_compat, caller="tune")
            self.prom_rules, self.incidents = rules, replay.incidents
            self.rule = replay.rule  # type: ignore[assignment]
            style = {"description_width": "110px"}
            layout = widgets.Layout(width="420px")
            self.controls = {}
            finite = replay.values[replay.present & np.isfinite(replay.values)]
            if replay.threshold is not None:
                lo = min(float(finite.min()) if finite.size else replay.threshold, replay.threshold)
                hi = max(float(finite.max()) if finite.size else replay.threshold, replay.threshold)
                self.value_range = (lo, hi)
                step = nice_step(lo, hi)
                lo, hi = float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step)
                self.controls["threshold"] = widgets.FloatSlider(
                    value=replay.threshold, min=lo, max=hi, step=step, description=f"threshold ({replay.op})",
                    style=style, layout=layout, continuous_update=False, readout_format=".4g")
            else:
                self.value_range = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            for key, ms in (("for", replay.rule.for_ms), ("keep_firing_for", replay.rule.keep_firing_for_ms)):
                now = format_duration(parse_duration(f"{ms}ms"))
                self.controls[key] = widgets.SelectionSlider(options=_choices(now), value=now, description=key,
                                                             style=style, layout=layout)
            sources = sorted({alert_source(dict(lb)) or replay.name for lb in replay.labels}) or [replay.name]
            busiest = replay.run().alerts["source"].value_counts()  # start on the series with most alerts
            first = str(busiest.index[0]) if len(busiest) and str(busiest.index[0]) in sources else sources[0]
            self.controls["series"] = widgets.Dropdown(options=sources, value=first, description="series",
                                                       style=style, layout=layout)
            left = [self.controls[k] for k in ("threshold",) if k in self.controls]
            self._assemble([*left, self.controls["series"]], [self.controls["for"], self.controls["keep_firing_for"]],
                           save_as=str(rules.path or f"{replay.name}.rules.yml"),
                           labels=("write to", "Show rule file", "Write back"))
            self._refresh()

        def values(self) -> dict[str, Any]:
            """The values the controls set: ``threshold`` (when the rule has one), ``for_``, ``keep_firing_for``."""
            c = self.controls
            out: dict[str, Any] = {"for_": c["for"].value, "keep_firing_for": c["keep_firing_for"].value}
            if "threshold" in c:
                out["threshold"] = float(c["threshold"].value)
            return out

        def tuned_rule(self) -> Any:
            """The Prometheus rule as the controls set it."""
            return self.replay.variant(**self.values())

        def _refresh(self) -> None:
            try:
                self.result = self.replay.run(**self.values())
            except UsageError as exc:
                self.status.value = f"<span style='color:#c0392b'>{exc}</span>"
                return
            rule: Any = self.result.rules.rule(self.replay.name)  # type: ignore[union-attr]
            self.rule = rule
            text = f"{rule.expr}"
            for key, ms in (("for", rule.for_ms), ("keep_firing_for", rule.keep_firing_for_ms)):
                if ms:
                    text += f" {key} {format_duration(parse_duration(f'{ms}ms'))}"
            self.status.value = f"<code>{_escape(text)}</code>"
            if self.yaml_view.layout.display != "none":
                self._show_yaml()
            self._show_stats()
            self._show_curve()
            self._draw()

        def _rule_id(self) -> str:
            return self.replay.name

        def _span_of(self, source: str) -> tuple[int, int]:
            """The span of the value the rule compares on that series (else the whole input's)."""
            assert self.result is not None
            drawn = self.result.series
            if drawn is not None:
                sids = np.flatnonzero((drawn.keys["source"] == source).to_numpy(dtype=bool))
                if len(sids):
                    return drawn.span_of(sids)
            return (self.result.span[0].value, self.result.span[1].value)

        def _show_curve(self) -> None:
            if "threshold" not in self.controls:
                self.curve_view.layout.display = "none"
                return
            v = self.values()
            key = (v["for_"], v["keep_firing_for"])
            if key != self._curve_key:
                lo, hi = self.controls["threshold"].min, self.controls["threshold"].max
                self.curve = self.replay.sweep(threshold=np.linspace(lo, hi, CURVE_POINTS).tolist(),
                                               for_=[v["for_"]], keep_firing_for=[v["keep_firing_for"]])
                self._curve_key = key
            assert self.result is not None and self.curve is not None
            row = self.result.stats.iloc[0]
            label = f"{self.replay.op} {v['threshold']:g}: {row['alerts_per_day'] * 7:.3g} alerts/week"
            if "recall" in row.index and not pd.isna(row["recall"]):
                label += f", recall {row['recall']:.2f}"
            self.curve_view.value = self.curve_painter.png(self.curve, v["threshold"], label)

        def _draw(self) -> None:
            if self.result is None or self.result.series is None:
                return
            source = self.controls["series"].value
            display = TimelineDisplay.from_result(self.result, source=source, metric=self.replay.name,
                                                  points=self._points.get(source))
            self._points[source] = (display.times, display.values)
            self.plot_view.value = self.painter.png(display, ylim=self.value_range)
            self.figure = display.figure_

        def __repr__(self) -> str:
            return f"<Tuner {self.replay.name}: {self.tuned_rule().expr}>"

        @property
        def yaml(self) -> str:
            """The user's rule file with the tuned values (nothing else changed)."""
            from .rules.writeback import updated_prometheus_text

            return updated_prometheus_text(self.prom_rules.path, self.replay.name, **self._written())

        def _written(self) -> dict[str, Any]:
            """The values that differ from the rule file's (only those are written)."""
            v, rule = self.values(), self.replay.rule
            out: dict[str, Any] = {}
            if v.get("threshold") is not None and v["threshold"] != self.replay.threshold:
                out["threshold"] = v["threshold"]
            if to_ns(parse_duration(v["for_"])) // 1_000_000 != rule.for_ms:
                out["for_"] = v["for_"]
            if to_ns(parse_duration(v["keep_firing_for"])) // 1_000_000 != rule.keep_firing_for_ms:
                out["keep_firing_for"] = v["keep_firing_for"]
            return out

        def save(self, path: str | Path | None = None) -> Path:
            """Write the tuned values into the rule file (``path``, default the box's) and return it."""
            from .rules.writeback import update_prometheus_rule

            if self.prom_rules.path is None:
                raise UsageError("tune: this rule file was not read from a file; write it with "
                                 "perfalert_lab.rules.writeback.update_prometheus_rule")
            target = Path(path or self.save_path.value)
            written = update_prometheus_rule(self.prom_rules.path, self.replay.name, out=target, **self._written())
            self.status.value = f"wrote <code>{_escape(str(written))}</code>"
            return written

    Tuner.__module__ = PromTuner.__module__ = __name__
    return Tuner


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def _stats_html(people: pd.DataFrame) -> str:
    """The tuner's statistics table (wrapping headers, compact cells)."""
    people = people.rename(columns=lambda c: c.replace("_", " "))
    return ("<style>.pal-tuner-stats th{white-space:normal;max-width:6.5em;vertical-align:bottom;font-size:.85em;"
            "padding:0 .35em !important}"
            ".pal-tuner-stats td{white-space:nowrap;font-size:.9em;padding:0 .35em !important}</style>"
            + people.to_html(index=False, border=0, na_rep="", classes="pal-tuner-stats"))
