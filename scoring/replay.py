#!/usr/bin/env python3
"""Re-derive the scores of a Heldout submission from its reproducibility bundle, offline.

    python replay.py --truth truth.csv [--predictions FILE] [--manifest manifest.json]
                     [--image IMAGE] [--tolerance 1e-9] [--json]

Runs the scorer image recorded in the manifest (by its digest) on the predictions and a
ground truth you supply, in a container with no network, then compares what it computes
with what the platform recorded and says what differs: the files' hashes, the split and
its sizes, the image digest, the scoring program's hash, the library versions, the number
of problems found in the files and every score (missing, extra or different). The verdict
is about the scores:

    reproduced        every score is identical, bit for bit
    within_tolerance  every score is within --tolerance (absolute)
    not_reproduced    some score differs by more, is missing or extra, or the number of
                      problems found in the files differs

Exit status: 0 for reproduced or within_tolerance, 1 for not_reproduced, 2 when the replay
could not run (a sentence on stderr says why; with --json, also {"outcome": "not_run"} on
stdout). Any manifest the platform ever wrote can be replayed, including the older ones
under manifests/. Needs Python 3.9+ (standard library only) and the docker command, with
the image loaded (`docker load`): nothing is downloaded. See docs/reproducibility.md.
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
SHOWN_PROBLEMS = 10


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
        out = json.dumps(_jsonable(report), indent=2) if args.json else _text(report)
    except ReplayError as exc:
        return _not_run(str(exc), as_json=args.json)
    except KeyboardInterrupt:
        return _not_run("interrupted", as_json=args.json)
    except Exception as exc:  # a reader gets a sentence, never a traceback
        return _not_run(
            f"unexpected error ({type(exc).__name__}: {exc}); the replay could not run. "
            "Please report it with this bundle's manifest.json.",
            as_json=args.json,
        )
    sys.stdout.write(out + "\n")
    return 0 if report["outcome"] in ("reproduced", "within_tolerance") else 1


def _not_run(message: str, *, as_json: bool) -> int:
    sys.stderr.write(f"replay: {message}\n")
    if as_json:
        sys.stdout.write(json.dumps({"outcome": "not_run", "error": message}, indent=2) + "\n")
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replay.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", type=Path, required=True, help="the ground-truth file")
    parser.add_argument(
        "--predictions", type=Path, help="the scored file (default: the bundle's, if it has one)"
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=HERE / "manifest.json",
        help="the manifest to replay (default: manifest.json; any of manifests/ works too)",
    )
    parser.add_argument("--image", help="score with this image instead of the recorded one")
    parser.add_argument(
        "--tolerance", type=_tolerance, default=1e-9, help="absolute, per score (default 1e-9)"
    )
    parser.add_argument("--docker", default="docker", help="the docker command")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _tolerance(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("the tolerance is a finite number >= 0")
    return value


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
    bundles = _bundle_dirs(Path(manifest_path))
    predictions = predictions or _bundled_predictions(bundles)
    for label, path in (("--truth", truth), ("--predictions", predictions)):
        if not path.is_file():
            raise ReplayError(f"{label}: {path} is not a file")
    scorer = _section(manifest, "scorer")
    candidates = [image] if image else [scorer.get("image_digest"), scorer.get("image")]
    image, digest = _image_id(docker, [c for c in candidates if isinstance(c, str) and c])
    spec = _section(manifest, "task").get("spec")
    with tempfile.TemporaryDirectory(prefix="heldout-replay-") as tmp:
        program, program_sha256 = None, None
        if _uses_program(scorer):
            program, program_sha256 = _bundled_program(bundles, Path(tmp) / "program")
        elif not isinstance(spec, dict):
            raise ReplayError("the manifest records no task spec, which the scorer needs")
        result = _run(
            docker, digest, Path(tmp), spec or {}, predictions, truth, program, _limits(manifest)
        )
    replayed = {
        "predictions_sha256": _sha256(predictions),
        "ground_truth_sha256": _sha256(truth),
        "image": image,
        "image_digest": digest,
        "program_sha256": program_sha256,
        **result,
    }
    return compare(manifest, replayed, tolerance=tolerance)


# --- Comparing -------------------------------------------------------------------------------


def compare(manifest: dict, replayed: dict, *, tolerance: float) -> dict:
    """The report: the verdict on the scores and every difference found.

    `manifest` may be of any shape the platform ever wrote (missing parts are not compared);
    `replayed` holds what the replay measured (keys absent or None: not measured)."""
    withheld = _withheld_splits(manifest)
    checks = [c for c in _checks(manifest, replayed) if c[2] is not None]  # measured
    # What the manifest does not record (older ones, in-process scorings) is not compared.
    unrecorded = [what for what, old, _new in checks if old is None]
    differences = [
        {"what": what, "recorded": old, "replayed": new}
        for what, old, new in checks
        if old is not None and old != new
    ]
    recorded_problems = _int_or_none(_section(manifest, "validation").get("total_problems"))
    replayed_problems = _int_or_none(replayed.get("total_problems"))
    problems_differ = None not in (recorded_problems, replayed_problems) and (
        recorded_problems != replayed_problems
    )
    if problems_differ:
        differences.append(
            {"what": "validation problems", "recorded": recorded_problems,
             "replayed": replayed_problems}
        )  # fmt: skip
    recorded_scores = _score_table(manifest.get("scores"))
    replayed_scores = _score_table(replayed.get("scores"))
    rows, worst, broken = _compare_scores(recorded_scores, replayed_scores, withheld)
    differences += [r for r in rows if r["absent"] or not _same(r["recorded"], r["replayed"])]
    broken = broken or problems_differ
    outcome = "not_reproduced"
    if not broken and worst == 0:
        outcome = "reproduced"
    elif not broken and worst <= tolerance:
        outcome = "within_tolerance"
    return {
        "outcome": outcome,
        "tolerance": tolerance,
        "max_abs_difference": None if broken else worst,
        "submission": _section(manifest, "submission").get("id"),
        "task_version": _section(manifest, "task").get("version"),
        "kind": manifest.get("kind") or "scoring",
        "compared_scores": sum(1 for r in rows if r["present"]),
        "scores": [{k: r[k] for k in ("what", "recorded", "replayed")} for r in rows],
        "differences": [{k: d[k] for k in ("what", "recorded", "replayed")} for d in differences],
        "notes": _notes(withheld, unrecorded),
        "replayed": replayed,
    }


def _notes(withheld: set[str], unrecorded: list[str]) -> list[str]:
    notes = [
        f"the {split} split is withheld from this bundle: its scores were not compared"
        for split in sorted(withheld)
    ]
    if unrecorded:
        notes.append(f"not recorded in this manifest, so not compared: {', '.join(unrecorded)}")
    return notes


def _checks(manifest: dict, replayed: dict) -> list[tuple[str, object, object]]:
    """(what, recorded, replayed) for everything but the scores and the problem count."""
    truth = _section(manifest, "ground_truth")
    scorer = _section(manifest, "scorer")
    libraries = _section(manifest, "libraries")
    recorded_libraries = libraries.get("versions", libraries)
    if not isinstance(recorded_libraries, dict):
        recorded_libraries = {}
    replayed_libraries = _section(replayed, "libraries")
    checks: list[tuple[str, object, object]] = [
        (
            "predictions sha256",
            _section(manifest, "predictions").get("sha256"),
            replayed.get("predictions_sha256"),
        ),
        ("ground truth sha256", truth.get("sha256"), replayed.get("ground_truth_sha256")),
        ("split sha256", truth.get("split_sha256"), replayed.get("split_sha256")),
    ]
    recorded_rows, replayed_rows = _section(truth, "rows"), _section(replayed, "rows")
    for split in sorted(recorded_rows):
        # null: withheld from this reader, nothing to compare with.
        if recorded_rows[split] is not None:
            checks.append((f"{split} rows", recorded_rows[split], replayed_rows.get(split)))
    checks.append(("scorer image digest", scorer.get("image_digest"), replayed.get("image_digest")))
    if scorer.get("program_sha256") or replayed.get("program_sha256"):
        checks.append(
            ("scoring program sha256", scorer.get("program_sha256"), replayed.get("program_sha256"))
        )
    for name in sorted(set(recorded_libraries) | set(replayed_libraries), key=str):
        checks.append(
            (f"{name} version", recorded_libraries.get(name), replayed_libraries.get(name))
        )
    return checks


def _compare_scores(
    recorded: dict, replayed: dict, withheld: set[str]
) -> tuple[list[dict], float, bool]:
    """Every score on either side with its counterpart, the largest difference between
    two numbers, and whether some score is missing, extra or not comparable as a number.

    A split withheld from the bundle's reader is not compared: its replayed scores are not
    extra."""
    rows, worst, broken = [], 0.0, False
    keys = {(s, m) for s in recorded for m in recorded[s]}
    keys |= {(s, m) for s in replayed if s not in withheld for m in replayed[s]}
    for split, metric in sorted(keys):
        mine, theirs = recorded.get(split, {}), replayed.get(split, {})
        old, new = mine.get(metric), theirs.get(metric)
        absent = metric not in mine or metric not in theirs  # extra, or missing
        rows.append(
            {"what": f"{split} {metric}", "recorded": old, "replayed": new,
             "present": metric in mine, "absent": absent}
        )  # fmt: skip
        a, b = _number(old), _number(new)
        if absent or (not _same(old, new) and (a is None or b is None)):
            broken = True
        elif a is not None and b is not None:
            worst = max(worst, abs(a - b))
            broken = broken or not math.isfinite(worst)
    return rows, worst, broken


def _same(old: object, new: object) -> bool:
    if _number(old) is not None and _number(new) is not None:
        return _number(old) == _number(new)
    return old == new


def _number(value: object) -> float | None:
    # true is never a score, and a NaN equals nothing.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return None


def _score_table(value: object) -> dict[str, dict]:
    """{split: {metric: value}}, keeping only what has that shape."""
    if not isinstance(value, dict):
        return {}
    return {str(s): dict(v) for s, v in value.items() if isinstance(v, dict)}


def _withheld_splits(manifest: dict) -> set[str]:
    withheld = manifest.get("withheld")
    if not isinstance(withheld, list):
        return set()
    return {w.split(".", 1)[1] for w in withheld if isinstance(w, str) and w.startswith("scores.")}


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- Running the scorer --------------------------------------------------------------------


def _run(
    docker: str,
    image: str,
    tmp: Path,
    spec: dict,
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
    (inputs / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
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
        # The scorer's own log (a program's traceback, say), set apart from replay's words.
        tail = "".join(
            f"\n    | {line}" for line in (done.stderr or done.stdout).splitlines()[-10:]
        )
        raise ReplayError(
            f"the scorer exited with code {done.returncode}; its log ends with:{tail}"
        )
    if program is not None:
        return _program_result(output)
    return _built_in_result(output)


def _built_in_result(output: Path) -> dict:
    data = _load_json(output / "result.json", "the scorer's result")
    provenance = _section(data, "provenance")
    truth = _section(provenance, "truth")
    problems = _list(data, "problems")
    return {
        "scores": _score_table(data.get("scores")),
        "total_problems": _int_or_none(data.get("total_problems")) or len(problems),
        "problems": [_problem_text(p) for p in problems[:SHOWN_PROBLEMS]],
        "libraries": _section(provenance, "libraries"),
        "split_sha256": truth.get("split_sha256"),
        "rows": _section(truth, "rows"),
    }


def _program_result(output: Path) -> dict:
    data = _load_json(output / "scores.json", "the scoring program's result")
    problems = _list(data, "problems")
    scores = _score_table({k: v for k, v in data.items() if k in ("public", "private")})
    return {
        "scores": scores,
        "total_problems": len(problems),
        "problems": [_problem_text(p) for p in problems[:SHOWN_PROBLEMS]],
        "libraries": {},
    }


def _problem_text(problem: object) -> str:
    # The built-in scorer's messages name their line already.
    return str(problem.get("message", problem) if isinstance(problem, dict) else problem)


def _image_id(docker: str, candidates: list[str]) -> tuple[str, str]:
    """The first of the candidates (or the default image) on the engine, and its id."""
    candidates = list(dict.fromkeys(candidates)) or [DEFAULT_IMAGE]
    errors = []
    for image in candidates:
        try:
            done = subprocess.run(
                [docker, "image", "inspect", "--format", "{{.Id}}", image],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ReplayError(f"the docker command failed: {exc}") from exc
        if done.returncode == 0 and done.stdout.strip():
            return image, done.stdout.strip()
        errors.append(f"{image}: {done.stderr.strip()}")
    raise ReplayError(
        "the scorer image is not on this Docker engine; load it (docker load) or name "
        "another with --image (" + "; ".join(errors) + ")"
    )


def _limits(manifest: dict) -> dict:
    """The limits the platform scored with, where the manifest has them."""
    limits = dict(DEFAULT_LIMITS)
    for stage in _list(manifest, "stages"):
        if isinstance(stage, dict) and stage.get("stage") == "scoring":
            recorded = _section(stage, "limits")
            limits.update(
                {k: v for k, v in recorded.items() if k in limits and (_number(v) or 0) > 0}
            )
    return limits


# --- The bundle ------------------------------------------------------------------------------


def _bundle_dirs(manifest_path: Path) -> list[Path]:
    """Where the bundle's files are: beside the manifest, above it for one of manifests/,
    and beside this script."""
    folder = manifest_path.resolve().parent
    above = [folder.parent] if folder.name == "manifests" else []
    return list(dict.fromkeys([folder, *above, HERE]))


def _bundled_predictions(bundles: list[Path]) -> Path:
    for bundle in bundles:
        found = sorted(p for p in (bundle / "predictions").glob("*") if p.is_file())
        if found:
            return found[0]
    raise ReplayError(
        "this bundle holds no predictions (only the team and the organizers get them); "
        "pass the scored file with --predictions"
    )


def _uses_program(scorer: dict) -> bool:
    program = scorer.get("program")
    if isinstance(program, str) and program:
        return program != BUILT_IN_NAME
    return scorer.get("name") == "program"


def _bundled_program(bundles: list[Path], layout: Path) -> tuple[Path, str]:
    """The bundle's copy of the organizer's program, laid out in `layout` as /program, and
    the sha256 of the file."""
    found = []
    for bundle in bundles:
        found = sorted(p for p in (bundle / "scorer").glob("*") if p.is_file())
        if found:
            break
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
    return layout, _sha256(source)


def _unzip(source: Path, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReplayError(f"the program zip cannot be read: {exc}") from exc
    with zf:
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


def _section(data: dict, key: str) -> dict:
    """data[key] when it is an object, else {}: older manifests may lack a part."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _list(data: dict, key: str) -> list:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _text(report: dict) -> str:
    lines = [
        f"Submission {report['submission']}, task version {report['task_version']} "
        f"({report['kind']} manifest): {report['compared_scores']} recorded score(s) compared.",
        _verdict(report),
    ]
    if report["differences"]:
        lines.append("What differs:")
        lines += [
            f"  {d['what']}: recorded {_shown(d['recorded'])}, replayed {_shown(d['replayed'])}"
            for d in report["differences"]
        ]
    else:
        lines.append("Nothing differs: files, split, image, program and library versions match.")
    problems = report["replayed"].get("problems") or []
    if problems:
        lines.append("The scorer found these problems in the files (first ones):")
        lines += [f"  {p}" for p in problems]
    lines += [f"Note: {n}." for n in report.get("notes", [])]
    return "\n".join(lines)


