"""Checks of a submission image that need neither Docker nor the platform: what a build
context's Dockerfile may do, and which platform (os, architecture) an image must be for.

Contract: `dockerfile_check` adds every problem of a build context's Dockerfile to the
ArchiveReport (scoring.image_archive) and records the bases it starts FROM;
`platform_parse` reads an "os/architecture" (or a bare architecture, meaning linux).
"""

from __future__ import annotations

import platform
from collections.abc import Collection

from scoring.image_archive import ArchiveReport

_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def engine_architecture() -> str:
    return _ARCHITECTURES.get(platform.machine().lower(), platform.machine().lower())


def platform_parse(configured: str) -> tuple[str, str]:
    """(os, architecture) of "os/architecture[/variant]" or of an architecture alone."""
    if "/" not in configured:  # an architecture alone: on linux, like every worker
        configured = f"linux/{configured}"
    os_name, _, architecture = configured.partition("/")
    return os_name, architecture.split("/")[0]  # without a variant (arm64/v8)


# What a build context's Dockerfile may not do, and why. Nothing may run at build time:
# the classic builder runs RUN steps as root with the default capabilities, a weaker
# sandbox than the one every other container gets.
_REFUSED = {
    "RUN": "nothing may run while the image is built; copy your code and files onto one "
    "of the platform's images, which hold the libraries",
    "ENTRYPOINT": "put the whole command in CMD",
    "VOLUME": "the container may write only to /output",
    "ARG": "build arguments are not supported",
    "ONBUILD": "ONBUILD is not supported",
    "SHELL": "SHELL is not supported",
    "HEALTHCHECK": "HEALTHCHECK is not supported",
}
_ALLOWED = {"FROM", "COPY", "ADD", "ENV", "WORKDIR", "CMD", "LABEL", "USER", "EXPOSE"}


def dockerfile_check(report: ArchiveReport, *, bases: Collection[str]) -> None:
    """Add the problems of a build context's Dockerfile to `report`; set report.bases.

    Every stage starts FROM one of `bases` (or an earlier stage), files come from the
    context only (no URL, no other image), and nothing runs.
    """
    allowed = {_normal_image(b) for b in bases}
    stages: set[str] = set()
    has_cmd = False
    instructions = _instructions(report.dockerfile)
    if not instructions or instructions[0][1] != "FROM":
        report.add("dockerfile", "The Dockerfile must start with FROM.")
    for line, word, rest in instructions:
        if word in _REFUSED:
            report.add(
                "dockerfile", f"Dockerfile line {line}: {word} is not allowed: {_REFUSED[word]}."
            )
        elif word not in _ALLOWED:
            report.add("dockerfile", f"Dockerfile line {line}: unknown instruction {word}.")
        elif word == "FROM":
            _check_from(report, line, rest.split(), allowed, stages)
        elif word in ("COPY", "ADD"):
            _check_copy(report, line, word, rest, stages)
        has_cmd = has_cmd or word == "CMD"
    if not has_cmd:
        report.add(
            "no_command",
            "The Dockerfile has no CMD: set the command that writes /output/predictions.csv.",
        )


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments), joining continued lines, skipping comments."""
    found: list[tuple[int, str, str]] = []
    current, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        start = start or number
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        word, _, rest = (current + stripped).partition(" ")
        found.append((start, word.upper(), rest.strip()))
        current, start = "", 0
    if current:
        word, _, rest = current.partition(" ")
        found.append((start, word.upper(), rest.strip()))
    return found


def _normal_image(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last or "@" in name else f"{name}:latest"


def _check_from(
    report: ArchiveReport, line: int, words: list[str], allowed: set[str], stages: set[str]
) -> None:
    if not words or words[0].startswith("--") or "$" in words[0]:
        report.add(
            "dockerfile",
            f"Dockerfile line {line}: write FROM IMAGE [AS NAME], without options or variables.",
        )
        return
    image = words[0]
    if image.lower() in stages:
        pass
    elif _normal_image(image) in allowed:
        report.bases.append(image)
    else:
        report.add(
            "dockerfile",
            f"Dockerfile line {line}: FROM {image} is not an image the platform offers "
            f"(there is no network to pull it); use one of: {', '.join(sorted(allowed))}.",
        )
    if len(words) == 3 and words[1].upper() == "AS":
        stages.add(words[2].lower())


def _check_copy(report: ArchiveReport, line: int, word: str, rest: str, stages: set[str]) -> None:
    words = rest.split()
    for option in (w for w in words if w.startswith("--")):
        name, _, value = option[2:].partition("=")
        if name == "from" and value.lower() not in stages:
            report.add(
                "dockerfile",
                f"Dockerfile line {line}: {word} --from={value} names no earlier stage; only files of the context or an earlier stage may be copied.",
            )
        elif name not in ("from", "chown"):
            report.add(
                "dockerfile", f"Dockerfile line {line}: {word} option --{name} is not supported."
            )
    if word == "ADD" and any("://" in w or w.startswith("git@") for w in words):
        report.add(
            "dockerfile",
            f"Dockerfile line {line}: ADD may not fetch URLs; the build has no network.",
        )
