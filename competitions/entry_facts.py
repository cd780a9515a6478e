"""What an entry's page says about its scoring, for a person: the key facts drawn from
the manifest, and the manifest itself as a reader may see it.

Anonymous visitors get the manifest with the worker host's identifying details nulled
(its name, kernel, Docker engine and driver versions, listed in `withheld`): nothing a
reader needs to judge a score, and what an attacker would like to know. Signed-in readers get it whole (less
the private split before it is revealed, scoring.manifest.manifest_for_viewer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scoring.manifest import manifest_for_viewer

HOST_DETAILS_SIGNED_IN_ONLY = (
    "system_name",
    "kernel",
    "docker_version",
    "accelerator_driver_version",
)


def manifest_for_reader(
    manifest: dict[str, Any], *, private_visible: bool, signed_in: bool, ladder: bool = False
) -> dict[str, Any]:
    shown = manifest_for_viewer(manifest, private_visible=private_visible)
    if ladder and "public" in shown.get("scores", {}):
        # A Ladder board tells only the scores it releases (competitions/services/ladder.py).
        scores = {k: v for k, v in shown["scores"].items() if k != "public"}
        withheld = [*shown.get("withheld", []), "scores.public"]
        shown = {**shown, "scores": scores, "withheld": withheld}
    if signed_in or "host" not in shown:
        return shown
    # Nulled, not removed: the copy still follows docs/manifest.schema.json.
    host = {**shown["host"], **dict.fromkeys(HOST_DETAILS_SIGNED_IN_ONLY)}
    withheld = [*shown.get("withheld", []), *(f"host.{k}" for k in HOST_DETAILS_SIGNED_IN_ONLY)]
    return {**shown, "host": host, "withheld": withheld}


def manifest_filename(slug: str, submission_id: int, version: int, ranked: int) -> str:
    """tiny-entry-12-manifest.json; a superseded version's says which: ...-v1-manifest.json."""
    tag = "" if version == ranked else f"-v{version}"
    return f"{slug}-entry-{submission_id}{tag}-manifest.json"


@dataclass
class Fact:
    label: str
    value: str


def entry_facts(manifest: dict[str, Any] | None, *, hardware_declared: str) -> list[Fact]:
    """The scorer, the data version and the hardware, in words."""
    facts = [
        Fact(
            "Training hardware",
            f"{hardware_declared} (as declared)" if hardware_declared else "Not declared",
        )
    ]
    if not manifest:
        return facts
    facts.insert(0, Fact("Scorer", _scorer(manifest.get("scorer") or {})))
    task = manifest.get("task") or {}
    truth = manifest.get("ground_truth") or {}
    version = f"Task version {task.get('version', '?')}"
    if truth.get("sha256"):
        version += f", test data {str(truth['sha256'])[:12]}…"
    rows = {k: v for k, v in (truth.get("rows") or {}).items() if v is not None}
    if rows:
        version += " (" + ", ".join(f"{n:,} {split} rows" for split, n in rows.items()) + ")"
    facts.insert(1, Fact("Data version", version))
    host = manifest.get("host") or {}
    machine = _machine(host)
    if machine:
        facts.append(Fact("Scored on", machine))
    return facts


def _scorer(scorer: dict[str, Any]) -> str:
    program = (
        "the organizers' scoring program"
        if scorer.get("name") == "program"
        else "the built-in scorer"
    )
    if scorer.get("image_digest"):
        image = scorer.get("identity") or scorer["image_digest"]
        return f"{program} in the Docker sandbox, image {image}"
    if scorer.get("name") == "in-process":
        return f"{program}, run in the worker process (no sandbox image)"
    return program


def _machine(host: dict[str, Any]) -> str:
    parts = []
    if host.get("host_processor_model_name"):
        parts.append(str(host["host_processor_model_name"]))
    if host.get("host_processor_thread_count"):
        parts.append(f"{host['host_processor_thread_count']} threads")
    if host.get("host_memory_capacity_bytes"):
        parts.append(f"{host['host_memory_capacity_bytes'] / 1e9:.0f} GB memory")
    if host.get("accelerator_model_name"):
        parts.append(str(host["accelerator_model_name"]))
    if host.get("operating_system"):
        parts.append(str(host["operating_system"]))
    return ", ".join(parts)
