"""The domain models. core: competitions, tasks, phases, teams, submissions, scores and
leaderboard rows; runs: sandbox runs, task versions, manifests, replications, invitations;
uploads: resumable (tus) uploads."""

from competitions.models.core import (
    Competition,
    LeaderboardEntry,
    Membership,
    Phase,
    Score,
    Submission,
    Task,
    TaskFile,
    Team,
    _private_storage,
    _submission_path,
)
from competitions.models.runs import (
    Replication,
    SandboxRun,
    ScoringRun,
    TaskVersion,
    TeamInvitation,
)
from competitions.models.uploads import Upload

__all__ = [
    "Competition",
    "LeaderboardEntry",
    "Membership",
    "Phase",
    "Replication",
    "SandboxRun",
    "Score",
    "ScoringRun",
    "Submission",
    "Task",
    "TaskFile",
    "TaskVersion",
    "Team",
    "TeamInvitation",
    "Upload",
    "_private_storage",
    "_submission_path",
]
