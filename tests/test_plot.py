"""Displays draw what the result holds, never recompute, never touch global matplotlib state."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from series import at, series_frame

import perfalert_lab as pal
from perfalert_lab.plot import (
    FrontierDisplay,
    LoadDisplay,
    StackedTimelines,
    SweepDisplay,
    TimelineDisplay,
    decimate,
    report_figures,
)


@pytest.fixture
def result() -> pal.BacktestResult:
    frame = pd.concat([series_frame("0 90 90 0 85 0 95 95 95 0", source="web-1"),
                       series_frame("0 0 82 0 0 0 0 0 0 0", source="web-2")])
    inc = pd.DataFrame({"start": [at(1)], "end": [at(3)], "source": ["web-1"], "metric": [None], "point": [at(1)]})
    rules = pal.RuleSet(
        (
            pal.Rule(
                id="r",
                metric="m",
                threshold=80,
                clear=70,
                severity="critical",
                notify=("log", "sms"),
                escalation={"delay": "1m", "max": 1},
            ),
        )
    )
    return pal.backtest(frame, rules, incidents=inc)


def test_timeline_draws_spans_lines_markers_and_incidents(result: pal.BacktestResult) -> None:
    before = dict(matplotlib.rcParams)
    d = TimelineDisplay.from_result(result)
    assert d.source == "web-1"  # the series with most alerts
    d.plot()
    assert sum(len(c.get_paths()) for c in d.artists["spans"]) == 3  # 3 firing spans, no pending
    assert len(d.artists["incidents"]) == 1
    assert len(d.artists["lines"]) == 2  # threshold and clear
    labels = [t.get_text() for t in d.ax_.get_legend().get_texts()]
    assert "firing" in labels and "escalation" in labels and "r > 80" in labels
    assert dict(matplotlib.rcParams) == before


def test_plotting_never_imports_pyplot() -> None:
    import subprocess
    import sys

    code = ("import sys, pandas as pd, perfalert_lab as pal\n"
            "from perfalert_lab.plot import TimelineDisplay, report_figures\n"
            "f = pd.DataFrame({'timestamp': pd.date_range('2026-01-01', periods=5, freq='1min', tz='UTC'),"
            " 'source': 's', 'metric': 'm', 'value': [0, 90, 0, 90, 0]})\n"
            "r = pal.backtest(f, pal.Rule(id='r', metric='m', threshold=80))\n"
            "report_figures(r)\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_plot_uses_the_given_axes(result: pal.BacktestResult) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    d = TimelineDisplay.from_result(result, source="web-2").plot(ax)
    assert d.ax_ is ax and d.figure_ is fig


def test_decimation_keeps_spikes_and_bounds_points() -> None:
    t = np.arange(1_000_000, dtype=np.int64) * 10**9
    v = np.sin(np.arange(1_000_000) / 1000.0)
    v[777_777] = 50.0
    v[123_456] = -50.0
    dt, dv = decimate(t, v, bins=1000)
    assert len(dv) <= 2000 and dv.max() == 50.0 and dv.min() == -50.0
    assert (np.diff(dt) >= 0).all()


def test_stacked_sweep_frontier_load_and_report(result: pal.BacktestResult) -> None:
    s = StackedTimelines.from_result(result).plot()
    assert len(s.figure_.axes) == 2
    table = pal.sweep(series_frame("0 90 90 0 85 0 95 95 95 0"), pal.Rule(id="r", metric="m", threshold=80),
                      threshold=[70, 80, 90], for_=["0s", "1m"])
    sd = SweepDisplay.from_sweep(table).plot()
    assert sd.x == "threshold" and sd.by == ["for"] and len(sd.artists) == 2
    fd = FrontierDisplay.from_sweep(table).plot()
    assert len(fd.front) >= 1
    ld = LoadDisplay.from_result(result)
    assert ld.counts.sum() == result.notifications["delivered"].sum()
    ld.plot()
    pictures = report_figures(result)
    assert [name for name, _ in pictures][-1] == "Notifications by hour of week"
    assert all(png[:4] == b"\x89PNG" for _, png in pictures)


def test_every_display_and_its_figure_shows_as_a_picture_in_a_fresh_kernel() -> None:
    """In a fresh kernel no inline backend is active: without ``_repr_png_`` a Figure made without
    pyplot shows as ``<Figure size ...>`` (the bug a JupyterLab user met). IPython's own display
    formatter must find a PNG for each display, drawn or not, and for the figure it made."""
    import subprocess
    import sys

    code = """
import sys, numpy as np, pandas as pd, matplotlib, perfalert_lab as pal
from IPython.core.formatters import DisplayFormatter
from perfalert_lab.plot import (FrontierDisplay, LoadDisplay, QueryDisplay, StackedTimelines, SweepDisplay,
                                TimelineDisplay)
before = dict(matplotlib.rcParams)
f = pd.DataFrame({'timestamp': pd.date_range('2026-01-01', periods=40, freq='1min', tz='UTC'),
                  'source': 's', 'metric': 'm', 'value': np.tile([0.0, 90, 95, 0], 10)})
