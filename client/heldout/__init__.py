"""The Heldout client: `heldout.Client` (Python) and the `heldout` command (heldout.cli)."""

__version__ = "0.1.0"

from heldout.bundles import BundleDiff
from heldout.client import Client
from heldout.http import HeldoutError
from heldout.models import (
    Competition,
    CompetitionDetail,
    DataFile,
    Download,
    Job,
    Leaderboard,
    LeaderboardRow,
    Problem,
    Quota,
    Submission,
    Team,
    Upload,
)

__all__ = [
    "BundleDiff",
    "Client",
    "Competition",
    "CompetitionDetail",
    "DataFile",
    "Download",
    "HeldoutError",
    "Job",
    "Leaderboard",
    "LeaderboardRow",
    "Problem",
    "Quota",
    "Submission",
    "Team",
    "Upload",
    "__version__",
]
