"""manage.py demo_setup: the demo competition and two users.

Idempotent: `make demo` runs it after every migrate. It writes a bundle built from
scikit-learn's breast-cancer dataset (bundled with the library, no download) to
var/demo/bundle/ and imports it once; importing asks for the board's reference rows (the
constant predictor and a simple model, docs/leaderboard.md), which the worker that
`make demo` starts makes and scores. docs/bundle.md describes the demo data.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.urls import reverse
from rest_framework.authtoken.models import Token
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from competitions.admin import organizers_group_sync
from competitions.models import Competition
from competitions.services.bundles import bundle_import
from competitions.services.teams import competition_join

SLUG = "breast-cancer"
SEED = 20260101
TEST_FRACTION = 0.3  # of all rows: 171 test rows, 398 training rows
PUBLIC_FRACTION = 0.3  # of the test rows: 51 on the public board, 120 kept private
# A fixed past date, so the phase is open whenever the demo runs.
START = "2025-01-01T00:00:00Z"
TARGET = "diagnosis"
POSITIVE = "malignant"

DESCRIPTION = """# Breast cancer diagnosis

Each row describes a cell nucleus sample from a breast mass, as 30 measurements computed
from a digitized image (the Wisconsin Diagnostic Breast Cancer data, bundled with
scikit-learn). Predict the **probability that the mass is malignant**.

- `train.csv`: the measurements and the diagnosis (`benign` or `malignant`).
- `test.csv`: the measurements only.
- `sample_submission.csv`: the expected format, one row per test id.

Submissions are ranked by ROC AUC. The public leaderboard uses 30% of the test rows;
the other 70% decide the final, private ranking.
"""

RULES = """1. One account per person; teams of one.
2. Up to 5 submissions a day (UTC).
3. No hand-labelling of the test rows and no use of the original dataset's labels.
"""


def demo_bundle_build(dest: Path) -> Path:
    """Write the demo bundle to `dest`; the same files every time (the split is seeded)."""
    train, test, solution = _split()
    dest.mkdir(parents=True, exist_ok=True)
    train.to_csv(dest / "train.csv", index=False)
    test.to_csv(dest / "test.csv", index=False)
    solution.to_csv(dest / "solution.csv", index=False)
    sample = pd.DataFrame({"id": test["id"], TARGET: 0.5})
    sample.to_csv(dest / "sample_submission.csv", index=False)
    (dest / "description.md").write_text(DESCRIPTION)
    (dest / "rules.md").write_text(RULES)
    (dest / "competition.yaml").write_text(yaml.safe_dump(_document(), sort_keys=False))
    return dest


def _split() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data = load_breast_cancer(as_frame=True)
    features = data.frame.drop(columns="target")
    features.columns = [c.replace(" ", "_") for c in features.columns]
    labels = data.target.map(dict(enumerate(data.target_names)))
    # Ids follow a shuffled order, so an id says nothing about the row's place or split.
    order = np.random.default_rng(SEED).permutation(len(features))
    ids = np.empty(len(features), dtype=object)
    ids[order] = [f"p{k + 1:04d}" for k in range(len(features))]
    rows = np.arange(len(features))
    train_rows, test_rows = train_test_split(
        rows, test_size=TEST_FRACTION, stratify=labels, random_state=SEED
    )
    public_rows, _ = train_test_split(
        test_rows, train_size=PUBLIC_FRACTION, stratify=labels.iloc[test_rows], random_state=SEED
    )
    table = features.assign(id=ids).set_index("id")
    train = table.iloc[train_rows].assign(**{TARGET: labels.iloc[train_rows].to_numpy()})
    test = table.iloc[test_rows]
    usage = np.where(np.isin(test_rows, public_rows), "Public", "Private")
    solution = pd.DataFrame(
        {TARGET: labels.iloc[test_rows].to_numpy(), "Usage": usage}, index=test.index
    )
    return (
        train.sort_index().reset_index(),
        test.sort_index().reset_index(),
        solution.sort_index().reset_index(),
    )


def _document() -> dict:
    return {
        "slug": SLUG,
        "title": "Breast cancer diagnosis",
        "description": "description.md",
        "rules": "rules.md",
        "visibility": "public",
        "start": START,
        "end": None,
        "selection_limit": 2,
        "max_team_size": 1,  # the rules say "teams of one"
        "task": {
            "type": "binary",
            "id_column": "id",
            "target_columns": [TARGET],
            "classes": ["benign", POSITIVE],
            "primary_metric": "roc_auc",
            "secondary_metrics": ["accuracy", "log_loss"],
            "ground_truth": "solution.csv",
            "files": [
                {"path": "train.csv", "kind": "train", "description": "Measurements with the diagnosis"},
                {"path": "test.csv", "kind": "test", "description": "Measurements to predict"},
                {"path": "sample_submission.csv", "kind": "sample", "description": "A valid submission (all 0.5)"},
            ],
        },
        "phases": [{"name": "Main", "start": START, "end": None, "daily_limit": 5}],
    }  # fmt: skip


class Command(BaseCommand):
    help = "Create the demo competition, users and tokens (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url: str, **options) -> None:
        demo_dir = Path(settings.DATA_DIR) / "demo"
        bundle = demo_bundle_build(demo_dir / "bundle")
        organizer = self._user(demo_dir, "organizer", staff=True)
        organizer.groups.add(organizers_group_sync())
        participant = self._user(demo_dir, "participant", staff=False)
        competition = Competition.objects.filter(slug=SLUG).first()
        if competition is None:
            competition = bundle_import(source=bundle, organizer=organizer)
            self.stdout.write(f"Imported the competition {SLUG!r} from {bundle}.")
            self.stdout.write("The worker makes and scores the board's reference rows.")
        competition_join(competition=competition, user=participant, accept_rules=True)
        self._report(base_url.rstrip("/"), competition, demo_dir, [organizer, participant])

    def _user(self, demo_dir: Path, username: str, *, staff: bool) -> User:
        """The demo user, created with a random password on the first run (kept in var/demo)."""
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(9)
            user = User.objects.create_user(username, f"{username}@example.org", password)
            passwords = _passwords(demo_dir)
            passwords[username] = password
            path = demo_dir / "credentials.json"
            path.write_text(json.dumps(passwords, indent=2))
            path.chmod(0o600)
        if user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        Token.objects.get_or_create(user=user)
        return user

    def _report(
        self, base: str, competition: Competition, demo_dir: Path, users: list[User]
    ) -> None:
        passwords = _passwords(demo_dir)
        slug = competition.slug
        lines = [
            "",
            "Heldout demo is ready.",
            f"  Competitions:  {base}{reverse('competition-list')}",
            f"  Demo:          {base}{reverse('competition', args=[slug])}",
            f"  Leaderboard:   {base}{reverse('leaderboard', args=[slug])}",
            f"  Admin:         {base}{reverse('admin:index')}",
            f"  API docs:      {base}{reverse('api-docs')}",
            "",
        ]
        for user in users:
            password = passwords.get(
                user.username, "(unchanged: set with manage.py changepassword)"
            )
            token = Token.objects.get(user=user).key
            lines.append(f"  {user.username:<12} password {password}   API token {token}")
        lines.append("")
        self.stdout.write("\n".join(lines))


def _passwords(demo_dir: Path) -> dict[str, str]:
    path = demo_dir / "credentials.json"
    return json.loads(path.read_text()) if path.exists() else {}
