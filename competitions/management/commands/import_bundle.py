"""manage.py import_bundle PATH [--organizer USERNAME]: create a competition from a bundle."""

from pathlib import Path

from django.contrib.auth.models import User

from competitions.management.importing import ImportCommand
from competitions.services.bundles import bundle_import


class Command(ImportCommand):
    help = (
        "Import a competition bundle (a folder or zip with competition.yaml; see docs/bundle.md)."
    )
    what = "bundle"
    path_help = "The bundle folder or zip file."

    def import_path(self, *, path: Path, organizer: User | None) -> str:
        competition = bundle_import(source=path, organizer=organizer)
        return f"Imported {competition.slug!r} ({competition.title})."
