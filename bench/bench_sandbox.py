"""Benchmark: what the Docker sandbox adds to scoring one submission.

    .venv/bin/python bench/bench_sandbox.py [--rows 10000] [--repeat 10] [--image REF]

Scores the same small binary task with InProcessScorer, with DockerScorer on the real
DockerRunner (a fresh container per scoring) and on the WarmDockerRunner (the warm scorer,
scoring.warm), default limits, after one warm-up each, taking turns, and prints the median
wall time per scoring. The overhead is the difference of the medians; target: under 1.5 s.
It does the same with accuracy as the only metric, which needs no scikit-learn import.
To show where the overhead goes, it also times two bare sandbox runs: `python -c pass`
(container start, Python start, container removal) and `python -c "import scoring.cli"`
(the same plus the scoring libraries' imports, which in-process scoring has already paid).

Needs a running Docker engine (deploy/dockerd.sh) and the scorer image
(deploy/scorer-image/build.sh); the image is --image, else HELDOUT_SCORER_IMAGE, else
heldout-scorer:latest.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring.docker_scorer import DockerScorer  # noqa: E402
from scoring.sandbox import SandboxLimits  # noqa: E402
from scoring.sandbox_docker import DockerRunner  # noqa: E402
from scoring.scorers import InProcessScorer, Scorer  # noqa: E402
from scoring.spec import TaskSpec  # noqa: E402
from scoring.warm import WarmDockerRunner  # noqa: E402

SPEC = TaskSpec(
    id_column="id",
    target_columns=("target",),
    task_type="binary",
    primary_metric="roc_auc",
    secondary_metrics=("log_loss", "accuracy"),
)
# The same task scored with a metric that needs only numpy: scoring.metrics imports
# scikit-learn (about a second in the container) only when a metric needs it.
NUMPY_ONLY_SPEC = TaskSpec(
    id_column="id", target_columns=("target",), task_type="binary", primary_metric="accuracy"
)
TARGET_OVERHEAD_S = 1.5


def say(line: str) -> None:
    # A report on stdout is this script's purpose (ruff bans print in project code).
    sys.stdout.write(line + "\n")


def write_task(folder: Path, rows: int) -> tuple[Path, Path]:
    rng = random.Random(0)
    truth = ["id,target,Usage"]
    predictions = ["id,target"]
    for i in range(rows):
        label = rng.randint(0, 1)
        truth.append(f"{i},{label},{'Public' if i % 3 else 'Private'}")
        predictions.append(f"{i},{min(0.999, max(0.001, 0.3 * label + 0.7 * rng.random())):.4f}")
    (folder / "truth.csv").write_text("\n".join(truth) + "\n")
    (folder / "predictions.csv").write_text("\n".join(predictions) + "\n")
    return folder / "predictions.csv", folder / "truth.csv"


def timed_rounds(
    actions: Mapping[str, Callable[[], object]], repeat: int
) -> dict[str, list[float]]:
    """Seconds per call of each action. The actions take turns, round after round, so a
    burst of load from elsewhere on the machine hits them all alike."""
    for action in actions.values():
        action()  # warm-up: imports, page cache, the engine's image lookup
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeat):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
    return times


def score_once(
    scorer: Scorer, files: tuple[Path, Path], scratch: Path, spec: TaskSpec = SPEC
) -> None:
    workdir = Path(tempfile.mkdtemp(dir=scratch))
    outcome = scorer.score(
        predictions_path=files[0], truth_path=files[1], spec=spec, workdir=workdir
    )
    assert outcome.evaluation.ok, outcome.evaluation.problems


def bare_run(runner: DockerRunner, image: str, code: str, scratch: Path) -> None:
    result = runner.run(
        image=image,
        command=["python", "-c", code],
        mounts=[],
        output_dir=Path(tempfile.mkdtemp(dir=scratch)) / "output",
        limits=SandboxLimits(),
    )
    assert result.ok, result.log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--image", default=os.environ.get("HELDOUT_SCORER_IMAGE", "heldout-scorer:latest")
    )
    args = parser.parse_args()
    runner = DockerRunner()
    docker_scorer = DockerScorer(runner=runner, image=args.image, limits=SandboxLimits())
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        scratch = Path(tmp)
        warm_runner = WarmDockerRunner(root=scratch / "warm")
        warm_scorer = DockerScorer(runner=warm_runner, image=args.image, limits=SandboxLimits())
        files = write_task(scratch, args.rows)
        size_kib = sum(f.stat().st_size for f in files) / 1024
        say(f"{args.rows} rows ({size_kib:.0f} KiB in both files), image {args.image}")
        say(f"engine {runner.client.version()['Version']}, median of {args.repeat} runs\n")
        measures = {
            "in-process scoring": lambda: score_once(InProcessScorer(), files, scratch),
            "docker scoring": lambda: score_once(docker_scorer, files, scratch),
            "docker scoring, warm": lambda: score_once(warm_scorer, files, scratch),
            "in-process scoring, accuracy only": lambda: score_once(
                InProcessScorer(), files, scratch, NUMPY_ONLY_SPEC
            ),
            "docker scoring, accuracy only": lambda: score_once(
                docker_scorer, files, scratch, NUMPY_ONLY_SPEC
            ),
            "  bare sandbox: python -c pass": lambda: bare_run(runner, args.image, "pass", scratch),
            "  bare sandbox: import scoring.cli": lambda: bare_run(
                runner, args.image, "import scoring.cli", scratch
            ),
        }
        try:
            times = timed_rounds(measures, args.repeat)
        finally:
            warm_runner.close()
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        spread = f"min {min(values):.3f}, max {max(values):.3f}"
        say(f"{name:<38} {medians[name]:7.3f} s   ({spread})")
    say(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    overhead = medians["docker scoring"] - medians["in-process scoring"]
    verdict = "met" if overhead < TARGET_OVERHEAD_S else "NOT met"
    say(
        f"\nsandbox overhead per scoring: {overhead:.3f} s (target < {TARGET_OVERHEAD_S} s: {verdict})"
    )
    warm = medians["docker scoring, warm"] - medians["in-process scoring"]
    verdict = "met" if warm < TARGET_OVERHEAD_S else "NOT met"
    say(f"the same, warm scorer: {warm:.3f} s (target < {TARGET_OVERHEAD_S} s: {verdict})")
    numpy_only = (
        medians["docker scoring, accuracy only"] - medians["in-process scoring, accuracy only"]
    )
    say(f"the same, metrics without scikit-learn: {numpy_only:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
