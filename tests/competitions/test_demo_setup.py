"""manage.py demo_setup, which `make demo` runs after every migrate."""

from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from competitions.models import Competition, Membership, OutboxMessage, Submission, Team
from competitions.services.references import REFERENCES_TASK
from scoring.validation import check_ground_truth, validate_predictions

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def test_it_can_run_twice_and_sets_up_one_competition(capsys):
    call_command("demo_setup")
    call_command("demo_setup")

    competition = Competition.objects.get()
    assert competition.slug == "breast-cancer"
    organizer, participant = (
        User.objects.get(username="organizer"),
        User.objects.get(username="participant"),
    )
    assert list(competition.organizers.all()) == [organizer]
    assert organizer.is_staff
    assert organizer.groups.filter(name="Organizers").exists()
    assert Token.objects.filter(user__in=[organizer, participant]).count() == 2
    assert Membership.objects.filter(competition=competition, user=participant).exists()
    # No team of baselines: the worker makes the board's reference rows, asked for once.
    assert not Team.objects.filter(competition=competition).exclude(members=participant).exists()
    assert not Submission.objects.exists()
    asked = OutboxMessage.objects.filter(task=REFERENCES_TASK)
    assert list(asked.values_list("args", flat=True)) == [[competition.pk]]
    output = capsys.readouterr().out
    assert "/admin/" in output
    assert Token.objects.get(user=participant).key in output


def test_the_demo_bundle_is_valid_and_deterministic():
    call_command("demo_setup")
    bundle = Path(settings.DATA_DIR) / "demo" / "bundle"
    first = {p.name: p.read_bytes() for p in bundle.iterdir()}

    call_command("demo_setup")

    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == first
    spec = Competition.objects.get().task.spec()
    truth = check_ground_truth(bundle / "solution.csv", spec=spec)
    assert truth.result.ok
    sample = validate_predictions(bundle / "sample_submission.csv", spec=spec, truth_ids=truth.ids)
    assert sample.ok
    solution = pd.read_csv(bundle / "solution.csv")
    assert len(pd.read_csv(bundle / "train.csv")) + len(solution) == 569
    assert solution["Usage"].value_counts().to_dict() == {"Private": 120, "Public": 51}
    assert solution["id"].str.fullmatch(r"p\d{4}").all()
