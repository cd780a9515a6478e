"""Organizer commands of `heldout`: bundle export and import (validate, diff and apply:
cli_bundle.py), rescore, finalize, scorer
upload. The server decides who may: these answer 403 for anyone but the competition's
organizers (bundle import: organizer accounts)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from heldout.cli_bundle import register as register_bundle
from heldout.client import Client
from heldout.models import Job
from heldout.output import err, out, transfer_bar

Slug = Annotated[str, typer.Argument(help="The competition's slug")]


def _print_job(job: Job) -> None:
    progress = f" {job.progress_done}/{job.progress_total}" if job.progress_total else ""
    out.print(f"job {job.id} ({job.kind}): {job.status}{progress} {job.message}".rstrip())


def _follow(api: Client, job: Job, wait: bool) -> None:
    _print_job(job)
    if wait:
        job = api.wait_job(job.id)
        _print_job(job)
        if job.status == "failed":
            raise typer.Exit(3)


def register(app: typer.Typer, client: Callable[[], Client]) -> None:
    bundle_app = typer.Typer(help="Organizers: competition bundles.", no_args_is_help=True)
    scorer_app = typer.Typer(help="Organizers: the scoring program.", no_args_is_help=True)
    app.add_typer(bundle_app, name="bundle")
    app.add_typer(scorer_app, name="scorer")
    register_bundle(bundle_app, client)

    @bundle_app.command("export")
    def bundle_export(
        slug: Slug,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="default: SLUG.zip")
        ] = None,
    ) -> None:
        """Download the competition as a bundle zip."""
        target = output or Path(f"{slug}.zip")
        with client() as api, transfer_bar("export") as bar:
            task = bar.add_task(target.name, total=None)
            api.export_bundle(
                slug, target, progress=lambda d, t: bar.update(task, completed=d, total=t or None)
            )
        out.print(f"exported {slug} to {target}")

    @bundle_app.command("import")
    def bundle_import(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A bundle zip")],
    ) -> None:
        """Create a competition from a bundle zip (organizer accounts)."""
        with client() as api:
            slug = api.import_bundle(file)
        out.print(f"imported {slug}")

    @app.command()
    def rescore(
        slug: Slug,
        submission: Annotated[int | None, typer.Option(help="Only this submission")] = None,
        wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its end")] = False,
    ) -> None:
        """Organizers: score every finished submission again (or one)."""
        with client() as api:
            if submission is not None:
                data = api.rescore_submission(submission)
                out.print(f"submission {data['id']}: {data['status']}")
                return
            _follow(api, api.rescore(slug), wait)

    @app.command()
    def finalize(
        slug: Slug,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask")] = False,
    ) -> None:
        """Organizers: reveal the private leaderboard and freeze the competition."""
        if not yes and not typer.confirm(f"Finalize {slug}? Open phases end now."):
            raise typer.Exit(1)
        with client() as api:
            data = api.finalize(slug)
        out.print(f"{slug} finalized at {data.get('finalized_at')}")
        ended = data.get("ended_phases") or []
        if ended:
            err.print(f"ended phases: {', '.join(ended)}")

    @scorer_app.command("upload")
    def scorer_upload(
        slug: Slug,
        file: Annotated[
            Path, typer.Argument(exists=True, dir_okay=False, help="score.py or a zip")
        ],
        image: Annotated[str, typer.Option(help="The scorer image to run it in")] = "",
        public: Annotated[
            bool | None, typer.Option("--public/--private", help="In reproducibility bundles")
        ] = None,
        wait: Annotated[bool, typer.Option("--wait", help="Follow the dry run to its end")] = False,
    ) -> None:
        """Organizers: upload a scoring program; it replaces the scorer once its dry run
        on the sample submission succeeds."""
        with client() as api:
            job = api.upload_scorer(slug, file, image=image, public=public)
            if job is None:
                out.print("the program is unchanged; settings saved")
                return
            _follow(api, job, wait)
