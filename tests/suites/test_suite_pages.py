"""The suite pages: the list, the overview and joining, the matrix, a method's page, the
registration form and the owner's upload; and no suite URL ever hands out a label."""

from __future__ import annotations

from html import escape

import pytest
from django.template.defaultfilters import floatformat
from django.test import Client
from django.urls import reverse

from competitions.models import Membership
from suites import matrix_html
from suites.models import Method, MethodRun
from tests import factories
from tests.suites.world import containers_now, image_archive, joined, make_suite, scored_world

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def world(organizer):
    return scored_world(organizer=organizer)


def test_the_header_links_the_suites_and_the_list_shows_them(organizer):
    make_suite(organizer=organizer)
    page = client_for().get("/s/")
    assert page.status_code == 200
    assert b'href="/s/"' in page.content
    assert b'href="/s/bench/"' in page.content
    assert b"3 tasks" in page.content


def test_the_overview_lists_the_tasks_and_joining_joins_every_one(organizer, outsider):
    suite = make_suite(organizer=organizer)
    page = client_for(outsider).get("/s/bench/")
    assert page.status_code == 200
    text = page.content.decode()
    for key in ("iris", "wine", "digits"):
        assert f'href="/c/bench-{key}/"' in text
    assert "/api/v1/competitions/bench-iris/files/sample_submission.csv" in text
    assert "Join Suite bench" in text

    refused = client_for(outsider).post("/s/bench/join/", {})
    assert refused.status_code == 400
    assert not Membership.objects.filter(user=outsider).exists()
    joined_page = client_for(outsider).post("/s/bench/join/", {"accept_rules": "on"})
    assert joined_page.status_code == 302
    assert joined_page["Location"] == "/s/bench/methods/new/"
    assert (
        Membership.objects.filter(user=outsider, competition__suite_tasks__suite=suite).count() == 3
    )
    assert "You have joined" in client_for(outsider).get("/s/bench/").content.decode()


def test_an_invite_only_suite_is_not_found_by_an_outsider_or_another_suites_organizer(
    organizer, other_organizer, outsider
):
    suite = make_suite(slug="closed", organizer=organizer, visibility="invite_only")
    make_suite(slug="theirs", organizer=other_organizer, tasks=("x",))
    member = joined(suite, "member")
    for user in (None, outsider, other_organizer):
        for url in ("/s/closed/", "/s/closed/matrix/"):
            assert client_for(user).get(url).status_code == 404, (user, url)
        assert b"/s/closed/" not in client_for(user).get("/s/").content
    for user in (member, organizer):
        assert client_for(user).get("/s/closed/matrix/").status_code == 200


def test_the_matrix_page_shows_scores_imputed_cells_statistics_and_the_diagram(world):
    page = client_for().get("/s/bench/matrix/")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index(">oracle<") < text.index(">forest<") < text.index(">=hasty<")
    assert '<span class="badge failed">failed</span>' in text
    assert '<span class="badge missing">missing</span>' in text
    assert "1.0000" in text
    assert "the Friedman test finds" in text
    assert 'class="plot cd-diagram"' in text
    assert "/api/v1/suites/bench/matrix/csv/" in text
    assert '<option value="model">' in text


def test_the_matrix_page_pivots_by_the_chosen_tag(world):
    text = client_for().get("/s/bench/matrix/?pivot=model").content.decode()
    assert 'class="suite-pivot"' in text
    assert "forest, =hasty" in text
    unknown = client_for().get("/s/bench/matrix/?pivot=nope").content.decode()
    assert 'class="suite-pivot"' not in unknown


