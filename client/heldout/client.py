"""`heldout.Client`: the participant's and organizer's API as typed methods.

    client = Client("https://heldout.example.org", token="...")
    client.join("breast-cancer")
    client.download("breast-cancer", "data/")
    submission = client.submit("breast-cancer", "predictions.csv", description="first try")
    print(client.wait(submission.id).scores)

Every error is a HeldoutError (`detail`, `status`, `code` from the server's JSON).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from heldout import transfer
from heldout.bundles import BundleDiff, check_shape, zip_folder
from heldout.http import HeldoutError, Http
from heldout.models import (
    Competition,
    CompetitionDetail,
    DataFile,
    Download,
    Job,
    Leaderboard,
    LeaderboardRow,
    Quota,
    Submission,
    Team,
    Upload,
)
from heldout.transfer import Progress

# Seconds a status request asks the server to hold it (its maximum is 60).
LONG_POLL_S = 30


class Client:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        attempts: int = 5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.http = Http(url, token, timeout=timeout, attempts=attempts, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Account

    def token_for(self, username: str, password: str) -> str:
        """Exchange a username and password for the account's API token."""
        data = self.http.json(
            "POST", "auth/token/", data={"username": username, "password": password}
        )
        return str(data["token"])

    def check(self) -> None:
        """Raise HeldoutError unless the server answers and accepts the token (a wrong token
        gets 401 on every API path, public ones included)."""
        self.http.request("GET", "competitions/")

    # Competitions

    def competitions(self, *, page_size: int | None = None) -> list[Competition]:
        """The competitions you can see, newest first: every page, following `next`."""
        params = {"page_size": page_size} if page_size else {}
        first = self.http.json("GET", "competitions/", params=params)
        return [Competition.from_json(c) for c in self._pages_from(first)]

    def competition(self, slug: str) -> CompetitionDetail:
        return CompetitionDetail.from_json(self.http.json("GET", f"competitions/{slug}/"))

    def join(self, slug: str, *, accept_rules: bool = True) -> Team:
        data = self.http.json(
            "POST", f"competitions/{slug}/join/", json={"accept_rules": accept_rules}
        )
        return Team.from_json(data["team"])

    def team(self, slug: str) -> Team | None:
        """Your team in the competition, None if you have not joined."""
        return self.competition(slug).my_team

    def files(self, slug: str) -> list[DataFile]:
        return list(self.competition(slug).files)

    def download(
        self,
        slug: str,
        dest: str | Path = ".",
        *,
        names: list[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Download]:
        """Download the competition's files (or those named) into `dest`: skipped when the
        SHA-256 already matches, resumed when a `.part` is there, verified after."""
        files = self.files(slug)
        if names:
            known = {f.name for f in files}
            missing = [n for n in names if n not in known]
            if missing:
                raise HeldoutError(
                    f"No file named {', '.join(missing)} in {slug}; "
                    f"its files: {', '.join(sorted(known)) or 'none'}",
                    code="not_found",
                )
            files = [f for f in files if f.name in names]
        return [transfer.download_file(self.http, f, Path(dest), progress=progress) for f in files]

    # Submissions

    def upload(
        self, path: str | Path, *, competition: str | None = None, progress: Progress | None = None
    ) -> Upload:
        """Send a file as a resumable upload (docs/uploads.md)."""
        return transfer.upload_file(
            self.http, Path(path), competition=competition, progress=progress
        )

    def submit(
        self,
        slug: str,
        path: str | Path,
        *,
        description: str = "",
        method_name: str = "",
        progress: Progress | None = None,
        **fields: str,
    ) -> Submission:
        """Upload the file (resumably) and submit it; `fields`: paper_url, code_url,
        hardware_declared. On a container phase the file is a `docker save` archive.

        A used-up quota is refused before any byte is sent; an upload the server then
        refuses to submit is deleted (it would count against your unfinished uploads)."""
        self._check_quota(slug)
        upload = self.upload(path, competition=slug, progress=progress)
        try:
            return self.submit_upload(
                slug, upload.url, description=description, method_name=method_name, **fields
            )
        except HeldoutError:
            with contextlib.suppress(HeldoutError):
                self.http.request("DELETE", upload.url, headers=transfer.TUS)
            raise

    def _check_quota(self, slug: str) -> None:
        try:
            quota = self.quota(slug)
        except HeldoutError:
            return  # not joined, no open phase...: the submission itself says so
        if quota.remaining <= 0:
            total_used_up = quota.total_limit is not None and quota.total_used >= quota.total_limit
            when = "" if total_used_up else f"; today's allowance resets at {quota.resets_at}"
            raise HeldoutError(
                f"Your team has no submissions left in phase {quota.phase}{when}",
                status=429,
                code="quota_exceeded",
            )

    def submit_upload(self, slug: str, upload: str, **fields: str) -> Submission:
        body = {"upload": upload} | {k: v for k, v in fields.items() if v}
        return Submission.from_json(
            self.http.json("POST", f"competitions/{slug}/submissions/", json=body)
        )

    def submissions(self, slug: str, *, page_size: int | None = None) -> list[Submission]:
        """Your team's submissions, newest first: every page, following `next`."""
        params = {"page_size": page_size} if page_size else {}
        first = self.http.json("GET", f"competitions/{slug}/submissions/", params=params)
        return [Submission.from_json(s) for s in self._pages_from(first)]

    def submission(self, submission_id: int) -> Submission:
        return Submission.from_json(self.http.json("GET", f"submissions/{submission_id}/"))

    def wait(
        self, submission_id: int, *, timeout: float | None = None, interval: float = 1.0
    ) -> Submission:
        """Until the submission is scored, failed or cancelled; TimeoutError after `timeout`
        seconds. Each request asks the server to hold it until then (`?wait=`, at most
        LONG_POLL_S); a server that answers at once (busy, or without the long-poll) is
        asked again after a pause backing off to 10 s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            hold = LONG_POLL_S
            if deadline is not None:
                hold = max(0, min(LONG_POLL_S, int(deadline - time.monotonic())))
            response = self.http.request(
                "GET", f"submissions/{submission_id}/", params={"wait": hold}
            )
            submission = Submission.from_json(response.json())
            if submission.done:
                return submission
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"Submission {submission_id} is still {submission.status}")
            if response.headers.get("Heldout-Wait") == "timeout":
                continue  # the server held the request the whole time: ask again at once
            time.sleep(interval)
            interval = min(interval * 1.5, 10.0)

    def select(self, submission_id: int, *, selected: bool = True) -> bool:
        data = self.http.json(
            "POST", f"submissions/{submission_id}/select/", json={"selected": selected}
        )
        return bool(data["is_selected"])

    def quota(self, slug: str) -> Quota:
        return Quota.from_json(self.http.json("GET", f"competitions/{slug}/quota/"))

    # Leaderboard

    def leaderboard(
        self, slug: str, *, private: bool = False, page_size: int | None = None
    ) -> Leaderboard:
        """The whole board: every page, following `next`."""
        params: dict[str, str | int] = {"split": "private" if private else "public"}
        if page_size:
            params["page_size"] = page_size
        first = self.http.json("GET", f"competitions/{slug}/leaderboard/", params=params)
        rows = [LeaderboardRow.from_json(r) for r in self._pages_from(first)]
        return Leaderboard(
            split=first.get("split", params["split"]),
            metric=first.get("metric", ""),
            higher_is_better=bool(first.get("higher_is_better", True)),
            rows=tuple(rows),
            finalized_at=first.get("finalized_at"),
        )

    def leaderboard_csv(self, slug: str, *, private: bool = False) -> str:
        split = "private" if private else "public"
        response = self.http.request(
            "GET",
            f"competitions/{slug}/leaderboard/",
            params={"split": split, "format": "csv"},
            headers={"Accept": "text/csv"},
        )
        return response.text

    # Organizers

    def export_bundle(
        self, slug: str, target: str | Path, *, progress: Progress | None = None
    ) -> Path:
        return transfer.stream_to(
            self.http, f"competitions/{slug}/export/", Path(target), progress=progress
        )

    def import_bundle(self, path: str | Path) -> str:
        """Create a competition from a bundle zip; its slug."""
        with Path(path).open("rb") as f:
            data = self.http.json(
                "POST", "competitions/import/", files={"bundle": (Path(path).name, f)}
            )
        return str(data["slug"])

    def apply_bundle(self, path: str | Path, *, dry_run: bool = False) -> BundleDiff:
        """Apply a bundle (a folder, zipped on the fly, or a zip): create or update the
        competition it names. `dry_run`: the diff only, nothing changes. An invalid bundle
        raises HeldoutError 400 (`body["problems"]`), a refused one 409 `bundle_refused`;
        a path that is no bundle at all raises BundleShapeError before anything is sent."""
        source = Path(path)
        check_shape(source)
        params = {"dry_run": "1"} if dry_run else {}
        with tempfile.TemporaryDirectory(prefix="heldout-bundle-") as tmp:
            if source.is_dir():
                source = zip_folder(source, Path(tmp) / "bundle.zip")
            with source.open("rb") as f:
                data = self.http.json(
                    "POST",
                    "competitions/apply/",
                    params=params,
                    files={"bundle": ("bundle.zip", f, "application/zip")},
                )
        return BundleDiff.from_json(data)

    def rescore(self, slug: str) -> Job:
        return Job.from_json(self.http.json("POST", f"competitions/{slug}/rescore/"))

    def rescore_submission(self, submission_id: int) -> dict[str, Any]:
        return dict(self.http.json("POST", f"submissions/{submission_id}/rescore/"))

    def finalize(self, slug: str) -> dict[str, Any]:
        return dict(self.http.json("POST", f"competitions/{slug}/finalize/"))

    def upload_scorer(
        self, slug: str, path: str | Path, *, image: str = "", public: bool | None = None
    ) -> Job | None:
        """Upload score.py (or a zip holding it): the job that dry-runs it, or None when the
        program is unchanged."""
        data: dict[str, str] = {}
        if image:
            data["image"] = image
        if public is not None:
            data["public"] = "true" if public else "false"
        with Path(path).open("rb") as f:
            response = self.http.request(
                "POST",
                f"competitions/{slug}/scorer/",
                data=data,
                files={"program": (Path(path).name, f)},
            )
        return Job.from_json(response.json()) if response.status_code == 202 else None

    def job(self, job_id: int) -> Job:
        return Job.from_json(self.http.json("GET", f"jobs/{job_id}/"))

    def wait_job(self, job_id: int, *, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 1.0
        while True:
            job = self.job(job_id)
            if job.done:
                return job
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"Job {job_id} is still {job.status}")
            time.sleep(interval)
            interval = min(interval * 1.5, 10.0)

    # Paging

    def _pages_from(self, page: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The results of `page` and of every page after it (`next` until null)."""
        while True:
            yield from page.get("results", [])
            if not page.get("next"):
                return
            page = self.http.json("GET", page["next"])
