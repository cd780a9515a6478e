"""Prometheus metrics at /metrics, read from the database (and the workers' beats from the
shared cache, competitions/ops/workers.py) at each scrape, so one web process reports the
whole platform (workers on other hosts included) and nothing is lost when a process
restarts.

Protected by a bearer token: with HELDOUT_METRICS_TOKEN empty /metrics does not exist
(404); otherwise a scrape must send `Authorization: Bearer <token>` (403 if not).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

# Scoring durations (seconds) are bucketed over the submissions finished in this window.
DURATION_WINDOW = timedelta(hours=1)
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


def _queue_depth() -> Metric:
    from competitions.models import OrganizerJob, Replication, Submission

    family = GaugeMetricFamily(
        "heldout_queue_depth",
        "Work waiting or running, by kind (submission, replication, job) and worker queue.",
        labels=["queue", "status", "kind"],
    )
    waiting = ["queued", "running"]
    # Where each kind's queue is read, first non-empty wins (then the default queue), as
    # the code that sends them decides (competitions.selectors_runs.replication_queue).
    sources: list[tuple[str, QuerySet, list[str]]] = [
        ("submission", Submission.objects.all(), ["competition__task__queue"]),
        (
            "replication",
            Replication.objects.all(),
            ["queue", "submission__competition__task__queue"],
        ),
        ("job", OrganizerJob.objects.all(), []),
    ]
    for kind, rows, queue_fields in sources:
        counted = rows.filter(status__in=waiting).values("status", *queue_fields)
        for row in counted.annotate(n=Count("pk")):
            chosen = [row[f] for f in queue_fields if row[f]]
            queue = chosen[0] if chosen else settings.CELERY_TASK_DEFAULT_QUEUE
            family.add_metric([queue, row["status"], kind], row["n"])
    return family


def _durations() -> Metric:
    from competitions.models import Attempt

    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    seconds = [
        d.total_seconds()
        for d in Attempt.objects.filter(  # index attempt_finished
            finished_at__gte=timezone.now() - DURATION_WINDOW,
            started_at__isnull=False,
            outcome__in=[Attempt.Outcome.SCORED, Attempt.Outcome.FAILED],
        )
        .annotate(took=took)
        .values_list("took", flat=True)
        if d is not None
    ]
    buckets = [(floatToGoString(b), sum(1 for s in seconds if s <= b)) for b in DURATION_BUCKETS]
    buckets.append(("+Inf", len(seconds)))
    family = GaugeHistogramMetricFamily(
        "heldout_scoring_duration_seconds",
        "Time from claim to result of the submissions finished in the last hour.",
    )
    family.add_metric([], buckets, gsum_value=sum(seconds))
    return family


def _failures() -> Metric:
    from competitions.models import Submission

    family = GaugeMetricFamily(
        "heldout_submissions_failed",
        "Failed submissions, by reason (invalid, error, platform).",
        labels=["reason"],
    )
    rows = Submission.objects.filter(status="failed").values("failure").annotate(n=Count("pk"))
    counts = {row["failure"] or "unknown": row["n"] for row in rows}
    # Every reason from the first scrape on, so a rate() over a new one starts at zero.
    for reason in Submission.Failure.values:
        if reason:
            counts.setdefault(reason, 0)
    for reason, n in sorted(counts.items()):
        family.add_metric([reason], n)
    return family


def _heartbeats() -> Iterator[Metric]:
    """Per kind of claimed work: the stalest sign of life among the running rows (their
    heartbeat, or their start before the first beat, as the reaper reads them) and how many
    are past HELDOUT_RECOVER_AFTER_S, i.e. whose worker died and the reaper has not yet
    requeued them (a count that stays up means the reaper itself is not running)."""
    from competitions.models import Attempt, OrganizerJob, Replication

    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S)
    oldest = GaugeMetricFamily(
        "heldout_oldest_heartbeat_age_seconds",
        "Age of the stalest heartbeat among running work, by kind (0: none running); past "
        "HELDOUT_RECOVER_AFTER_S its worker is presumed dead.",
        labels=["kind"],
    )
    stale = GaugeMetricFamily(
        "heldout_stale_heartbeats",
        "Running work whose heartbeat is older than HELDOUT_RECOVER_AFTER_S, by kind.",
        labels=["kind"],
    )
    running: dict[str, QuerySet] = {
        # A submission's claim is its running attempt (index attempt_running_heartbeat).
        "submission": Attempt.objects.filter(outcome=Attempt.Outcome.RUNNING),
        "replication": Replication.objects.filter(status="running"),
        "job": OrganizerJob.objects.filter(status="running"),
    }
    for kind, rows in running.items():
        alive = rows.annotate(alive_at=Coalesce("heartbeat_at", "started_at"))
        stats = alive.aggregate(
            at=Min("alive_at"), stale=Count("pk", filter=Q(alive_at__lt=stale_before))
        )
        oldest.add_metric([kind], (now - stats["at"]).total_seconds() if stats["at"] else 0.0)
        stale.add_metric([kind], stats["stale"])
    yield oldest
    yield stale


def _workers() -> Iterator[Metric]:
    from competitions.ops.workers import worker_beats

    now = time.time()
    ages = {name: max(0.0, now - at) for name, at in worker_beats().items()}
    family = GaugeMetricFamily(
        "heldout_worker_heartbeat_age_seconds",
        "Seconds since each Celery worker's last beat (every HELDOUT_HEARTBEAT_S while it "
        "runs); a worker silent for an hour is no longer listed.",
        labels=["worker"],
    )
    for name, age in sorted(ages.items()):
        family.add_metric([name], age)
    yield family
    yield GaugeMetricFamily(
        "heldout_workers_alive",
        "Celery workers whose last beat is younger than HELDOUT_RECOVER_AFTER_S.",
        value=sum(1 for age in ages.values() if age < settings.HELDOUT_RECOVER_AFTER_S),
    )


def _outbox() -> Iterator[Metric]:
    from competitions.models import OutboxMessage

    unsent = OutboxMessage.objects.filter(sent_at__isnull=True)
    stats = unsent.aggregate(n=Count("pk"), oldest=Min("created_at"))
    yield GaugeMetricFamily(
        "heldout_outbox_backlog", "Messages not yet handed to the broker.", value=stats["n"]
    )
    age = (timezone.now() - stats["oldest"]).total_seconds() if stats["oldest"] else 0.0
    yield GaugeMetricFamily(
        "heldout_outbox_oldest_age_seconds", "Age of the oldest unsent message.", value=age
    )


class DatabaseCollector:
    def collect(self) -> Iterator[Metric]:
        yield _queue_depth()
        yield _durations()
        yield _failures()
        yield from _heartbeats()
        yield from _workers()
        yield from _outbox()


def _authorized(request: HttpRequest) -> bool:
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {settings.HELDOUT_METRICS_TOKEN}"
    return hmac.compare_digest(given.encode(), expected.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.HELDOUT_METRICS_TOKEN:
        raise Http404("Metrics are off: set HELDOUT_METRICS_TOKEN.")
    if not _authorized(request):
        return HttpResponse("A bearer token is required.", status=403, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())  # type: ignore[arg-type]
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
