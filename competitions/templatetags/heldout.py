"""Words for what the data holds as ids: metric names and file-problem codes.

`{{ "roc_auc"|metric_label }}` gives "ROC AUC"; `{{ "not_numeric"|problem_text }}` gives
"A value is not a number". Unknown ids fall back to readable words, never to an error.
"""

from __future__ import annotations

from django import template

from scoring.metrics import METRICS

register = template.Library()

# The codes of scoring/tables.py and scoring/validation.py, as a sentence an organizer reads.
PROBLEMS = {
    "not_csv": "The file is not a readable CSV or Parquet table",
    "empty_file": "The file is empty",
    "empty": "The file is empty",
    "truncated": "The file ends in the middle",
    "corrupt": "The file is corrupt",
    "compression": "The file's compression is not readable",
    "missing_id_column": "The id column is missing",
    "missing_column": "A required column is missing",
    "unexpected_column": "A column is not expected",
    "duplicate_id": "An id appears more than once",
    "missing_id": "An id of the test set is missing",
    "unknown_id": "An id is not in the test set",
    "wrong_row_count": "The number of rows is wrong",
    "empty_value": "A value is empty",
    "not_numeric": "A value is not a number",
    "not_finite": "A value is infinite or not a number (NaN)",
    "out_of_range": "A value is out of range",
    "unknown_label": "A label is not one of the classes",
    "row_sum": "A row's probabilities don't add up to 1",
    "scorer": "The scoring program refused the file",
}


@register.filter
def metric_label(name: str) -> str:
    metric = METRICS.get(str(name))
    return metric.label if metric else str(name).replace("_", " ")


@register.filter
def problem_text(code: str) -> str:
    text = PROBLEMS.get(str(code))
    return text if text else str(code).replace("_", " ").capitalize()
