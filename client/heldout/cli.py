"""The `heldout` command (docs/client.md), on top of heldout.Client.

Exit codes: 0 done (a submission scored); 1 an error (the server's message is printed);
2 the submission failed validation (its problems are printed with their lines); 3 its
scoring failed or it was cancelled; 4 not finished yet (`status` without `--wait`, or
`--timeout` passed); 5 a bundle the server refuses to apply (cli_bundle.py; 2 there: an
invalid bundle); 64 a usage error (a wrong option or argument).
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from heldout import config
from heldout.cli_organizer import register as register_organizer
from heldout.client import Client
from heldout.http import HeldoutError
from heldout.images import image_archive
from heldout.models import Submission
from heldout.output import err, human_size, out, print_submission, scores_text, table, transfer_bar

# typer raises click's exceptions, or since 0.2x those of its own copy of click: found
# through BadParameter's bases, whichever it is.
_UsageError: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

EXIT_ERROR, EXIT_INVALID, EXIT_FAILED, EXIT_PENDING, EXIT_USAGE = 1, 2, 3, 4, 64

app = typer.Typer(
    name="heldout",
    help="Find, join, download, submit and follow Heldout competitions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
competitions_app = typer.Typer(help="List competitions, or show one.", no_args_is_help=True)
app.add_typer(competitions_app, name="competitions")

Slug = Annotated[str, typer.Argument(help="The competition's slug (see `competitions list`)")]


class State:
    profile: str | None = None


@app.callback()
def _options(
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", help="The configuration profile (default: default)"),
    ] = None,
) -> None:
    State.profile = profile


def client() -> Client:
    settings = config.resolve(State.profile)
    if not settings.url:
        raise HeldoutError(
            "No server configured: run `heldout login --url URL` or set HELDOUT_URL",
            code="not_configured",
        )
    return Client(settings.url, settings.token)


def exit_code(submission: Submission) -> int:
    if submission.status == "scored":
        return 0
    if submission.status == "failed" and submission.failure == "invalid":
        return EXIT_INVALID
    if submission.done:
        return EXIT_FAILED
    return EXIT_PENDING


# Account


@app.command()
def login(
    url: Annotated[
        str | None, typer.Option(help="The server, e.g. https://heldout.example.org")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Your API token (on the site's /account/ page)")
    ] = None,
    username: Annotated[str | None, typer.Option(help="Sign in with a password instead")] = None,
    password: Annotated[str | None, typer.Option(help="With --username; asked if missing")] = None,
) -> None:
    """Store the server and your API token in the profile (config.toml, mode 0600)."""
    name = config.profile_name(State.profile)
    stored = config.read_profiles().get(name, {})
    url = url or os.environ.get("HELDOUT_URL") or stored.get("url") or typer.prompt("Server URL")
    with Client(url) as anonymous:
        if username:
            password = password or typer.prompt("Password", hide_input=True)
            token = anonymous.token_for(username, password)
    token = token or typer.prompt("API token", hide_input=True)
    with Client(url, token) as signed_in:
        signed_in.check()
    path = config.save_profile(name, {"url": url, "token": token, "username": username or ""})
    who = f" as {username}" if username else ""
    err.print(f"Logged in to {url}{who}; profile {name!r} saved in {path}")


@app.command()
def whoami() -> None:
    """The server, the profile and the account in use; checks the token."""
    settings = config.resolve(State.profile)
    with client() as api:
        api.check()
    out.print(f"url: {settings.url}")
    out.print(f"profile: {settings.profile}")
    out.print(f"user: {settings.username or '(signed in with a token)'}")
    out.print(f"token from: {settings.source}")


# Competitions


@competitions_app.command("list")
def competitions_list() -> None:
    """The competitions you can see."""
    with client() as api:
        rows = api.competitions()
    grid = table("slug", "title", "ends", "state")
    for c in rows:
        grid.add_row(c.slug, c.title, c.end_at or "-", "finalized" if c.is_finalized else "open")
    out.print(grid)


@competitions_app.command("show")
def competitions_show(slug: Slug) -> None:
    """A competition: metric, phases, files, your team."""
    with client() as api:
        c = api.competition(slug)
    out.print(f"{c.title} ({c.slug})")
    out.print(f"metric: {c.primary_metric}")
    out.print(f"team: {c.my_team.name if c.my_team else '(not joined: heldout join ' + slug + ')'}")
    for phase in c.phases:
        limit = phase.get("daily_limit")
        out.print(
            f"phase {phase.get('name')}: {phase.get('start_at')} .. {phase.get('end_at') or '-'}"
            f" ({limit if limit is not None else 'no'} submissions a day)"
        )
    for f in c.files:
        out.print(f"file {f.name}: {human_size(f.size)}, sha256 {f.sha256}")
    if c.description:
        out.print("")
        out.print(c.description)


@app.command()
def join(
    slug: Slug,
    yes: Annotated[
        bool, typer.Option("--accept-rules", "-y", help="Accept the rules without asking")
    ] = False,
) -> None:
    """Join the competition (accepting its rules); your team is printed."""
    with client() as api:
        if not yes:
            out.print(api.competition(slug).rules or "(no rules text)")
            if not typer.confirm("Accept these rules?"):
                raise typer.Exit(EXIT_ERROR)
        team = api.join(slug, accept_rules=True)
    out.print(f"Joined {slug} as team {team.name} (id {team.id})")


@app.command()
def files(slug: Slug) -> None:
    """The competition's files with their sizes and SHA-256."""
    with client() as api:
        rows = api.files(slug)
    grid = table("name", "kind", "size", "sha256")
    for f in rows:
        grid.add_row(f.name, f.kind, human_size(f.size), f.sha256)
    out.print(grid)


