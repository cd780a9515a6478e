"""The suite's phases (docs/suites.md, "Phases and quotas"): one schedule mirrored into the
phases of every task the suite made, through the service, the console's Phases page and
the API; shown to participants; what a container fan-out may do during a phase."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from competitions.errors import ApplicationError, InvalidState
from competitions.models import OrganizerAction, Phase, Submission
from suites import services
from suites.models import Suite, SuitePhase
from suites.services_phases import SchedulePhase, suite_phases_set
from tests import factories
from tests.suites.world import image_archive, joined, make_suite

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]

NOW = timezone.now().replace(microsecond=0)


def schedule(*, kind: str = "predictions", daily: int = 5) -> list[SchedulePhase]:
    """A public phase open now, then a final one."""
    return [
        SchedulePhase(
            name="Public",
            start_at=NOW - timedelta(days=1),
            end_at=NOW + timedelta(days=10),
            daily_limit=daily,
            submission_kind=kind,
        ),
        SchedulePhase(
            name="Final",
            start_at=NOW + timedelta(days=10),
            end_at=NOW + timedelta(days=20),
            daily_limit=1,
            total_limit=2,
        ),
    ]


@pytest.fixture
def suite(organizer) -> Suite:
    """Two tasks the suite made, and one attached from a competition of its own."""
    made = make_suite(organizer=organizer, tasks=("iris", "wine"))
    attached = factories.make_competition(slug="standalone", organizers=[organizer])
    services.suite_task_attach(suite=made, competition=attached, by=organizer, key="solo")
    return made


def phases_of(slug: str) -> list[tuple]:
    return list(
        Phase.objects.filter(competition__slug=slug)
        .order_by("start_at")
        .values_list("name", "daily_limit", "total_limit", "submission_kind")
    )


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_schedule_is_mirrored_into_every_task_the_suite_made_and_not_an_attached_one(
    suite, organizer
):
    suite_phases_set(suite=suite, phases=schedule(daily=3), by=organizer)

    expected = [("Public", 3, None, "predictions"), ("Final", 1, 2, "predictions")]
    assert phases_of("bench-iris") == expected
    assert phases_of("bench-wine") == expected
    assert phases_of("standalone") == [("Main", 5, None, "predictions")]
    assert list(suite.phases.values_list("position", "name")) == [(0, "Public"), (1, "Final")]
    # The competitions' own log says what changed, as for a phase changed by hand.
    kinds = OrganizerAction.objects.filter(competition__slug="bench-iris").values_list(
        "kind", flat=True
    )
    assert sorted(kinds) == ["phase_created", "phase_created", "phase_deleted"]


def test_a_phase_of_the_same_name_is_changed_in_place_keeping_what_is_the_tasks_own(
    suite, organizer
):
    iris = Phase.objects.get(competition__slug="bench-iris")
    Phase.objects.filter(pk=iris.pk).update(board_metrics=["roc_auc"])
    main = SchedulePhase(
        name="Main", start_at=NOW - timedelta(days=2), daily_limit=7, submission_kind="container"
    )

    suite_phases_set(suite=suite, phases=[main], by=organizer)

    iris.refresh_from_db()
    assert (iris.daily_limit, iris.submission_kind, iris.end_at) == (7, "container", None)
    assert iris.board_metrics == ["roc_auc"]
    again = OrganizerAction.objects.filter(competition__slug="bench-iris").count()
    suite_phases_set(suite=suite, phases=[main], by=organizer)  # nothing changes: no log line
    assert OrganizerAction.objects.filter(competition__slug="bench-iris").count() == again


def test_a_phase_holding_a_submission_is_not_deleted_and_then_nothing_changes(suite, organizer):
    user = joined(suite, "ada")
    factories.submitted(suite.tasks.get(key="wine").competition, user)

    with pytest.raises(InvalidState) as refused:
        suite_phases_set(suite=suite, phases=schedule(), by=organizer)

    assert "The task wine's phase “Main”" in refused.value.message
    assert "has submissions" in refused.value.message
    assert "iris" not in refused.value.message
    assert phases_of("bench-iris") == [("Main", 5, None, "predictions")]
    assert not SuitePhase.objects.exists()


def test_a_schedule_breaking_the_phase_rules_is_refused_with_every_problem(suite, organizer):
    start = NOW + timedelta(days=1)
    bad = [
        SchedulePhase(name="A", start_at=start, end_at=start + timedelta(days=5)),
        SchedulePhase(name="A", start_at=start + timedelta(days=2), daily_limit=0),
        SchedulePhase(name="C", start_at=start - timedelta(days=3), end_at=start - timedelta(4)),
    ]
    with pytest.raises(ApplicationError) as refused:
        suite_phases_set(suite=suite, phases=bad, by=organizer)

    problems = refused.value.extra["problems"]
    assert "Phase 2 “A”: another phase has that name." in problems
    assert "Phase 2 “A”: Limits are at least 1." in problems
    assert 'Phase 2 “A”: The phase would overlap "A"; phases must not overlap.' in problems
    assert "Phase 3 “C”: A phase must end after it starts." in problems
    assert "Phase 3 “C”: list the phases in the order they start." in problems
    assert phases_of("bench-iris") == [("Main", 5, None, "predictions")]


def test_the_organizer_edits_the_phases_on_the_console_page(suite, organizer):
    client = page(organizer)
    shown = client.get("/s/bench/organize/phases/")
    assert shown.status_code == 200
    assert "keep their own competition's phases: solo" in shown.content.decode()
    form = {"phases-TOTAL_FORMS": "2", "phases-INITIAL_FORMS": "0"}
    # The empty row, as a browser sends it (its initial values): not in the schedule.
    form |= {"phases-0-daily_limit": "5", "phases-0-submission_kind": "predictions"}
    row = {"name": "Open", "daily_limit": "4", "submission_kind": "container"}
    row |= {"start_at": (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")}
    form |= {f"phases-1-{k}": v for k, v in row.items()}

    saved = client.post("/s/bench/organize/phases/", form)

    assert saved.status_code == 302, saved.content.decode()
    assert phases_of("bench-wine") == [("Open", 4, None, "container")]
    # A phase from 2030 on, while "Open" never ends.
    overlapping = form | {"phases-0-name": "Late", "phases-0-start_at": "2030-01-01T00:00"}
    refused = client.post("/s/bench/organize/phases/", overlapping)
    assert refused.status_code == 400
    assert "phases must not overlap" in refused.content.decode()
    assert phases_of("bench-wine") == [("Open", 4, None, "container")]


def test_the_api_reads_and_replaces_the_phases(api, suite, organizer, participant):
    url = "/api/v1/suites/bench/phases/"
    body = {"phases": [{"name": "Open", "start_at": "2026-01-01T00:00:00Z", "daily_limit": 2}]}

    put = api(organizer).put(url, body, format="json")

    assert put.status_code == 200, put.json()
    assert put.json()["following"] == ["iris", "wine"]
    assert put.json()["own_phases"] == ["solo"]
    [phase] = put.json()["phases"]
    assert phase["quota"] == "2 submissions a day on each task"
    assert phase["current"] is True
    assert api(organizer).get(url).json() == put.json()
    late = {"name": "Late", "start_at": "2025-01-01T00:00:00Z", "end_at": "2025-06-01T00:00:00Z"}
    unordered = api(organizer).put(url, {"phases": [*body["phases"], late]}, format="json")
    assert unordered.status_code == 400
    assert unordered.json()["problems"] == [
        "Phase 2 “Late”: list the phases in the order they start."
    ]
    assert api(participant).get(url).status_code == 403


def test_participants_see_the_phases_with_the_current_one_marked(api, suite, organizer, client):
    suite_phases_set(suite=suite, phases=schedule(daily=3), by=organizer)

    text = client.get("/s/bench/").content.decode()
    assert '<tr aria-current="true" class="current">' in text
    assert "3 submissions a day on each task" in text
    assert "1 submission a day on each task, at most 2 in the phase" in text
    detail = api(None).get("/api/v1/suites/bench/").json()["schedule"]
    assert [(p["name"], p["current"]) for p in detail["phases"]] == [
        ("Public", True),
        ("Final", False),
    ]
    assert detail["phases"][0]["kind"] == "predictions"


def test_a_container_fan_out_waits_for_the_suites_phase_that_takes_containers(organizer, settings):
    settings.HELDOUT_WORKER_PLATFORM = "linux/amd64"
    made = make_suite(organizer=organizer, slug="boxes", tasks=("iris", "wine"))
    user = joined(made, "ada")
    method = services.method_create(suite=made, owner=user, name="boxed")
    archive = image_archive()

    suite_phases_set(suite=made, phases=schedule(kind="predictions"), by=organizer)
    with pytest.raises(InvalidState) as refused:
        services.method_submit_everywhere(
            method=method, user=user, uploaded_file=factories.upload(archive, "image.tar")
        )
    assert refused.value.message.startswith(
        "The current phase of iris, wine takes prediction files, not containers"
    )
    assert not Submission.objects.exists()

    suite_phases_set(suite=made, phases=schedule(kind="container"), by=organizer)
    runs = services.method_submit_everywhere(
        method=method, user=user, uploaded_file=factories.upload(archive, "image.tar")
    )
    assert [r.submission.kind for r in runs] == ["container", "container"]
