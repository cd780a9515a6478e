"""manage.py bundle validate|diff|apply PATH: a competition kept as code, from its bundle.

`validate` checks the bundle (no database writes, no user needed); `diff` shows what
`apply` would change and exits 2 if apply would refuse it; `apply` creates or updates the
competition as the organizer `--organizer` (docs/bundle-repository.md). `--json` prints
the diff as the API's apply endpoint answers it. Exit codes: 0 done, 1 invalid bundle or
access refused, 2 refused change.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from competitions.bundles import bundle_open, bundle_read
from competitions.errors import ApplicationError, BundleInvalid
from competitions.permissions import Forbidden, NotFound
from competitions.services.bundle_apply import BundleRefused, bundle_apply
from competitions.services.bundle_diff import BundleDiff


class Command(BaseCommand):
    help = "Validate, diff or apply a competition bundle (docs/bundle.md, 'Applying a bundle')."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["validate", "diff", "apply"])
        parser.add_argument("path", type=Path, help="The bundle folder or zip file.")
        parser.add_argument("--organizer", help="diff, apply: the username acting (staff).")
        parser.add_argument("--json", action="store_true", help="Print the diff as JSON.")

    def handle(self, *args, action: str, path: Path, organizer: str | None, **options) -> None:
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        try:
            if action == "validate":
                self._validate(path)
                return
            user = _user(organizer)
            diff = bundle_apply(source=path, organizer=user, dry_run=action == "diff")
        except BundleInvalid as exc:
            lines = "\n".join(f"  - {problem}" for problem in exc.problems)
            raise CommandError(f"The bundle is not valid:\n{lines}") from None
        except BundleRefused as exc:
            lines = "\n".join(f"  - {p}" for p in exc.extra.get("problems", []))
            raise CommandError(f"{exc.message}\n{lines}", returncode=2) from None
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        except (Forbidden, NotFound) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(_json(diff) if options["json"] else _text(diff))
        if diff.refusals:
            raise CommandError("apply would refuse this bundle.", returncode=2)

    def _validate(self, path: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="heldout-bundle-") as workdir:
            bundle = bundle_read(bundle_open(path, workdir=Path(workdir)), existing_ok=True)
        self.stdout.write(
            self.style.SUCCESS(
                f"{bundle.slug}: valid ({bundle.spec.task_type} task ranked by "
                f"{bundle.spec.primary_metric}, {len(bundle.files)} public file(s), "
                f"{len(bundle.phases)} phase(s); the sample submission validates)."
            )
        )


def _user(username: str | None) -> User:
    if not username:
        raise CommandError("diff and apply need --organizer USERNAME.")
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    return user


def _json(diff: BundleDiff) -> str:
    return json.dumps(dataclasses.asdict(diff) | {"empty": diff.empty}, indent=2)


def _text(diff: BundleDiff) -> str:
    verb = "created" if diff.applied else "would be created"
    if not diff.created:
        verb = "no changes" if diff.empty else "updated" if diff.applied else "would change"
    lines = [f"{diff.slug}: {verb}"]
    for c in diff.changes:
        sign = "+" if c.old is None else "-" if c.new is None else "~"
        lines.append(f"  {sign} {c.field}: {_short(c.old)} -> {_short(c.new)}")
    for f in diff.files:
        lines.append(
            f"  {f.change} {f.path} {f.old_sha256[:12] or '-'} -> {f.new_sha256[:12] or '-'}"
        )
    lines += [f"  note: {n}" for n in diff.notes]
    lines += [f"  REFUSED: {r}" for r in diff.refusals]
    if diff.version is not None:
        lines.append(f"  task version {diff.version} holds the new ground truth")
    if diff.job is not None:
        lines.append(f"  job {diff.job} ranks it and rescores every submission (a worker runs it)")
    return "\n".join(lines)


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
