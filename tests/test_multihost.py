"""Share-nothing hosts: a web process and two worker "hosts", each worker in namespaces of
its own (tests/host_process.py) with its own data folder and host name, for which the
web's data folder is empty: the web's media folder does not exist there. Everything goes
through PostgreSQL, a broker of this test's own, object storage (moto's S3 server) and the
registry (the scorer image pulled by its digest). 100 submissions uploaded over HTTP are
spread over both workers and each is scored exactly once.

The built-in scorer runs in-process here (this is not a sandbox test, and 100 sandboxed
scorings would take minutes on two cores); an organizer's program, which always runs in
the sandbox, scores the submissions of a second competition with the scorer image the
workers pull from the registry by digest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from competitions.models import Attempt, Competition, ScoringRun, Submission, Task
from tests import factories
from tests.fleet import (
    assert_counted_once,
    assert_scored_once,
    deployment,
    predictions,
    token_of,
    unfinished,
    until,
    upload_all,
)
from tests.host_process import media_folder, sees
from tests.registry_server import untag

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.docker,
    pytest.mark.django_db(transaction=True),
]

HOSTS = ("host-1", "host-2")
TEAMS = 4
PER_TEAM = 24  # 96 built-in scorings ...
PROGRAM_SUBMISSIONS = 4  # ... and 4 by an organizer's program in the sandbox: 100.
PROGRAM = (
    "import json\n"
    "scores = {'roc_auc': 0.75, 'accuracy': 0.5}\n"
    "json.dump({'public': scores, 'private': scores}, open('/output/scores.json', 'w'))\n"
)


def _competitions(organizer) -> tuple[Competition, list[str], Competition, str]:
    """The built-in scorer's competition with its teams' tokens, the program's with its one."""
    builtin = factories.make_competition(organizers=[organizer], daily_limit=PER_TEAM)
    tokens = [token_of(factories.team_for(builtin, f"team{n}").members.get()) for n in range(TEAMS)]
    program = factories.make_competition(
        slug="program", organizers=[organizer], daily_limit=PROGRAM_SUBMISSIONS
    )
    task = Task.objects.get(competition=program)
    task.scorer_program.save("score.py", ContentFile(PROGRAM.encode()))
    program_token = token_of(factories.team_for(program, "programmers").members.get())
    return builtin, tokens, program, program_token


def test_a_hundred_submissions_over_two_hosts_that_share_nothing_are_each_scored_once(
    tmp_path, on_s3, docker_client, pushed_scorer, organizer
):
    builtin, tokens, program, program_token = _competitions(organizer)
    web_media = media_folder(Path(settings.DATA_DIR))
    web_media.mkdir(parents=True, exist_ok=True)
    (web_media / "only-the-web-sees-this").write_text("web")
    before = {p for p in web_media.rglob("*") if p.is_file()}
    untag(docker_client, pushed_scorer)  # as on hosts that never had it: pulled by digest
    env = {
        **on_s3.env(),
        "HELDOUT_SCORER": "in-process",
        "HELDOUT_SCORER_IMAGE": pushed_scorer,
        "HELDOUT_SCORER_IMAGES": pushed_scorer,
    }
    with deployment(tmp_path, env, HOSTS, beat=False) as fleet:
        for host, proc in fleet.workers.items():
            log = (tmp_path / f"{host}-1.log").read_text()
            assert f"{web_media} does not exist here" in log  # said by the host itself
            assert not sees(proc.pid, web_media), f"{host} sees the web's media folder"
            assert sees(proc.pid, tmp_path / host / "work")
        assert web_media.exists()

        uploads = [
            (token, builtin.slug, predictions(n * TEAMS + t))
            for n in range(PER_TEAM)
            for t, token in enumerate(tokens)
        ]
        uploads += [
            (program_token, program.slug, predictions(n)) for n in range(PROGRAM_SUBMISSIONS)
        ]
        ids = upload_all(fleet.base, uploads)
        until(lambda: not unfinished(ids), "scoring of the 100 submissions", 150, fleet.logs)
        fleet.alive()

        assert len(ids) == 100
        assert_scored_once(ids)
        assert_counted_once(fleet.base, builtin, dict.fromkeys(tokens, PER_TEAM))
        assert_counted_once(fleet.base, program, {program_token: PROGRAM_SUBMISSIONS})
    attempts = Attempt.objects.filter(submission_id__in=ids)
    by_host = {host: attempts.filter(worker=host).count() for host in HOSTS}
    assert sum(by_host.values()) == 100
    assert all(by_host.values()), f"one host scored nothing: {by_host}"
    # One attempt each, which scored it.
    assert set(attempts.values_list("number", "outcome")) == {(1, "scored")}
    # The sandboxed ones ran the image pulled from the registry, identified by its digest.
    digest = pushed_scorer.partition("@")[2]
    for run in ScoringRun.objects.filter(submission__competition=program):
        assert run.manifest["scorer"]["identity"] == digest
    assert docker_client.images.get(pushed_scorer).id
    # The web's media folder got nothing: every file is in the buckets.
    assert {p for p in web_media.rglob("*") if p.is_file()} == before
    keys = on_s3.keys(on_s3.private_bucket)
    assert all(Submission.objects.get(pk=pk).file.name in keys for pk in ids)
