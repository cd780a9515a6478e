#!/usr/bin/env python3
"""Re-derive the scores of a Heldout submission from its reproducibility bundle, offline.

    python replay.py --truth truth.csv [--predictions FILE] [--manifest manifest.json]
                     [--image IMAGE] [--tolerance 1e-9] [--json]

Runs the scorer image recorded in manifest.json (by its digest) on the predictions and a
ground truth you supply, in a container with no network, then compares what it computes
with what the platform recorded and says what differs: the files' hashes, the split, the
image digest, the library versions and the scores. The verdict is about the scores:

    reproduced        every score is identical, bit for bit
    within_tolerance  every score is within --tolerance (absolute)
    not_reproduced    some score differs by more, or is missing

Exit status: 0 for reproduced or within_tolerance, 1 for not_reproduced, 2 when the replay
could not run. Needs Python 3.9+ (standard library only) and the docker command, with the
image loaded (`docker load`): nothing is downloaded. See docs/reproducibility.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent
DEFAULT_IMAGE = "heldout-scorer:latest"
BUILT_IN = ["python", "-m", "scoring.cli", "--spec", "/input/spec.json"]
BUILT_IN += ["--predictions", "/input/predictions", "--truth", "/input/truth", "--out", "/output"]
PROGRAM = ["python", "/program/score.py"]
BUILT_IN_NAME = "python -m scoring.cli"  # the manifest's scorer.program for the built-in scorer
DEFAULT_LIMITS = {"memory_bytes": 2 * 1024**3, "cpus": 1.0, "pids": 128, "timeout_s": 600}
DEFAULT_LIMITS |= {"tmpfs_bytes": 64 * 1024**2}


class ReplayError(Exception):
    """The replay could not run; the message says why."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = replay(
            manifest_path=args.manifest,
            truth=args.truth,
            predictions=args.predictions,
            image=args.image,
            tolerance=args.tolerance,
            docker=args.docker,
        )
    except ReplayError as exc:
        sys.stderr.write(f"replay: {exc}\n")
        return 2
    sys.stdout.write((json.dumps(report, indent=2) if args.json else _text(report)) + "\n")
    return 0 if report["outcome"] in ("reproduced", "within_tolerance") else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replay.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", type=Path, required=True, help="the ground-truth file")
    parser.add_argument(
        "--predictions", type=Path, help="the scored file (default: the bundle's, if it has one)"
    )
    parser.add_argument("--manifest", type=Path, default=HERE / "manifest.json")
    parser.add_argument("--image", help="score with this image instead of the recorded one")
    parser.add_argument("--tolerance", type=float, default=1e-9, help="absolute, per score")
    parser.add_argument("--docker", default="docker", help="the docker command")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def replay(
    *,
    manifest_path: Path,
    truth: Path,
    predictions: Path | None = None,
    image: str | None = None,
    tolerance: float = 1e-9,
    docker: str = "docker",
) -> dict:
    """Run the scorer again and compare. Returns the report; raises ReplayError."""
    manifest = _load_json(manifest_path, "the manifest")
    bundle = manifest_path.resolve().parent
    predictions = predictions or _bundled_predictions(bundle)
    for label, path in (("--truth", truth), ("--predictions", predictions)):
        if not path.is_file():
            raise ReplayError(f"{label}: {path} is not a file")
    image = image or manifest["scorer"]["image_digest"] or manifest["scorer"]["image"]
    image = image or DEFAULT_IMAGE
    digest = _image_id(docker, image)
    with tempfile.TemporaryDirectory(prefix="heldout-replay-") as tmp:
        program = None
        if manifest["scorer"]["program"] != BUILT_IN_NAME:
            program = _bundled_program(bundle, Path(tmp) / "program")
        result = _run(
            docker, digest, Path(tmp), manifest, predictions, truth, program, _limits(manifest)
        )
    replayed = {
        "predictions_sha256": _sha256(predictions),
        "ground_truth_sha256": _sha256(truth),
        "image": image,
        "image_digest": digest,
        **result,
    }
    return compare(manifest, replayed, tolerance=tolerance)


