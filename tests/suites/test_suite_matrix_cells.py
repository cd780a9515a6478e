"""The matrix's cells: computed on a worker when a submission finishes (with the interval an
entry of the task's board gets), found stale after a version switch or a finalize, and the
kept matrix: one query to read, a new one after any change."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.base import ContentFile

from competitions.models import (
    Competition,
    LeaderboardEntry,
    OutboxMessage,
    ReferenceResult,
    Score,
    Submission,
)
from competitions.services.intervals import leaderboard_intervals_refresh
from competitions.services.lifecycle import competition_finalize
from competitions.services.versions import task_version_activate, task_version_create
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from suites import selectors, services
from suites.cells import CELLS_TASK, suite_cells_refresh
from suites.models import SuiteCell
from suites.tasks import suite_cells_refresh_task
from tests import factories
from tests.suites.world import GOOD, joined, make_suite, submit_scored

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]
ROWS = 400


def _truth() -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = (rng.random(ROWS) < 0.5).astype(int)
    usage = np.where(np.arange(ROWS) % 2 == 0, "Public", "Private")
    text = "id,label,Usage\n" + "".join(
        f"r{i},{y},{u}\n" for i, (y, u) in enumerate(zip(labels, usage, strict=True))
    )
    return text, labels


def constant_reference(competition, version: int) -> None:
    ReferenceResult.objects.create(
        competition=competition,
        task_version=version,
        kind="constant",
        label="Constant predictor",
        status="scored",
        scores={"public": {"roc_auc": 0.5}, "private": {"roc_auc": 0.5}},
    )


def suite_of(*keys: str):
    organizer = factories.make_user("organizer")
    suite = services.suite_create(slug="cells", title="Cells", organizer=organizer)
    text, labels = _truth()
    for key in keys:
        competition = factories.make_competition(slug=key, daily_limit=50, secondary_metrics=())
        competition.task.ground_truth.save("truth.csv", ContentFile(text.encode()))
        services.suite_task_add(suite=suite, competition=competition, key=key)
        constant_reference(competition, competition.task.version)
    return suite, labels, organizer


def predictions(labels: np.ndarray, skill: float, seed: int) -> bytes:
    rng = np.random.default_rng(1000 + seed)
    scores = np.clip(skill * labels + rng.random(len(labels)) * (1 - skill), 0, 1)
    return ("id,label\n" + "".join(f"r{i},{s:.4f}\n" for i, s in enumerate(scores))).encode()


def method_scored(suite, labels, name: str, skill: float):
    user = factories.make_user(name)
    services.suite_join(suite=suite, user=user, accept_rules=True)
    method = services.method_create(suite=suite, owner=user, name=name)
    runs = []
    for seed, task in enumerate(suite.tasks.all()):
        run = services.method_submit(
            method=method,
            task=task,
            user=user,
            uploaded_file=factories.upload(predictions(labels, skill, seed)),
        )
        assert submission_score(submission_id=run.submission_id, scorer=InProcessScorer())
        runs.append(run)
    return method, runs


def cell(matrix, method: str, task: str):
    row = next(r for r in matrix.board.rows if r.method == method)
    return row.cells[[t.key for t in matrix.board.tasks].index(task)]


def test_a_finished_submission_asks_a_worker_for_its_cell_which_gets_its_entrys_interval():
    suite, labels, _ = suite_of("iris", "wine")
    method, runs = method_scored(suite, labels, "noisy", 0.3)
    for run in runs:
        assert OutboxMessage.objects.filter(
            task=CELLS_TASK, args=[suite.pk, method.pk, run.suite_task_id]
        ).exists()
    assert suite_cells_refresh(suite_id=suite.pk, method_id=method.pk) == 2
    assert suite_cells_refresh(suite_id=suite.pk) == 0  # idempotent: nothing stale
    leaderboard_intervals_refresh(competition_id=runs[0].submission.competition_id)
    entry = LeaderboardEntry.objects.get(submission=runs[0].submission, split="public")
    stored = SuiteCell.objects.get(submission=runs[0].submission)
    assert (stored.split, stored.status) == ("public", "scored")
    assert stored.ci_low is not None
    assert stored.ci_high is not None
    assert stored.score is not None
    assert stored.ci_low < stored.score < stored.ci_high
    # The same pure function, the same board resamples: the entry's interval exactly.
    assert (stored.ci_low, stored.ci_high) == (entry.ci_low, entry.ci_high)
    matrix = selectors.suite_matrix(suite=suite)
    assert matrix.stale == frozenset()
    shown = cell(matrix, "noisy", "iris")
    assert (shown.score, shown.low, shown.high) == (entry.score, entry.ci_low, entry.ci_high)


def test_a_cell_not_yet_computed_shows_its_score_without_an_interval_and_is_marked_stale():
    suite, labels, _ = suite_of("iris", "wine")
    _, runs = method_scored(suite, labels, "noisy", 0.3)
    before = OutboxMessage.objects.filter(task=CELLS_TASK, args=[suite.pk, None, None]).count()
    matrix = selectors.suite_matrix(suite=suite)
    assert matrix.stale == {("noisy", "iris"), ("noisy", "wine")}
    shown = cell(matrix, "noisy", "iris")
    public = Score.objects.get(submission=runs[0].submission, split="public", metric="roc_auc")
    assert (shown.score, shown.low, shown.high) == (public.value, None, None)
    # The read asked for the suite's refresh, once for this token.
    selectors.suite_matrix(suite=suite)
    after = OutboxMessage.objects.filter(task=CELLS_TASK, args=[suite.pk, None, None]).count()
    assert after == before + 1


def test_a_finalize_makes_the_cells_stale_until_they_are_computed_on_the_private_split():
    suite, labels, organizer = suite_of("iris", "wine")
    _, runs = method_scored(suite, labels, "noisy", 0.3)
    suite_cells_refresh(suite_id=suite.pk)
    public = selectors.suite_matrix(suite=suite)
    competition = runs[0].submission.competition
    competition_finalize(competition=competition, by=organizer)
    assert OutboxMessage.objects.filter(
        task=CELLS_TASK, args=[suite.pk, None, runs[0].suite_task_id]
    ).exists()
    matrix = selectors.suite_matrix(suite=suite)
    assert matrix.token != public.token
    assert matrix.stale == {("noisy", "iris")}
    private = Score.objects.get(submission=runs[0].submission, split="private", metric="roc_auc")
    shown = cell(matrix, "noisy", "iris")
    assert (shown.score, shown.low) == (private.value, None)
    assert suite_cells_refresh(suite_id=suite.pk, suite_task_id=runs[0].suite_task_id) == 1
    matrix = selectors.suite_matrix(suite=suite)
    assert matrix.stale == frozenset()
    shown = cell(matrix, "noisy", "iris")
    assert shown.score == private.value
    assert shown.low < shown.score < shown.high
    assert SuiteCell.objects.get(submission=runs[0].submission).split == "private"


def test_a_version_switch_makes_the_cell_stale_and_never_shows_the_old_versions_score():
    suite, labels, _ = suite_of("iris", "wine")
    _, runs = method_scored(suite, labels, "noisy", 0.3)
    suite_cells_refresh(suite_id=suite.pk)
    before = selectors.suite_matrix(suite=suite)
    task = runs[0].submission.competition.task
    version = task_version_create(task=task)
    constant_reference(task.competition, version.number)
    task_version_activate(task=task, number=version.number)
    assert OutboxMessage.objects.filter(
        task=CELLS_TASK, args=[suite.pk, None, runs[0].suite_task_id]
    ).exists()
    matrix = selectors.suite_matrix(suite=suite)
    assert matrix.token != before.token
    assert matrix.stale == {("noisy", "iris")}
    # No score under the ranked version yet: missing (the constant predictor's), not v1's.
    assert cell(matrix, "noisy", "iris").status == "missing"
    suite_cells_refresh(suite_id=suite.pk)
    stored = SuiteCell.objects.get(submission=runs[0].submission)
    assert (stored.task_version, stored.status) == (version.number, "missing")
    assert selectors.suite_matrix(suite=suite).stale == frozenset()


def test_a_kept_matrix_costs_one_query_and_a_new_cell_gives_a_new_one(
    django_assert_num_queries,
):
    suite, labels, _ = suite_of("iris", "wine")
    method_scored(suite, labels, "noisy", 0.3)
    suite_cells_refresh(suite_id=suite.pk)
    # Computed from the stored cells: tasks, methods, runs, cells, constants (and the token).
    with django_assert_num_queries(6):
        first = selectors.suite_matrix(suite=suite)
    with django_assert_num_queries(1):
        kept = selectors.suite_matrix(suite=suite)
    assert kept.board == first.board
    method_scored(suite, labels, "strong", 0.6)
    suite_cells_refresh(suite_id=suite.pk)
    matrix = selectors.suite_matrix(suite=suite)
    assert matrix.token != first.token
    assert matrix.board is not None
    assert matrix.board.methods == ("strong", "noisy")
    assert cell(matrix, "strong", "wine").low is not None


def test_the_query_count_of_a_computed_matrix_does_not_grow_with_methods_and_tasks(
    django_assert_num_queries,
):
    suite, labels, _ = suite_of("iris", "wine", "digits")
    for i, skill in enumerate((0.1, 0.3, 0.5)):
        method_scored(suite, labels, f"m{i}", skill)
    suite_cells_refresh(suite_id=suite.pk)
    with django_assert_num_queries(6):
        matrix = selectors.suite_matrix(suite=suite)
    assert matrix.board is not None
    assert len(matrix.board.rows) == 3
    assert matrix.statistics is not None


def test_a_queued_run_changes_the_kept_matrix_to_show_it_pending():
    suite, labels, _ = suite_of("iris", "wine")
    method, runs = method_scored(suite, labels, "noisy", 0.3)
    suite_cells_refresh(suite_id=suite.pk)
    before = selectors.suite_matrix(suite=suite)
    services.method_submit(
        method=method,
        task=runs[0].suite_task,
        user=method.owner,
        uploaded_file=factories.upload(predictions(labels, 0.5, 9)),
    )
    matrix = selectors.suite_matrix(suite=suite)
    assert matrix.token != before.token
    assert matrix.pending == {("noisy", "iris"): 1}
    assert matrix.stale == frozenset()  # the cell still shows the latest finished run


def test_the_workers_task_keeps_the_new_matrix_so_the_next_read_costs_one_query(
    django_assert_num_queries,
):
    suite, labels, _ = suite_of("iris", "wine")
    method_scored(suite, labels, "noisy", 0.3)
    assert suite_cells_refresh_task(suite.pk, None, None) == 2
    with django_assert_num_queries(1):
        matrix = selectors.suite_matrix(suite=suite)
    assert matrix.stale == frozenset()
    assert cell(matrix, "noisy", "wine").low is not None


def test_an_older_run_that_finishes_last_does_not_replace_the_newer_one():
    suite, labels, _ = suite_of("iris")
    user = factories.make_user("ada")
    services.suite_join(suite=suite, user=user, accept_rules=True)
    method = services.method_create(suite=suite, owner=user, name="late")
    task = suite.tasks.get()
    older, newer = (
        services.method_submit(
            method=method,
            task=task,
            user=user,
            uploaded_file=factories.upload(predictions(labels, skill, seed)),
        )
        for seed, skill in enumerate((0.1, 0.6))
    )
    assert submission_score(submission_id=newer.submission_id, scorer=InProcessScorer())
    assert submission_score(submission_id=older.submission_id, scorer=InProcessScorer())
    assert SuiteCell.objects.get(method=method).latest_id == newer.submission_id
    suite_cells_refresh(suite_id=suite.pk)
    newer_score = Score.objects.get(submission_id=newer.submission_id, split="public")
    assert cell(selectors.suite_matrix(suite=suite), "late", "iris").score == newer_score.value


def test_a_submission_scored_again_makes_its_cell_stale_until_computed_again():
    suite, labels, _ = suite_of("iris")
    _, runs = method_scored(suite, labels, "noisy", 0.3)
    suite_cells_refresh(suite_id=suite.pk)
    assert selectors.suite_matrix(suite=suite).stale == frozenset()
    Submission.objects.filter(pk=runs[0].submission_id).update(status="queued")
    assert submission_score(submission_id=runs[0].submission_id, scorer=InProcessScorer())
    assert selectors.suite_matrix(suite=suite).stale == {("noisy", "iris")}
    assert suite_cells_refresh(suite_id=suite.pk) == 1
    assert selectors.suite_matrix(suite=suite).stale == frozenset()


def test_a_task_on_a_ladder_board_shows_what_the_ladder_told_and_no_interval(organizer):
    suite = make_suite(organizer=organizer, slug="laddered", tasks=("iris", "wine"))
    Competition.objects.filter(slug="laddered-iris").update(public_board="ladder")
    user = joined(suite, "ladder-user")
    method = services.method_create(suite=suite, owner=user, name="good")
    for key in ("iris", "wine"):
        submit_scored(method, key, GOOD)
    suite_cells_refresh(suite_id=suite.pk)

    board = selectors.suite_matrix_compute(suite=suite).board
    assert board is not None
    iris, wine = board.rows[0].cells
    told = Submission.objects.get(competition__slug="laddered-iris").ladder_public_score
    exact = Score.objects.get(
        submission__competition__slug="laddered-iris", split="public", metric="roc_auc"
    ).value
    assert told is not None
    assert told != exact  # the Ladder rounds what it tells
    assert (iris.status, iris.score, iris.low, iris.high) == ("scored", told, None, None)
    assert wine.low is not None  # a plain board's cell keeps its interval
    assert wine.high is not None
