"""What the commands that import a bundle share: `NAME PATH [--organizer USERNAME]`, the
organizer found by username (none given: no organizer), a path that must exist, and a bundle
refused with every one of its problems, one a line, in the CommandError (exit code 1).

`ImportCommand` is import_bundle's and, in suites, import_suite's whole body: a command says
what it imports and how, nothing else. import_competition_archive, whose path is a file and
whose options differ, uses `organizer_user` and `refused`. Suites build on competitions, so
this lives here and suites import it (never the reverse: pyproject [tool.importlinter]).
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from competitions.errors import BundleInvalid


def organizer_user(username: str | None) -> User | None:
    """The user named `username`, or None when none is given; CommandError if there is none."""
    if not username:
        return None
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    return user


def refused(what: str, exc: BundleInvalid) -> CommandError:
    """ "The <what> was not imported:" then each problem on a line of its own."""
    lines = "\n".join(f"  - {problem}" for problem in exc.problems)
    return CommandError(f"The {what} was not imported:\n{lines}")


class ImportCommand(BaseCommand):
    """Imports PATH as `--organizer`; a subclass sets `what` (in the refusal), `path_help`
    and `help`, and implements `import_path`, which returns the line printed on success."""

    what: str
    path_help: str

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path, help=self.path_help)
        parser.add_argument("--organizer", help="Username of the user who will organize it.")

    def handle(self, *args: Any, path: Path, organizer: str | None, **options: Any) -> None:
        user = organizer_user(organizer)
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        try:
            imported = self.import_path(path=path, organizer=user)
        except BundleInvalid as exc:
            raise refused(self.what, exc) from None
        self.stdout.write(self.style.SUCCESS(imported))

    def import_path(self, *, path: Path, organizer: User | None) -> str:
        raise NotImplementedError