def test_the_matrix_page_shows_the_pairwise_wilcoxon_tests_below_the_matrix_when_asked(
    world, monkeypatch
):
    plain = client_for().get("/s/bench/matrix/?pivot=model").content.decode()
    link = 'href="?tests=wilcoxon&amp;pivot=model#wilcoxon-heading"'
    assert f"{link}>Pairwise Wilcoxon tests (Holm-corrected)</a>" in plain
    assert 'class="suite-wilcoxon"' not in plain

    # The kept body is the same bytes under the same key: not rendered again.
    def no_render(**kwargs):
        raise AssertionError("the kept body was rendered again")

    monkeypatch.setattr(matrix_html, "matrix_body", no_render)
    page = client_for().get("/s/bench/matrix/?tests=wilcoxon&pivot=model").content.decode()

    def body(text: str) -> str:
        return text.split('<h2 id="matrix-heading">')[1].split('<h2 id="wilcoxon-heading">')[0]

    assert body(page) == body(plain)
    assert page.index('class="suite-matrix"') < page.index('class="suite-wilcoxon"')
    table = page.split('<table class="suite-wilcoxon">', 1)[1].split("</table>", 1)[0]
    assert "<caption" in table
    assert table.count('<th scope="col"') == 6
    assert "Holm-adjusted p" in table
    pairs = client_for().get("/api/v1/suites/bench/matrix/?tests=wilcoxon").json()["wilcoxon"]
    assert table.count('<tr><th scope="row">') == len(pairs) == 3
    for p in pairs:
        significant = "yes" if p["significant"] else "no"
        row = (
            f'<tr><th scope="row">{escape(p["a"])}</th><td>{escape(p["b"])}</td>'
            f'<td class="num">{floatformat(p["statistic"], 1)}</td>'
            f'<td class="num">{p["p_value"]:.3g}</td><td class="num">{p["p_holm"]:.3g}</td>'
            f"<td>{significant}"
        )
        assert row in table, row


def test_a_matrix_cell_links_its_entry_page_which_its_readers_may_all_see(world, outsider):
    text = client_for().get("/s/bench/matrix/").content.decode()
    runs = MethodRun.objects.select_related("submission__competition", "method__owner")
    linked = 0
    for run in runs:
        url = reverse("entry", args=[run.submission.competition.slug, run.submission_id])
        # A scored run is its team's row of the task's public board: anyone sees its entry.
        # The failed one is not on a board: only its team and the organizers see it.
        on_board = run.submission.status == "scored"
        assert (f'href="{url}"' in text) == on_board, run
        linked += on_board
        for reader in (None, outsider):
            assert client_for(reader).get(url).status_code == (200 if on_board else 404)
        assert client_for(run.method.owner).get(url).status_code == 200
    assert linked == 7


def test_an_invite_only_suites_cells_link_no_entry_page_as_its_readers_may_differ(
    organizer, outsider
):
    world = scored_world(organizer=organizer, slug="closed", visibility="invite_only")
    text = client_for(world.participant).get("/s/closed/matrix/").content.decode()
    assert "/entries/" not in text
    run = MethodRun.objects.filter(method=world.methods["oracle"]).select_related("submission")[0]
    url = reverse("entry", args=[run.submission.competition.slug, run.submission_id])
    assert client_for(world.participant).get(url).status_code == 200
    assert client_for(outsider).get(url).status_code == 404


def test_a_method_page_shows_its_components_links_and_runs(world, outsider):
    method = world.methods["forest"]
    method.paper_url = "https://example.org/paper"
    method.save()
    text = client_for(outsider).get(f"/s/bench/methods/{method.pk}/").content.decode()
    assert "random forest, trees" in text
    assert 'href="https://example.org/paper"' in text
    for run in MethodRun.objects.filter(method=method).select_related("submission__competition"):
        url = reverse("entry", args=[run.submission.competition.slug, run.submission_id])
        assert f'href="{url}"' in text
    assert "<form" not in text.split("</header>", 1)[1].split("<footer", 1)[0]


