"""The organizer console's services on PostgreSQL: each change writes its line in the
organizer log in the same transaction, and the models' rules refuse alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from competitions import rules
from competitions.errors import ApplicationError
from competitions.models import Competition, OrganizerAction, Phase, Submission
from competitions.services import console
from competitions.services.audit import organizer_action_record
from competitions.services.lifecycle import competition_finalize
from competitions.services.organize import competition_limits_update, phase_update
from competitions.services.submissions import submission_set_disqualified
from competitions.services.teams import team_set_banned
from tests import factories
from tests.pages.builders import scored

pytestmark = pytest.mark.django_db

Kind = OrganizerAction.Kind


def _details(competition: Competition, **changes) -> dict:
    fields = {f: getattr(competition, f) for f in console.DETAIL_FIELDS}
    return fields | changes


def _kinds(competition: Competition) -> list[str]:
    return list(competition.organizer_actions.values_list("kind", flat=True))


def test_editing_the_overview_saves_it_and_logs_the_fields_that_changed(competition, organizer):
    console.competition_details_update(
        competition=competition,
        by=organizer,
        reason="typo in the rules",
        **_details(competition, rules="Be kind.", visibility="unlisted"),
    )
    competition.refresh_from_db()
    assert (competition.rules, competition.visibility) == ("Be kind.", "unlisted")
    action = competition.organizer_actions.get()
    assert (action.kind, action.by, action.reason) == (
        Kind.DETAILS_UPDATED,
        organizer,
        "typo in the rules",
    )
    assert action.details == {"fields": ["rules", "visibility"]}


def test_saving_an_unchanged_overview_logs_nothing(competition, organizer):
    console.competition_details_update(
        competition=competition, by=organizer, **_details(competition)
    )
    assert _kinds(competition) == []


def test_a_competition_ending_before_it_starts_is_refused_and_not_logged(competition, organizer):
    now = timezone.now()
    with pytest.raises(ApplicationError, match=rules.COMPETITION_END_AFTER_START):
        console.competition_details_update(
            competition=competition,
            by=organizer,
            **_details(competition, start_at=now, end_at=now - timedelta(days=1)),
        )
    competition.refresh_from_db()
    assert competition.end_at is None
    assert _kinds(competition) == []


def test_adding_a_phase_after_the_first_logs_it_and_orders_by_date(competition, organizer):
    main = competition.phases.get()
    phase = console.phase_create(
        competition=competition,
        by=organizer,
        name="Final",
        start_at=main.end_at,
        end_at=main.end_at + timedelta(days=7),
        daily_limit=2,
        total_limit=10,
        late_submissions_scored=False,
    )
    assert list(competition.phases.values_list("name", flat=True)) == ["Main", "Final"]
    action = competition.organizer_actions.get()
    assert (action.kind, action.target) == (Kind.PHASE_CREATED, "phase “Final”")
    assert action.details["total_limit"] == 10
    assert phase.pk


def test_an_overlapping_phase_is_refused_with_the_rule_books_sentence(competition, organizer):
    main = competition.phases.get()
    with pytest.raises(ApplicationError, match=rules.phase_overlap("Main")):
        console.phase_create(
            competition=competition,
            by=organizer,
            name="Overlap",
            start_at=main.start_at + timedelta(hours=1),
            end_at=None,
            daily_limit=1,
            total_limit=None,
            late_submissions_scored=False,
        )
    assert competition.phases.count() == 1
    assert _kinds(competition) == []


def test_a_phase_with_submissions_cannot_be_deleted_but_an_empty_one_can(
    competition, organizer, participant
):
    main = competition.phases.get()
    scored(participant.teams.get(), 0.8)
    with pytest.raises(ApplicationError, match="has submissions"):
        console.phase_delete(phase=main, by=organizer)
    later = Phase.objects.create(
        competition=competition, name="Later", start_at=main.end_at, end_at=None
    )
    console.phase_delete(phase=later, by=organizer)
    assert list(competition.phases.values_list("name", flat=True)) == ["Main"]
    assert _kinds(competition) == [Kind.PHASE_DELETED]


def test_changing_a_phase_or_the_limits_is_logged_with_who(competition, organizer):
    phase = competition.phases.get()
    phase_update(
        phase=phase,
        by=organizer,
        name="Main",
        start_at=phase.start_at,
        end_at=phase.end_at + timedelta(days=1),
        daily_limit=3,
        total_limit=None,
        late_submissions_scored=False,
    )
    competition_limits_update(
        competition=competition, by=organizer, selection_limit=1, max_team_size=3
    )
    assert _kinds(competition) == [Kind.LIMITS_UPDATED, Kind.PHASE_UPDATED]
    assert set(competition.organizer_actions.values_list("by", flat=True)) == {organizer.pk}


def test_organizers_are_added_and_removed_but_the_last_one_stays(competition, organizer, outsider):
    console.competition_organizer_add(competition=competition, by=organizer, username="charlie")
    assert set(competition.organizers.all()) == {organizer, outsider}
    console.competition_organizer_remove(competition=competition, by=outsider, user=organizer)
    with pytest.raises(ApplicationError, match=console.LAST_ORGANIZER):
        console.competition_organizer_remove(competition=competition, by=outsider, user=outsider)
    assert list(competition.organizers.all()) == [outsider]
    assert _kinds(competition) == [Kind.ORGANIZER_REMOVED, Kind.ORGANIZER_ADDED]


def test_an_unknown_user_is_neither_invited_nor_made_organizer(competition, organizer):
    for add in (console.competition_invitee_add, console.competition_organizer_add):
        with pytest.raises(ApplicationError, match='No user is named "nobody"'):
            add(competition=competition, by=organizer, username="nobody")
    assert _kinds(competition) == []


def test_an_invitation_lets_a_user_see_an_invite_only_competition_until_withdrawn(
    organizer, outsider
):
    from competitions.permissions import can_view

    competition = factories.make_competition(organizers=[organizer], visibility="invite_only")
    assert not can_view(outsider, competition)
    console.competition_invitee_add(competition=competition, by=organizer, username="charlie")
    assert can_view(outsider, competition)
    console.competition_invitee_remove(competition=competition, by=organizer, user=outsider)
    assert not can_view(outsider, competition)
    assert _kinds(competition) == [Kind.INVITEE_REMOVED, Kind.INVITEE_ADDED]


def test_disqualifying_a_selection_writes_one_line_per_submission_with_the_reason(
    competition, organizer, participant
):
    team = participant.teams.get()
    chosen = [scored(team, 0.5 + i / 10) for i in range(3)]
    n = console.submissions_disqualify_selected(
        competition=competition,
        by=organizer,
        submission_ids=[s.pk for s in chosen],
        reason="shared predictions",
    )
    assert n == 3
    assert Submission.objects.filter(is_disqualified=True).count() == 3
    lines = competition.organizer_actions.all()
    assert {line.reason for line in lines} == {"shared predictions"}
    assert {line.target for line in lines} == {f"submission #{s.pk} of {team.name}" for s in chosen}


def test_a_selection_without_a_reason_disqualifies_none(competition, organizer, participant):
    team = participant.teams.get()
    chosen = [scored(team, 0.5), scored(team, 0.6)]
    with pytest.raises(ApplicationError, match=rules.DISQUALIFY_REASON_REQUIRED):
        console.submissions_disqualify_selected(
            competition=competition, by=organizer, submission_ids=[s.pk for s in chosen], reason=" "
        )
    assert not Submission.objects.filter(is_disqualified=True).exists()
    assert _kinds(competition) == []


def test_another_competitions_submissions_are_never_in_a_selection(
    competition, organizer, other_competition
):
    theirs = scored(factories.team_for(other_competition, "zed"), 0.5)
    with pytest.raises(ApplicationError, match=console.SELECTION_EMPTY):
        console.submissions_rescore_selected(
            competition=competition, by=organizer, submission_ids=[theirs.pk]
        )
    theirs.refresh_from_db()
    assert theirs.status == Submission.Status.SCORED


def test_rescoring_a_selection_leaves_the_waiting_ones_and_logs_the_rest(
    competition, organizer, participant
):
    team = participant.teams.get()
    done = scored(team, 0.5)
    waiting = factories.submission_row(team, status=Submission.Status.QUEUED)
    waiting.save(force_insert=True)
    queued, left = console.submissions_rescore_selected(
        competition=competition, by=organizer, submission_ids=[done.pk, waiting.pk]
    )
    assert (queued, left) == (1, 1)
    assert _kinds(competition) == [Kind.SUBMISSION_RESCORED]


def test_once_finalized_a_selection_is_refused_whole(competition, organizer, participant):
    team = participant.teams.get()
    chosen = [scored(team, 0.5), scored(team, 0.6)]
    competition_finalize(competition=competition, by=organizer)
    with pytest.raises(ApplicationError, match="finalized"):
        console.submissions_rescore_selected(
            competition=competition, by=organizer, submission_ids=[s.pk for s in chosen]
        )
    assert Submission.objects.filter(status=Submission.Status.QUEUED).count() == 0
    assert _kinds(competition) == [Kind.FINALIZED]


def test_single_actions_from_every_door_are_logged_with_their_reason(
    competition, organizer, participant
):
    team = participant.teams.get()
    submission = scored(team, 0.5)
    submission_set_disqualified(
        submission=submission, disqualified=True, reason="leak", by=organizer
    )
    team_set_banned(team=team, banned=True, reason="two accounts", by=organizer)
    lines = list(competition.organizer_actions.values_list("kind", "reason"))
    assert lines == [(Kind.TEAM_BANNED, "two accounts"), (Kind.SUBMISSION_DISQUALIFIED, "leak")]


@pytest.mark.django_db(transaction=True)
def test_a_log_line_is_only_written_inside_the_transaction_of_its_change(organizer):
    competition = factories.make_competition(organizers=[organizer])
    with pytest.raises(RuntimeError, match="transaction"):
        organizer_action_record(competition_id=competition.pk, by=organizer, kind=Kind.FINALIZED)
    with transaction.atomic():
        organizer_action_record(competition_id=competition.pk, by=organizer, kind=Kind.FINALIZED)
    assert _kinds(competition) == [Kind.FINALIZED]
