"""Draw docs/architecture.png: the data paths of perfalert_lab (run: python docs/architecture.py)."""

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

LANES = [
    (
        "our rules (YAML): engine.pipeline, one stage after another",
        "#dbe9f6",
        [
            "reading -> frames\nframe -> SeriesSet\n(one sort)",
            "replay\nconditions + state\nmachine (numba)",
            "lifecycle\nacks, escalation,\nfan-out, delivery",
            "statistics\nfrom the arrays",
            "tables\nDataFrames, last",
        ],
    ),
    (
        "Prometheus rule files",
        "#e4f2e0",
        [
            "reading -> frames\n-> promql_engine.store\n(label sets, ms)",
            "promql_engine.evaluate\nPromQL, all steps\n(numba kernels)",
            "prometheus.alerting\nrule manager:\nrecords, for, keep_firing",
            "prometheus.backtest\nalerts -> tables",
            "stats\nSPEC 5 tables",
        ],
    ),
    (
        "Alertmanager (optional)",
        "#f7e6d8",
        [
            "BacktestResult\n.alerts",
            "alertmanager.config\nroutes, receivers,\ninhibition",
            "alertmanager.simulate\ngroups, timers,\nnotification log",
            "alertmanager.outputs\nnotifications,\nreceivers",
            "report, plots,\nCLI, notebooks",
        ],
    ),
]


def main() -> None:
    fig = Figure(figsize=(13, 6.2), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 6.2)
    ax.axis("off")
    for row, (title, color, boxes) in enumerate(LANES):
        y = 5.0 - row * 2.0
        ax.text(0.1, y + 0.95, title, fontsize=11, weight="bold", va="bottom")
        for i, text in enumerate(boxes):
            x = 0.2 + i * 2.55
            ax.add_patch(FancyBboxPatch((x, y - 0.55), 2.05, 1.35, boxstyle="round,pad=0.04", fc=color, ec="#555555"))
            ax.text(x + 1.025, y + 0.12, text, ha="center", va="center", fontsize=8.5, family="monospace")
            if i < len(boxes) - 1:
                ax.annotate("", xy=(x + 2.5, y + 0.12), xytext=(x + 2.1, y + 0.12),
                            arrowprops={"arrowstyle": "->", "color": "#333333"})
    ax.text(0.1, 0.05, "Above these: backtesting (the front door; result.BacktestResult below every path), "
            "tuning (sweep, frontier, recommend, diff; RuleReplay / prometheus.tuning.PromRuleReplay under one\n"
            "widgets.Tuner; alertmanager.tuning), "
            "distributed / promql_engine.scaleout (Dask), report, cli.",
            fontsize=8.5, color="#444444")
    out = Path(__file__).with_name("architecture.png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
