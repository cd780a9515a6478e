"""manage.py import_bundle PATH [--organizer USERNAME]: create a competition from a bundle."""

from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from competitions.services.bundles import BundleInvalid, bundle_import


class Command(BaseCommand):
    help = (
        "Import a competition bundle (a folder or zip with competition.yaml; see docs/bundle.md)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="The bundle folder or zip file.")
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
            competition = bundle_import(source=path, organizer=user)
        except BundleInvalid as exc:
            lines = "\n".join(f"  - {problem}" for problem in exc.problems)
            raise CommandError(f"The bundle was not imported:\n{lines}") from None
        self.stdout.write(
            self.style.SUCCESS(f"Imported {competition.slug!r} ({competition.title}).")
        )