def test_the_owner_registers_a_method_and_uploads_to_one_task_or_every_task(organizer, settings):
    settings.HELDOUT_WORKER_PLATFORM = "linux/amd64"
    suite = make_suite(organizer=organizer)
    owner = joined(suite, "owner")
    client = client_for(owner)
    assert client.get("/s/bench/methods/new/").status_code == 200
    bad = client.post("/s/bench/methods/new/", {"name": "m", "components": "no colon"})
    assert bad.status_code == 400
    created = client.post(
        "/s/bench/methods/new/",
        {"name": "Ridge", "components": "model: ridge\npreprocessing: scale, impute"},
    )
    method = Method.objects.get(suite=suite)
    assert created["Location"] == f"/s/bench/methods/{method.pk}/"
    assert method.components == {"model": ["ridge"], "preprocessing": ["scale", "impute"]}
    again = client.post("/s/bench/methods/new/", {"name": "ridge"})
    assert again.status_code == 400
    assert "already has a method" in again.content.decode()

    page = client.get(f"/s/bench/methods/{method.pk}/").content.decode()
    assert 'enctype="multipart/form-data"' in page
    upload = f"/s/bench/methods/{method.pk}/upload/"
    one = client.post(
        upload, {"task": "wine", "file": factories.upload(factories.perfect_predictions())}
    )
    assert one.status_code == 302
    containers_now(suite)
    every = client.post(
        upload, {"task": "*", "file": factories.upload(image_archive(), "image.tar")}
    )
    assert every.status_code == 302
    assert MethodRun.objects.filter(method=method).count() == 4
    other = joined(suite, "other")
    refused = client_for(other).post(
        upload, {"task": "wine", "file": factories.upload(factories.perfect_predictions())}
    )
    assert refused.status_code == 403
    assert MethodRun.objects.filter(method=method).count() == 4


def test_no_suite_url_hands_a_participant_a_hidden_label(world, api):
    """The ground truth's rows (an id with its label and split) appear in no answer of any
    suite URL, page or API, to the suite's participant; the task's own ground-truth URL
    stays the organizers' alone."""
    truth_lines = [f"{i},{y},{u}" for i, y, u in factories.TRUTH_ROWS]
    slug = world.suite.slug
    method = world.methods["oracle"].pk
    urls = [
        "/s/",
        f"/s/{slug}/",
        f"/s/{slug}/matrix/",
        f"/s/{slug}/matrix/?pivot=model",
        f"/s/{slug}/methods/{method}/",
        "/api/v1/suites/",
        f"/api/v1/suites/{slug}/",
        f"/api/v1/suites/{slug}/matrix/?tests=wilcoxon&pivot=model",
        f"/api/v1/suites/{slug}/matrix/csv/",
        f"/api/v1/suites/{slug}/cd-diagram/",
        f"/api/v1/suites/{slug}/methods/",
        f"/api/v1/suites/{slug}/methods/{method}/",
    ]
    for url in urls:
        client = (
            api(world.participant) if url.startswith("/api/") else client_for(world.participant)
        )
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "truth" not in body.lower(), url
        assert "Usage" not in body, url
        assert not any(line in body for line in truth_lines), url
    for task in world.suite.tasks.select_related("competition"):
        truth = api(world.participant).get(
            f"/api/v1/competitions/{task.competition.slug}/ground-truth/"
        )
        assert truth.status_code == 404
        assert (
            api(world.organizer)
            .get(f"/api/v1/competitions/{task.competition.slug}/ground-truth/")
            .status_code
            == 200
        )


def test_the_method_page_links_its_bundle_which_hides_from_outsiders_of_a_closed_suite(
    organizer, outsider
):
    suite = make_suite(slug="closed", organizer=organizer, visibility="invite_only")
    owner = joined(suite, "owner")
    method = Method.objects.create(suite=suite, owner=owner, name="m")
    page = client_for(owner).get(f"/s/closed/methods/{method.pk}/").content.decode()
    bundle = f"/s/closed/methods/{method.pk}/bundle/"
    assert f'href="{bundle}"' in page
    assert client_for(owner).get(bundle).status_code == 200
    assert client_for(outsider).get(bundle).status_code == 404
    suite.invited.add(outsider)
    assert client_for(outsider).get(bundle).status_code == 200


def test_the_list_and_the_matrix_pages_answer_in_a_fixed_number_of_queries(
    world, organizer, django_assert_max_num_queries
):
    for i in range(3):
        make_suite(slug=f"more-{i}", organizer=organizer, tasks=("a", "b"))
    client = client_for(world.participant)
    with django_assert_max_num_queries(5):  # session, user and the bell included
        assert client.get("/s/").status_code == 200
    with django_assert_max_num_queries(13):  # computed and kept (suites/selectors.py)
        assert client.get("/s/bench/matrix/").status_code == 200
    with django_assert_max_num_queries(5):  # read back under its token
        assert client.get("/s/bench/matrix/").status_code == 200
