"""Reads of submissions as a reader may see them: which submissions (organizers: all; a
participant: their team's), their scores (private ones once revealed, a Ladder board's
public one as released), and their sandbox runs (a scorer's log to organizers only, unless
the task opts in)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Prefetch, QuerySet

from competitions.models import (
    Attempt,
    Competition,
    Membership,
    SandboxRun,
    Score,
    Submission,
)
from competitions.permissions import is_organizer
from competitions.selectors.competition import private_split_visible


def submission_list_for_user(
    *, competition: Competition, user: User | AnonymousUser
) -> QuerySet[Submission]:
    """Organizers see every submission; a participant sees their team's."""
    qs = Submission.objects.filter(competition=competition).select_related("team", "submitter")
    if is_organizer(user, competition):
        return qs
    if not user.is_authenticated:
        return qs.none()
    team_ids = Membership.objects.filter(competition=competition, user=user).values("team_id")
    return qs.filter(team_id__in=team_ids)


def with_attempts(submissions: QuerySet[Submission]) -> QuerySet[Submission]:
    """`submissions` with their attempts in one more query, so that `latest_attempt` costs
    none per row (the logs left out: a list never shows them)."""
    attempts = Attempt.objects.defer("scorer_log")
    return submissions.prefetch_related(Prefetch("scoring_attempts", queryset=attempts))


def ladder_masked(
    *, competition: Competition, submission: Submission, scores: dict[str, dict]
) -> dict[str, dict]:
    """Scores by split as a reader may see them: on a Ladder board the public split holds
    only the score the Ladder told the team after this submission (none: nothing), so no
    page, JSON or event shows a public score the board did not release."""
    if competition.public_board != Competition.PublicBoard.LADDER or "public" not in scores:
        return scores
    masked = {split: values for split, values in scores.items() if split != "public"}
    if submission.ladder_public_score is not None:
        masked["public"] = {competition.task.primary_metric: submission.ladder_public_score}
    return masked


def submission_scores(
    *, submission: Submission, user: User | AnonymousUser
) -> dict[str, dict[str, float | None]]:
    """Scores under the submission's task version; private ones only once revealed; on a
    Ladder board, the public one the Ladder told (ladder_masked)."""
    splits = ["public"]
    if private_split_visible(user, submission.competition):
        splits.append("private")
    result: dict[str, dict[str, float | None]] = {}
    if submission.task_version is None:  # not scored yet: no score carries a null version
        return result
    rows = Score.objects.filter(
        submission=submission, task_version=submission.task_version, split__in=splits
    ).values_list("split", "metric", "value")
    for split, metric, value in rows:
        result.setdefault(split, {})[metric] = value
    return ladder_masked(competition=submission.competition, submission=submission, scores=result)


def run_reason_for_participants(reason: str, *, stage: str, scorer_logs_visible: bool) -> str:
    """A sandbox run's failure reason as a participant may read it.

    "exited with code N: ..." ends with the run's last log lines, and a scorer's log can
    leak labels: those are cut unless the organizers opted in. A participant's own
    container's log is theirs to see.
    """
    if stage != SandboxRun.Stage.SCORING or scorer_logs_visible:
        return reason
    if not reason.startswith("exited with"):
        return reason
    return reason.split(":", 1)[0] + " (the scorer's log is shown to the organizers only)"


def sandbox_runs_for_user(
    *, competition: Competition, submission_ids: list[int], user: User | AnonymousUser
) -> dict[int, list[dict]]:
    """The container runs of these submissions (which the caller checked `user` may see),
    by submission id, oldest first. Organizers see every log; a participant sees their
    own container's, and the scorer's only when Task.scorer_logs_visible."""
    organizer = is_organizer(user, competition)
    scorer_logs = organizer or competition.task.scorer_logs_visible
    runs: dict[int, list[dict]] = {}
    for run in SandboxRun.objects.filter(submission_id__in=submission_ids).order_by(
        "created_at", "pk"
    ):
        visible = scorer_logs or run.stage != SandboxRun.Stage.SCORING
        runs.setdefault(run.submission_id, []).append(
            {
                "stage": run.stage,
                "attempt": run.attempt,
                "image": run.image,
                "image_digest": run.image_digest,
                "limits": run.limits,
                "exit_code": run.exit_code,
                "timed_out": run.timed_out,
                "oom_killed": run.oom_killed,
                "duration_s": run.duration_s,
                "peak_memory_bytes": run.peak_memory_bytes,
                "failure_reason": run_reason_for_participants(
                    run.failure_reason, stage=run.stage, scorer_logs_visible=scorer_logs
                )
                or None,
                "log_visible": visible,
                "log": run.log if visible else None,
                # scoring.sandbox_log.LogTail starts a log it cut with this note.
                "log_truncated": visible and run.log.startswith("[log truncated:"),
                "created_at": run.created_at,
            }
        )
    return runs
