"""manage.py export_suite SLUG OUT: a suite as a bundle folder, or as one archive when OUT
ends in .zip, .tar.gz or .tgz."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from suites.models import Suite
from suites.services_bundles import ARCHIVE_SUFFIXES, suite_archive_write, suite_export


class Command(BaseCommand):
    help = (
        "Export a suite as a bundle folder (or one .zip / .tar.gz archive of it). It holds "
        "every task's ground truth: keep it private."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "out", type=Path, help="A new folder, or an archive named .zip, .tar.gz or .tgz."
        )

    def handle(self, *args, slug: str, out: Path, **options) -> None:
        suite = Suite.objects.filter(slug=slug).first()
        if suite is None:
            raise CommandError(f"No suite named {slug!r}.")
        if out.name.endswith(ARCHIVE_SUFFIXES):
            dest = suite_archive_write(suite=suite, dest=out)
        elif out.exists():
            raise CommandError(f"{out} exists; export into a new folder.")
        else:
            dest = suite_export(suite=suite, dest=out)
        self.stdout.write(self.style.SUCCESS(f"Wrote {dest}."))
