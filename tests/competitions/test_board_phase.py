"""with_board_phase (competitions/selectors_boards.py) reads in the competition's own
statement the phase that board_phase_at picks from the phases in Python, at every moment:
the latest started phase, else the first one; and the next phase's start, until when it
holds. Its SQL is written by hand once per process, so these compare it with the Python
rule on each database the project runs on (PostgreSQL, SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from competitions.models import Competition, Phase
from competitions.selectors_boards import board_phase_at, board_phase_key, with_board_phase
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]

T = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def three_phases() -> Competition:
    """A from T for a day, a day's gap, then B for a day and C right after it; created out
    of order (the ids do not follow the starts)."""
    competition = factories.make_competition()
    competition.phases.all().delete()
    for name, start, metrics in (
        ("C", T + 3 * DAY, ["log_loss"]),
        ("A", T, ["accuracy"]),
        ("B", T + 2 * DAY, []),
    ):
        Phase.objects.create(
            competition=competition,
            name=name,
            start_at=start,
            end_at=start + DAY,
            board_metrics=metrics,
        )
    return competition


def _read(competition: Competition, now: datetime) -> Competition:
    return with_board_phase(Competition.objects.filter(pk=competition.pk), now).get()


def _phase(read: Competition) -> tuple:
    """(board_phase_id, board_phase_metrics, board_phase_until) of a competition read."""
    names = ("board_phase_id", "board_phase_metrics", "board_phase_until")
    return tuple(getattr(read, name) for name in names)


@pytest.mark.parametrize(
    ("moment", "name", "until"),
    [
        (T - DAY, "A", T),  # before the first phase: the first one's columns already
        (T - timedelta(microseconds=1), "A", T),
        (T, "A", T + 2 * DAY),  # a phase counts as started at its start
        (T + DAY + DAY / 2, "A", T + 2 * DAY),  # between two phases: the previous one
        (T + 2 * DAY, "B", T + 3 * DAY),
        (T + 3 * DAY - timedelta(microseconds=1), "B", T + 3 * DAY),
        (T + 3 * DAY, "C", None),
        (T + 30 * DAY, "C", None),  # after the last phase: the last one's, for good
    ],
)
def test_it_reads_the_phase_board_phase_at_picks_and_the_next_start(
    three_phases, moment, name, until
):
    read = _read(three_phases, moment)
    expected = board_phase_at(list(three_phases.phases.all()), moment)

    assert expected is not None
    assert expected.name == name
    assert _phase(read) == (expected.pk, expected.board_metrics, until)


def test_a_competition_without_phases_reads_none(three_phases):
    three_phases.phases.all().delete()

    read = _read(three_phases, T)

    assert _phase(read) == (None, None, None)
    assert board_phase_key(read) == "phase:-"


def test_each_competition_reads_its_own_phase_in_one_statement(
    three_phases, django_assert_num_queries
):
    other = factories.make_competition(slug="other")
    Phase.objects.filter(competition=other).update(
        start_at=T + DAY / 2, end_at=None, board_metrics=["x"]
    )

    with django_assert_num_queries(1):
        read = {
            c.slug: _phase(c)
            for c in with_board_phase(Competition.objects.select_related("task"), T + DAY)
        }

    a = three_phases.phases.get(name="A")
    assert read == {
        "tiny": (a.pk, ["accuracy"], T + 2 * DAY),
        "other": (other.phases.get().pk, ["x"], None),
    }