def compare(manifest: dict, replayed: dict, *, tolerance: float) -> dict:
    """The report: the verdict on the scores and every difference found."""
    recorded_libraries = manifest.get("libraries", {}).get("versions", {})
    checks = [
        ("predictions sha256", manifest["predictions"]["sha256"], replayed["predictions_sha256"]),
        (
            "ground truth sha256",
            manifest["ground_truth"]["sha256"],
            replayed["ground_truth_sha256"],
        ),
        ("split sha256", manifest["ground_truth"]["split_sha256"], replayed.get("split_sha256")),
        ("scorer image digest", manifest["scorer"]["image_digest"], replayed["image_digest"]),
    ]
    for name in sorted(set(recorded_libraries) | set(replayed.get("libraries", {}))):
        checks.append(
            (f"{name} version", recorded_libraries.get(name), replayed["libraries"].get(name))
        )
    differences = [
        {"what": what, "recorded": old, "replayed": new}
        for what, old, new in checks
        if new is not None and old != new
    ]
    scores, worst = _compare_scores(manifest.get("scores", {}), replayed["scores"])
    differences += [s for s in scores if s["recorded"] != s["replayed"]]
    if any(s["replayed"] is None and s["recorded"] is not None for s in scores) or (
        manifest["validation"]["total_problems"] != replayed["total_problems"]
    ):
        worst = math.inf
    outcome = "reproduced" if worst == 0 else "within_tolerance"
    if worst > tolerance:
        outcome = "not_reproduced"
    return {
        "outcome": outcome,
        "tolerance": tolerance,
        "max_abs_difference": None if math.isinf(worst) else worst,
        "submission": manifest["submission"]["id"],
        "task_version": manifest["task"]["version"],
        "compared_scores": len(scores),
        "scores": scores,
        "differences": differences,
        "replayed": replayed,
    }


def _compare_scores(recorded: dict, replayed: dict) -> tuple[list[dict], float]:
    """Every recorded score next to its replayed value, and the largest difference.

    Only recorded scores are compared: a bundle leaves out what its reader may not see."""
    rows, worst = [], 0.0
    for split in sorted(recorded):
        for metric in sorted(recorded[split]):
            old = recorded[split][metric]
            new = replayed.get(split, {}).get(metric)
            rows.append({"what": f"{split} {metric}", "recorded": old, "replayed": new})
            if old is None or new is None:
                worst = max(worst, 0.0 if old is new else math.inf)
            else:
                worst = max(worst, abs(float(old) - float(new)))
    return rows, worst


# --- Running the scorer --------------------------------------------------------------------


