"""The cost of a benchmark suite's matrix (issue 12) at 500 methods x 50 tasks, cases
interleaved in one run (each repetition runs every case in turn, so the machine's load
drifts over all of them alike):

a. the kept matrix read through the selector (suites.selectors.suite_matrix: the token's
   one query and a cache read), and through the matrix's JSON and page when those routes
   exist, their body kept per token (suites/matrix_cache.py) (target: median <= 50 ms,
   constant queries); a'. for information, the page's and JSON's first read after the
   worker's task kept a new matrix (the task renders the page's body, not the JSON's), and
   the page's body rendered, as that task does;
b. the baseline: the matrix recomputed from every score, as it was before cells were
   stored: every cell's latest run and its Score row read, then the engine;
c. the aggregates after one new cell: a method's new run scored, its cell computed and
   stored as the worker's service does (suites.cells.suite_cells_refresh), then the board
   and the statistics computed again (target <= 100 ms; the worker's write is shown apart):
   from the last matrix and the cell written since (suite_matrix_compute with `previous`,
   what every read and worker does once it has the suite's last matrix), and for
   information from every stored cell (what a process without it does); then the read that
   does it and keeps the result (with its token and the cache's pickling), the same read in
   a process that has not the last matrix (unpickled from the shared cache), and the same
   cell through the worker's task, which also keeps the new matrix, then the next read.

After the measurements, a check: the kept matrix, followed cell by cell, equals the matrix
computed again from every stored cell (each row's mean rank, mean normalized score and
wins, each cell's value, the statistics); a difference fails the run (exit status 1).

    .venv/bin/python bench/bench_suite_matrix.py [--methods 500] [--tasks 50] [--repeats 20]

The database is the run's own (bench/benchlib.py), dropped at the end; the cache is the
test settings' in-process one (what a web process's local copy costs; a Redis round trip
adds its own). Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.test",
    "CELERY_BROKER_URL": "memory://",  # the worker's service is called here, by hand
}
TARGET_READ_MS = 50.0
TARGET_NEW_CELL_MS = 100.0
RECOMPUTE = "c. aggregates after one new cell"
RECOMPUTE_ALL = "c. (from every stored cell)"
READ_COMPUTES = "c. then the read: token, computed, kept"
READ_ELSEWHERE = "c. the read, last matrix from the shared cache"


def populate(methods: int, tasks: int):
    """A suite of `tasks` tasks and `methods` methods, each with a finished run on every
    task (5 % failed), its Score rows and its stored cell with an interval, as the workers
    leave them; made with bulk inserts."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from competitions.models import ReferenceResult, Score, Submission
    from suites import services
    from suites.cells import matrix_version_bump
    from suites.models import Method, MethodRun, SuiteCell
    from tests import factories

    rng = random.Random(12)
    now = timezone.now()
    organizer = User.objects.create_user("organizer")
    owner = User.objects.create_user("owner")
    suite = services.suite_create(slug="bench", title="Bench suite", organizer=organizer)
    for j in range(tasks):
        competition = factories.make_competition(slug=f"task-{j}", daily_limit=10_000)
        services.suite_task_add(suite=suite, competition=competition, key=f"task-{j}")
    suite_tasks = list(suite.tasks.select_related("competition__task"))
    ReferenceResult.objects.bulk_create(
        ReferenceResult(
            competition=t.competition,
            task_version=1,
            kind="constant",
            label="Constant predictor",
            status="scored",
            scores={"public": {"roc_auc": 0.5}, "private": {"roc_auc": 0.5}},
        )
        for t in suite_tasks
    )
    memberships = services.suite_join(suite=suite, user=owner, accept_rules=True)
    team_of = {m.team.competition_id: m.team for m in memberships}
    made = Method.objects.bulk_create(
        Method(suite=suite, owner=owner, name=f"method-{i:03d}") for i in range(methods)
    )
    # One row as the factory makes it per team, copied (the factory reads the phase and
    # the submitter each time).
    rows = {
        competition_id: factories.submission_row(team, task_version=1)
        for competition_id, team in team_of.items()
    }
    submissions, outcomes = [], []
    for method in made:
        for task in suite_tasks:
            failed = rng.random() < 0.05
            row = copy.copy(rows[task.competition_id])
            row.status = "failed" if failed else "scored"
            submissions.append(row)
            outcomes.append((method, task, None if failed else round(rng.uniform(0.45, 1), 3)))
    Submission.objects.bulk_create(submissions, batch_size=5_000)
    Score.objects.bulk_create(
        (
            Score(submission=s, task_version=1, split=split, metric="roc_auc", value=score)
            for s, (_m, _t, score) in zip(submissions, outcomes, strict=True)
            if score is not None
            for split in ("public", "private")
        ),
        batch_size=10_000,
    )
    MethodRun.objects.bulk_create(
        (
            MethodRun(method=m, suite_task=t, submission=s)
            for s, (m, t, _score) in zip(submissions, outcomes, strict=True)
        ),
        batch_size=10_000,
    )
    SuiteCell.objects.bulk_create(
        (
            SuiteCell(
                method=m,
                suite_task=t,
                latest=s,
                submission=s,
                status="failed" if score is None else "scored",
                split="public",
                task_version=1,
                score=score,
                ci_low=None if score is None else score - rng.uniform(0.01, 0.05),
                ci_high=None if score is None else min(1.0, score + rng.uniform(0.01, 0.05)),
                computed_at=now,
            )
            for s, (m, t, score) in zip(submissions, outcomes, strict=True)
        ),
        batch_size=10_000,
    )
    matrix_version_bump(suite_id=suite.pk)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have, after so many rows at once
    return suite, suite_tasks, made, team_of


