"""manage.py demo_suite: the demo suite, which `make demo` makes after demo_setup.

Idempotent. Writes the suite bundle of scikit-learn's toy data sets (suites/demo.py) to
var/demo/suite/ and imports it once through suite_import, with the demo's organizer; each
task asks the worker for its baselines as any imported competition does. The demo's
participant joins the suite; three demo users each register a method and submit its
predictions on every task where it has none yet. The worker `make demo` starts scores
them (`--score` scores everything in this process instead, as the tests do).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from suites.demo import METHODS, SUITE_SLUG, DemoMethod, demo_predictions, demo_suite_build
from suites.models import Method, MethodRun, Suite, SuiteTask
from suites.services import method_create, method_submit, suite_join
from suites.services_bundles import suite_import


class Command(BaseCommand):
    help = "Create the demo suite, its three methods and their submissions (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--score",
            action="store_true",
            help="Make the baselines and score the submissions here instead of on a worker.",
        )

    def handle(self, *args, score: bool, **options) -> None:
        started = time.monotonic()
        organizer = User.objects.filter(username="organizer").first()
        if organizer is None:
            raise CommandError("Run manage.py demo_setup first (it makes the demo's users).")
        suite = Suite.objects.filter(slug=SUITE_SLUG).first()
        if suite is None:
            bundle = demo_suite_build(Path(settings.DATA_DIR) / "demo" / "suite")
            suite = suite_import(source=bundle, organizer=organizer)
            self.stdout.write(f"Imported the suite {SUITE_SLUG!r} from {bundle}.")
        participant = User.objects.filter(username="participant").first()
        if participant is not None:
            suite_join(suite=suite, user=participant, accept_rules=True)
        tasks = list(suite.tasks.select_related("competition__task").order_by("position"))
        made = sum(_method_runs(suite, tasks, demo) for demo in METHODS)
        if score:
            _score_here(suite)
        self.stdout.write(
            f"Demo suite: {len(tasks)} tasks, {len(METHODS)} methods, {made} new submissions "
            f"({time.monotonic() - started:.1f} s)."
        )


def _author(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:  # no password: a name on the board, nobody signs in as it
        user = User.objects.create_user(username, f"{username}@example.org")
    return user


def _method_runs(suite: Suite, tasks: list[SuiteTask], demo: DemoMethod) -> int:
    """Register the method (once) and submit it to each task where it has no run yet."""
    author = _author(demo.author)
    suite_join(suite=suite, user=author, accept_rules=True)
    method = Method.objects.filter(suite=suite, name=demo.name).first()
    if method is None:
        method = method_create(
            suite=suite,
            owner=author,
            name=demo.name,
            description=demo.description,
            code_url="https://scikit-learn.org/",
            hardware_declared="1 CPU core, under a second per task",
            components=demo.components,
        )
    done = set(MethodRun.objects.filter(method=method).values_list("suite_task_id", flat=True))
    made = 0
    for task in tasks:
        if task.pk in done:
            continue
        method_submit(
            method=method,
            task=task,
            user=author,
            uploaded_file=SimpleUploadedFile(
                "predictions.csv", _predictions(task, demo), content_type="text/csv"
            ),
        )
        made += 1
    return made


def _predictions(task: SuiteTask, demo: DemoMethod) -> bytes:
    spec = task.competition.task
    files = {f.kind: f for f in spec.files.all()}
    with files["train"].file.open("rb") as train_file, files["test"].file.open("rb") as test_file:
        train, test = pd.read_csv(train_file), pd.read_csv(test_file)
    return demo_predictions(
        demo,
        task_type=spec.task_type,
        target=spec.target_columns[0],
        classes=[str(c) for c in spec.classes],
        train=train,
        test=test,
    )


def _score_here(suite: Suite) -> None:
    """The baselines and every queued submission of the suite, scored in this process."""
    # judging is the orchestration: imported here only, for this option.
    from judging.references import references_compute
    from judging.services import submission_score
    from scoring.scorers import InProcessScorer

    scorer = InProcessScorer()
    for task in suite.tasks.all():
        references_compute(competition_id=task.competition_id, scorer=scorer)
    runs = MethodRun.objects.filter(method__suite=suite, submission__status="queued")
    for submission_id in runs.values_list("submission_id", flat=True):
        submission_score(submission_id=submission_id, scorer=scorer)
