"""Organizer-written scoring programs: the contract of docs/scorers.md, the dry run on
upload (a background job, run here as a worker would), who may upload, and hostile
programs failing cleanly in real containers."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from competitions.admin import organizers_group_sync
from competitions.models import Competition, OrganizerJob, SandboxRun, Submission, Task
from competitions.services.scorers import ScorerRejected, task_scorer_set
from competitions.services.submissions import submission_create
from judging.services import submission_score
from scoring.program_scorer import ProgramScorer, program_unpack, read_scores
from scoring.recording import RecordingRunner
from scoring.sandbox import SandboxError
from scoring.scorers import InProcessScorer
from scoring.spec import TaskSpec
from tests import factories
from tests.jobs import OutboxWatch, run_queued_jobs
from tests.sandbox.conftest import SMALL_LIMITS

ROOT = Path(__file__).resolve().parents[2]
SPEC = TaskSpec(
    id_column="id",
    target_columns=("label",),
    task_type="binary",
    primary_metric="roc_auc",
    secondary_metrics=("accuracy",),
)
# The example of docs/scorers.md, run as it is written there.
DOC_EXAMPLE = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "scorers.md").read_text(), re.S)[1]  # type: ignore[index]
LIMITS = dataclasses.replace(SMALL_LIMITS, timeout_s=8)
VALID_SCORES = '{"public": {"roc_auc": 0.5}, "private": {"roc_auc": 0.5}}'


def write_scores(text: str) -> str:
    """The source of a program that writes `text` as its scores.json."""
    return f"open('/output/scores.json', 'w').write({text!r})\n"


def program_upload(code: str, name: str = "score.py") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, code.encode(), content_type="text/x-python")


def zip_bytes(files: dict[str, str], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symlink
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.fixture
def task_files(tmp_path: Path) -> tuple[Path, Path]:
    """(predictions, truth) of the tiny binary task of tests/factories.py."""
    truth = tmp_path / "truth.csv"
    truth.write_text(factories.truth_csv())
    truth.chmod(0o600)  # like private storage
    predictions = tmp_path / "predictions.csv"
    predictions.write_bytes(factories.predictions_csv({"id3": 0.9, "id8": 0.2}, default=0.4))
    return predictions, truth


def run_program(runner, scorer_image, tmp_path: Path, task_files, code: str, **kwargs):
    source = tmp_path / "score.py"
    source.write_text(code)
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    scorer = ProgramScorer(
        runner=runner, image=scorer_image, limits=kwargs.get("limits", LIMITS), program_path=source
    )
    predictions, truth = task_files
    return scorer.score(predictions_path=predictions, truth_path=truth, spec=SPEC, workdir=workdir)


# --- unpacking the program -------------------------------------------------------------------


def test_a_plain_file_becomes_score_py(tmp_path):
    source = tmp_path / "anything.py"
    source.write_text("print('hi')\n")

    program_unpack(source, tmp_path / "program")

    assert (tmp_path / "program" / "score.py").read_text() == "print('hi')\n"
    assert (tmp_path / "program").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "program" / "score.py").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("top", ["", "my_scorer/"])
def test_a_zip_is_unpacked_from_its_root_or_its_one_folder(tmp_path, top):
    source = tmp_path / "program.zip"
    source.write_bytes(zip_bytes({f"{top}score.py": "import helpers\n", f"{top}helpers.py": ""}))

    program_unpack(source, tmp_path / "program")

    assert sorted(p.name for p in (tmp_path / "program").iterdir()) == ["helpers.py", "score.py"]


@pytest.mark.parametrize(
    ("files", "links", "message"),
    [
        ({"score.py": "", "../evil.py": ""}, (), "points outside the program folder"),
        ({"score.py": "", "/etc/cron.d/x": ""}, (), "points outside the program folder"),
        ({"score.py": ""}, ("data",), "is a link or a special file"),
        ({"main.py": ""}, (), "no score.py at its root"),
        ({"a/score.py": "", "b/x.py": ""}, (), "no score.py at its root"),
    ],
)
def test_a_zip_with_escaping_entries_links_or_no_score_py_is_refused(
    tmp_path, files, links, message
):
    source = tmp_path / "program.zip"
    source.write_bytes(zip_bytes(files, links))

    with pytest.raises(ValueError, match=message):
        program_unpack(source, tmp_path / "program")
    assert not (tmp_path / "evil.py").exists()


# --- reading its output ----------------------------------------------------------------------


def test_valid_scores_and_rows_are_read(tmp_path):
    (tmp_path / "scores.json").write_text(
        '{"public": {"roc_auc": 0.75, "accuracy": 1}, "private": {"roc_auc": 0.5}}'
    )
    np.save(tmp_path / "rows.npy", np.array([1.0, 0.0], dtype=np.float64))

    evaluation = read_scores(tmp_path, SPEC)

    assert evaluation.ok
    assert evaluation.scores == {
        "public": {"roc_auc": 0.75, "accuracy": 1.0},
        "private": {"roc_auc": 0.5},
    }
    assert evaluation.row_values is not None
    assert evaluation.row_values.dtype == np.float32
    assert evaluation.row_values.tolist() == [1.0, 0.0]


def test_problems_make_an_invalid_submission(tmp_path):
    (tmp_path / "scores.json").write_text('{"problems": ["row 3 is bad", "row 4 too"]}')

    evaluation = read_scores(tmp_path, SPEC)

    assert not evaluation.ok
    assert [(p.code, p.message) for p in evaluation.problems] == [
        ("scorer", "row 3 is bad"),
        ("scorer", "row 4 too"),
    ]
    assert evaluation.scores == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "wrote no scores.json"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"public": {"roc_auc": NaN}, "private": {"roc_auc": 1}}', "NaN, which is not a finite"),
        ('{"public": {"roc_auc": Infinity}, "private": {"roc_auc": 1}}', "Infinity"),
        ('{"public": {"roc_auc": 1e999}, "private": {"roc_auc": 1}}', "not a finite number"),
        ('{"public": {"roc_auc": null}, "private": {"roc_auc": 1}}', "None, not a number"),
        ('{"public": {"roc_auc": "0.9"}, "private": {"roc_auc": 1}}', "'0.9', not a number"),
        ('{"public": {"roc_auc": true}, "private": {"roc_auc": 1}}', "True, not a number"),
        ('{"public": {"roc_auc": 1, "f1": 1}, "private": {"roc_auc": 1}}', "unknown metric"),
        ('{"public": {"accuracy": 1}, "private": {"roc_auc": 1}}', "primary metric 'roc_auc'"),
        ('{"public": {"roc_auc": 1}}', "exactly the keys"),
        ('{"public": {"roc_auc": 1}, "private": {"roc_auc": 1}, "x": 1}', "exactly the keys"),
        ('{"public": [], "private": {"roc_auc": 1}}', "not an object"),
        ('{"problems": []}', "non-empty list"),
        ('{"problems": [3]}', "non-empty string"),
    ],
)
def test_malformed_scores_are_refused_with_the_reason(tmp_path, text, message):
    if text is not None:
        (tmp_path / "scores.json").write_text(text)

    with pytest.raises(ValueError, match=re.escape(message)):
        read_scores(tmp_path, SPEC)


def test_an_unreadable_rows_file_is_refused(tmp_path):
    (tmp_path / "scores.json").write_text(VALID_SCORES)
    (tmp_path / "rows.npy").write_bytes(b"\x93NUMPY garbage")

    with pytest.raises(ValueError, match=r"rows\.npy is unreadable"):
        read_scores(tmp_path, SPEC)


# --- real containers -----------------------------------------------------------------------


@pytest.mark.docker
def test_the_documented_example_scores_like_the_built_in_scorer(
    runner, scorer_image, tmp_path, task_files
):
    outcome = run_program(runner, scorer_image, tmp_path, task_files, DOC_EXAMPLE)

    workdir = tmp_path / "in-process"
    workdir.mkdir()
    built_in = InProcessScorer().score(
        predictions_path=task_files[0], truth_path=task_files[1], spec=SPEC, workdir=workdir
    )
    assert outcome.evaluation.ok
    assert outcome.evaluation.scores == built_in.evaluation.scores
    assert 0 < outcome.evaluation.scores["private"]["roc_auc"] < 1
    np.testing.assert_array_equal(outcome.evaluation.row_values, built_in.evaluation.row_values)
    assert outcome.scorer_name == "program"
    assert outcome.scorer_image.startswith(f"{scorer_image}@sha256:")


@pytest.mark.docker
def test_the_documented_example_reports_a_bad_files_problems(
    runner, scorer_image, tmp_path, task_files
):
    task_files[0].write_text("id,label\nid0,0.1\nid0,banana\n")

    outcome = run_program(runner, scorer_image, tmp_path, task_files, DOC_EXAMPLE)

    assert not outcome.evaluation.ok
    messages = " ".join(p.message for p in outcome.evaluation.problems)
    assert "banana" in messages


HOSTILE = {
    "network": (
        "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=5)\n",
        r"^exited with code 1: .*(Network is unreachable|OSError)",
    ),
    "dns": (
        "import socket\nsocket.getaddrinfo('example.org', 443)\n",
        r"^exited with code 1: .*gaierror",
    ),
    "write outside /output": (
        "open('/opt/heldout/scoring/metrics.py', 'a').write('pwned')\n",
        r"^exited with code 1: .*(Read-only file system|Permission denied)",
    ),
    "overwrite its inputs": (
        "open('/input/truth', 'w').write('id,label\\n')\n",
        r"^exited with code 1: .*(Read-only file system|Permission denied)",
    ),
    "gigabytes on stdout": (
        "import sys\nchunk = 'x' * (1 << 20)\nwhile True:\n    sys.stdout.write(chunk)\n",
        r"^exceeded time limit of 8 s$",
    ),
    "a huge output file": (
        "open('/output/big', 'wb').write(b'x' * (10 << 20))\n" + write_scores(VALID_SCORES),
        r"^exceeded the output limit of 1 MiB$",
    ),
    "never ends": ("import time\ntime.sleep(3600)\n", r"^exceeded time limit of 8 s$"),
    "NaN": (
        write_scores('{"public": {"roc_auc": NaN}, "private": {"roc_auc": 0.5}}'),
        r"^the scoring program's output was rejected: scores.json contains NaN",
    ),
    "unknown metrics": (
        write_scores('{"public": {"roc_auc": 1, "secret": 1}, "private": {"roc_auc": 1}}'),
        r"^the scoring program's output was rejected: unknown metric\(s\) 'secret' in public",
    ),
    "garbage JSON": (
        "open('/output/scores.json', 'wb').write(bytes(range(256)))\n",
        r"^the scoring program's output was rejected: scores.json is not valid JSON",
    ),
    "no scores": ("print('done')\n", r"^the scoring program's output was rejected: it wrote no"),
    "a crash": ("raise RuntimeError('boom')\n", r"^exited with code 1: .*RuntimeError: boom"),
}


@pytest.mark.docker
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_program_fails_cleanly_with_a_clear_reason(
    runner, scorer_image, tmp_path, task_files, case
):
    code, reason = HOSTILE[case]
    recorder = RecordingRunner(runner)

    with pytest.raises(SandboxError) as failure:
        run_program(recorder, scorer_image, tmp_path, task_files, code)

    assert re.search(reason, str(failure.value), re.S), str(failure.value)
    (run,) = recorder.runs
    assert len(run.result.log.encode()) <= LIMITS.log_bytes + 200
    if case == "gigabytes on stdout":
        assert run.result.log.startswith("[log truncated: ")
    # The inputs on the host are untouched.
    assert task_files[1].read_text() == factories.truth_csv()


@pytest.mark.docker
def test_a_program_with_a_fork_bomb_is_stopped_by_the_process_limit(
    runner, scorer_image, tmp_path, task_files
):
    code = (
        "import os, time\n"
        "for _ in range(1000):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
    )
    with pytest.raises(SandboxError, match=r"(?s)^exited with code 1: .*BlockingIOError"):
        run_program(runner, scorer_image, tmp_path, task_files, code)


# --- the dry run on upload -------------------------------------------------------------------


@pytest.fixture
def docker_settings(settings, scorer_image):
    settings.HELDOUT_SCORER_IMAGE = scorer_image
    settings.HELDOUT_SCORER_IMAGES = [scorer_image]
    return settings


@pytest.mark.docker
def test_an_uploaded_program_is_dry_run_on_the_sample_and_scores_submissions(
    docker_settings, scorer_image, docker_client, competition, participant, organizer, client
):
    task = competition.task
    client.force_login(organizer)

    pending = task_scorer_set(task=task, uploaded_file=program_upload(DOC_EXAMPLE))
    assert pending is not None

    assert (pending.kind, pending.status) == ("dry_run", "queued")
    assert not Task.objects.get(pk=task.pk).scorer_program  # not until the dry run passes
    page = client.get(f"/c/{competition.slug}/organize/data/").content.decode()
    assert f"Dry run pending (job #{pending.pk})" in page
    assert 'http-equiv="refresh"' in page
    dry_run = _dry_run_result(pending)
    digest = docker_client.images.get(scorer_image).id
    assert dry_run["ok"] is True
    assert dry_run["sample"] == "sample_submission.csv"
    # The sample predicts 0.5 everywhere.
    assert dry_run["scores"]["public"] == {"roc_auc": 0.5, "accuracy": 0.5}
    assert dry_run["image"] == f"{scorer_image}@{digest}"
    task.refresh_from_db()
    assert task.scorer_dry_run == dry_run
    assert task.scorer_image == scorer_image
    assert task.scorer_program_sha256 == dry_run["program_sha256"]
    with task.scorer_program.open("rb") as stored:
        assert stored.read() == DOC_EXAMPLE.encode()
    page = client.get(f"/c/{competition.slug}/organize/data/").content.decode()
    assert f"The latest upload (job #{pending.pk}) passed its dry run" in page
    assert "public ROC AUC 0.5" in page
    assert 'http-equiv="refresh"' not in page

    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED, submission.error_message
    attempt = factories.latest(submission)
    assert (attempt.scorer_name, attempt.scorer_image) == (
        "program",
        f"{scorer_image}@{digest}",
    )
    assert submission.scores.get(split="private", metric="roc_auc").value == 1.0
    assert SandboxRun.objects.get(submission=submission).exit_code == 0


@pytest.mark.docker
def test_a_program_failing_its_dry_run_is_refused_and_the_previous_one_stays(
    docker_settings, competition
):
    task = competition.task
    first = _dry_run_result(task_scorer_set(task=task, uploaded_file=program_upload(DOC_EXAMPLE)))

    task_scorer_set(
        task=task, uploaded_file=program_upload("print('reading')\nraise KeyError('label')\n")
    )
    (refused,) = run_queued_jobs()

    assert refused.status == "failed"
    assert "failed on the sample submission" in refused.message
    assert refused.result["code"] == "scorer_rejected"
    dry_run = refused.result["dry_run"]
    assert dry_run["ok"] is False
    assert dry_run["error"].startswith("exited with code 1: ")
    assert "reading" in dry_run["log"]
    assert "KeyError: 'label'" in dry_run["log"]
    task.refresh_from_db()
    assert task.scorer_program_sha256 == first["program_sha256"]
    assert task.scorer_dry_run == first


@pytest.mark.docker
def test_a_zipped_program_with_helpers_is_accepted(docker_settings, competition):
    helper = "from scoring.evaluate import load_truth\n"
    code = "import json, helper\n" + write_scores(VALID_SCORES.replace("0.5", "0.25"))
    upload = SimpleUploadedFile(
        "scorer.zip", zip_bytes({"scorer/score.py": code, "scorer/helper.py": helper})
    )

    dry_run = _dry_run_result(task_scorer_set(task=competition.task, uploaded_file=upload))

    competition.task.refresh_from_db()
    assert dry_run["scores"] == {"public": {"roc_auc": 0.25}, "private": {"roc_auc": 0.25}}
    assert competition.task.scorer_program.name.endswith(".zip")


@pytest.mark.docker
def test_a_program_that_crashes_on_a_submission_does_not_leak_its_log_to_the_participant(
    docker_settings, competition, participant, organizer, api
):
    # Fine on the sample (0.5 everywhere); prints the labels and crashes on anything else.
    code = (
        "import sys\n"
        "if '0.5' not in open('/input/predictions').read().split()[1]:\n"
        "    print(open('/input/truth').read())\n"
        "    sys.exit(1)\n" + write_scores(VALID_SCORES)
    )
    _dry_run_result(task_scorer_set(task=competition.task, uploaded_file=program_upload(code)))
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )

    submission_score(submission_id=submission.pk)

    mine = api(participant).get(f"/api/v1/submissions/{submission.pk}/").json()
    assert mine["status"] == "failed"
    assert mine["error_message"] == (
        "The scorer exited with code 1 (the scorer's log is shown to the organizers only)"
    )
    assert "id,label,Usage" not in json.dumps(mine)
    theirs = api(organizer).get(f"/api/v1/submissions/{submission.pk}/").json()
    assert "id,label,Usage" in theirs["runs"][0]["log"]


@pytest.mark.django_db
def test_an_image_the_platform_does_not_know_is_refused(settings, competition):
    settings.HELDOUT_SCORER_IMAGES = ["heldout-scorer:known"]

    with pytest.raises(ScorerRejected, match=r"Unknown scorer image 'python:3\.11'"):
        task_scorer_set(
            task=competition.task, uploaded_file=program_upload("pass"), image="python:3.11"
        )
    assert not Task.objects.get(pk=competition.task.pk).scorer_program


@pytest.mark.django_db
def test_an_escaping_zip_is_refused_before_anything_runs(settings, competition):
    settings.HELDOUT_SCORER_IMAGES = [settings.HELDOUT_SCORER_IMAGE]
    upload = SimpleUploadedFile("x.zip", zip_bytes({"score.py": "", "../../evil.py": ""}))

    with pytest.raises(ScorerRejected, match="points outside the program folder"):
        task_scorer_set(task=competition.task, uploaded_file=upload)
    assert not OrganizerJob.objects.exists()  # nothing is left to run


@pytest.mark.django_db
def test_a_task_without_a_sample_submission_cannot_dry_run(settings, competition):
    settings.HELDOUT_SCORER_IMAGES = [settings.HELDOUT_SCORER_IMAGE]
    competition.task.files.all().delete()

    with pytest.raises(ScorerRejected, match="no sample submission"):
        task_scorer_set(task=competition.task, uploaded_file=program_upload("pass"))


def _dry_run_result(job: OrganizerJob | None) -> dict:
    """Run the upload's dry-run job as a worker would; the dry run it recorded."""
    assert job is not None
    (done,) = run_queued_jobs()
    assert done.pk == job.pk
    assert done.status == "done", (done.message, done.result)
    return done.result["dry_run"]