rule = pal.Rule(id='r', metric='m', threshold=80, notify=['log'])
r = pal.backtest(f, rule)
t = pal.sweep(f, rule, threshold=[70, 80, 90])
fmt = DisplayFormatter()
shown = {
    'timeline (not drawn)': TimelineDisplay.from_result(r),
    'timeline figure': TimelineDisplay.from_result(r).plot().figure_,
    'stacked': StackedTimelines.from_result(r).plot(),
    'stacked figure': StackedTimelines.from_result(r).plot().figure_,
    'sweep': SweepDisplay.from_sweep(t),
    'sweep figure': SweepDisplay.from_sweep(t).plot().figure_,
    'frontier': FrontierDisplay.from_sweep(t).plot(),
    'frontier figure': FrontierDisplay.from_sweep(t).plot().figure_,
    'load': LoadDisplay.from_result(r),
    'load figure': LoadDisplay.from_result(r).plot().figure_,
    'query': QueryDisplay.from_frame(pal.promql(f, 'm * 2'), title='m * 2'),
    'query figure': QueryDisplay.from_frame(pal.promql(f, 'm * 2'), threshold=100).plot().figure_,
}
for name, obj in shown.items():
    data, _ = fmt.format(obj)
    assert data.get('image/png', b'')[:4] == b'\\x89PNG', (name, sorted(data))
    assert 'Figure size' not in data['text/plain'] or 'PictureFigure' in data['text/plain'], name
    assert len(data['text/plain']) < 200, (name, data['text/plain'][:300])  # no dataclass dump of arrays
assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'
assert dict(matplotlib.rcParams) == before, 'global matplotlib state changed'
print('ok', len(shown))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          env={**__import__("os").environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok 12"


def test_painter_frames_equal_a_fresh_drawing_after_the_rule_changes() -> None:
    """The tuner's painter reuses a background: a frame after a change must be exactly what a
    painter that never saw the earlier rule draws (nothing stale left over), and differ from it."""
    from perfalert_lab.plot import TimelinePainter

    frame = series_frame("0 90 90 0 85 0 95 95 95 0 70 99 0", source="web-1")
    inc = pd.DataFrame({"start": [at(1)], "end": [at(3)], "source": ["web-1"], "metric": [None], "point": [at(1)]})

    def display(threshold: float) -> TimelineDisplay:
        r = pal.backtest(frame, pal.Rule(id="r", metric="m", threshold=threshold, notify=["log"]), incidents=inc)
        return TimelineDisplay.from_result(r)

    reused = TimelinePainter()
    first = reused.png(display(80), ylim=(0, 100))
    second = reused.png(display(92), ylim=(0, 100))
    fresh = TimelinePainter().png(display(92), ylim=(0, 100))
    assert second == fresh
    assert first != second
    assert reused.png(display(80), ylim=(0, 100)) == first


def test_prometheus_severities_draw_their_firing_spans() -> None:
    """A Prometheus rule's alerts carry its own severity labels (page, ticket, warning): their firing
    spans are drawn (they were left out: only our four severities had a colour)."""
    import perfalert_lab as pal
    from perfalert_lab.plot import TimelineDisplay, severity_color

    frame, incidents = pal.datasets.prometheus_fleet(instances=4, days=1)
    result = pal.backtest(frame, pal.load_prometheus_rules(pal.datasets.data_dir() / "prometheus" / "alerts.rules.yml"),
                          incidents=incidents)
    fired = result.alerts[result.alerts["severity"] == "page"]
    assert len(fired)
    d = TimelineDisplay.from_result(result, source=fired["source"].iloc[0], metric=fired["rule_id"].iloc[0]).plot()
    labels = [a.get_label() for a in d.artists["spans"]]
    assert "firing page" in labels, labels
    assert severity_color("page") == severity_color("critical") and severity_color("whatever") == "#c0392b"


def test_hatched_spans_drawn_as_one_path_look_as_one_bar_each() -> None:
    """Suppressed spans are hatched once over one compound path (hatching each bar cost 0.1 ms, 44 ms a
    frame in the tuner); the picture is the one matplotlib draws with a hatched bar per (merged) span."""
    from perfalert_lab.plot import _png, _spans_patch, merge_spans, new_figure

    rng = np.random.default_rng(5)
    lo = np.sort(rng.integers(0, 10**15, 300))
    lo, hi = merge_spans(lo, lo + rng.integers(0, 10**13, 300), 0)  # as drawn: overlaps merged first
    day = 86_400 * 10**9
    pictures = []
    for one_path in (True, False):
        fig = new_figure(figsize=(8, 2))
        ax = fig.subplots()
        ax.set_xlim(lo[0] / day, hi[-1] / day)
        ax.set_ylim(0, 1)
        band = ax.get_xaxis_transform()
        style = {"facecolor": "#f08a4b", "alpha": 0.12, "lw": 0, "hatch": "//"}
        if one_path:
            ax.add_artist(_spans_patch(lo, hi, transform=band, **style))
        else:
            ax.broken_barh(list(zip(lo / day, (hi - lo) / day, strict=True)), (0, 1), transform=band, **style)
        pictures.append(_png(fig))
    from io import BytesIO

    from PIL import Image

    a, b = (np.asarray(Image.open(BytesIO(p))).astype(int) for p in pictures)
    assert a.shape == b.shape and not (np.abs(a - b).sum(axis=2) > 0).any()
