"""manage.py import_suite PATH [--organizer USERNAME]: create a suite from its bundle."""

from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from competitions.errors import BundleInvalid
from suites.services_bundles import suite_import


class Command(BaseCommand):
    help = (
        "Import a suite bundle (a folder, zip or tar.gz with suite.yaml and a competition "
        "bundle per task; see docs/suites.md)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="The suite bundle folder or archive.")
        parser.add_argument("--organizer", help="Username of the user who will organize it.")

    def handle(self, *args, path: Path, organizer: str | None, **options) -> None:
        user = None
        if organizer:
            user = User.objects.filter(username=organizer).first()
            if user is None:
                raise CommandError(f"No user named {organizer!r}.")
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        try:
            suite = suite_import(source=path, organizer=user)
        except BundleInvalid as exc:
            lines = "\n".join(f"  - {problem}" for problem in exc.problems)
            raise CommandError(f"The suite was not imported:\n{lines}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported the suite {suite.slug!r} with {suite.tasks.count()} tasks "
                f"({suite.title})."
            )
        )
