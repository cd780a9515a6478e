"""The domain models. core: competitions, tasks, phases, teams, submissions, scores and
leaderboard rows; runs: sandbox runs, task versions, manifests, replications, invitations;
jobs: organizers' background jobs."""

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
from competitions.models.jobs import OrganizerJob
from competitions.models.runs import (
    Replication,
    SandboxRun,
    ScoringRun,
    TaskVersion,
    TeamInvitation,
)

__all__ = [
    "Competition",
    "LeaderboardEntry",
    "Membership",
    "OrganizerJob",
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
    "_private_storage",
    "_submission_path",
]