def matrix_from_every_score(suite):
    """The baseline: every cell's latest finished run and its Score row read, then the
    engine's board and statistics (the foundation's selector, before cells were stored)."""
    from competitions.models import Score
    from scoring import suites as engine
    from suites.models import MethodRun
    from suites.selectors import _constants, suite_tasks

    tasks = list(suite_tasks(suite))
    names = dict(suite.methods.order_by("created_at").values_list("pk", "name"))
    task_by_id = {t.pk: t for t in tasks}
    latest: dict[tuple[int, int], tuple[int, str]] = {}
    for method_id, task_id, submission_id, status in (
        MethodRun.objects.filter(method__suite=suite)
        .order_by("method_id", "suite_task_id", "-created_at", "-pk")
        .values_list("method_id", "suite_task_id", "submission_id", "submission__status")
    ):
        if status in ("scored", "failed"):
            latest.setdefault((method_id, task_id), (submission_id, status))
    scores = dict(
        Score.objects.filter(
            submission__method_run__method__suite=suite, split="public", metric="roc_auc"
        ).values_list("submission_id", "value")
    )
    constants = _constants(tasks)
    cells = {}
    for (method_id, task_id), (submission_id, status) in latest.items():
        score = scores.get(submission_id)
        cells[(names[method_id], task_by_id[task_id].key)] = engine.Cell(
            score=score, failed=status == "failed"
        )
    engine_tasks = [
        engine.SuiteTask(key=t.key, metric="roc_auc", constant=constants[t.pk]) for t in tasks
    ]
    board = engine.suite_board(list(names.values()), engine_tasks, cells)
    return board, engine.suite_statistics(board)


class Counted:
    """Statements run by the block, through a wrapper (a request may reconnect)."""

    def __enter__(self):
        from django.db import connection

        self.statements = 0
        self._wrapper = connection.execute_wrapper(self._count)
        self._wrapper.__enter__()
        return self

    def _count(self, execute, sql, params, many, context):
        self.statements += 1
        return execute(sql, params, many, context)

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)


def timed(fn) -> tuple[float, int]:
    with Counted() as counted:
        started = time.perf_counter()
        fn()
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, counted.statements


def view_urls() -> dict[str, str]:
    """The matrix's JSON and page, where this checkout routes them."""
    from django.urls import Resolver404, resolve

    found = {}
    for name, url in (
        ("page /s/bench/matrix/", "/s/bench/matrix/"),
        ("JSON /api/v1/suites/bench/matrix/", "/api/v1/suites/bench/matrix/"),
    ):
        try:
            resolve(url)
        except Resolver404:
            continue
        found[name] = url
    return found