def _run(
    docker: str,
    image: str,
    tmp: Path,
    manifest: dict,
    predictions: Path,
    truth: Path,
    program: Path | None,
    limits: dict,
) -> dict:
    inputs, output = tmp / "input", tmp / "output"
    inputs.mkdir()
    output.mkdir()
    # The container runs as nobody (65534), which owns nothing here.
    inputs.chmod(0o755)
    output.chmod(0o777)
    (inputs / "spec.json").write_text(json.dumps(manifest["task"]["spec"]), encoding="utf-8")
    shutil.copyfile(predictions, inputs / "predictions")
    shutil.copyfile(truth, inputs / "truth")
    for name in ("spec.json", "predictions", "truth"):
        (inputs / name).chmod(0o644)
    mounts = [f"type=bind,src={inputs},dst=/input,readonly", f"type=bind,src={output},dst=/output"]
    if program is not None:
        mounts.append(f"type=bind,src={program},dst=/program,readonly")
    command = [docker, "run", "--rm", "--network", "none", "--read-only", "--user", "65534:65534"]
    command += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    command += ["--tmpfs", f"/tmp:rw,nosuid,nodev,size={int(limits['tmpfs_bytes'])},mode=1777"]
    command += ["--memory", str(int(limits["memory_bytes"]))]
    command += ["--memory-swap", str(int(limits["memory_bytes"]))]
    command += ["--cpus", str(limits["cpus"]), "--pids-limit", str(int(limits["pids"]))]
    command += ["--env", "HOME=/tmp", "--workdir", "/tmp"]
    for mount in mounts:
        command += ["--mount", mount]
    command += [image, *(PROGRAM if program is not None else BUILT_IN)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=float(limits["timeout_s"]) + 60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReplayError(f"the scorer could not run: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        raise ReplayError(f"the scorer exited with code {done.returncode}:\n{tail}")
    if program is not None:
        return _program_result(output)
    return _built_in_result(output)


def _built_in_result(output: Path) -> dict:
    data = _load_json(output / "result.json", "the scorer's result")
    provenance = data.get("provenance") or {}
    return {
        "scores": data.get("scores", {}),
        "total_problems": data.get("total_problems", 0),
        "libraries": provenance.get("libraries", {}),
        "split_sha256": provenance.get("truth", {}).get("split_sha256"),
    }


def _program_result(output: Path) -> dict:
    data = _load_json(output / "scores.json", "the scoring program's result")
    problems = data.get("problems") or []
    scores = {k: v for k, v in data.items() if k in ("public", "private")}
    return {"scores": scores, "total_problems": len(problems), "libraries": {}}


def _image_id(docker: str, image: str) -> str:
    try:
        done = subprocess.run(
            [docker, "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError as exc:
        raise ReplayError(f"the docker command failed: {exc}") from exc
    if done.returncode != 0:
        raise ReplayError(
            f"the image {image} is not on this Docker engine; load it (docker load) or "
            f"name another with --image: {done.stderr.strip()}"
        )
    return done.stdout.strip()


def _limits(manifest: dict) -> dict:
    """The limits the platform scored with, where the manifest has them."""
    limits = dict(DEFAULT_LIMITS)
    for stage in manifest.get("stages", []):
        if stage.get("stage") == "scoring" and stage.get("limits"):
            limits.update({k: v for k, v in stage["limits"].items() if k in limits})
    return limits


# --- The bundle ------------------------------------------------------------------------------


def _bundled_predictions(bundle: Path) -> Path:
    found = sorted(p for p in (bundle / "predictions").glob("*") if p.is_file())
    if not found:
        raise ReplayError(
            "this bundle holds no predictions (only the team and the organizers get them); "
            "pass the scored file with --predictions"
        )
    return found[0]


def _bundled_program(bundle: Path, layout: Path) -> Path:
    """The bundle's copy of the organizer's program, laid out in `layout` as /program."""
    found = sorted(p for p in (bundle / "scorer").glob("*") if p.is_file())
    if not found:
        raise ReplayError(
            "the scores came from an organizer's scoring program, which this bundle does not "
            "hold (the organizers did not make it public)"
        )
    layout.mkdir()
    source = found[0]
    if source.suffix != ".zip":
        shutil.copyfile(source, layout / "score.py")
    else:
        _unzip(source, layout)
    for root, _dirs, files in os.walk(layout):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    return layout


def _unzip(source: Path, dest: Path) -> None:
    with zipfile.ZipFile(source) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        for name in names:
            if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                raise ReplayError(f"the program zip has an unsafe entry: {name}")
        tops = {PurePosixPath(n).parts[0] for n in names}
        strip = len(tops) == 1 and "score.py" not in names
        for name in names:
            parts = PurePosixPath(name).parts[1 if strip else 0 :]
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    if not (dest / "score.py").is_file():
        raise ReplayError("the program zip holds no score.py")


# --- Helpers ---------------------------------------------------------------------------------


def _load_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReplayError(f"{what} ({path}) could not be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ReplayError(f"{what} ({path}) is not a JSON object")
    return data


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _text(report: dict) -> str:
    verdicts = {
        "reproduced": "REPRODUCED: every recorded score is identical, bit for bit.",
        "within_tolerance": (
            f"REPRODUCED WITHIN TOLERANCE: the largest difference is "
            f"{report['max_abs_difference']:.3g} (tolerance {report['tolerance']:g})."
        ),
        "not_reproduced": "NOT REPRODUCED: some recorded scores differ.",
    }
    lines = [
        f"Submission {report['submission']}, task version {report['task_version']}: "
        f"{report['compared_scores']} score(s) compared.",
        verdicts[report["outcome"]],
    ]
    if report["differences"]:
        lines.append("What differs:")
        lines += [
            f"  {d['what']}: recorded {d['recorded']!r}, replayed {d['replayed']!r}"
            for d in report["differences"]
        ]
    else:
        lines.append("Nothing differs: files, split, image and library versions all match.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
