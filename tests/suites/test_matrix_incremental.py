"""A matrix computed from the suite's last matrix and the cells written since
(suites/selectors.py) is the matrix computed from every cell, whatever changed in between;
and it is computed that way only while the suite's methods, tasks, ranked versions and
splits are those of the last matrix. A run that does not count (a file that failed
validation) leaves its cell to the method's earlier run, and is shown only where the
method has no other."""

from __future__ import annotations

import pytest

from competitions.services.lifecycle import competition_finalize
from suites import selectors
from suites.cells import suite_cells_refresh
from suites.models import Method, SuiteCell
from tests.suites.test_suite_matrix_cells import method_scored, suite_of

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def from_every_cell(suite) -> selectors.SuiteMatrix:
    return selectors.suite_matrix_compute(suite=suite)


def assert_same(matrix: selectors.SuiteMatrix, expected: selectors.SuiteMatrix) -> None:
    assert matrix.board == expected.board
    assert matrix.statistics == expected.statistics
    assert matrix.submissions == expected.submissions
    assert matrix.stale == expected.stale
    assert matrix.pending == expected.pending
    assert [t.key for t in matrix.waiting] == [t.key for t in expected.waiting]
    assert list(matrix.methods) == list(expected.methods)


def two_methods_kept():
    """A suite of two tasks, "noisy" and "fair" scored on both, its matrix kept."""
    suite, labels, _ = suite_of("iris", "wine")
    method_scored(suite, labels, "noisy", 0.3)
    method_scored(suite, labels, "fair", 0.5)
    suite_cells_refresh(suite_id=suite.pk)
    selectors.suite_matrix(suite=suite)
    return suite, labels


def test_a_new_cell_is_read_alone_and_gives_the_matrix_of_every_cell(
    django_assert_num_queries,
):
    suite, labels, _ = suite_of("iris", "wine")
    method_scored(suite, labels, "noisy", 0.3)
    method_scored(suite, labels, "fair", 0.5)
    suite_cells_refresh(suite_id=suite.pk)
    first = selectors.suite_matrix(suite=suite)
    method_scored(suite, labels, "strong", 0.7)  # a new method: the layout changed
    suite_cells_refresh(suite_id=suite.pk)
    second = selectors.suite_matrix(suite=suite)
    assert second.board is not None
    assert "strong" in second.board.methods
    # A better run of an existing method: its cells are all that changed.
    noisy = Method.objects.get(suite=suite, name="noisy")
    method_scored_again(suite, labels, noisy, 0.9)
    written = suite_cells_refresh(suite_id=suite.pk)
    assert written == 2
    # The token, the tasks, the constant predictors, the cells since, the queued runs: no
    # read of the methods, and only the two new cells (a read of every cell would be 6).
    with django_assert_num_queries(5):
        third = selectors.suite_matrix(suite=suite)
    assert third.token not in (first.token, second.token)
    assert_same(third, from_every_cell(suite))
    assert third.board is not None
    noisy_row = next(r for r in third.board.rows if r.method == "noisy")
    assert [c.score for c in noisy_row.cells] == [1.0, 1.0]  # it was 0.3's, below 1


def method_scored_again(suite, labels, method, skill: float) -> None:
    from judging.services import submission_score
    from scoring.scorers import InProcessScorer
    from suites import services
    from tests import factories
    from tests.suites.test_suite_matrix_cells import predictions

    for seed, task in enumerate(suite.tasks.all()):
        run = services.method_submit(
            method=method,
            task=task,
            user=method.owner,
            uploaded_file=factories.upload(predictions(labels, skill, 50 + seed)),
        )
        assert submission_score(submission_id=run.submission_id, scorer=InProcessScorer())


