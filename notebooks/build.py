"""Write the example notebooks (stored without outputs): ``python notebooks/build.py``.

The notebooks are the source of truth once written; this script keeps them
consistent and free of outputs. They run under nbval in ``make test``; with ``CI``
set they use smaller data.
"""

from __future__ import annotations

from pathlib import Path

SETUP = """import os
import numpy as np
import pandas as pd
import perfalert_lab as pal
from perfalert_lab import datasets
from perfalert_lab.plot import FrontierDisplay, LoadDisplay, SweepDisplay, TimelineDisplay

SMALL = bool(os.environ.get("CI"))  # CI runs every notebook on smaller data
DATA = datasets.data_dir()"""

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01-quickstart.ipynb": [
        ("md", "# Quickstart: backtest a rule on real history\n\nLoad a CSV of metrics, replay it against a rule, "
               "read the alerts and the statistics, look at the timeline. The data is a real EC2 request-latency "
               "series from the Numenta Anomaly Benchmark, with labelled incidents."),
        ("code", SETUP + "\n\nframe = pal.read_metrics(DATA / 'nab' / 'realKnownCause' / "
                 "'ec2_request_latency_system_failure.csv')\nincidents = pal.read_incidents(DATA / 'nab' / 'labels' / "
                 "'combined_windows.json')\nframe.attrs['perfalert']"),
        ("md", "The loader reports what it dropped: this file repeats the timestamp `2014-03-09 03:00:00` around the "
               "US clock change; the last row of each duplicate is kept."),
        ("code", "frame.head()"),
        ("md", "## A rule\n\nAlert when latency is above 55 ms for 5 minutes, at most once an hour per series."),
        ("code", "rule = pal.Rule(id='latency-high', metric='ec2_request_latency_system_failure', op='>', threshold=55,\n"
                 "                for_='5m', cooldown='1h', severity='high')\nresult = pal.backtest(frame, rule, "
                 "incidents=incidents)\nresult"),
        ("code", "result.stats[['rule_id', 'evaluations', 'alerts', 'alerts_per_day', 'recall', 'precision', "
                 "'mean_detection_delay_s']]"),
        ("code", "result.alerts[['fired_at', 'resolved_at', 'status', 'peak_value']]"),
        ("md", "## The timeline\n\nValue, threshold, firing spans, notifications and the labelled incident windows."),
        ("code", "TimelineDisplay.from_result(result).plot().figure_"),
        ("md", "## The same rule under Prometheus' evaluation\n\nThe interval clock evaluates every minute and sees "
               "the newest sample of the last 5 minutes, as a Prometheus server would."),
        ("code", "prom = pal.backtest(frame, rule, clock=pal.IntervalClock('1m', lookback='5m'), incidents=incidents)\n"
                 "prom.stats[['rule_id', 'evaluations', 'alerts', 'recall', 'precision']]"),
        ("md", "## Why did it fire?\n\n`explain` walks one series evaluation by evaluation with the reference engine."),
        ("code", "steps = pal.explain(frame, rule)\nsteps[steps['state'] != 'inactive'].head(8)"),
        ("code", "assert len(result.alerts) > 0\nassert set(result.alerts['status']) <= {'active', 'acknowledged', "
                 "'resolved', 'suppressed'}"),
    ],
    "02-threshold-tuning.ipynb": [
        ("md", "# Threshold tuning: sweep, frontier, tuner, export\n\nA seeded synthetic fleet with known incidents: "
               "find the CPU threshold that catches them without paging all week, then ship it as YAML and as a "
               "Prometheus rule file."),
        ("code", SETUP + "\n\nframe, incidents = datasets.synthetic_fleet(hosts=3 if SMALL else 8, days=7 if SMALL else 28, seed=7)\n"
                 "print(len(frame), 'samples;', len(incidents), 'incidents')\nincidents.head()"),
        ("code", "rule = pal.Rule(id='cpu-high', metric='cpu', op='>', threshold=75, for_='5m', cooldown='30m',\n"
                 "                severity='high', notify=['log', {'channel': 'sms', 'to': ['+14155550100']}])\n"
                 "table = pal.sweep(frame, rule, threshold=np.arange(70, 96, 1.0), for_=['0s', '3m', '10m'],\n"
                 "                  incidents=incidents)\ntable.head()"),
        ("md", "## Sweep curves and the trade-off frontier\n\nEvery row equals a separate backtest of that combination; "
               "the sweep shares the work across them."),
        ("code", "SweepDisplay.from_sweep(table).plot().figure_"),
        ("code", "front = pal.frontier(table)\nFrontierDisplay.from_sweep(table).plot().figure_"),
        ("md", "## A recommendation within a budget\n\nAt most 3 pages a week, maximal recall."),
        ("code", "rec = pal.recommend(table, max_pages_per_week=3)\nprint(rec)\nrec.rule"),
        ("code", "check = pal.backtest(frame, rec.rule, incidents=incidents)\n"
                 "assert check.stats.iloc[0]['alerts'] == rec.row['alerts']\ncheck.stats"),
        ("md", "## The tuner\n\nDrag the sliders: the rule is replayed and the statistics and timeline redraw. "
               "In code, `tuner.controls` holds the controls and `tuner.result` the latest result."),
        ("code", "tuner = pal.tune(frame, rec.rule, incidents=incidents)\ntuner"),
        ("code", "tuner.controls['threshold'].value = 90\ntuner.result.stats[['rule_id', 'alerts', 'recall']]"),
        ("md", "## Ship it\n\nAs our YAML, and as a Prometheus rule file; what Prometheus cannot express (the "
               "cooldown, the sms channel) is listed, not dropped."),
        ("code", "print(pal.rules.rules_to_yaml(rec.rule))"),
        ("code", "notes = []\nprint(pal.to_prometheus(rec.rule, report=notes.append))"),
    ],
    "03-escalation-oncall.ipynb": [
        ("md", "# Escalation and on-call load\n\nWhat would the on-call person have lived through? Escalation levels, "
               "acknowledgements by a simulated responder, repeats, rate limits, and the load by hour of week."),
        ("code", SETUP + "\n\nframe, incidents = datasets.synthetic_fleet(hosts=3 if SMALL else 10, days=7 if SMALL else 28, seed=3)"),
        ("code", "rules = pal.parse_rules('''\nversion: 1\nrules:\n  - id: latency-high\n    metric: latency_ms\n"
                 "    op: '>'\n    threshold: 400\n    for: 5m\n    cooldown: 30m\n    severity: critical\n"
                 "    notify: [log, {channel: slack, url: '${SLACK_WEBHOOK_URL}'}]\n    repeat_interval: 1h\n"
                 "    send_resolved: true\n    escalation:\n      delay: 15m\n      max: 3\n      check_every: 5m\n"
                 "      levels:\n        - notify: [email]\n        - notify: [sms]\nchannels:\n  sms: {max_per_hour: 4}\n"
                 "responders:\n  ack_after: {distribution: lognormal, median: 12m, sigma: 0.9, seed: 1}\n''')\n"
                 "result = pal.backtest(frame, rules, incidents=incidents)\nresult.stats"),
        ("code", "result.notifications.groupby(['kind', 'channel', 'delivered']).size().unstack(fill_value=0)"),
        ("md", "## Pages per week, busiest hour, flapping"),
        ("code", "result.oncall()"),
        ("code", "LoadDisplay.from_result(result).plot().figure_"),
        ("md", "## One alert, step by step\n\nFiring, escalations on the polling ticks until the acknowledgement."),
        ("code", "busiest = result.alerts.sort_values('escalation_level', ascending=False).iloc[0]\n"
                 "result.notifications[result.notifications['alert_id'] == busiest['alert_id']]"),
        ("code", "TimelineDisplay.from_result(result, source=busiest['source'], metric='latency_ms').plot().figure_"),
        ("code", "esc = result.notifications[result.notifications['kind'] == 'escalation']\n"
                 "assert (esc['at'].dt.minute % 5 == 0).all()  # escalations happen on the 5-minute polling ticks"),
    ],
    "04-nab-real-data.ipynb": [
        ("md", "# Real data with labelled incidents (NAB)\n\nNine real cloud-metric series from the Numenta Anomaly "
               "Benchmark with their labelled anomaly windows, replayed against the demo rule set. Detection delay "
               "is measured from each window's labelled point."),
        ("code", SETUP + "\n\nframe, incidents = datasets.load_nab()\nrules = pal.load_rules(datasets.demo_rules_path())\n"
                 "rules"),
        ("code", "result = pal.backtest(frame, rules, incidents=incidents)\nresult.stats"),
        ("md", "## The machine-temperature failure\n\nThe temperature drops before the failure; the rule uses "
               "hysteresis (`clear: 60`) so a recovering machine does not flap."),
        ("code", "TimelineDisplay.from_result(result, source='machine_temperature_system_failure').plot().figure_"),
        ("md", "## Tuning the temperature rule against the labels"),
        ("code", "rule = rules['machine-temp-low']\ntable = pal.sweep(frame, rule, threshold=np.arange(20, 80, 2.5),\n"
                 "                  for_=['0s', '15m', '1h'], incidents=incidents, rules=rules)\n"
                 "pal.frontier(table)[['threshold', 'for', 'alerts_per_week', 'recall', 'precision', "
                 "'mean_detection_delay_s']]"),
        ("code", "FrontierDisplay.from_sweep(table).plot().figure_"),
        ("md", "## The series with no labelled anomaly\n\nEvery alert on `ec2_cpu_utilization_c6585a` is a false "
               "positive."),
        ("code", "quiet = pal.Rule(id='c6585a-cpu', metric='ec2_cpu_utilization_c6585a', threshold=1.0, for_='10m')\n"
                 "q = pal.backtest(frame, quiet, incidents=incidents)\nq.stats[['rule_id', 'alerts', 'incidents', "
                 "'precision']]"),
        ("code", "assert q.stats.iloc[0]['incidents'] == 0\nassert (q.stats.iloc[0]['precision'] == 0) or "
                 "q.stats.iloc[0]['alerts'] == 0"),
    ],
}


def main() -> None:
    import nbformat

    here = Path(__file__).parent
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                    for kind, src in cells]
        nbformat.write(nb, here / name)
        print("wrote", here / name)


if __name__ == "__main__":
    main()
