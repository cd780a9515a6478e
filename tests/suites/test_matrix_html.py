"""The matrix table's rows made in Python (suites/matrix_html.py) say what the template's
filters said, escape what they show, and a worker that keeps a new matrix renders its page
so that a read does not."""

from __future__ import annotations

import random
import re

import pytest
from django.template import Context, Template
from django.template.defaultfilters import floatformat

from judging.services import submission_score
from scoring.scorers import InProcessScorer
from suites import matrix_data, matrix_html, selectors, services
from suites.tasks import suite_cells_refresh_task
from tests import factories
from tests.suites.world import GOOD, scored_world

pytestmark = pytest.mark.sqlite_too

# The rows as templates/suites/_matrix_body.html rendered them with Django's filters before
# they were made in Python: the reference the Python rows must say the same as.
TEMPLATE_ROWS = Template(
    """{% for r in rows %}<tr><th scope="row"><a href="/m/{{ r.method_id }}/">{{ r.method }}</a>{% if not r.complete %} <span class="muted small">(incomplete)</span>{% endif %}</th>{% for c in r.cells %}<td class="num cell-{{ c.status }}" data-task="{{ c.task }}">{% if c.status == "scored" %}{% if c.entry %}<a href="{{ c.entry }}">{% endif %}{{ c.score|floatformat:4 }}{% if c.entry %}</a>{% endif %}{% if c.low is not None %} <span class="interval muted small">[{{ c.low|floatformat:3 }}, {{ c.high|floatformat:3 }}]</span>{% elif c.stale %} <span class="muted small">(interval being computed)</span>{% endif %}{% else %}<span class="badge {{ c.status }}">{{ c.status }}</span>{% endif %}<br><span class="small">{{ c.normalized|floatformat:3 }} · #{{ c.rank|floatformat:"-1" }}{% if c.win %} <span title="Best on the task">★</span><span class="visually-hidden"> (best)</span>{% endif %}</span></td>{% endfor %}<td class="num">{{ r.mean_rank|floatformat:2 }}</td><td class="num">{{ r.mean_normalized|floatformat:3 }}</td><td class="num">{{ r.wins }}</td></tr>
{% endfor %}"""
)


def test_fixed_writes_what_floatformat_writes():
    rng = random.Random(3)
    values = [rng.uniform(-2, 2) for _ in range(20_000)]
    values += [round(rng.uniform(-1, 1), 4) + 0.00005 for _ in range(2_000)]  # ties at 4
    values += [round(rng.uniform(-1, 1), 3) + 0.0005 for _ in range(2_000)]  # ties at 3
    values += [0.0, -0.0, -0.0004, 1e-9, -1e-9, 1e21, 0.5, 2.0, 12345.67895]
    for value in values:
        for places in (1, 2, 3, 4):
            assert matrix_html.fixed(value, places) == floatformat(value, places), (value, places)


def _rows(*cells: dict, method: str = "m", complete: bool = True) -> list[dict]:
    return [
        {
            "method": method,
            "method_id": 7,
            "complete": complete,
            "cells": list(cells),
            "mean_rank": 1.5,
            "mean_normalized": -0.00001,
            "wins": 1,
        }
    ]


def _entries(rows: list[dict]) -> dict[int, str]:
    """The entry URLs the reference template shows (a cell's "entry"), by submission id."""
    return {c["submission_id"]: c["entry"] for r in rows for c in r["cells"] if c.get("entry")}


def _cell(**values) -> dict:
    base = {
        "task": "iris",
        "score": 0.91235,
        "status": "scored",
        "rank": 2.5,
        "normalized": 0.8,
        "win": False,
        "low": 0.8,
        "high": 0.95,
        "stale": False,
    }
    return base | values


@pytest.mark.parametrize(
    "rows",
    [
        _rows(_cell()),
        _rows(_cell(low=None, high=None, stale=True, win=True, rank=1.0)),
        _rows(_cell(low=None, high=None)),
        _rows(_cell(status="failed", score=0.5, low=None, high=None), complete=False),
        _rows(_cell(status="missing", task="<b>x</b>"), method='<script>alert("x")</script>'),
        _rows(_cell(submission_id=41, entry="/c/x/entries/41/"), _cell(submission_id=42)),
        _rows(_cell(submission_id=43, entry='/c/"x"/entries/43/', low=None, high=None)),
    ],
)
def test_the_rows_say_what_the_template_said(rows):
    made = matrix_html.matrix_rows(rows, lambda pk: f"/m/{pk}/", _entries(rows))
    assert made == TEMPLATE_ROWS.render(Context({"rows": rows})).strip()
    assert "<script>" not in made


@pytest.mark.django_db
def test_the_rows_of_a_scored_suite_say_what_the_template_said(organizer):
    world = scored_world(organizer=organizer)
    matrix = selectors.suite_matrix(suite=world.suite)
    data = matrix_data.matrix_data(matrix)
    urls = matrix_html.entry_urls(matrix)
    made = matrix_html.matrix_rows(data["rows"], lambda pk: f"/m/{pk}/", urls)
    for r in data["rows"]:
        for c in r["cells"]:
            c["entry"] = urls.get(c["submission_id"])
    assert made == TEMPLATE_ROWS.render(Context({"rows": data["rows"]})).strip()
    assert len(re.findall("<tr>", made)) == 3
    # Every scored cell is its team's row of a public board: each links its entry.
    assert made.count("/entries/") == 3 + 3 + 1


@pytest.mark.django_db
def test_the_worker_that_keeps_a_new_matrix_renders_its_page(organizer, client, monkeypatch):
    world = scored_world(organizer=organizer)
    forest = world.methods["forest"]
    run = services.method_submit(
        method=forest,
        task=world.suite.tasks.get(key="digits"),
        user=forest.owner,
        uploaded_file=factories.upload(GOOD),
    )
    submission_score(submission_id=run.submission_id, scorer=InProcessScorer())
    assert suite_cells_refresh_task(world.suite.pk, forest.pk, run.suite_task_id) == 1

    def no_render(**kwargs):
        raise AssertionError("the page was rendered on a read")

    monkeypatch.setattr(matrix_html, "matrix_body", no_render)
    response = client.get("/s/bench/matrix/")
    assert response.status_code == 200
    assert b"forest" in response.content
    with pytest.raises(AssertionError, match="rendered on a read"):
        client.get("/s/bench/matrix/?pivot=model")  # a pivot is rendered when first asked
