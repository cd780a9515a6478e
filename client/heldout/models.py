"""What the client's methods return: small frozen dataclasses built from the API's JSON
(docs/api.md). Each keeps the whole answer in `raw`, for fields this version doesn't name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Submission statuses that no longer change (the server's Submission.Status).
FINAL_STATUSES = frozenset({"scored", "failed", "cancelled"})


@dataclass(frozen=True)
class Competition:
    slug: str
    title: str
    visibility: str
    start_at: str | None
    end_at: str | None
    is_finalized: bool
    url: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Competition:
        return cls(
            slug=data["slug"],
            title=data.get("title", ""),
            visibility=data.get("visibility", ""),
            start_at=data.get("start_at"),
            end_at=data.get("end_at"),
            is_finalized=bool(data.get("is_finalized")),
            url=data.get("url", ""),
            raw=data,
        )


@dataclass(frozen=True)
class DataFile:
    name: str
    kind: str
    size: int
    sha256: str
    url: str
    description: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataFile:
        return cls(
            name=data["name"],
            kind=data.get("kind", ""),
            size=int(data.get("size") or 0),
            sha256=data.get("sha256") or "",
            url=data["url"],
            description=data.get("description") or "",
        )


@dataclass(frozen=True)
class Team:
    id: int
    name: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Team:
        return cls(id=int(data["id"]), name=data["name"])


@dataclass(frozen=True)
class CompetitionDetail(Competition):
    description: str = ""
    rules: str = ""
    primary_metric: str = ""
    files: tuple[DataFile, ...] = ()
    phases: tuple[dict[str, Any], ...] = ()
    my_team: Team | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompetitionDetail:
        base = Competition.from_json(data)
        team = data.get("my_team")
        return cls(
            **{k: getattr(base, k) for k in base.__dataclass_fields__},
            description=data.get("description") or "",
            rules=data.get("rules") or "",
            primary_metric=(data.get("task") or {}).get("primary_metric", ""),
            files=tuple(DataFile.from_json(f) for f in data.get("files", [])),
            phases=tuple(data.get("phases", [])),
            my_team=Team.from_json(team) if team else None,
        )


@dataclass(frozen=True)
class Problem:
    """One reason a file failed validation; `line` is the file's line (1: the header)."""

    code: str
    message: str
    line: int | None = None
    column: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Problem:
        return cls(
            code=data.get("code", ""),
            message=data.get("message", ""),
            line=data.get("line"),
            column=data.get("column"),
        )


@dataclass(frozen=True)
class Submission:
    id: int
    url: str
    competition: str
    team: str
    kind: str
    file_name: str
    sha256: str
    status: str
    failure: str | None
    error_message: str
    problems: tuple[Problem, ...]
    total_problems: int
    scores: dict[str, dict[str, float | None]]
    is_selected: bool
    created_at: str | None
    method_name: str = ""
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Submission:
        return cls(
            id=int(data["id"]),
            url=data.get("url", ""),
            competition=data.get("competition", ""),
            team=data.get("team", ""),
            kind=data.get("kind", ""),
            file_name=data.get("file_name") or "",
            sha256=data.get("sha256") or "",
            status=data.get("status", ""),
            failure=data.get("failure") or None,
            error_message=data.get("error_message") or "",
            problems=tuple(Problem.from_json(p) for p in data.get("problems") or []),
            total_problems=int(data.get("total_problems") or 0),
            scores=data.get("scores") or {},
            is_selected=bool(data.get("is_selected")),
            created_at=data.get("created_at"),
            method_name=data.get("method_name") or "",
            description=data.get("description") or "",
            raw=data,
        )


@dataclass(frozen=True)
class Quota:
    phase: str
    is_late: bool
    remaining: int
    daily_used: int
    daily_limit: int | None
    resets_at: str | None
    total_used: int
    total_limit: int | None
    invalid_used: int
    invalid_limit: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Quota:
        daily, total = data.get("daily") or {}, data.get("total") or {}
        invalid = data.get("invalid_today") or {}
        return cls(
            phase=data.get("phase", ""),
            is_late=bool(data.get("is_late")),
            remaining=int(data.get("remaining") or 0),
            daily_used=int(daily.get("used") or 0),
            daily_limit=daily.get("limit"),
            resets_at=daily.get("resets_at"),
            total_used=int(total.get("used") or 0),
            total_limit=total.get("limit"),
            invalid_used=int(invalid.get("used") or 0),
            invalid_limit=invalid.get("limit"),
        )


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    team: str
    score: float | None
    scores: dict[str, Any]
    submission_id: int
    submitted_at: str | None
    entries: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LeaderboardRow:
        return cls(
            rank=int(data["rank"]),
            team=data["team"],
            score=data.get("score"),
            scores=data.get("scores") or {},
            submission_id=int(data["submission_id"]),
            submitted_at=data.get("submitted_at"),
            entries=int(data.get("entries") or 0),
        )


@dataclass(frozen=True)
class Leaderboard:
    split: str
    metric: str
    higher_is_better: bool
    rows: tuple[LeaderboardRow, ...]
    finalized_at: str | None = None


@dataclass(frozen=True)
class Upload:
    """A resumable (tus) upload (docs/uploads.md)."""

    url: str
    length: int
    offset: int


@dataclass(frozen=True)
class Download:
    """What `download` did with one file: downloaded, resumed, or skipped (already there,
    same SHA-256)."""

    name: str
    path: str
    size: int
    sha256: str
    action: str


@dataclass(frozen=True)
class Job:
    """An organizer's background job (rescore, scorer dry run)."""

    id: int
    url: str
    kind: str
    status: str
    message: str
    progress_done: int
    progress_total: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in ("done", "failed")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(
            id=int(data["id"]),
            url=data.get("url", ""),
            kind=data.get("kind", ""),
            status=data.get("status", ""),
            message=data.get("message") or "",
            progress_done=int(data.get("progress_done") or 0),
            progress_total=int(data.get("progress_total") or 0),
            raw=data,
        )
