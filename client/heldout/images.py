"""Container submissions: the image to upload, as an archive file.

`--image` is either an archive already made (`docker save -o image.tar NAME`) or an
image name, which `docker save` writes into a temporary folder first: a resumable upload
needs its length before the first byte, so the archive cannot go straight from
`docker save`'s output to the server.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from heldout.http import HeldoutError


@contextmanager
def image_archive(image: str, console: Console) -> Iterator[Path]:
    path = Path(image)
    if path.is_file():
        yield path
        return
    docker = shutil.which("docker")
    if docker is None:
        raise HeldoutError(
            f"{image!r} is not a file, and docker is not installed to save it", code="no_docker"
        )
    with tempfile.TemporaryDirectory(prefix="heldout-image-") as folder:
        archive = Path(folder) / "image.tar"
        console.print(f"docker save {image} ...")
        result = subprocess.run(
            [docker, "save", "-o", str(archive), image],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise HeldoutError(
                f"docker save {image} failed: {result.stderr.strip()}", code="docker_save_failed"
            )
        yield archive
