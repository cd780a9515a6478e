"""The demo suite (`make demo`, manage.py demo_suite): five data sets scikit-learn ships,
three simple methods on each.

Contract: demo_suite_build writes a suite bundle (suite.yaml and one competition bundle per
task) from iris, wine, breast cancer, digits (classification) and diabetes (regression),
each cut into a training file and a hidden test split by SPLIT_SEED, which suite.yaml
records; the same bytes every time. The command imports it through suite_import, like any
suite (so each task asks a worker for its baselines), and demo_predictions gives what each
demo method submits: trained on the task's public training file, predicting its public
test file, deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SUITE_SLUG = "sklearn-toys"
SPLIT_SEED = 20260101
TEST_FRACTION = 0.3  # of each data set's rows
PUBLIC_FRACTION = 0.5  # of the test rows: the public board's; the rest stays private
START = "2025-01-01T00:00:00Z"  # a fixed past date: the tasks are open whenever the demo runs


@dataclass(frozen=True)
class DemoTask:
    key: str
    title: str
    load: Callable[..., Any]
    task_type: str  # binary, multiclass or regression
    metrics: tuple[str, ...]  # the primary first
    about: str


TASKS = (
    DemoTask("iris", "Iris species", datasets.load_iris, "multiclass",
             ("accuracy", "balanced_accuracy", "f1_macro"),
             "Predict the species of an iris from four measurements of its flower."),
    DemoTask("wine", "Wine cultivar", datasets.load_wine, "multiclass",
             ("accuracy", "balanced_accuracy", "f1_macro"),
             "Predict which of three cultivars a wine comes from, from 13 chemical analyses."),
    DemoTask("breast-cancer", "Breast cancer diagnosis", datasets.load_breast_cancer, "binary",
             ("roc_auc", "accuracy", "log_loss"),
             "Predict the probability that a breast mass is malignant, from 30 measurements."),
    DemoTask("digits", "Handwritten digits", datasets.load_digits, "multiclass",
             ("accuracy", "balanced_accuracy", "f1_macro"),
             "Predict the digit written in an 8x8 image (64 grey levels)."),
    DemoTask("diabetes", "Diabetes progression", datasets.load_diabetes, "regression",
             ("rmse", "mae", "r2"),
             "Predict a measure of disease progression one year after baseline, from 10 variables."),
)  # fmt: skip

SUITE_DESCRIPTION = """# scikit-learn's toy data sets

