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

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._time import format_duration, parse_duration
from .clock import Clock, SampleClock
from .engine.conditions import match_series
from .engine.run import BacktestResult, _backtest_series
from .errors import RulesError, UsageError, require_module
from .frames import SeriesSet, as_incidents
from .rules.model import Rule, RuleSet
from .rules.yaml_io import rules_to_yaml, save_rules

__all__ = ["Tuner", "tune"]

DURATION_CHOICES = ["0s", "30s", "1m", "2m", "3m", "5m", "10m", "15m", "20m", "30m", "45m", "1h", "2h", "4h", "12h", "1d"]
STAT_COLUMNS = ["alerts", "suppressed", "alerts_per_day", "notifications", "escalations", "firing_fraction",
                "recall", "precision", "mean_detection_delay_s"]


def _choices(current: Any) -> list[str]:
    now = format_duration(parse_duration(current))
    options = list(DURATION_CHOICES)
    if now not in options:
        options.append(now)
        options.sort(key=lambda x: parse_duration(x))
    return options


def tune(frame: Any, rule: Rule, *, incidents: pd.DataFrame | None = None, rules: RuleSet | None = None,
         clock: Clock | None = None) -> Any:
    """A :class:`Tuner` widget over ``frame`` for ``rule`` (needs the ``notebook`` extra)."""
    return _tuner_class()(frame, rule, incidents=incidents, rules=rules, clock=clock)


_TUNER: type | None = None


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
            step = (hi - lo) / 500 if hi > lo else 1.0
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
            self.status = widgets.HTML()
            self.stats_view = widgets.HTML()
            self.plot_view = widgets.Image(format="png", layout=widgets.Layout(width="100%"))
            self.yaml_view = widgets.Textarea(layout=widgets.Layout(width="100%", height="220px"))
            self.save_path = widgets.Text(value=f"{rule.id}.yaml", description="save as", style=style)
            show = widgets.Button(description="Show YAML", icon="file-code-o")
            save = widgets.Button(description="Save YAML", icon="save")
            show.on_click(lambda _: self._show_yaml())
            save.on_click(lambda _: self.save())
            for control in self.controls.values():
                control.observe(self._changed, names="value")
            self.result: BacktestResult | None = None
            super().__init__([
                widgets.HBox([widgets.VBox([self.controls[k] for k in ("threshold", "clear_enabled", "clear")]),
                              widgets.VBox([self.controls[k] for k in ("for", "cooldown", "series")])]),
                self.status, self.stats_view, self.plot_view,
                widgets.HBox([show, self.save_path, save]), self.yaml_view,
            ])
            self._refresh()

        # -- wiring ----------------------------------------------------------------

        def _changed(self, change: dict[str, Any]) -> None:
            owner = change.get("owner")
            if owner is self.controls["series"]:
                self._draw()
                return
            self._refresh()

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
            self.result = _backtest_series(self.series, RuleSet((tuned,), self.rules.channels, self.rules.silences,
                                                                self.rules.responders), self.clock, self.incidents)
            stats = self.result.stats
            cols = [c for c in STAT_COLUMNS if c in stats.columns]
            self.stats_view.value = stats.loc[stats["rule_id"] == tuned.id, cols].to_html(
                index=False, border=0, float_format=lambda x: f"{x:.3g}", na_rep="")
            if self.yaml_view.value:
                self._show_yaml()
            self._draw()

        def _draw(self) -> None:
            from .plot import TimelineDisplay

            if self.result is None:
                return
            display = TimelineDisplay.from_result(self.result, source=self.controls["series"].value,
                                                  metric=self.rule.metric)
            display.plot()
            self.figure = display.figure_
            # render once, at a fixed size, into an image widget: no notebook formatter (which would
            # draw twice for a tight bounding box) and the same bytes in a browser and in tests
            buf = io.BytesIO()
            display.figure_.savefig(buf, format="png", dpi=80)
            self.plot_view.value = buf.getvalue()

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

        def save(self, path: str | Path | None = None) -> Path:
            """Save the rule set with the tuned rule (atomically) and return the path."""
            target = Path(path or self.save_path.value)
            written = save_rules(self.rules, target)
            self.status.value = f"saved <code>{written}</code>"
            return written

    Tuner.__module__ = __name__
    return Tuner
