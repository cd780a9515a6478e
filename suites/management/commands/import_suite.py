"""manage.py import_suite PATH [--organizer USERNAME]: create a suite from its bundle."""

from pathlib import Path

from django.contrib.auth.models import User

from competitions.management.importing import ImportCommand
from suites.services_bundles import suite_import


class Command(ImportCommand):
    help = (
        "Import a suite bundle (a folder, zip or tar.gz with suite.yaml and a competition "
        "bundle per task; see docs/suites.md)."
    )
    what = "suite"
    path_help = "The suite bundle folder or archive."

    def import_path(self, *, path: Path, organizer: User | None) -> str:
        suite = suite_import(source=path, organizer=organizer)
        return (
            f"Imported the suite {suite.slug!r} with {suite.tasks.count()} tasks ({suite.title})."
        )
