"""Running replay.py as a bundle's reader would: unzipped into a clean folder, with a bare
interpreter (no site-packages, no project on the path) and the real Docker engine."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

# Not perfect on either split, so that a changed label or metric moves the scores.
PREDICTIONS = {
    f"id{i}": p for i, p in enumerate([0.1, 0.7, 0.2, 0.4, 0.6, 0.8, 0.3, 0.9, 0.55, 0.65])
}


def unzip_bundle(api, user, submission, folder: Path) -> Path:
    response = api(user).get(f"/api/v1/submissions/{submission.pk}/bundle/")
    assert response.status_code == 200, response.status_code
    folder.mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).extractall(folder)
    return folder


def run_replay(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # -I -S: no site-packages and no environment: replay.py needs the standard library only.
    return subprocess.run(
        [sys.executable, "-I", "-S", "replay.py", *args],
        cwd=folder,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def replay_json(folder: Path, *args: str) -> tuple[int, dict]:
    """The exit status and the parsed --json report of a replay that ran (0 or 1)."""
    done = run_replay(folder, "--json", *args)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    return done.returncode, json.loads(done.stdout)
