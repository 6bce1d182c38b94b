"""The ``perfalert`` command (SPEC section 7).

Exit codes: 0 success; 2 bad input (usage, unreadable or invalid files), one line
per problem on stderr and no traceback; 1 an unexpected internal error; 3 from
``perfalert diff`` when the two rule sets behave differently (so CI can gate on it).
Outputs are written atomically: complete files or none.
"""

from __future__ import annotations

import argparse
import ctypes
import html
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from . import __version__, datasets
from ._io import atomic_write_table, atomic_write_text, write_outputs
from ._time import format_duration, parse_duration, to_ns
from .alertmanager import load_alertmanager
from .alertmanager.outputs import apply_alertmanager
from .backtesting import backtest
from .clock import parse_clock
from .distributed import local_client
from .errors import InputError, PerfAlertError, PerfAlertWarning, UsageError, require_module
from .frames import Handoff
from .present import stats_for_people
from .reading import is_parquet_dataset, iter_files, read_incidents, read_metrics, read_series
from .report import table_html, write_report, write_table_csv
from .rules import load_rules
from .rules.prometheus import to_prometheus
from .rules.promfile import is_prometheus_rules, load_prometheus_rules
from .rules.writeback import update_rules_file, write_back

__all__ = ["main"]

PROG = "perfalert"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _interactive() -> bool:
    """Progress bars only on a terminal (and never in CI logs)."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def _read_metrics(paths: list[str], args: argparse.Namespace, source: str | None = None,
                  series: bool = False) -> Any:
    """The metric files as one frame in series order (what the engine and the PromQL store read without
    sorting again), or with ``series`` as the series model itself (no string per row)."""
    files = iter_files(paths)
    frame: Any
    if series:
        frame = read_series(files, source=source, timezone=args.timezone, duplicates=args.duplicates)
        info = frame.info
    else:
        frame = read_metrics(files, source=source, timezone=args.timezone, duplicates=args.duplicates,
                             order="series")
        info = frame.attrs["perfalert"]
    notes = [f"{info['rows']} samples from {len(files)} file(s)"]
    if info.get("missing_dropped"):
        notes.append(f"{info['missing_dropped']} empty values dropped")
    if info.get("duplicates_dropped"):
        notes.append(f"{info['duplicates_dropped']} duplicate timestamps resolved ({args.duplicates})")
    if info.get("out_of_order"):
        notes.append(f"{info['out_of_order']} out-of-order rows sorted")
    print("read " + "; ".join(notes), file=sys.stderr)
    return frame


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timezone", default=None, help="zone of naive timestamps (default UTC)")
    p.add_argument("--duplicates", default="last", choices=("last", "first", "mean", "error"),
                   help="several samples of a series at one timestamp: keep last (default), first, mean, or fail")


def _load_any_rules(path: str, strict: bool = False) -> Any:
    """Our rules YAML or a Prometheus rule file, told apart by content (SPEC 11); ``strict`` refuses a
    rule file with a rule perfalert_lab cannot render (else that rule is left out with a warning)."""
    return load_prometheus_rules(path, strict=strict) if is_prometheus_rules(path) else load_rules(path)


def _clock_and_source(args: argparse.Namespace, *rule_sets: Any) -> tuple[Any, str | None]:
    """The clock our rules run on, and the ``source`` to read metrics with. When every rule set is a
    Prometheus rule file its groups' intervals are the clock (``--clock`` is refused) and a file
    without a source column gives series without a ``source`` label, as PromQL sees them."""
    if all(r.kind == "prometheus" for r in rule_sets):
        if args.clock != "sample":
            raise UsageError("--clock does not apply to a Prometheus rule file: its groups' intervals are the "
                             "clock (set 'interval:' on a group)")
        return None, ""
    return parse_clock(args.clock), None


def _cmd_validate(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for f in args.files:
        try:
            rules = _load_any_rules(f)
        except InputError as exc:
            problems += exc.problems
            continue
        kind = " (Prometheus rule file)" if rules.kind == "prometheus" else ""
        print(f"{f}: ok{kind}, {len(rules)} rule(s)" + (f": {', '.join(rules.ids)}" if len(rules) else ""))
        if rules.kind == "prometheus":
            from .prometheus.alerting import forward_references

            for line in forward_references(rules):
                warnings.warn(line, PerfAlertWarning, stacklevel=1)
    if problems:
        raise InputError(problems)
    return 0


def _write_result(result: Any, out: Path, title: str) -> list[Path]:
    files = {
        "alerts.csv": lambda p: write_table_csv(result.alerts, p),
        "notifications.csv": lambda p: write_table_csv(result.notifications, p),
        "stats.csv": lambda p: write_table_csv(result.stats, p),
    }
    if getattr(result, "receivers", None) is not None:
        files["notification_alerts.csv"] = lambda p: write_table_csv(result.notification_alerts, p)
        files["receivers.csv"] = lambda p: write_table_csv(result.receivers, p)
    files["report.html"] = lambda p: write_report(result, p, title=title)
    return write_outputs(out, files)


def _print_stats(result: Any) -> None:
    cols = [c for c in ("rule_id", "evaluations", "alerts", "suppressed", "alerts_per_day", "notifications",
                        "escalations", "recall", "precision", "mean_detection_delay_s") if c in result.stats.columns]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(stats_for_people(result.stats[cols]).to_string(index=False))


def _cmd_backtest(args: argparse.Namespace) -> int:
    rules = _load_any_rules(args.rules, strict=args.strict)  # validate the cheap inputs before reading data
    clock, source = _clock_and_source(args, rules)
    incidents = read_incidents(args.incidents) if args.incidents else None
    alertmanager = None
    if args.alertmanager:
        alertmanager = load_alertmanager(args.alertmanager)
    options = {"prometheus_compat": args.prometheus_compat, "group_offset": args.group_offset} \
        if clock is None else None
    if args.workers or args.scheduler:
        result = _backtest_on_dask(args, rules, clock, incidents, options, source)
        if alertmanager is not None:
            result = apply_alertmanager(result, alertmanager)
    else:
        # the series are handed over, not kept here: a rule file's backtest lets them go once it has made its
        # store (its report draws the replay's own values); with the tables' arrays used up as they are
        # made, 1.02 -> 0.87 GB peak at 10M samples
        result = backtest(Handoff(_read_metrics(args.metrics, args, source=source, series=True)), rules, clock=clock,
                          incidents=incidents, progress=_interactive(), strict=args.strict,
                          alertmanager=alertmanager, prometheus=options, texts=args.summaries or None)
    _print_stats(result)
    if args.out:
        written = _write_result(result, Path(args.out), title=f"Backtest of {Path(args.rules).name}")
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _backtest_on_dask(args: argparse.Namespace, rules: Any, clock: Any, incidents: Any,
                      prometheus: dict[str, Any] | None, source: str | None) -> Any:
    """Read each file in a task and backtest on a dask cluster (local or at --scheduler)."""
    dask = require_module("dask", "dask", "--workers / --scheduler")
    dd = require_module("dask.dataframe", "dask", "--workers / --scheduler")
    distributed = require_module("distributed", "dask", "--workers / --scheduler")
    files = iter_files(args.metrics)
    for f in files:  # fail fast, here, on a missing file rather than inside a worker
        if not (f.is_file() or is_parquet_dataset(f)):
            raise InputError(f"{f}: no such file")
    client = distributed.Client(args.scheduler) if args.scheduler else local_client(args.workers)
    try:
        if len(files) == 1 and is_parquet_dataset(files[0]):
            ddf = dd.read_parquet(str(files[0]))  # a partitioned dataset: each worker reads its own files
        else:
            head = read_metrics(files[0], source=source, timezone=args.timezone, duplicates=args.duplicates).iloc[:0]
            parts = [dask.delayed(read_metrics)(f, source=source, timezone=args.timezone, duplicates=args.duplicates)
                     for f in files]
            ddf = dd.from_delayed(parts, meta=head)
        print(f"backtest on dask: {len(files)} file(s), {len(client.scheduler_info()['workers'])} worker(s)",
              file=sys.stderr)
        return backtest(ddf, rules, clock=clock, incidents=incidents, duplicates=args.duplicates, strict=args.strict,
                        texts=args.summaries or None, prometheus=prometheus)
    finally:
        client.close()
        if not args.scheduler:  # the local cluster is ours: its worker processes end with the command
            client.cluster.close()


def _cmd_slo(args: argparse.Namespace) -> int:
    from .plot import slo_figures
    from .slo import alert_windows_text, backtest_slo, compare_strategies, load_slos, slo_rule_text, sweep_slo
    from .tuning import recommend

    slos = load_slos(args.spec, default_window=args.window)  # the spec checked before any data is read
    grid = dict(parse_param(p, SLO_SWEEP_PARAMS, "--sweep") for p in args.sweep)
    incidents = read_incidents(args.incidents) if args.incidents else None
    frame = _read_metrics(args.metrics, args, source="")  # PromQL's model: no source label unless given
    out = backtest_slo(frame, slos, incidents=incidents, burn_rate=args.burn_rate, burn_window=args.burn_window,
                       prometheus_compat=args.prometheus_compat)
    for slo in slos:
        print(slo.describe())
    cols = ["slo", "tier", "alerts", "pages_per_week", "events", "recall", "precision", "mean_detection_s",
            "mean_reset_s", "budget_spent_before_detection", "budget_remaining_end"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(out.stats[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    strategies = {slo.id: compare_strategies(frame, slo, incidents=incidents, burn_rate=args.burn_rate,
                                             burn_window=args.burn_window, prometheus_compat=args.prometheus_compat)
                  for slo in slos} if args.strategies else {}
    for sid, table in strategies.items():
        print(f"{sid}: the workbook's six strategies")
        shown = table[["strategy", "name", "alerts", "pages_per_week", "recall", "precision", "mean_detection_s",
                       "mean_reset_s"]]
        print(shown.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    swept: dict[str, Any] = {}
    if grid:
        for slo in slos:
            table = sweep_slo(frame, slo, incidents=incidents, burn_rate=args.burn_rate, burn_window=args.burn_window,
                              prometheus_compat=args.prometheus_compat, **grid)
            choice = recommend(table, max_pages_per_week=args.max_pages_per_week, min_recall=args.min_recall)
            swept[slo.id] = (table, choice)
            print(f"{slo.id}: {choice}")
            print(f"  tuned: {choice.rule.describe()}")
    if args.out:
        strategy_table = pd.concat([t.assign(slo=sid) for sid, t in strategies.items()], ignore_index=True) \
            if strategies else pd.DataFrame()

        def report(p: Path) -> None:
            sections = [("Service level objectives", "<ul>" + "".join(f"<li>{html.escape(s.describe())}</li>"
                                                                      for s in slos) + "</ul>"),
                        ("Alerts by tier", table_html(out.stats, 200))]
            if strategies:
                sections.append(("The workbook's six strategies", table_html(strategy_table, 200)))
            write_report(out.result, p, title=f"SLOs of {Path(args.spec).name}",
                         figures=slo_figures(out, strategies), sections=sections)

        def rule_file(p: Path) -> None:
            atomic_write_text(p, out.rule_text)

        files: dict[str, Callable[[Path], None]] = {
            "slo.rules.yml": rule_file,
            "alerts.csv": lambda p: write_table_csv(out.alerts, p),
            "notifications.csv": lambda p: write_table_csv(out.notifications, p),
            "slo_stats.csv": lambda p: write_table_csv(out.stats, p),
            "burn_rates.csv": lambda p: write_table_csv(out.burn, p),
            "budget.csv": lambda p: write_table_csv(out.budget, p),
            "events.csv": lambda p: write_table_csv(out.events, p),
            "report.html": report,
        }
        if strategies:
            files["strategies.csv"] = lambda p: write_table_csv(strategy_table, p)
        if swept:
            sweep_table = pd.concat([t.assign(slo=sid) for sid, (t, _) in swept.items()], ignore_index=True)
            tuned = [choice.rule for _, choice in swept.values()]

            def tuned_rules(p: Path) -> None:
                atomic_write_text(p, slo_rule_text(tuned))

            def windows_file(p: Path) -> None:
                atomic_write_text(p, alert_windows_text(tuned[0]))

            files["sweep.csv"] = lambda p: write_table_csv(sweep_table, p)
            files["tuned.rules.yml"] = tuned_rules
            if len(tuned) == 1 and {f"{w.severity}_{w.speed}" for w in tuned[0].windows} >= set(SLO_SWEEP_PARAMS):
                files["alert-windows.yml"] = windows_file
        written = write_outputs(Path(args.out), files)
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _cmd_promql(args: argparse.Namespace) -> int:
    from .promql_engine import parse, promql

    parse(args.expr)  # a syntax error before reading any data
    # a file without a source column gives series without a source label (not the file's name)
    frame = _read_metrics(args.metrics, args, source="")
    out = promql(frame, args.expr, start=args.start, end=args.end, step=args.step, lookback=args.lookback,
                 prometheus_compat=args.compat)
    n_series = out["labels"].nunique() if len(out) else 0
    print(f"{args.expr}: {n_series} series, {len(out)} samples", file=sys.stderr)
    if args.output:
        atomic_write_table(Path(args.output), out)
        print(f"wrote {args.output}")
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    rules_path = datasets.demo_rules_path()
    rules = load_rules(rules_path)
    frame = read_metrics(datasets.nab_files())
    incidents = read_incidents(datasets.data_dir() / "nab" / "labels" / "combined_windows.json")
    result = backtest(frame, rules, incidents=incidents, texts=True)  # the report shows what each page said
    print(f"perfalert demo: {len(rules)} rules from {rules_path.name} over {frame['source'].nunique()} NAB series "
          f"({len(frame)} samples, {result.span[0]:%Y-%m-%d} to {result.span[1]:%Y-%m-%d})")
    _print_stats(result)
    written = _write_result(result, Path(args.out), title="perfalert demo: NAB cloud metrics")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    rules = _load_any_rules(args.file)
    if rules.kind == "prometheus":  # already what Prometheus reads: the user's own file, as written
        if args.format == "yaml":
            raise UsageError(f"export: {args.file} is a Prometheus rule file; our YAML format cannot hold PromQL "
                             "expressions: use --format prometheus (the file as it is)")
        text = Path(args.file).read_text(encoding="utf-8-sig")
    elif args.format == "yaml":  # the user's own file, comments and key order kept (nothing to update)

        text = update_rules_file(args.file)
    else:
        text = to_prometheus(rules, report=lambda msg: print(f"{PROG} export: note: {msg}", file=sys.stderr))
    if args.output and args.output != "-":
        atomic_write_text(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


SLO_SWEEP_PARAMS = ("page_quick", "page_slow", "ticket_quick", "ticket_slow")


def parse_param(text: str, names: Sequence[str] | None = None, flag: str = "--param") -> tuple[str, list[Any]]:
    """``NAME=START:STOP:STEP`` (inclusive) or ``NAME=a,b,c`` for a sweep parameter (one of ``names``,
    default the rule sweep's)."""
    from .tuning import SWEEP_PARAMS

    names = list(SWEEP_PARAMS) if names is None else list(names)
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not spec:
        example = "threshold=70:95:0.5" if flag == "--param" else "page_quick=1,2,4"
        raise UsageError(f"{flag} {text!r}: expected NAME=START:STOP:STEP or NAME=a,b,c, e.g. {example}")
    if name not in names:
        raise UsageError(f"{flag} {text!r}: unknown parameter {name!r}; sweepable: {', '.join(names)}")
    duration = name in ("for", "cooldown", "keep_firing_for")
    try:
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) != 3:
                raise ValueError("a range needs START:STOP:STEP")
            if duration:
                lo, hi, step = (to_ns(parse_duration(x)) for x in parts)
                if step <= 0 or hi < lo:
                    raise ValueError("needs STEP > 0 and STOP >= START")
                values: list[Any] = [format_duration(v) for v in range(lo, hi + 1, step)]
            else:
                lo_f, hi_f, step_f = (float(x) for x in parts)
                if step_f <= 0 or hi_f < lo_f:
                    raise ValueError("needs STEP > 0 and STOP >= START")
                count = int(round((hi_f - lo_f) / step_f)) + 1
                if count > 100_000:
                    raise ValueError(f"{count} values is too many for one parameter")
                values = [
                    round(lo_f + i * step_f, 12) for i in range(count) if lo_f + i * step_f <= hi_f + 1e-9 * step_f
                ]
        else:
            raw = [x.strip() for x in spec.split(",") if x.strip()]
            if duration:
                values = [format_duration(parse_duration(x)) for x in raw]
            elif name == "clear":
                values = [None if x.lower() == "none" else float(x) for x in raw]
            else:
                values = [float(x) for x in raw]
    except ValueError as exc:
        dash = re.fullmatch(r"\s*(-?[\d.]+)\s*-\s*([\d.]+)\s*", spec)
        if dash:  # a range written with a dash: say how ranges are written
            raise UsageError(f"{flag} {text!r}: a range is START:STOP:STEP (inclusive), e.g. "
                             f"{name}={dash.group(1)}:{dash.group(2)}:1; a list is a,b,c") from None
        raise UsageError(f"{flag} {text!r}: {exc}; expected NAME=START:STOP:STEP or NAME=a,b,c") from None
    if not values:
        raise UsageError(f"{flag} {text!r}: no values")
    return name, values


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .plot import sweep_png
    from .tuning import SWEEP_PARAMS, frontier, recommend, sweep

    params = dict(parse_param(p) for p in args.param)
    rules = _load_any_rules(args.rules)
    if args.rule not in rules.ids:
        raise UsageError(f"--rule {args.rule!r}: not in {args.rules} (rules: {', '.join(rules.ids)})")
    prom = rules.kind == "prometheus"
    if prom:
        rule = rules.rule(args.rule)
        if rule.kind != "alert":
            raise UsageError(f"--rule {args.rule!r}: a recording rule fires no alert; sweep an alert rule")
        wrong = [k for k in params if k not in ("threshold", "for", "keep_firing_for")]
        if wrong:
            raise UsageError(f"--param {wrong[0]}: a Prometheus alert rule has no {wrong[0]!r}; it takes threshold, "
                             "for and keep_firing_for")
    else:
        rule = rules[args.rule]
    clock, source = _clock_and_source(args, rules)
    incidents = read_incidents(args.incidents) if args.incidents else None
    frame = _read_metrics(args.metrics, args, source=source, series=True)
    kwargs = {SWEEP_PARAMS[k] if k != "threshold" else k: v for k, v in params.items()}
    table = sweep(frame, rule, incidents=incidents, clock=clock, rules=rules, progress=_interactive(), **kwargs)
    front = frontier(table)
    print(f"{len(table)} combinations; {len(front)} on the frontier")
    shown = [c for c in (*params, "alerts_per_week", "pages_per_week", "recall", "precision",
                         "mean_detection_delay_s") if c in front.columns]
    print(front[shown].head(15).to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    rec = None
    if args.max_alerts_per_week is not None or args.max_pages_per_week is not None:
        rec = recommend(table, max_alerts_per_week=args.max_alerts_per_week,
                        max_pages_per_week=args.max_pages_per_week)
        print(rec.explanation)
    if args.out:
        writers = {
            "sweep.csv": lambda p: write_table_csv(table, p),
            "frontier.csv": lambda p: write_table_csv(front, p),
            "sweep.png": lambda p: p.write_bytes(sweep_png(table)),
        }
        if rec is not None and rec.rule is not None:
            text = write_back(Path(args.rules), rec.rule)
            name = "tuned-rules.yml" if prom else "tuned-rules.yaml"
            writers[name] = lambda p: atomic_write_text(p, text)
        written = write_outputs(Path(args.out), writers)
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from .tuning import diff

    old, new = _load_any_rules(args.old), _load_any_rules(args.new)
    clock, source = _clock_and_source(args, old, new)
    incidents = read_incidents(args.incidents) if args.incidents else None
    frame = _read_metrics(args.metrics, args, source=source, series=True)
    result = diff(old, new, frame, incidents=incidents, clock=clock)
    print(result.summary())
    if args.out:
        writers = {"gained.csv": lambda p: write_table_csv(result.gained, p),
                   "lost.csv": lambda p: write_table_csv(result.lost, p),
                   "moved.csv": lambda p: write_table_csv(result.moved, p),
                   "volume.csv": lambda p: write_table_csv(result.volume, p)}
        if result.incidents is not None:
            writers["incidents.csv"] = lambda p: write_table_csv(result.incidents, p)  # type: ignore[arg-type]
        write_outputs(Path(args.out), writers)
    if result.empty:
        print("no difference")
        return 0
    return EXIT_DIFFERENT


EXIT_DIFFERENT = 3


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Backtest alert rules on metric history.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("demo", help="run the main job on the bundled NAB data and write a report")
    p.add_argument("--out", default="demo-report", help="report folder (default: demo-report)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("backtest", help="replay metrics against rules; write alerts, notifications, stats, report")
    p.add_argument("metrics", nargs="+", metavar="METRICS", help="CSV or Parquet files, or folders of them")
    p.add_argument("--rules", required=True, help="rules YAML file, or a Prometheus rule file (groups:)")
    p.add_argument("--incidents", help="labelled incidents: CSV start,end[,source,metric,point] or NAB JSON")
    p.add_argument(
        "--clock", default="sample", help="'sample' (default) or 'interval:EVERY[:LOOKBACK]', e.g. interval:1m:5m"
    )
    p.add_argument("--out", help="folder for alerts.csv, notifications.csv, stats.csv, report.html")
    p.add_argument("--strict", action="store_true",
                   help="a rule that matches no series, or a rule-file rule whose template cannot be rendered here, is "
                        "an error (exit 2) instead of a warning")
    p.add_argument("--prometheus-compat", choices=("2", "3"), default="3",
                   help="for a Prometheus rule file: the Prometheus version whose windows to use (default 3)")
    p.add_argument("--group-offset", default="0s", metavar="DURATION",
                   help="for a Prometheus rule file: shift every group's ticks, as a server's per-group offset does")
    p.add_argument("--alertmanager", metavar="FILE",
                   help="alertmanager.yml: send every alert through a simulated Alertmanager (routing, grouping, "
                        "inhibition); notifications.csv then lists what each integration would have received")
    p.add_argument("--summaries", action="store_true",
                   help="add what each page says: labels and annotations to alerts.csv, the rendered summary to "
                        "notifications.csv (on by default when a rule sets labels or annotations)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--workers", type=int, metavar="N", help="run on a local dask cluster of N processes")
    scale.add_argument("--scheduler", metavar="ADDRESS", help="run on the dask cluster at ADDRESS (tcp://host:8786)")
    _add_input_options(p)
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser("sweep", help="statistics of one rule for every combination of parameters")
    p.add_argument("metrics", nargs="+", metavar="METRICS", help="CSV or Parquet files, or folders of them")
    p.add_argument("--rules", required=True, help="rules YAML file, or a Prometheus rule file (groups:)")
    p.add_argument("--rule", required=True, help="id of the rule to sweep (a Prometheus rule file: the alert name)")
    p.add_argument("--param", action="append", required=True, metavar="NAME=SPEC",
                   help="threshold=70:95:0.5 (inclusive range) or for=0m,5m (list); repeat for a grid")
    p.add_argument("--incidents", help="labelled incidents to score recall and detection delay")
    p.add_argument("--clock", default="sample", help="'sample' (default) or 'interval:EVERY[:LOOKBACK]'")
    p.add_argument("--max-alerts-per-week", type=float, help="recommend the best setting within this budget")
    p.add_argument("--max-pages-per-week", type=float, help="recommend the best setting within this budget")
    p.add_argument("--out", help="folder for sweep.csv, frontier.csv, sweep.png (and tuned-rules.yaml)")
    _add_input_options(p)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("diff", help="compare two rules files on the same history (exit 3 when they differ)")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.add_argument("metrics", nargs="+", metavar="METRICS")
    p.add_argument("--incidents", help="labelled incidents: which are newly caught or missed")
    p.add_argument("--clock", default="sample", help="'sample' (default) or 'interval:EVERY[:LOOKBACK]'")
    p.add_argument("--out", help="folder for gained.csv, lost.csv, moved.csv, volume.csv, incidents.csv")
    _add_input_options(p)
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("slo", help="replay an SLO spec's burn-rate alerts over metrics and judge them")
    p.add_argument("spec", metavar="SPEC", help="sloth prometheus/v1 spec, PrometheusServiceLevel, or OpenSLO SLO")
    p.add_argument("metrics", nargs="+", metavar="METRICS", help="CSV or Parquet files, or folders of them")
    p.add_argument("--incidents", help="labelled incidents to score the alerts on (default: the burn periods)")
    p.add_argument("--out", help="folder for slo.rules.yml, alerts.csv, slo_stats.csv, burn_rates.csv, budget.csv, "
                                 "events.csv, notifications.csv, report.html")
    p.add_argument("--window", default="30d", help="SLO period when the spec names none (sloth's default 30d)")
    p.add_argument("--burn-rate", type=float, default=1.0,
                   help="without incidents: score on the periods burning faster than this (default 1x)")
    p.add_argument("--burn-window", default="1h", help="... measured over this recorded window (default 1h)")
    p.add_argument("--prometheus-compat", choices=("2", "3"), default="3",
                   help="the Prometheus version whose windows to use (default 3)")
    p.add_argument("--no-strategies", dest="strategies", action="store_false",
                   help="leave out the workbook's six strategies (one more replay per SLO)")
    p.add_argument("--sweep", action="append", default=[], metavar="COND=P1,P2",
                   help="sweep the share of the budget (percent) a condition waits for: page_quick, page_slow, "
                        "ticket_quick, ticket_slow (repeatable); prints the recommendation, writes sweep.csv, "
                        "tuned.rules.yml and sloth's alert-windows.yml")
    p.add_argument("--max-pages-per-week", type=float, help="with --sweep: the page budget to recommend for")
    p.add_argument("--min-recall", type=float, help="with --sweep: the least recall to accept")
    _add_input_options(p)
    p.set_defaults(func=_cmd_slo)

    p = sub.add_parser("promql", help="evaluate a PromQL expression over metric history; write a long CSV")
    p.add_argument("metrics", nargs="+", metavar="METRICS",
                   help="CSV, Parquet, query_range JSON, promtool tsdb dump or exposition files")
    p.add_argument("-e", "--expr", required=True, help="the PromQL expression, e.g. 'rate(http_requests_total[5m])'")
    p.add_argument("--start", help="first evaluation time (default: first sample, rounded up to the step)")
    p.add_argument("--end", help="last evaluation time (default: last sample)")
    p.add_argument("--step", default="1m", help="evaluation step (default 1m)")
    p.add_argument("--lookback", default="5m", help="lookback delta of instant selectors (default 5m)")
    p.add_argument("--compat", default="3", choices=("2", "3"),
                   help="Prometheus version whose range boundaries to use (default 3: left-open)")
    p.add_argument("-o", "--output", help="file to write: .parquet, or CSV (default: CSV on standard output)")
    _add_input_options(p)
    p.set_defaults(func=_cmd_promql)

    p = sub.add_parser("validate", help="check rules files; list every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("export", help="write rules as YAML or as a Prometheus rule file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", required=True, choices=("yaml", "prometheus"))
    p.add_argument("-o", "--output", help="output file (default: standard output)")
    p.set_defaults(func=_cmd_export)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A warning as one line on stderr: what a person needs, no source file and line of ours."""
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return _main(argv)
    finally:
        warnings.showwarning = shown


def run() -> int:
    """The ``perfalert`` console script: :func:`main` in a process of its own."""
    _return_memory_promptly()
    return main()


def _return_memory_promptly() -> None:
    """Let the command's process give freed arrays back to the system at once (its peak memory is what a
    large backtest is limited by): glibc's malloc serves every block of 1 MiB or more with its own
    mapping, returned when freed, instead of raising that threshold to 32 MiB and keeping freed blocks
    in its heap; and Arrow allocates through malloc instead of mimalloc, which keeps freed pages for
    reuse. At 10M samples that is 1.40 -> 1.17 GB peak, in the same time. Process-wide settings, so only
    the command's own process makes them (not the library, nor :func:`main` called in a Python session);
    ``ARROW_DEFAULT_MEMORY_POOL`` set by the user wins."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):  # not glibc: its allocator's own defaults
        pass
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:  # read when Arrow first allocates (here and in workers)
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
        if "pyarrow" in sys.modules:  # loaded with pandas: its pool may be chosen already
            import pyarrow as pa

            pa.set_memory_pool(pa.system_memory_pool())


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except InputError as exc:
        for line in exc.problems:
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return 2
    except PerfAlertError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into exit code 1
        if os.environ.get("PERFALERT_DEBUG"):
            traceback.print_exc()
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} "
              "(this is a bug; set PERFALERT_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
