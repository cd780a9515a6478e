"""Suites on the domain: joining, methods, one submission per task, the matrix."""

from __future__ import annotations

import pytest

from competitions.errors import ApplicationError, NotJoined
from competitions.models import Competition, OutboxMessage, ReferenceResult, Submission
from competitions.services.submissions import SCORE_TASK
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from suites import selectors, services
from suites.models import MethodRun
from tests import factories
from tests.suites.world import containers_now, image_archive

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def suite_of(*slugs: str, visibility: str = "public"):
    organizer = factories.make_user("suite-organizer")
    suite = services.suite_create(
        slug="bench-suite", title="Bench suite", organizer=organizer, visibility=visibility
    )
    for slug in slugs:
        competition = factories.make_competition(slug=slug)
        services.suite_task_add(suite=suite, competition=competition, key=slug)
        ReferenceResult.objects.create(
            competition=competition,
            task_version=competition.task.version,
            kind="constant",
            label="Constant predictor",
            status="scored",
            scores={"public": {"roc_auc": 0.5}, "private": {"roc_auc": 0.5}},
        )
    return suite, organizer


def joined(suite, username: str):
    user = factories.make_user(username)
    services.suite_join(suite=suite, user=user, accept_rules=True)
    return user


def test_it_hides_the_competitions_a_suite_owns_from_the_listings():
    suite, organizer = suite_of("iris", "wine")
    competitions = Competition.objects.filter(suite_tasks__suite=suite)
    assert {c.visibility for c in competitions} == {"unlisted"}
    assert all(organizer in c.organizers.all() for c in competitions)
    assert [t.key for t in suite.tasks.all()] == ["iris", "wine"]


def test_it_refuses_a_method_from_someone_who_has_not_joined():
    suite, _ = suite_of("iris")
    outsider = factories.make_user("outsider")
    with pytest.raises(NotJoined):
        services.method_create(suite=suite, owner=outsider, name="ridge")


def test_it_refuses_a_second_method_of_the_same_name_whatever_its_case():
    suite, _ = suite_of("iris")
    user = joined(suite, "ada")
    services.method_create(suite=suite, owner=user, name="Ridge")
    with pytest.raises(ApplicationError, match="already has a method of that name"):
        services.method_create(suite=suite, owner=user, name="ridge")


def test_it_names_every_bad_component_at_once():
    with pytest.raises(ApplicationError) as refused:
        services.components_clean({"model": "", "": "x", "tuning": ["grid", 3]})
    assert len(refused.value.extra["problems"]) == 3


def test_a_method_submits_one_file_per_task_and_the_matrix_shows_it():
    suite, _ = suite_of("iris", "wine")
    user = joined(suite, "ada")
    other = joined(suite, "bob")
    method = services.method_create(
        suite=suite, owner=user, name="perfect", components={"model": "oracle"}
    )
    weak = services.method_create(suite=suite, owner=other, name="weak")
    tasks = list(suite.tasks.all())
    for task in tasks:
        run = services.method_submit(
            method=method,
            task=task,
            user=user,
            uploaded_file=factories.upload(factories.perfect_predictions()),
        )
        assert submission_score(submission_id=run.submission_id, scorer=InProcessScorer())
    services.method_submit(
        method=weak, task=tasks[0], user=other, uploaded_file=factories.upload(b"nonsense\n")
    )
    for run in MethodRun.objects.filter(method=weak):
        submission_score(submission_id=run.submission_id, scorer=InProcessScorer())
    assert Submission.objects.get(method_run__method=weak).status == "failed"

    matrix = selectors.suite_matrix(suite=suite)
    assert matrix.board is not None
    rows = {row.method: row for row in matrix.board.rows}
    assert [c.status for c in rows["perfect"].cells] == ["scored", "scored"]
    assert [c.normalized for c in rows["perfect"].cells] == [1.0, 1.0]
    # The failed file counts as the constant predictor's score, marked; wine is missing.
    assert [c.status for c in rows["weak"].cells] == ["failed", "missing"]
    assert [c.normalized for c in rows["weak"].cells] == [0.0, 0.0]
    assert matrix.board.methods == ("perfect", "weak")
    assert matrix.statistics is not None


def test_a_container_fans_out_to_one_submission_and_one_queued_scoring_job_per_task(
    settings, django_capture_on_commit_callbacks
):
    settings.HELDOUT_WORKER_PLATFORM = "linux/amd64"
    suite, _ = suite_of("iris", "wine", "digits")
    containers_now(suite)
    user = joined(suite, "ada")
    method = services.method_create(suite=suite, owner=user, name="everywhere")
    before = OutboxMessage.objects.count()
    with django_capture_on_commit_callbacks() as sends:
        runs = services.method_submit_everywhere(
            method=method,
            user=user,
            uploaded_file=factories.upload(image_archive(), "image.tar"),
        )
    assert len(runs) == 3
    assert len({r.fanout for r in runs}) == 1
    assert len({r.submission.competition_id for r in runs}) == 3
    assert {r.submission.status for r in runs} == {"queued"}
    # One scoring job per submission, written with it and sent once the transaction
    # commits (the outbox), to its task's queue.
    for run in runs:
        jobs = OutboxMessage.objects.filter(task=SCORE_TASK, args=[run.submission_id])
        queue = run.submission.competition.task.queue or settings.CELERY_TASK_DEFAULT_QUEUE
        assert list(jobs.values_list("queue", "sent_at")) == [(queue, None)]
    assert OutboxMessage.objects.filter(task=SCORE_TASK).count() == 3
    written = OutboxMessage.objects.count() - before
    assert [c.__name__ for c in sends] == ["send_outbox"] * written


def test_only_the_owner_submits_to_a_method():
    suite, _ = suite_of("iris")
    user = joined(suite, "ada")
    other = joined(suite, "bob")
    method = services.method_create(suite=suite, owner=user, name="mine")
    with pytest.raises(NotJoined):
        services.method_submit(
            method=method,
            task=suite.tasks.get(),
            user=other,
            uploaded_file=factories.upload(factories.perfect_predictions()),
        )