def new_cell(suite, suite_tasks, methods, team_of, i: int, *, keep: bool) -> float:
    """Method i's new run on a task, scored (a new best), then its cell refreshed as the
    worker does: the service alone, or the worker's task (which also keeps the new matrix).
    Returns the worker's time in ms."""
    from competitions.models import Score
    from suites.models import MethodRun
    from suites.tasks import suite_cells_refresh_task
    from tests import factories

    method = methods[(7 * i) % len(methods)]
    task = suite_tasks[i % len(suite_tasks)]
    submission = factories.submission_row(
        team_of[task.competition_id], status="scored", task_version=1
    )
    submission.save()
    Score.objects.bulk_create(
        Score(submission=submission, task_version=1, split=split, metric="roc_auc", value=0.999)
        for split in ("public", "private")
    )
    MethodRun.objects.create(method=method, suite_task=task, submission=submission)
    started = time.perf_counter()
    if keep:
        assert suite_cells_refresh_task(suite.pk, method.pk, task.pk) == 1
    else:
        from suites.cells import suite_cells_refresh

        assert suite_cells_refresh(suite_id=suite.pk, method_id=method.pk, suite_task_id=task.pk)
    return (time.perf_counter() - started) * 1000


def run(methods: int, tasks: int, repeats: int) -> None:
    from benchlib import say
    from django.test import Client

    from suites.matrix_html import matrix_body
    from suites.selectors import (
        _LOCAL,
        suite_matrices_forgotten,
        suite_matrix,
        suite_matrix_compute,
    )

    started = time.perf_counter()
    suite, suite_tasks, made, team_of = populate(methods, tasks)
    say(
        f"populated {methods} methods x {tasks} tasks ({methods * tasks:,} cells) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    client = Client(HTTP_HOST="localhost")
    urls = view_urls()
    results: dict[str, list[tuple[float, int]]] = {}

    def keep(name: str, sample: tuple[float, int]) -> None:
        results.setdefault(name, []).append(sample)

    def get(url: str) -> None:
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]

    suite_matrix(suite=suite)  # warm: kept
    for url in urls.values():
        get(url)
    worker_ms: dict[str, list[float]] = {"service": [], "task": []}
    for i in range(repeats):
        keep("a. kept matrix, selector", timed(lambda: suite_matrix(suite=suite)))
        _LOCAL.clear()  # as another process's first read: unpickled from the shared cache
        keep("a. kept matrix, selector, shared cache", timed(lambda: suite_matrix(suite=suite)))
        for name, url in urls.items():
            # The first read after the last repetition's worker's task.
            keep(f"a'. first read after a new cell, {name}", timed(lambda url=url: get(url)))
            keep(f"a. kept matrix, {name}", timed(lambda url=url: get(url)))
        if urls:
            matrix = suite_matrix(suite=suite)
            keep(
                "a'. the page's body rendered (by the task)",
                timed(lambda matrix=matrix: matrix_body(matrix=matrix, tag="")),
            )
        keep("b. recomputed from every score", timed(lambda: matrix_from_every_score(suite)))
        last = suite_matrix(suite=suite)
        worker_ms["service"].append(new_cell(suite, suite_tasks, made, team_of, 3 * i, keep=False))
        keep(RECOMPUTE_ALL, timed(lambda: suite_matrix_compute(suite=suite)))
        keep(RECOMPUTE, timed(lambda last=last: suite_matrix_compute(suite=suite, previous=last)))
        keep(READ_COMPUTES, timed(lambda: suite_matrix(suite=suite)))
        worker_ms["service"].append(
            new_cell(suite, suite_tasks, made, team_of, 3 * i + 1, keep=False)
        )
        suite_matrices_forgotten()  # as another process, which has not the last matrix
        keep(READ_ELSEWHERE, timed(lambda: suite_matrix(suite=suite)))
        worker_ms["task"].append(new_cell(suite, suite_tasks, made, team_of, 3 * i + 2, keep=True))
        keep("c. the read after the worker's task", timed(lambda: suite_matrix(suite=suite)))
    matrix = suite_matrix(suite=suite)
    assert matrix.board is not None
    assert len(matrix.board.rows) == methods
    assert matrix.stale == frozenset()
    assert matrix.statistics is not None
    report(results, worker_ms, urls, repeats)
    # What was timed must also be right: the kept matrix, followed cell by cell from the
    # last one, is the matrix computed again from every stored cell.
    problems = matrix_differences(matrix, suite_matrix_compute(suite=suite))
    if problems:
        say("check: incremental matrix differs from the full recompute: FAILED")
        for line in problems[:20]:
            say(f"   {line}")
        sys.exit(1)
    say("check: incremental matrix equals the full recompute: OK")


