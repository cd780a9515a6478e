"""manage.py export_competition_archive SLUG OUT.zip: a competition with its whole history."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from competitions.models import Competition
from competitions.services.archive import competition_archive_export


class Command(BaseCommand):
    help = (
        "Export a competition with its history (versions, teams, submissions, scores, "
        "manifests, replications, boards) for another Heldout instance. The archive holds "
        "the ground truth and every submission: keep it private."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("out", type=Path, help="The zip file to write.")

    def handle(self, *args, slug: str, out: Path, **options) -> None:
        competition = Competition.objects.filter(slug=slug).first()
        if competition is None:
            raise CommandError(f"No competition named {slug!r}.")
        dest = competition_archive_export(competition=competition, dest=out)
        self.stdout.write(self.style.SUCCESS(f"Wrote {dest}."))
