"""The competition archive's format, shared by its export and its import
(competitions/services/archive.py, archive_import.py; docs/reproducibility.md)."""

from __future__ import annotations

from competitions.errors import ApplicationError

FORMAT = "heldout-competition-archive"
VERSION = 1
SUBMISSION_FIELDS = [
    "original_name", "sha256", "size", "method_name", "description", "paper_url", "code_url",
    "hardware_declared", "kind", "container_image", "container_image_digest",
    "container_image_size", "status", "failure", "error_message", "problems", "total_problems",
    "is_late", "is_disqualified", "disqualified_reason", "is_selected", "created_at",
    "queued_at", "task_version",
]  # fmt: skip
ATTEMPT_FIELDS = [
    "number", "outcome", "worker", "queued_at", "started_at", "heartbeat_at", "finished_at",
    "duration_s", "peak_memory_bytes", "scorer_name", "scorer_image", "scorer_log", "row_kind",
]  # fmt: skip
# An archive made before attempts were rows has these on each submission instead.
LEGACY_ATTEMPT_FIELDS = [
    "started_at", "finished_at", "duration_s", "worker", "scorer_name", "scorer_image",
    "peak_memory_bytes", "scorer_log", "row_values", "row_kind",
]  # fmt: skip
RUN_FIELDS = [
    "stage", "attempt", "image", "image_digest", "limits", "exit_code", "timed_out",
    "oom_killed", "duration_s", "peak_memory_bytes", "log", "failure_reason", "created_at",
]  # fmt: skip
REPLICATION_FIELDS = [
    "queue", "status", "outcome", "tolerance", "differences", "error_message", "created_at",
    "finished_at", "cancelled_at",
]  # fmt: skip
TASK_FIELDS = [
    "queue", "scorer_image", "scorer_program_sha256", "scorer_program_public",
    "scorer_dry_run", "scorer_logs_visible", "limits", "inference_limits",
]  # fmt: skip


class ArchiveInvalid(ApplicationError):
    code = "archive_invalid"


def legacy_attempt(submission: dict) -> dict | None:
    """The latest attempt of a submission in an archive made before attempts were rows
    (its fields were on the submission), or None if it was never claimed. Its earlier
    claims' details were never kept."""
    if not (submission.get("attempts") or submission.get("started_at")):
        return None
    status = submission["status"]
    outcome = status if status in ("running", "scored", "failed") else "returned"
    fields = {f: submission.get(f) for f in LEGACY_ATTEMPT_FIELDS}
    text = ("worker", "scorer_name", "scorer_image", "scorer_log", "row_kind")
    return (
        fields
        | {f: fields[f] or "" for f in text}
        | {
            "number": submission.get("attempts") or 1,
            "outcome": outcome,
            "submission": submission["id"],
        }
    )
