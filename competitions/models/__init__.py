"""The domain models. core: competitions, tasks, their files and phases; teams: teams and
memberships; submissions: submissions and scores; boards: the leaderboard rows and the
version of what each leaderboard shows; runs: scoring attempts, sandbox runs, task versions,
manifests, replications, invitations; workers: what workers report (scorer mismatches) and
the claims once on a board; lifecycle: finalize and reopen events; audit: the organizers'
audit log; uploads: resumable (tus) uploads; jobs: organizers' background jobs; webhooks:
users' signed endpoints and their deliveries; outbox: the Celery messages to send (the
transactional outbox); statistics: how each board's intervals were drawn, and the shake-up
report; references: the platform's reference results (constant predictor, simple model)."""

from competitions.models.audit import OrganizerAction
from competitions.models.boards import BoardVersion, LeaderboardEntry
from competitions.models.core import Competition, Phase, Task, TaskFile, _private_storage
from competitions.models.jobs import OrganizerJob
from competitions.models.lifecycle import CompetitionEvent
from competitions.models.outbox import OutboxMessage
from competitions.models.references import ReferenceResult
from competitions.models.runs import (
    Attempt,
    Replication,
    SandboxRun,
    ScoringRun,
    TaskVersion,
    TeamInvitation,
)
from competitions.models.statistics import BoardStatistics, ShakeupEntry
from competitions.models.submissions import Score, Submission, _submission_path
from competitions.models.teams import Membership, Team
from competitions.models.uploads import Upload
from competitions.models.webhooks import Webhook, WebhookDelivery
from competitions.models.workers import ClaimRecord, ScorerMismatchReport

__all__ = [
    "Attempt",
    "BoardStatistics",
    "BoardVersion",
    "ClaimRecord",
    "Competition",
    "CompetitionEvent",
    "LeaderboardEntry",
    "Membership",
    "OrganizerAction",
    "OrganizerJob",
    "OutboxMessage",
    "Phase",
    "ReferenceResult",
    "Replication",
    "SandboxRun",
    "Score",
    "ScorerMismatchReport",
    "ScoringRun",
    "ShakeupEntry",
    "Submission",
    "Task",
    "TaskFile",
    "TaskVersion",
    "Team",
    "TeamInvitation",
    "Upload",
    "Webhook",
    "WebhookDelivery",
    "_private_storage",
    "_submission_path",
]
