"""PromQL expressions equal promtool's answers (SPEC 11, compat "2": promtool 2.42).

Random expressions from a grammar of the supported subset over random series (gaps,
counter restarts, series that start late and end early, classic histograms), each
evaluated at random instants by promtool and by ``perfalert_lab.promql_engine`` in one
vectorised call. Set ``PERFALERT_PROMQL_CASES`` for more (thousands locally).
"""

from __future__ import annotations

import os
import random

import pytest
from promql_oracle import batch, ours, promtool_answers, random_case, same

CASES = int(os.environ.get("PERFALERT_PROMQL_CASES", "300"))


@pytest.mark.parametrize("seed", [11, 12])
def test_random_expressions_equal_promtool(tmp_path, seed):
    rng = random.Random(seed)
    cases = [random_case(rng) for _ in range(CASES // 2)]
    promtool_answers(tmp_path, cases)
    failures = []
    for case in cases:
        mine = batch(case)
        for t in case.times_s:
            if not same(case.expr, case.answers[t], mine[t]):
                failures.append(f"{case.expr!r} at {t}s: promtool {case.answers[t]}, ours {mine[t]}")
                break
    assert not failures, f"{len(failures)} of {len(cases)} cases differ:\n" + "\n".join(failures[:10])
    # the grammar reaches the interesting parts: errors, empty results, many series
    answers = [a for c in cases for a in c.answers.values()]
    assert sum(isinstance(a, str) for a in answers) >= 1
    assert sum(a == {} for a in answers) >= 10
    assert sum(isinstance(a, dict) and len(a) >= 3 for a in answers) >= 50


def test_one_call_equals_one_call_per_instant(tmp_path):
    """Vectorised over steps, the answers are those of each instant alone."""
    rng = random.Random(5)
    for _ in range(60):
        case = random_case(rng)
        whole, alone = batch(case), ours(case)
        for t in case.times_s:
            if isinstance(alone[t], str):
                continue
            assert same(case.expr, whole[t], alone[t]), (case.expr, t, whole[t], alone[t])