Five small data sets that ship with scikit-learn, each a task with a hidden test split cut
by the seed recorded in the suite's bundle (`split_seed`). Register a method, submit its
predictions on every task, and see how it ranks across all of them: the matrix, the mean
rank and the critical-difference diagram.
"""
SUITE_RULES = """1. One method per idea; describe its components honestly.
2. Train on the public training files only.
"""


@dataclass(frozen=True)
class DemoMethod:
    name: str
    kind: str  # linear, forest or neighbours (_model)
    author: str  # the demo user who registers it
    components: dict[str, list[str]]
    description: str


METHODS = (
    DemoMethod("Linear model", "linear", "linear-lab",
               {"preprocessing": ["standardize"], "model": ["logistic regression", "ridge"]},
               "Standardized features; logistic regression (classification) or ridge (regression)."),
    DemoMethod("Random forest", "forest", "forest-lab",
               {"model": ["random forest"], "ensembling": ["bagging"]},
               "100 trees, scikit-learn's defaults, a fixed random state."),
    DemoMethod("k-nearest neighbours", "neighbours", "neighbours-lab",
               {"preprocessing": ["standardize"], "model": ["k-nearest neighbours"]},
               "Standardized features; the 5 nearest training rows vote (or are averaged)."),
)  # fmt: skip


def _target_name(task: DemoTask) -> str:
    return {"binary": "diagnosis", "regression": "progression"}.get(task.task_type, "label")


def _split(task: DemoTask) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    data = task.load(as_frame=True)
    features = data.frame.drop(columns="target")
    features.columns = [
        str(c).replace(" ", "_").replace("(", "").replace(")", "") for c in features.columns
    ]
    if task.task_type == "regression":
        labels, classes = data.target.round(6), []
    else:
        names = [str(n) for n in getattr(data, "target_names", [])]
        labels = data.target.map(dict(enumerate(names)))
        classes = names
    order = np.random.default_rng(SPLIT_SEED).permutation(len(features))
    ids = np.empty(len(features), dtype=object)
    ids[order] = [f"{task.key[:2]}{k + 1:04d}" for k in range(len(features))]
    stratify = None if task.task_type == "regression" else labels
    rows = np.arange(len(features))
    train_rows, test_rows = train_test_split(
        rows, test_size=TEST_FRACTION, stratify=stratify, random_state=SPLIT_SEED
    )
    public_rows, _ = train_test_split(
        test_rows,
        train_size=PUBLIC_FRACTION,
        stratify=None if stratify is None else labels.iloc[test_rows],
        random_state=SPLIT_SEED,
    )
    target = _target_name(task)
    table = features.assign(id=ids).set_index("id")
    train = table.iloc[train_rows].assign(**{target: labels.iloc[train_rows].to_numpy()})
    test = table.iloc[test_rows]
    usage = np.where(np.isin(test_rows, public_rows), "Public", "Private")
    solution = pd.DataFrame(
        {target: labels.iloc[test_rows].to_numpy(), "Usage": usage}, index=test.index
    )
    frames = (train, test, solution)
    train, test, solution = (f.sort_index().reset_index() for f in frames)
    return train, test, solution, classes


def _sample(
    task: DemoTask, test: pd.DataFrame, train: pd.DataFrame, classes: list[str]
) -> pd.DataFrame:
    target = _target_name(task)
    value: object = 0.5  # binary: the positive class's probability
    if task.task_type == "multiclass":
        value = classes[0]
    elif task.task_type == "regression":
        value = round(float(train[target].mean()), 3)
    return pd.DataFrame({"id": test["id"], target: value})


def _document(task: DemoTask, classes: list[str]) -> dict[str, Any]:
    primary, *secondary = task.metrics
    return {
        "slug": f"{SUITE_SLUG}-{task.key}",
        "title": task.title,
        "description": "description.md",
        "rules": "rules.md",
        "visibility": "unlisted",
        "start": START,
        "end": None,
        "task": {
            "type": task.task_type,
            "id_column": "id",
            "target_columns": [_target_name(task)],
            "classes": classes,
            "primary_metric": primary,
            "secondary_metrics": secondary,
            "ground_truth": "solution.csv",
            "files": [
                {"path": "train.csv", "kind": "train", "description": "Features with the target"},
                {"path": "test.csv", "kind": "test", "description": "Features to predict"},
                {"path": "sample_submission.csv", "kind": "sample", "description": "A valid submission"},
            ],
        },
        "phases": [{"name": "Main", "start": START, "end": None, "daily_limit": 10}],
    }  # fmt: skip


def _task_build(task: DemoTask, dest: Path) -> None:
    train, test, solution, classes = _split(task)
    if task.task_type == "binary":
        classes = ["benign", "malignant"]
    dest.mkdir(parents=True, exist_ok=True)
    train.to_csv(dest / "train.csv", index=False)
    test.to_csv(dest / "test.csv", index=False)
    solution.to_csv(dest / "solution.csv", index=False)
    _sample(task, test, train, classes).to_csv(dest / "sample_submission.csv", index=False)
    (dest / "description.md").write_text(
        f"# {task.title}\n\n{task.about} Ranked by {task.metrics[0]}; half of the test rows "
        "are on the public board, the other half decide the private one.\n"
    )
    (dest / "rules.md").write_text(SUITE_RULES)
    (dest / "competition.yaml").write_text(
        yaml.safe_dump(_document(task, classes), sort_keys=False)
    )


def demo_suite_build(dest: Path) -> Path:
    """Write the demo suite's bundle to `dest`; the same files every time."""
    dest.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        _task_build(task, dest / "tasks" / task.key)
    (dest / "description.md").write_text(SUITE_DESCRIPTION)
    (dest / "rules.md").write_text(SUITE_RULES)
    document = {
        "slug": SUITE_SLUG,
        "title": "scikit-learn's toy data sets",
        "description": "description.md",
        "rules": "rules.md",
        "visibility": "public",
        "split_seed": SPLIT_SEED,
        "tasks": [{"key": t.key, "folder": f"tasks/{t.key}"} for t in TASKS],
    }
    (dest / "suite.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return dest


def _model(method: DemoMethod, regression: bool) -> Any:
    if method.kind == "linear":
        return make_pipeline(
            StandardScaler(), Ridge() if regression else LogisticRegression(max_iter=2000)
        )
    if method.kind == "forest":
        forest = RandomForestRegressor if regression else RandomForestClassifier
        return forest(n_estimators=100, random_state=SPLIT_SEED, n_jobs=1)
    knn = KNeighborsRegressor() if regression else KNeighborsClassifier()
    return make_pipeline(StandardScaler(), knn)


def demo_predictions(
    method: DemoMethod,
    *,
    task_type: str,
    target: str,
    classes: list[str],
    train: pd.DataFrame,
    test: pd.DataFrame,
) -> bytes:
    """The method's submission (CSV bytes) for a task given its public files."""
    features = [c for c in test.columns if c != "id"]
    model = _model(method, task_type == "regression")
    model.fit(
        train[features].to_numpy(),
        train[target].astype(str if task_type != "regression" else float),
    )
    x = test[features].to_numpy()
    if task_type == "binary":
        positive = list(model.classes_).index(classes[1])
        values: Any = np.round(model.predict_proba(x)[:, positive], 6)
    elif task_type == "regression":
        values = np.round(model.predict(x), 6)
    else:
        values = model.predict(x)
    table = pd.DataFrame({"id": test["id"], target: values})
    return table.to_csv(index=False).encode()
