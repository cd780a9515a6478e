"""The check of an uploaded container image, before it is stored or counted.

Contract: `image_upload_check` raises InvalidImage (400, with every problem) for an archive
that is not an image (or build context) the workers could run; the checks themselves are the
engine's (scoring.image_archive, scoring.image_checks). The worker checks again before
loading it (judging.images).
"""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.core.files import File

from competitions.errors import ApplicationError
from scoring.image_archive import archive_check
from scoring.image_checks import dockerfile_check, engine_architecture, platform_parse


class InvalidImage(ApplicationError):
    """An uploaded image archive was refused; `problems` lists every reason."""

    status = 400
    code = "invalid_image"


def worker_platform() -> tuple[str, str]:
    """(os, architecture) of the workers: HELDOUT_WORKER_PLATFORM, or this host's."""
    return platform_parse(settings.HELDOUT_WORKER_PLATFORM or engine_architecture())


def image_upload_check(*, uploaded_file: File, build_bases: Collection[str] | None = None) -> None:
    """Refuse a bad archive at upload, before it is stored or counted.

    Reads the tar headers, and the layers' headers, forwards (a gzipped archive or layer is
    decompressed as it is read), within HELDOUT_IMAGE_CHECK_SECONDS; the image must be for
    the workers' platform. The worker checks again, for its own architecture, before
    loading. `build_bases`: the images a build context may start FROM, where the phase
    accepts build contexts.
    """
    stream = uploaded_file.file
    assert stream is not None, "an uploaded file always has its data"
    os_name, architecture = worker_platform()
    report = archive_check(
        stream,
        max_bytes=settings.HELDOUT_MAX_IMAGE_BYTES,
        architecture=architecture,
        os=os_name,
        accept_build_context=build_bases is not None,
        time_limit_s=settings.HELDOUT_IMAGE_CHECK_SECONDS,
    )
    if report.ok and report.kind == "build_context":
        dockerfile_check(report, bases=build_bases or ())
    if not report.ok:
        raise InvalidImage(
            f"The image archive has {len(report.problems)} problem(s); nothing was stored.",
            extra={"problems": [p.to_dict() for p in report.problems]},
        )
