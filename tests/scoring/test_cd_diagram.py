"""The critical-difference diagram (scoring.cd_diagram): well-formed, accessible SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from scoring.cd_diagram import cd_diagram
from scoring.rank_tests import nemenyi_cd

SVG = "{http://www.w3.org/2000/svg}"
NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
RANKS = [3.143, 2.000, 2.893, 1.964]  # Demšar (2006), Table 6


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def one(root: ET.Element, path: str) -> ET.Element:
    found = root.find(path)
    assert found is not None, path
    return found


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_it_draws_every_method_with_its_mean_rank_and_the_cd_bar():
    cd = nemenyi_cd(4, 14)

    root = parse(cd_diagram(names=NAMES, mean_ranks=RANKS, cd=cd, tasks=14))

    labels = texts(root)
    for name, rank in zip(NAMES, RANKS, strict=True):
        assert f"{name} ({rank:.2f})" in labels
    assert "CD = 1.25" in labels
    bar = one(root, f"{SVG}g[@class='cd-bar']/{SVG}line")
    length = float(bar.get("x2", "nan")) - float(bar.get("x1", "nan"))
    axis = one(root, f"{SVG}line[@class='axis']")
    rank_span = (float(axis.get("x2", "nan")) - float(axis.get("x1", "nan"))) / 3
    assert length == pytest.approx(cd * rank_span, abs=0.2)  # CD in rank units


def test_it_is_labelled_for_screen_readers_with_the_figures_in_words():
    root = parse(
        cd_diagram(names=NAMES, mean_ranks=RANKS, cd=1.12, tasks=14, title="AUC", id_prefix="s1")
    )

    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "s1-title s1-desc"
    title, desc = one(root, f"{SVG}title"), one(root, f"{SVG}desc")
    assert (title.get("id"), title.text) == ("s1-title", "AUC")
    assert desc.get("id") == "s1-desc"
    assert desc.text == (
        "Mean ranks over 14 tasks, 1 = best: C4.5+m+cf 1.96; C4.5+m 2.00; C4.5+cf 2.89; "
        "C4.5 3.14. Critical difference (Nemenyi, alpha 0.05): 1.12. Not significantly "
        "different from each other: C4.5+m+cf, C4.5+m, C4.5+cf; C4.5+cf, C4.5."
    )


def test_it_joins_each_group_of_methods_not_significantly_different():
    def bars(cd: float) -> int:
        root = parse(cd_diagram(names=NAMES, mean_ranks=RANKS, cd=cd, tasks=14))
        return len(root.findall(f"{SVG}line[@class='cd-group']"))

    assert bars(1.25) == 1  # one group of all four at alpha 0.05
    assert bars(1.12) == 2  # two at alpha 0.10
    assert bars(0.01) == 0


def test_it_says_so_when_every_pair_differs():
    svg = cd_diagram(names=["a", "b"], mean_ranks=[1.0, 2.0], cd=0.5, tasks=30)

    desc = one(parse(svg), f"{SVG}desc")
    assert (desc.text or "").endswith("Every pair of methods differs significantly.")


def test_it_escapes_names_and_cuts_long_ones_keeping_them_whole_in_the_desc():
    name = '<script>alert("x")</script> & a name far too long to fit'

    svg = cd_diagram(names=[name, "b", "c"], mean_ranks=[1.5, 1.5, 3.0], cd=1.0, tasks=10)

    root = parse(svg)  # well-formed despite the markup in the name
    assert "<script" not in svg
    assert root.find(f".//{SVG}script") is None
    assert any(t.startswith('<script>alert("x"') and "…" in t for t in texts(root))
    assert name in (one(root, f"{SVG}desc").text or "")


def test_it_needs_no_external_resource():
    svg = cd_diagram(names=NAMES, mean_ranks=RANKS, cd=1.25, tasks=14)

    assert "href" not in svg
    assert "@import" not in svg
    assert "url(" not in svg
    assert parse(svg).get("font-family") == "sans-serif"


def test_it_cuts_a_cd_bar_wider_than_the_axis_at_its_end():
    root = parse(cd_diagram(names=["a", "b", "c"], mean_ranks=[1.2, 2.0, 2.5], cd=5.0, tasks=3))

    bar = one(root, f"{SVG}g[@class='cd-bar']/{SVG}line")
    assert bar.get("x2") == one(root, f"{SVG}line[@class='axis']").get("x2")
    assert "CD = 5.00" in texts(root)


@pytest.mark.parametrize(("names", "ranks"), [(["a"], [1.0]), (["a", "b"], [1.0])])
def test_it_refuses_fewer_than_two_methods_or_a_rank_short(names, ranks):
    with pytest.raises(ValueError, match="two or more"):
        cd_diagram(names=names, mean_ranks=ranks, cd=1.0, tasks=5)
