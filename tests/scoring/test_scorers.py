"""The in-process scorer: the same evaluation plus how long and how much memory it took."""

from scoring.scorers import InProcessScorer, Scorer
from scoring.spec import TaskSpec

SPEC = TaskSpec(
    id_column="id", target_columns=("y",), task_type="regression", primary_metric="rmse"
)


def test_it_scores_in_this_process_and_measures_the_run(tmp_path):
    (tmp_path / "truth.csv").write_text("id,y\na,1\nb,2\n")
    (tmp_path / "predictions.csv").write_text("id,y\nb,2\na,2\n")
    scorer: Scorer = InProcessScorer()

    outcome = scorer.score(
        predictions_path=tmp_path / "predictions.csv",
        truth_path=tmp_path / "truth.csv",
        spec=SPEC,
        workdir=tmp_path,
    )

    assert outcome.evaluation.scores["public"] == {"rmse": 0.5**0.5}
    assert outcome.evaluation.row_values is not None
    assert outcome.evaluation.row_values.tolist() == [1.0, 0.0]
    assert outcome.scorer_name == "in-process"
    assert outcome.duration_s > 0
    assert outcome.peak_memory_bytes is not None
    assert outcome.peak_memory_bytes >= 0
