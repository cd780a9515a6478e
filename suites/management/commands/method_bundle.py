"""manage.py method_bundle SUITE METHOD OUT.zip: a method's reproducibility bundle (every
task's manifest for its current cells, and method.json), as an organizer reads it."""

from pathlib import Path

from django.contrib.auth.models import AnonymousUser, User
from django.core.management.base import BaseCommand, CommandError

from suites.models import Method
from suites.reproducibility import method_bundle_write


class Command(BaseCommand):
    help = (
        "Write a method's reproducibility bundle: method.json and every task's manifest. "
        "--as USERNAME shows the manifests as that user may read them (default: anonymous)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("suite", help="The suite's slug.")
        parser.add_argument("method", help="The method's name.")
        parser.add_argument("out", type=Path, help="The zip file to write.")
        parser.add_argument("--as", dest="username", help="Read as this user.")

    def handle(self, *args, suite: str, method: str, out: Path, **options) -> None:
        found = Method.objects.filter(suite__slug=suite, name__iexact=method).first()
        if found is None:
            raise CommandError(f"No method named {method!r} in the suite {suite!r}.")
        user: User | AnonymousUser = AnonymousUser()
        if options["username"]:
            named = User.objects.filter(username=options["username"]).first()
            if named is None:
                raise CommandError(f"No user named {options['username']!r}.")
            user = named
        dest = method_bundle_write(method=found, user=user, dest=out)
        self.stdout.write(self.style.SUCCESS(f"Wrote {dest}."))
