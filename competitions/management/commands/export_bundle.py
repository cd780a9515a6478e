"""manage.py export_bundle SLUG OUT.zip: write a competition as a bundle zip."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from competitions.models import Competition
from competitions.services.bundles import bundle_export


class Command(BaseCommand):
    help = "Export a competition as a bundle zip. The zip holds the ground truth: keep it private."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("out", type=Path, help="The zip file to write.")

    def handle(self, *args, slug: str, out: Path, **options) -> None:
        competition = Competition.objects.filter(slug=slug).select_related("task").first()
        if competition is None:
            raise CommandError(f"No competition named {slug!r}.")
        dest = bundle_export(competition=competition, dest=out)
        self.stdout.write(self.style.SUCCESS(f"Wrote {dest}."))
