"""The two-phase competition the phase-pin tests share: Development (open, pins version 1)
and Final (in five days, pins version 2), with what they read of it."""

from __future__ import annotations

from competitions.models import Competition, Phase
from competitions.services.bundles import bundle_import
from tests.competitions.test_bundles import TRUTH
from tests.competitions.test_phase_versions import FINAL_TRUTH, two_phase_bundle

OTHER_FINAL_TRUTH = FINAL_TRUTH.replace("f0,no", "f0,yes")
OTHER_TRUTH = TRUTH.replace("r0,no", "r0,yes")


def two_phase_competition(tmp_path, organizer) -> Competition:
    return bundle_import(source=two_phase_bundle(tmp_path), organizer=organizer)


def phase_of(competition: Competition, name: str) -> Phase:
    return competition.phases.get(name=name)


def pins(competition: Competition) -> dict[str, int | None]:
    return dict(competition.phases.values_list("name", "task_version"))


def ranked(competition: Competition) -> int:
    competition.task.refresh_from_db()
    return competition.task.version
