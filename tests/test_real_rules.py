"""Real rule files as teams publish them (``../shared/data/real-rules``, 139 files) replayed as
promtool 2.42 replays them.

For each file, history is made so that its alerts fire (:mod:`real_rules_oracle`); promtool's
alert timeline (every alert's labels, state and ``activeAt`` at every evaluation, from
``ALERTS``/``ALERTS_FOR_STATE``) must equal ours at every tick, and the labels and annotations
of the alerts firing at one tick must equal the ones promtool renders. Groups run in file order
(``group_eval_order``: promtool's own order is random without it). ``backtest --out`` writes
every output, the report included, for every file.
"""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from conftest import SHARED_RULES, need_shared
from prom_rules_oracle import promtool_alerts
from real_rules_oracle import MINUTES, history_frame, promtool_annotations, synthetic_history

from perfalert_lab.cli import main
from perfalert_lab.errors import RulesError
from perfalert_lab.prometheus.alerting import evaluate_rule_file
from perfalert_lab.promql_engine import store_from_frame
from perfalert_lab.rules.promfile import load_prometheus_rules

CORPUS = SHARED_RULES
AT = 60  # the minute whose firing alerts' annotations are compared (values high, most rules firing)


def _cases() -> list[tuple[Path, object, dict, list[str], set[str]]]:
    out = []
    for path in sorted(CORPUS.glob("*.yml")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # multi-document files say what they ignore; tested elsewhere
            try:
                rules = load_prometheus_rules(path)
            except RulesError:
                continue  # promtool refuses these too (test_one_house)
        if not rules.alert_rules:
            continue
        doc = next(d for d in yaml.safe_load_all(path.read_text()) if d)  # what Prometheus reads: the first
        exprs = [r.expr for g in rules.groups for r in g.rules]
        recorded = {r.name for g in rules.groups for r in g.rules if r.kind == "record"}
        out.append((path, rules, doc, exprs, recorded))
    return out


def _theirs(case: tuple) -> tuple[dict, object]:
    """promtool's timeline on history with two instances per label set, or one where two make a rule
    match many-to-many (an evaluation error, at which promtool stops its whole test)."""
    path, _, doc, exprs, recorded = case
    error = ""
    for instances in (2, 1):
        series = synthetic_history(exprs, recorded, instances)
        try:
            return series, promtool_alerts(Path(tempfile.mkdtemp()), [(doc, series, MINUTES)])[0]
        except AssertionError as exc:
            error = str(exc)
    return series, error


def _ours(rules: object, series: dict) -> dict[int, dict[tuple, tuple[str, int]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # forward references and failing evaluations are said; compared here
        timelines, _ = evaluate_rule_file(store_from_frame(history_frame(series)), rules, 0, (MINUTES - 1) * 60_000,
                                          compat="2")
    out: dict[int, dict[tuple, tuple[str, int]]] = {}
    for tl in timelines:
        for i, labels in enumerate(tl.labels):
            for j in np.flatnonzero(tl.state[i]):
                out.setdefault(int(tl.ticks[j] // 1000), {})[labels] = (
                    "pending" if tl.state[i, j] == 1 else "firing", int(tl.active_at[i, j] // 1000))
    return out, timelines


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)")


def _same_text(ours: str, theirs: str) -> bool:
    """Equal text, numbers equal to 1e-12 relative: a sum of three or more series may differ in its last
    bit, as promtool adds series in its storage's order (random between runs) and we add them with
    Kahan's compensation."""
    if ours == theirs:
        return True
    a, b = _NUMBER.split(ours), _NUMBER.split(theirs)
    x, y = _NUMBER.findall(ours), _NUMBER.findall(theirs)
    return a == b and len(x) == len(y) and all(math.isclose(float(u), float(v), rel_tol=1e-12)
                                               for u, v in zip(x, y, strict=True))


def test_real_rule_files_alert_as_promtool(tmp_path: Path) -> None:
    need_shared(CORPUS)
    cases = _cases()
    assert len(cases) > 120
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(_theirs, cases))
    fired = total = compared_annotations = 0
    unrunnable = []
    for case, (series, theirs) in zip(cases, answers, strict=True):
        path, rules = case[0], case[1]
        total += len({r.name for r in rules.alert_rules})
        ours, timelines = _ours(rules, series)
        if isinstance(theirs, str):  # promtool stops at an evaluation error; we say it and go on
            unrunnable.append(path.name)
            assert "same labelset" in theirs, (path.name, theirs[:500])
            continue
        for t in sorted(set(ours) | set(theirs)):
            assert ours.get(t) == theirs.get(t), (path.name, t, theirs.get(t), ours.get(t))
        names = {dict(k)["alertname"] for by in theirs.values() for k, (s, _) in by.items() if s == "firing"}
        fired += len(names)
        if names:  # what the pages say: labels and annotations as promtool renders them
            rendered = promtool_annotations(tmp_path, case[2], series, AT, sorted(names))
            j = AT
            for tl in timelines:
                firing = np.flatnonzero(tl.state[:, j] == 2) if tl.rule.annotations else np.zeros(0, dtype=int)
                # rendered as a backtest renders them: every firing instance at once (render_many)
                said = {k: v.to_pylist() for k, v in tl.annotations_many(firing, np.full(len(firing), j)).items()}
                for row, i in enumerate(firing.tolist()):
                    labels = tl.labels[i]
                    ours_text, theirs_text = {k: v[row] for k, v in said.items()}, rendered[labels]
                    assert ours_text.keys() == theirs_text.keys(), (path.name, labels)
                    for key in ours_text:
                        assert _same_text(ours_text[key], theirs_text[key]), (path.name, labels, key,
                                                                               ours_text[key], theirs_text[key])
                    compared_annotations += 1
    assert unrunnable == ["apa__postgresql_postgres-exporter.yml"], unrunnable
    assert fired > 700 and total > 1000, (fired, total)  # most real alert rules fire on the made history
    assert compared_annotations > 500, compared_annotations


def _write_outputs(job: tuple[str, str, str]) -> tuple[str, int, list[str]]:
    """``perfalert backtest --out`` for one file (in a worker process): exit code and files written."""
    path, metrics, out = job
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["backtest", metrics, "--rules", path, "--out", out])
    names = sorted(p.name for p in Path(out).iterdir() if p.stat().st_size > 0) if Path(out).is_dir() else []
    return Path(path).name, code, names


def test_every_real_rule_file_writes_every_output(tmp_path: Path) -> None:
    """``perfalert backtest --out`` on each file with history made for it: all four files, the report
    drawing every alert's series (aggregations, and/unless, absent(), templates with if/with/range)."""
    import multiprocessing

    need_shared(CORPUS)
    from concurrent.futures import ProcessPoolExecutor

    jobs = []
    for k, (path, _, _, exprs, recorded) in enumerate(_cases()):
        metrics = tmp_path / f"m{k}.csv"
        history_frame(synthetic_history(exprs, recorded, 1)).to_csv(metrics, index=False)
        jobs.append((str(path), str(metrics), str(tmp_path / f"out{k}")))
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_write_outputs, jobs))
    for name, code, written in results:
        assert code == 0, name
        assert written == ["alerts.csv", "notifications.csv", "report.html", "stats.csv"], (name, written)