# --- the endpoint ------------------------------------------------------------------------


def _url(competition) -> str:
    return f"/api/v1/competitions/{competition.slug}/scorer/"


@pytest.mark.parametrize(
    "persona", ["participant", "other_participant", "outsider", "other_organizer"]
)
def test_only_the_competitions_organizers_may_see_or_set_its_scorer(
    persona, request, api, competition, other_competition
):
    user = request.getfixturevalue(persona)

    posted = api(user).post(
        _url(competition), {"program": program_upload(DOC_EXAMPLE)}, format="multipart"
    )
    read = api(user).get(_url(competition))

    assert (posted.status_code, read.status_code) == (403, 403)
    assert posted.json()["code"] == "forbidden"
    assert not Task.objects.get(pk=competition.task.pk).scorer_program


def test_an_anonymous_user_is_asked_to_sign_in(api, competition):
    posted = api(None).post(
        _url(competition), {"program": program_upload(DOC_EXAMPLE)}, format="multipart"
    )

    assert posted.status_code == 401
    assert not Task.objects.get(pk=competition.task.pk).scorer_program


def test_an_invite_only_competitions_scorer_is_not_found_by_outsiders(api, competition, outsider):
    Competition.objects.filter(pk=competition.pk).update(
        visibility=Competition.Visibility.INVITE_ONLY
    )

    assert api(outsider).get(_url(competition)).status_code == 404
    posted = api(outsider).post(
        _url(competition), {"program": program_upload(DOC_EXAMPLE)}, format="multipart"
    )
    assert posted.status_code == 404


