"""A small scored suite for the API, page and browser tests: three binary tasks (ROC AUC,
constant predictor 0.5) and three methods, so that the matrix has a full row, a row with
a failed cell and a missing one, and enough for the Friedman test and the CD diagram; the
cells' intervals computed as the worker would.

On each task's public rows: "oracle" scores 1.0 everywhere; "forest" 0.889 everywhere;
"hasty" failed on iris, 0.778 on wine, nothing on digits."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User

from competitions.models import Phase, ReferenceResult
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from suites import services
from suites.cells import suite_cells_refresh
from suites.models import Method, Suite
from tests import factories
from tests.sandbox import hostile_images

TASKS = ("iris", "wine", "digits")
# Public rows: ids 0, 1, 2 (negatives) and 5, 6, 7 (positives).
GOOD = factories.predictions_csv({"id5": 0.1, "id0": 0.9, "id6": 1, "id7": 1}, default=0.0)
WEAK = factories.predictions_csv({"id5": 0.1, "id6": 0.1, "id0": 0.9, "id7": 1}, default=0.0)


@dataclass
class World:
    suite: Suite
    organizer: User
    participant: User  # owns "oracle"
    methods: dict[str, Method]


def make_suite(
    *, slug: str = "bench", organizer: User, visibility: str = "public", tasks=TASKS
) -> Suite:
    suite = services.suite_create(
        slug=slug, title=f"Suite {slug}", organizer=organizer, visibility=visibility
    )
    for key in tasks:
        competition = factories.make_competition(slug=f"{slug}-{key}")
        services.suite_task_add(suite=suite, competition=competition, key=key)
        ReferenceResult.objects.create(
            competition=competition,
            task_version=competition.task.version,
            kind="constant",
            label="Constant predictor",
            status="scored",
            scores={"public": {"roc_auc": 0.5}, "private": {"roc_auc": 0.5}},
        )
    return suite


def joined(suite: Suite, username: str) -> User:
    user = factories.make_user(username)
    services.suite_join(suite=suite, user=user, accept_rules=True)
    return user


def submit_scored(method: Method, key: str, content: bytes) -> None:
    run = services.method_submit(
        method=method,
        task=method.suite.tasks.get(key=key),
        user=method.owner,
        uploaded_file=factories.upload(content),
    )
    submission_score(submission_id=run.submission_id, scorer=InProcessScorer())


def scored_world(*, organizer: User, participant_name: str = "suite-alice", **suite) -> World:
    suite_obj = make_suite(organizer=organizer, **suite)
    participant = joined(suite_obj, participant_name)
    oracle = services.method_create(
        suite=suite_obj,
        owner=participant,
        name="oracle",
        components={"model": "lookup", "tuning": "none"},
    )
    forest = services.method_create(
        suite=suite_obj,
        owner=joined(suite_obj, f"{participant_name}-dora"),
        name="forest",
        components={"model": ["random forest", "trees"]},
    )
    hasty = services.method_create(
        suite=suite_obj,
        owner=joined(suite_obj, f"{participant_name}-eve"),
        name="=hasty",  # a formula to a spreadsheet: the CSV must quote it
        components={"model": "trees"},
    )
    for key in TASKS:
        submit_scored(oracle, key, factories.perfect_predictions())
        submit_scored(forest, key, GOOD)
    submit_scored(hasty, "iris", b"nonsense\n")
    submit_scored(hasty, "wine", WEAK)
    suite_cells_refresh(suite_id=suite_obj.pk)  # what the worker does: the cells' intervals
    methods = {"oracle": oracle, "forest": forest, "=hasty": hasty}
    return World(suite=suite_obj, organizer=organizer, participant=participant, methods=methods)


def image_archive() -> bytes:
    """A small `docker save` archive the upload check accepts (for the amd64 workers the
    tests set: HELDOUT_WORKER_PLATFORM = "linux/amd64")."""
    layer = hostile_images.layer({"app/run": b"#!/bin/sh\necho hi\n"})
    return hostile_images.legacy_archive([layer], config=hostile_images.image_config([layer]))


def containers_now(suite: Suite) -> None:
    """Every task's phases take containers: a container fans out to all of them."""
    Phase.objects.filter(competition__suite_tasks__suite=suite).update(submission_kind="container")
