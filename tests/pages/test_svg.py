"""The server-side plots: round ticks, histogram bins, escaping, text for screen readers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from competitions import svg


def test_ticks_are_round_numbers_covering_the_range():
    assert svg.nice_ticks(0.51, 0.97) == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert svg.nice_ticks(0, 230) == [0, 50, 100, 150, 200, 250]
    assert svg.count_ticks(3) == [0, 1, 2, 3]
    assert svg.count_ticks(0) == [0, 1]


def test_histogram_bins_count_every_finite_value_once():
    edges, counts = svg.histogram_counts([0.0, 0.1, 0.5, 1.0, float("nan"), float("inf")], bins=2)
    assert edges == [0.0, 0.5, 1.0]
    assert counts == [2, 2]  # the top edge belongs to the last bin
    assert svg.histogram_counts([0.3, 0.3], bins=5) == ([0.3, 0.3], [2])


def test_a_plot_is_an_image_labelled_by_its_title_and_description():
    out = svg.histogram(
        id_prefix="h", values=[0.2, 0.4], title="Scores <b>", desc="Two teams", x_label="AUC"
    )
    assert out.startswith(
        '<svg class="plot" viewBox="0 0 640 260" role="img" aria-labelledby="h-title h-desc"'
    )
    assert '<title id="h-title">Scores &lt;b&gt;</title>' in out
    assert '<desc id="h-desc">Two teams</desc>' in out
    assert out.count('class="bar"') == 20


def test_a_timeline_draws_a_step_line_a_dot_per_point_and_a_legend():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    points = [(t0, 0.5), (t0 + timedelta(hours=2), 0.7), (t0 + timedelta(hours=5), 0.6)]
    out = svg.timeline(
        id_prefix="t",
        series=[svg.Series("us <team>", points, "mine", line=points[:2])],
        title="t",
        desc="d",
        y_label="AUC",
    )
    assert out.count('class="dot mine"') == 3
    assert out.count("<path") == 1
    assert "us &lt;team&gt;" in out
    assert "Submitted (UTC)" in out


def test_empty_plots_say_so():
    assert "Nothing to plot yet." in svg.histogram(
        id_prefix="h", values=[], title="t", desc="d", x_label="x"
    )
    assert "Nothing to plot yet." in svg.daily_bars(id_prefix="b", counts=[], title="t", desc="d")
    bars = svg.daily_bars(
        id_prefix="b", counts=[(date(2026, 1, 1), 3), (date(2026, 1, 2), 0)], title="t", desc="d"
    )
    assert "<title>2026-01-01: 3</title>" in bars
