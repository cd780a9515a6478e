"""manage.py import_competition_archive PATH [--organizer USERNAME] [--slug SLUG]
[--keep-users]: recreate an exported competition with its history."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from competitions.errors import ApplicationError
from competitions.management.importing import organizer_user, refused
from competitions.services.archive import competition_archive_import
from competitions.services.bundles import BundleInvalid


class Command(BaseCommand):
    help = "Import a competition archive made by export_competition_archive."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="The archive (zip).")
        parser.add_argument("--organizer", help="Username of the user who will organize it.")
        parser.add_argument("--slug", default="", help="Import under this slug instead.")
        parser.add_argument(
            "--keep-users",
            action="store_true",
            help="Use this instance's accounts of the same usernames (a restore). Without it "
            "each person becomes an inactive account named <username>@<slug>.",
        )

    def handle(
        self, *args, path: Path, organizer: str | None, slug: str, keep_users: bool, **options
    ) -> None:
        user = organizer_user(organizer)
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        try:
            competition = competition_archive_import(
                source=path, organizer=user, slug=slug, keep_users=keep_users
            )
        except BundleInvalid as exc:
            raise refused("archive", exc) from None
        except ApplicationError as exc:
            raise CommandError(f"The archive was not imported: {exc.message}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {competition.slug!r} ({competition.title}) with its history."
            )
        )