@app.command()
def download(
    slug: Slug,
    file: Annotated[str | None, typer.Argument(help="One file (default: all)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The folder to write to")] = Path(
        "."
    ),
) -> None:
    """Download the files; those whose SHA-256 already matches are skipped, a partial one
    is resumed, every one is verified."""
    with client() as api, transfer_bar("download") as bar:
        task = bar.add_task(slug, total=None)
        results = api.download(
            slug,
            output,
            names=[file] if file else None,
            progress=lambda done, total: bar.update(task, completed=done, total=total or None),
        )
    for r in results:
        out.print(f"{r.action} {r.path} ({human_size(r.size)}, sha256 {r.sha256})")


# Submissions


@app.command()
def submit(
    slug: Slug,
    file: Annotated[
        Path | None, typer.Argument(help="The predictions file", exists=True, dir_okay=False)
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="Describes this submission")] = "",
    method: Annotated[str, typer.Option(help="The method's name, shown with the entry")] = "",
    image: Annotated[
        str | None,
        typer.Option(
            help="Container phases: an image archive file, or an image name to `docker save`"
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the score; exit as `status`")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="With --wait: give up after seconds")
    ] = None,
) -> None:
    """Upload a file (resumably) and submit it."""
    if (file is None) == (image is None):
        raise typer.BadParameter("give FILE, or --image for a container phase")
    with client() as api, image_archive(image, err) if image else nullcontext() as archive:
        path = archive or file
        assert path is not None
        with transfer_bar("upload") as bar:
            task = bar.add_task(path.name, total=path.stat().st_size)
            submission = api.submit(
                slug,
                path,
                description=message,
                method_name=method,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        out.print(f"Submitted {submission.id} ({submission.status}): {submission.url}")
        if wait:
            _finish(api, submission.id, timeout)


@app.command()
def status(
    submission_id: Annotated[int, typer.Argument(metavar="ID")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until scored or failed")] = False,
    timeout: Annotated[
        float | None, typer.Option(help="With --wait: give up after seconds")
    ] = None,
) -> None:
    """A submission's status and scores, or its problems by line. Exit 0 scored, 2 invalid,
    3 failed, 4 not finished."""
    with client() as api:
        if wait:
            _finish(api, submission_id, timeout)
        submission = api.submission(submission_id)
    print_submission(submission)
    raise typer.Exit(exit_code(submission))


def _finish(api: Client, submission_id: int, timeout: float | None) -> None:
    try:
        submission = api.wait(submission_id, timeout=timeout)
    except TimeoutError as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_PENDING) from None
    print_submission(submission)
    raise typer.Exit(exit_code(submission))


@app.command()
def submissions(slug: Slug) -> None:
    """Your team's submissions, newest first."""
    with client() as api:
        rows = api.submissions(slug)
    grid = table("id", "created", "status", "scores", "selected", "message")
    for s in rows:
        state = s.status + (f" ({s.failure})" if s.failure else "")
        grid.add_row(
            str(s.id),
            s.created_at or "",
            state,
            scores_text(s.scores),
            "*" if s.is_selected else "",
            s.description or s.method_name,
        )
    out.print(grid)


@app.command()
def select(
    submission_id: Annotated[int, typer.Argument(metavar="ID")],
    unselect: Annotated[
        bool, typer.Option("--unselect", help="Remove it from the selection")
    ] = False,
) -> None:
    """Select a submission for the private leaderboard (or --unselect it)."""
    with client() as api:
        selected = api.select(submission_id, selected=not unselect)
    out.print(f"Submission {submission_id} {'selected' if selected else 'not selected'}")


@app.command()
def quota(slug: Slug) -> None:
    """How many submissions your team has left, today and in the phase."""
    with client() as api:
        q = api.quota(slug)
    late = " (late: unranked)" if q.is_late else ""
    out.print(f"phase: {q.phase}{late}")
    out.print(f"remaining: {q.remaining}")
    out.print(f"today: {q.daily_used} of {_limit(q.daily_limit)}, resets at {q.resets_at}")
    out.print(f"phase total: {q.total_used} of {_limit(q.total_limit)}")
    out.print(f"invalid files today: {q.invalid_used} of {_limit(q.invalid_limit)}")


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


@app.command()
def leaderboard(
    slug: Slug,
    private: Annotated[
        bool, typer.Option("--private", help="The private board (once finalized)")
    ] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print it as CSV")] = False,
) -> None:
    """The leaderboard, every page of it."""
    with client() as api:
        if csv:
            sys.stdout.write(api.leaderboard_csv(slug, private=private))
            return
        board = api.leaderboard(slug, private=private)
    grid = table("rank", "team", board.metric, "entries", "submission", "submitted")
    for r in board.rows:
        grid.add_row(
            str(r.rank),
            r.team,
            str(r.score),
            str(r.entries),
            str(r.submission_id),
            r.submitted_at or "",
        )
    out.print(grid)


@app.command()
def team(slug: Slug) -> None:
    """Your team in the competition."""
    with client() as api:
        found = api.team(slug)
    if found is None:
        err.print(f"You have not joined {slug}: heldout join {slug}")
        raise typer.Exit(EXIT_ERROR)
    out.print(f"team: {found.name} (id {found.id})")


register_organizer(app, client)


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except _UsageError as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(EXIT_USAGE)
    except typer.Abort:
        err.print("Aborted.")
        sys.exit(130)
    except _ClickException as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(EXIT_ERROR)
    except HeldoutError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
