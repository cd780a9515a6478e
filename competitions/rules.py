"""The rule book's checks and sentences, in one place for every door (docs/site.md).

Plain functions over plain values, importing nothing from Django: the models' clean()
(and so every service's full_clean), the admin's inline formsets and the bundle parser
all call these, so a rule is written once and refused with the same sentence whichever
interface a person uses. What the database can enforce is also a constraint on the model
(competitions/models/); the services translate its IntegrityError into these
sentences.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

PHASE_END_AFTER_START = "A phase must end after it starts."
COMPETITION_END_AFTER_START = "A competition must end after it starts."
LIMIT_AT_LEAST_ONE = "Limits are at least 1."
DISQUALIFY_REASON_REQUIRED = "Say why the submission is disqualified; its team sees it."
TEAM_NAME_REQUIRED = "Give the team a name."
TEAM_NAME_MAX = 100
TEAM_NAME_TOO_LONG = f"A team name has at most {TEAM_NAME_MAX} characters."


def team_name_taken(name: str) -> str:
    return f'Another team is already named "{name}".'


def team_banned(name: str) -> str:
    return f"The team {name} is banned from this competition; it can't change."


def phase_overlap(other: str) -> str:
    return f'The phase would overlap "{other}"; phases must not overlap.'


def team_name_normal(name: str) -> str:
    """A team name as stored: inner runs of whitespace made one space, ends trimmed."""
    return " ".join(name.split())


def periods_overlap(
    a_start: datetime, a_end: datetime | None, b_start: datetime, b_end: datetime | None
) -> bool:
    """Half-open periods [start, end); no end is open-ended. Touching ends don't overlap."""
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def phase_problems(
    *,
    start_at: datetime | None,
    end_at: datetime | None,
    daily_limit: int | None,
    total_limit: int | None,
) -> dict[str, str]:
    """A phase's own rules: field name -> sentence, empty when it keeps them all."""
    problems = {}
    if start_at is not None and end_at is not None and end_at <= start_at:
        problems["end_at"] = PHASE_END_AFTER_START
    if daily_limit is not None and daily_limit < 1:
        problems["daily_limit"] = LIMIT_AT_LEAST_ONE
    if total_limit is not None and total_limit < 1:
        problems["total_limit"] = LIMIT_AT_LEAST_ONE
    return problems


def phase_overlapping(
    start_at: datetime,
    end_at: datetime | None,
    others: Iterable[tuple[str, datetime, datetime | None]],
) -> str | None:
    """The name of the first of `others` (name, start, end) the phase overlaps, or None."""
    for name, other_start, other_end in others:
        if periods_overlap(start_at, end_at, other_start, other_end):
            return name
    return None


RELEASE_PHASE_ELSEWHERE = "A file is released with a phase of its own competition."


def board_metric_problems(
    *, board_metrics: object, computed: Iterable[str] | None
) -> dict[str, str]:
    """A phase's board columns are a list of metrics the task computes (`computed`: its
    primary and secondary metrics; None: no task yet, so only the shape is checked);
    every wrong name is listed at once."""
    if not isinstance(board_metrics, list) or not all(isinstance(m, str) for m in board_metrics):
        return {"board_metrics": 'List metric names, like ["accuracy", "log_loss"].'}
    if computed is None:
        return {}
    known = list(computed)
    wrong = [m for m in board_metrics if m not in known]
    if wrong:
        return {"board_metrics": board_metrics_unknown(wrong, known)}
    if len(set(board_metrics)) != len(board_metrics):
        return {"board_metrics": "Name each metric once."}
    return {}


def phase_version_unknown(number: int) -> str:
    return f"The task has no version {number}; a phase scores under one of the task's versions."


