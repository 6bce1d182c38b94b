"""The tuner reacts to its controls (no browser): widgets only wire, the engine does the work."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from series import series_frame

import perfalert_lab as pal

pytest.importorskip("ipywidgets")


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.concat([series_frame("0 90 90 0 85 0 95 95 95 0", source="web-1"),
                      series_frame("0 0 82 0 0 0 0 0 0 0", source="web-2")])


def test_changing_a_control_replays_the_rule(frame: pd.DataFrame) -> None:
    tuner = pal.tune(frame, pal.Rule(id="cpu", metric="m", threshold=80))
    assert set(tuner.controls) >= {"threshold", "clear", "for", "cooldown", "series"}
    before = tuner.result
    assert before.stats.iloc[0]["alerts"] == 4  # 90, 85, 95 on web-1 and 82 on web-2
    tuner.controls["threshold"].value = 88
    assert tuner.result is not before and tuner.result.stats.iloc[0]["alerts"] == 2
    tuner.controls["for"].value = "1m"
    assert tuner.result.stats.iloc[0]["alerts"] == 2  # both 90-runs last at least a minute
    tuner.controls["for"].value = "2m"
    assert tuner.result.stats.iloc[0]["alerts"] == 1
    # the result is exactly what a backtest of the tuned rule gives
    expected = pal.backtest(frame, pal.Rule(id="cpu", metric="m", threshold=88, for_="2m"))
    pd.testing.assert_frame_equal(tuner.result.alerts, expected.alerts)


def test_yaml_follows_the_controls_and_saves(frame: pd.DataFrame, tmp_path: Path) -> None:
    tuner = pal.tune(frame, pal.Rule(id="cpu", metric="m", threshold=80))
    tuner.controls["threshold"].value = 86.5
    tuner.controls["clear_enabled"].value = True
    tuner.controls["clear"].value = 70
    assert "threshold: 86.5" in tuner.yaml and "clear: 70" in tuner.yaml
    saved = tuner.save(tmp_path / "tuned.yaml")
    rule = pal.load_rules(saved)["cpu"]
    assert (rule.threshold, rule.clear) == (86.5, 70.0)


def test_contradictory_controls_keep_the_last_result_and_say_why(frame: pd.DataFrame) -> None:
    tuner = pal.tune(frame, pal.Rule(id="cpu", metric="m", threshold=80))
    result = tuner.result
    tuner.controls["clear_enabled"].value = True
    tuner.controls["clear"].value = 89  # above a '>' threshold: invalid
    assert tuner.result is not None
    assert "must not be above the threshold" in tuner.status.value
    tuner.controls["clear"].value = 60
    assert tuner.result is not result and "clear 60" in tuner.status.value


def test_series_selector_redraws_without_replaying(frame: pd.DataFrame) -> None:
    tuner = pal.tune(frame, pal.Rule(id="cpu", metric="m", threshold=80))
    result = tuner.result
    tuner.controls["series"].value = "web-2"
    assert tuner.result is result
    assert "web-2" in tuner.figure.axes[0].get_title(loc="left")
    assert tuner.plot_view.value[:4] == b"\x89PNG"  # what the browser shows


def test_tune_returns_a_tuner_and_shows_a_picture_without_a_kernel(frame: pd.DataFrame) -> None:
    from IPython.core.formatters import DisplayFormatter

    import perfalert_lab.widgets as w

    tuner = pal.tune(frame, pal.Rule(id="cpu", metric="m", threshold=80))
    assert isinstance(tuner, w.Tuner)
    data, _ = DisplayFormatter().format(tuner)
    assert "application/vnd.jupyter.widget-view+json" in data  # the live widget, in a kernel
    assert data["image/png"][:4] == b"\x89PNG"  # its timeline, for a reader on a code host
    assert data["text/plain"] == "<Tuner cpu: m > 80>"