@pytest.mark.docker
def test_an_organizer_uploads_a_program_and_sees_its_dry_run(
    docker_settings, scorer_image, api, competition, organizer
):
    posted = api(organizer).post(
        _url(competition), {"program": program_upload(DOC_EXAMPLE)}, format="multipart"
    )

    assert posted.status_code == 202, posted.content
    job = posted.json()
    assert (job["kind"], job["status"]) == ("dry_run", "queued")
    assert api(organizer).get(_url(competition)).json()["dry_run_job"]["status"] == "queued"
    run_queued_jobs()
    assert api(organizer).get(job["url"]).json()["status"] == "done"
    body = api(organizer).get(_url(competition)).json()
    assert body["program"] is True
    assert body["image"] == scorer_image
    assert body["dry_run"]["ok"] is True
    assert body["dry_run"]["scores"]["private"]["roc_auc"] == 0.5
    assert body["dry_run_job"]["id"] == job["id"]


@pytest.mark.docker
def test_an_organizer_sees_why_a_program_was_refused(docker_settings, api, competition, organizer):
    posted = api(organizer).post(
        _url(competition),
        {"program": program_upload(write_scores('{"public": {}, "private": {}}'))},
        format="multipart",
    )
    assert posted.status_code == 202
    run_queued_jobs()

    body = api(organizer).get(posted.json()["url"]).json()
    assert body["status"] == "failed"
    assert body["result"]["code"] == "scorer_rejected"
    assert "primary metric 'roc_auc' is missing" in body["message"]
    assert body["result"]["dry_run"]["ok"] is False
    assert api(organizer).get(_url(competition)).json()["program"] is False


