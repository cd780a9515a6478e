"""Reads that cross relations. Each returns plain data or a queryset with its joins done,
so list pages run a fixed number of queries whatever their length.

competition: which competitions a user may list, who sees the private split, the tie rule's
sentence; leaderboard: a board's page and the shake-up report; board_statistics: a board's
bootstrap parameters and sorted bounds (kept per process), and plausible ranks;
submissions: submissions, their scores and sandbox runs as a reader may see them; quota: a
team's use of a phase's limits; jobs: organizers' background jobs and scorer mismatch
reports. Other reads live beside this package (selectors_boards, selectors_compare,
selectors_listings, selectors_references, selectors_runs, selectors_webhooks).

Callers read the names below from here (`selectors.leaderboard_page`): patch them here too,
as the callers look them up on this package at call time.
"""

from competitions.selectors.board_statistics import (
    board_statistics_read,
    bounds_forgotten,
    plausible_ranks,
)
from competitions.selectors.competition import (
    competition_list_for_user,
    private_split_visible,
    tie_rule_text,
)
from competitions.selectors.jobs import (
    SCORER_REPORT_RECENT,
    organizer_job_latest,
    organizer_jobs_recent,
    scorer_mismatches_recent,
)
from competitions.selectors.leaderboard import (
    BOARD_SORTS,
    INTERVAL_COLUMNS,
    Bootstrap,
    LeaderboardPage,
    LeaderboardRow,
    ShakeupRow,
    leaderboard_page,
    shakeup_report,
)
from competitions.selectors.quota import TeamQuota, next_utc_midnight, team_quota
from competitions.selectors.submissions import (
    ladder_masked,
    run_reason_for_participants,
    sandbox_runs_for_user,
    submission_list_for_user,
    submission_scores,
    with_attempts,
)
from competitions.selectors_references import ReferenceMissing, ReferenceRow

__all__ = [
    "BOARD_SORTS",
    "INTERVAL_COLUMNS",
    "SCORER_REPORT_RECENT",
    "Bootstrap",
    "LeaderboardPage",
    "LeaderboardRow",
    "ReferenceMissing",
    "ReferenceRow",
    "ShakeupRow",
    "TeamQuota",
    "board_statistics_read",
    "bounds_forgotten",
    "competition_list_for_user",
    "ladder_masked",
    "leaderboard_page",
    "next_utc_midnight",
    "organizer_job_latest",
    "organizer_jobs_recent",
    "plausible_ranks",
    "private_split_visible",
    "run_reason_for_participants",
    "sandbox_runs_for_user",
    "scorer_mismatches_recent",
    "shakeup_report",
    "submission_list_for_user",
    "submission_scores",
    "team_quota",
    "tie_rule_text",
    "with_attempts",
]