def matrix_differences(kept, full) -> list[str]:
    """Where two matrices differ: the methods' order, a row's mean rank, mean normalized
    score or wins, a cell's value (score, status, rank, normalized score, win, interval),
    the statistics. Exact: both come from the same stored cells by the same engine."""
    if kept.board is None or full.board is None:
        return [f"a board is missing: kept {kept.board}, full {full.board}"]
    problems = []
    if kept.board.methods != full.board.methods:
        problems.append("the methods' order differs")
    if [t.key for t in kept.board.tasks] != [t.key for t in full.board.tasks]:
        problems.append("the tasks differ")
    full_rows = {r.method: r for r in full.board.rows}
    for row in kept.board.rows:
        other = full_rows.get(row.method)
        if other is None:
            problems.append(f"{row.method}: not in the full recompute")
            continue
        for name in ("mean_rank", "mean_normalized", "wins"):
            if getattr(row, name) != getattr(other, name):
                problems.append(
                    f"{row.method}: {name} {getattr(row, name)!r} != {getattr(other, name)!r}"
                )
        for task, a, b in zip(kept.board.tasks, row.cells, other.cells, strict=True):
            if a != b:
                problems.append(f"{row.method} on {task.key}: {a} != {b}")
    if kept.statistics != full.statistics:
        problems.append("the statistics differ")
    return problems


def report(results, worker_ms, urls, repeats: int) -> None:
    from benchlib import say

    say(f"{repeats} repetitions, cases interleaved; median and p95 ms, queries per call:")
    medians = {}
    for name, samples in results.items():
        times = sorted(t for t, _q in samples)
        queries = sorted({q for _t, q in samples})
        medians[name] = statistics.median(times)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        say(f"   {name:44} {medians[name]:9.1f} {p95:9.1f}   queries {queries}")
    for name, label in (
        ("service", "c. worker: the cell computed and stored"),
        ("task", "c. worker's task: and the matrix kept"),
    ):
        times = sorted(worker_ms[name])
        say(f"   {label:44} {statistics.median(times):9.1f} {times[-1]:9.1f} (max)")
    if not urls:
        say("   (no matrix page or JSON route in this checkout: the selector only)")
    reads = [m for n, m in medians.items() if n.startswith("a.")]
    kept_queries = {
        q for n, s in results.items() if n.startswith("a. kept matrix, sel") for _, q in s
    }
    met = max(reads) <= TARGET_READ_MS and len(kept_queries) == 1
    say(
        f"target a: median <= {TARGET_READ_MS:.0f} ms, constant queries: "
        f"{'MET' if met else 'NOT met'} (worst median {max(reads):.1f} ms; the baseline b "
        f"{medians['b. recomputed from every score']:.1f} ms)"
    )
    after = medians[RECOMPUTE]
    say(
        f"target c: the aggregates after one new cell <= {TARGET_NEW_CELL_MS:.0f} ms: "
        f"{'MET' if after <= TARGET_NEW_CELL_MS else 'NOT met'} (median {after:.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from benchlib import say, scratch_database, setup_django

    with (
        tempfile.TemporaryDirectory(prefix="bench-suite-") as data,
        scratch_database("suite_matrix") as url,
    ):
        os.environ["HELDOUT_DATA_DIR"] = data  # the task files made, removed with it
        os.environ["DATABASE_URL"] = url
        setup_django({**ENV, "DATABASE_URL": url})
        say(f"load average at the start: {os.getloadavg()[0]:.1f}")
        run(args.methods, args.tasks, args.repeats)
        say(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