def phase_version_unusable(
    *, number: int, truth_stored: bool, scorer: str, ranked: int, ranked_scorer: str
) -> str | None:
    """Why a phase can't start scoring under version `number`, or None. A version is usable
    when its ground truth is stored and the scorer it records (`scorer`; "" until something
    scores under it) is the ranked version's (`ranked_scorer`), the one the workers run:
    under another, every worker would give back each of the phase's submissions unscored."""
    if not truth_stored:
        return (
            f"Version {number}'s ground truth is missing from storage, so nothing can be "
            "scored under it; pin another version."
        )
    if scorer and ranked_scorer and scorer != ranked_scorer:
        return (
            f"Version {number} records another scorer ({scorer}) than the ranked version "
            f"{ranked} ({ranked_scorer}), the one the workers run, so nothing can be scored "
            "under it; pin a version of the workers' scorer."
        )
    return None


def board_metrics_unknown(wrong: list[str], known: list[str]) -> str:
    names = ", ".join(repr(m) for m in wrong)
    return (
        f"The task does not compute {names}; the leaderboard can show only its metrics: "
        f"{', '.join(known)}."
    )


def competition_date_problems(
    *, start_at: datetime | None, end_at: datetime | None
) -> dict[str, str]:
    """A competition's announced dates: when both are given, the end comes after the start."""
    if start_at is not None and end_at is not None and end_at <= start_at:
        return {"end_at": COMPETITION_END_AFTER_START}
    return {}


def competition_limit_problems(**limits: int | None) -> dict[str, str]:
    """Competition limits (selection_limit, max_team_size) are at least 1."""
    return {
        field: LIMIT_AT_LEAST_ONE
        for field, value in limits.items()
        if value is not None and value < 1
    }


# --- How ties are resolved for prizes (Competition.tie_rule) --------------------------------
TIE_EARLIER, TIE_SHARED, TIE_METRIC = "earlier", "shared", "metric"
TIE_RULE_CHOICES = [
    (TIE_EARLIER, "The earlier submission wins"),
    (TIE_SHARED, "Tied teams share the place"),
    (TIE_METRIC, "A tie-break metric decides"),
]
TIE_METRIC_REQUIRED = "Name the tie-break metric: one the task computes besides its primary metric."
TIE_METRIC_UNUSED = "A tie-break metric is named only when it decides ties."


def tie_metric_unknown(metric: str, computed: Iterable[str]) -> str:
    known = ", ".join(computed) or "none: add a secondary metric to the task first"
    return f"The task does not compute {metric!r}; it computes besides its primary metric: {known}."


def tie_rule_problems(
    *, tie_rule: str, tie_break_metric: str, computed: Iterable[str] | None
) -> dict[str, str]:
    """The tie-break metric is named exactly when it decides, and is one of the task's
    `computed` secondary metrics (None: no task yet, so not checked)."""
    if tie_rule not in (TIE_EARLIER, TIE_SHARED, TIE_METRIC):
        return {"tie_rule": f"Choose one of: {', '.join(c for c, _ in TIE_RULE_CHOICES)}."}
    if tie_rule != TIE_METRIC:
        return {"tie_break_metric": TIE_METRIC_UNUSED} if tie_break_metric else {}
    if not tie_break_metric:
        return {"tie_break_metric": TIE_METRIC_REQUIRED}
    if computed is not None and tie_break_metric not in list(computed):
        return {"tie_break_metric": tie_metric_unknown(tie_break_metric, list(computed))}
    return {}


def tie_rule_sentence(*, tie_rule: str, metric_label: str = "") -> str:
    """What the rules page says about ties for prizes. A statistical tie (plausible ranks
    that overlap, docs/leaderboard.md) is shown, never a reason to change the order."""
    exact = {
        TIE_EARLIER: "the team whose submission came first takes the higher place",
        TIE_SHARED: "the tied teams share the place and its prize",
        TIE_METRIC: f"the team with the better {metric_label} takes the higher place, and if "
        "that is equal too, the team whose submission came first",
    }[tie_rule]
    return (
        f"Prizes follow the private leaderboard. When teams have exactly the same score, {exact}. "
        "Teams that are only statistically tied (their plausible ranks overlap) keep the order "
        "of their scores: the leaderboard marks such ties, but they do not change who wins."
    )