def _verdict(report: dict) -> str:
    if report["outcome"] == "reproduced":
        return "REPRODUCED: every recorded score is identical, bit for bit."
    if report["outcome"] == "within_tolerance":
        return (
            f"REPRODUCED WITHIN TOLERANCE: the largest difference is "
            f"{report['max_abs_difference']:.3g} (tolerance {report['tolerance']:g})."
        )
    return "NOT REPRODUCED: " + _why(report) + "."


def _why(report: dict) -> str:
    rows = report["scores"]
    missing = sum(1 for r in rows if r["replayed"] is None and r["recorded"] is not None)
    counts = [d for d in report["differences"] if d["what"] == "validation problems"]
    reasons = []
    if missing:
        reasons.append(f"{missing} recorded score(s) missing from the replay")
    if counts:
        reasons.append(
            f"the scorer found {counts[0]['replayed']} problem(s) in the files, "
            f"the platform {counts[0]['recorded']}"
        )
    if not reasons and report["max_abs_difference"] is not None:
        reasons.append(
            f"the largest difference is {report['max_abs_difference']:.3g}, beyond the "
            f"tolerance {report['tolerance']:g}"
        )
    if not reasons:
        reasons.append("some scores are extra or are not numbers")
    return "; ".join(reasons)


def _shown(value: object) -> str:
    return "nothing" if value is None else repr(value)


def _jsonable(value: object) -> object:
    """Strict JSON: a NaN or an infinity a program wrote becomes its name."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
