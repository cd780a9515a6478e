"""`heldout bundle validate|diff|apply`: competitions kept as code, through the server's
`POST competitions/apply/` (docs/bundle.md, "Applying a bundle").

Exit codes (the client's, docs/client.md): 0 valid / applied / nothing to change; 1 an
error (the server's message is printed: 403/404 for someone who may not apply it);
2 an invalid bundle (every problem printed); 5 the server refuses to apply it (409:
`bundle_refused`, applying would rewrite history or the competition is finalized; the
refusals printed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from heldout.bundles import BundleDiff, BundleShapeError
from heldout.client import Client
from heldout.http import HeldoutError
from heldout.output import err, out, table

EXIT_ERROR, EXIT_INVALID, EXIT_REFUSED = 1, 2, 5

BundlePath = Annotated[
    Path,
    typer.Argument(exists=True, help="The bundle: a folder (zipped on the fly) or a zip"),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the server's diff as JSON")]


@contextmanager
def _refusals_as_exit_codes() -> Iterator[None]:
    """An invalid bundle exits 2 and a refused one 5, their problems listed; any other
    error goes on to main() (exit 1)."""
    try:
        yield
    except BundleShapeError as exc:
        err.print(f"invalid bundle: {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    except HeldoutError as exc:
        problems = exc.body.get("problems") if isinstance(exc.body, dict) else None
        if exc.status == 400 and problems:
            code, label = EXIT_INVALID, "invalid bundle"
        elif exc.status == 409:  # bundle_refused, or finalized / a switch running since
            code, label = EXIT_REFUSED, "refused"
        else:
            raise
        err.print(f"{label}: {exc.detail}", markup=False)
        for problem in problems or []:
            err.print(f"  - {problem}", markup=False)
        raise typer.Exit(code) from None


def _value(value: Any) -> str:
    text = "-" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 70 else text[:69] + "…"


def print_diff(diff: BundleDiff, console: Console = out) -> None:
    """The diff as tables (stdout by default): settings, files, then refusals and notes."""
    if diff.empty:
        console.print(f"{diff.slug}: no change")
    else:
        action = "create" if diff.created else "update"
        console.print(
            f"{diff.slug}: {action} ({len(diff.changes)} settings, {len(diff.files)} files)"
        )
    if diff.changes:
        grid = table("setting", "old", "new")
        for change in diff.changes:
            grid.add_row(change.field, _value(change.old), _value(change.new))
        console.print(grid)
    if diff.files:
        grid = table("file", "change", "old sha256", "new sha256")
        for f in diff.files:
            grid.add_row(f.path, f.change, f.old_sha256[:12] or "-", f.new_sha256[:12] or "-")
        console.print(grid)
    for refusal in diff.refusals:
        console.print(f"refused: {refusal}")
    for note in diff.notes:
        console.print(f"note: {note}")


def _print_json(diff: BundleDiff) -> None:
    sys.stdout.write(json.dumps(diff.raw, indent=2) + "\n")


def register(bundle_app: typer.Typer, client: Callable[[], Client]) -> None:
    @bundle_app.command("validate")
    def bundle_validate(path: BundlePath) -> None:
        """Check a bundle: its shape here, then the server's dry run (nothing changes)."""
        with client() as api, _refusals_as_exit_codes():
            diff = api.apply_bundle(path, dry_run=True)
        if diff.refusals:
            for refusal in diff.refusals:
                err.print(f"refused: {refusal}", markup=False)
            raise typer.Exit(EXIT_REFUSED)
        out.print(f"{diff.slug}: valid")

    @bundle_app.command("diff")
    def bundle_diff(path: BundlePath, as_json: AsJson = False) -> None:
        """What applying the bundle would change on the server (a dry run)."""
        with client() as api, _refusals_as_exit_codes():
            diff = api.apply_bundle(path, dry_run=True)
        if as_json:
            _print_json(diff)
        else:
            print_diff(diff)
        if diff.refusals:
            raise typer.Exit(EXIT_REFUSED)

    @bundle_app.command("apply")
    def bundle_apply(
        path: BundlePath,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask")] = False,
        as_json: AsJson = False,
    ) -> None:
        """Create or update the competition the bundle names: shows the diff, asks, applies.
        `--json`: the diff goes to stderr, and the applied diff (or the dry run's, when
        nothing was applied) to stdout as JSON."""
        with client() as api:
            with _refusals_as_exit_codes():
                diff = api.apply_bundle(path, dry_run=True)
            print_diff(diff, err if as_json else out)
            if diff.refusals or diff.empty:
                if as_json:
                    _print_json(diff)
                raise typer.Exit(EXIT_REFUSED if diff.refusals else 0)
            if not yes and not typer.confirm(f"Apply these changes to {diff.slug}?", err=True):
                raise typer.Exit(EXIT_ERROR)
            with _refusals_as_exit_codes():
                applied = api.apply_bundle(path)
        if as_json:
            _print_json(applied)
        verb = "created" if applied.created else "updated"
        extra = f"; task version {applied.version}" if applied.version else ""
        extra += f"; job {applied.job}" if applied.job else ""
        err.print(f"{verb} {applied.slug}{extra}", markup=False)