def test_a_finished_run_not_yet_computed_is_shown_stale_then_fresh_as_from_every_cell():
    suite, labels = two_methods_kept()
    fair = Method.objects.get(suite=suite, name="fair")
    method_scored_again(suite, labels, fair, 0.95)  # finished: its cells marked, stale
    stale = selectors.suite_matrix(suite=suite)
    assert stale.stale == {("fair", "iris"), ("fair", "wine")}
    assert_same(stale, from_every_cell(suite))
    suite_cells_refresh(suite_id=suite.pk)
    fresh = selectors.suite_matrix(suite=suite)
    assert fresh.stale == frozenset()
    assert_same(fresh, from_every_cell(suite))
    assert stale.basis is not None
    since = stale.basis.read.version
    assert SuiteCell.objects.filter(method=fair, revision__gt=since).count() == 2


def test_a_renamed_method_and_a_finalized_task_are_read_from_every_cell():
    suite, _labels = two_methods_kept()
    fair = Method.objects.get(suite=suite, name="fair")
    fair.name = "fairer"
    fair.save()  # the layout changed: the last matrix's methods are not these
    renamed = selectors.suite_matrix(suite=suite)
    assert renamed.board is not None
    assert set(renamed.board.methods) == {"noisy", "fairer"}
    assert_same(renamed, from_every_cell(suite))
    # The iris task's competition is finalized: its column shows the private split, stale
    # until computed.
    competition = suite.tasks.get(key="iris").competition
    competition_finalize(competition=competition)
    final = selectors.suite_matrix(suite=suite)
    assert {task for _m, task in final.stale} == {"iris"}
    assert_same(final, from_every_cell(suite))


def test_a_file_that_fails_validation_leaves_the_methods_cell_to_its_earlier_run():
    from judging.services import submission_score
    from scoring.scorers import InProcessScorer
    from suites import services
    from tests import factories

    suite, labels, _ = suite_of("iris", "wine")
    method, runs = method_scored(suite, labels, "noisy", 0.3)
    suite_cells_refresh(suite_id=suite.pk)
    before = selectors.suite_matrix(suite=suite)
    task = suite.tasks.get(key="iris")
    typo = services.method_submit(
        method=method, task=task, user=method.owner, uploaded_file=factories.upload(b"id\n")
    )
    assert selectors.suite_matrix(suite=suite).pending == {("noisy", "iris"): 1}
    submission_score(submission_id=typo.submission_id, scorer=InProcessScorer())
    typo.submission.refresh_from_db()
    assert (typo.submission.status, typo.submission.failure) == ("failed", "invalid")
    suite_cells_refresh(suite_id=suite.pk)
    after = selectors.suite_matrix(suite=suite)
    assert after.submissions[("noisy", "iris")] == runs[0].submission_id
    assert after.pending == {}
    assert after.board == before.board
    assert_same(after, from_every_cell(suite))


def test_a_run_that_does_not_count_is_shown_failed_where_the_method_has_no_other():
    from competitions.models import Submission
    from competitions.signals import submission_finished

    suite, labels, _ = suite_of("iris", "wine")
    method_scored(suite, labels, "fair", 0.5)
    _, runs = method_scored(suite, labels, "noisy", 0.3)
    suite_cells_refresh(suite_id=suite.pk)
    selectors.suite_matrix(suite=suite)
    # Scored again (as after a version switch) and found invalid this time.
    Submission.objects.filter(pk=runs[0].submission_id).update(status="failed", failure="invalid")
    submission_finished.send(sender=Submission, submission_id=runs[0].submission_id)
    assert selectors.suite_matrix(suite=suite).stale == {("noisy", "iris")}
    assert suite_cells_refresh(suite_id=suite.pk) == 1
    after = selectors.suite_matrix(suite=suite)
    assert after.submissions[("noisy", "iris")] == runs[0].submission_id
    assert_same(after, from_every_cell(suite))
    assert after.board is not None
    noisy = next(r for r in after.board.rows if r.method == "noisy")
    assert [c.status for c in noisy.cells] == ["failed", "scored"]