@pytest.mark.django_db
def test_the_admin_shows_the_tasks_scorer_and_its_dry_run_read_only(competition, organizer):
    organizer.groups.add(organizers_group_sync())
    Task.objects.filter(pk=competition.task.pk).update(
        scorer_program="scorers/score.py",
        scorer_program_sha256="ab" * 32,
        scorer_image="heldout-scorer:v1",
        scorer_dry_run={"ok": True, "sample": "sample_submission.csv", "scores": {"public": {}}},
        queue="gpu",
    )
    client = Client()
    client.force_login(organizer)

    page = client.get(f"/admin/competitions/task/{competition.task.pk}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert f"Program sha256 {'ab' * 32} on heldout-scorer:v1" in text
    assert "dry run on sample_submission.csv" in text
    assert "gpu" in text
    assert 'name="scorer_program"' not in text  # uploads go through the API, with a dry run


@pytest.mark.docker
def test_a_new_scorer_after_scores_exist_starts_a_new_task_version_and_keeps_old_scores(
    docker_settings, competition, participant, django_capture_on_commit_callbacks
):
    from competitions.models import Score, TaskVersion

    task = competition.task
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk)
    old_scores = set(Score.objects.filter(task_version=1).values_list("split", "metric", "value"))
    assert old_scores

    with django_capture_on_commit_callbacks(execute=False) as queued:
        task_scorer_set(task=task, uploaded_file=program_upload(DOC_EXAMPLE), public=True)
    assert len(queued) == 1  # the dry run, sent to a worker
    outbox = OutboxWatch()
    with django_capture_on_commit_callbacks(execute=False):
        run_queued_jobs()

    task.refresh_from_db()
    assert task.version == 2
    assert task.scorer_program_public is True
    version = TaskVersion.objects.get(task=task, number=2)
    assert version.scorer_program_sha256 == task.scorer_program_sha256
    assert version.note == "scoring program changed"
    # Everything is queued for rescoring under v2; v1's scores stay as they were.
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert outbox.tasks() == [
        "competitions.tasks.leaderboard_intervals_task",
        "judging.tasks.references_compute_task",  # the new version's reference rows
        "scoring.tasks.submission_score_task",
    ]
    assert (
        set(Score.objects.filter(task_version=1).values_list("split", "metric", "value"))
        == old_scores
    )


@pytest.mark.docker
def test_a_first_scorer_before_any_score_stays_in_the_ranked_version(docker_settings, competition):
    from competitions.models import TaskVersion
    from competitions.services.versions import task_version_ensure

    task = competition.task
    task_version_ensure(task=task)

    _dry_run_result(task_scorer_set(task=task, uploaded_file=program_upload(DOC_EXAMPLE)))

    task.refresh_from_db()
    assert task.version == 1
    assert (
        TaskVersion.objects.get(task=task, number=1).scorer_program_sha256
        == task.scorer_program_sha256
    )
