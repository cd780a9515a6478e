from django.urls import path
from rest_framework.authtoken.views import ObtainAuthToken

from competitions.api import (
    bundles,
    compare,
    competitions,
    jobs,
    organizer,
    phases,
    reproducibility,
    scorers,
    submissions,
    webhooks,
)
from competitions.api import uploads as tus_uploads
from competitions.api.routing import slash_optional
from competitions.throttles import AUTH, ScopeThrottle

app_name = "api"


class TokenApi(ObtainAuthToken):
    """Exchange a username and password for an API token."""

    throttle_classes = [ScopeThrottle]  # shared with the pages' log in (competitions/throttles.py)
    throttle_scope = AUTH


urlpatterns = [
    path("auth/token/", TokenApi.as_view(), name="token"),
    path("competitions/", competitions.CompetitionListApi.as_view(), name="competition-list"),
    path("competitions/import/", organizer.BundleImportApi.as_view(), name="bundle-import"),
    path("competitions/apply/", bundles.BundleApplyApi.as_view(), name="bundle-apply"),
    path(
        "competitions/<slug:slug>/",
        competitions.CompetitionDetailApi.as_view(),
        name="competition-detail",
    ),
    path("competitions/<slug:slug>/join/", competitions.JoinApi.as_view(), name="join"),
    path(
        "competitions/<slug:slug>/files/<str:name>",
        competitions.FileDownloadApi.as_view(),
        name="competition-file",
    ),
    path(
        "competitions/<slug:slug>/ground-truth/",
        competitions.GroundTruthDownloadApi.as_view(),
        name="ground-truth",
    ),
    path(
        "competitions/<slug:slug>/leaderboard/",
        competitions.LeaderboardApi.as_view(),
        name="leaderboard",
    ),
    path(
        "competitions/<slug:slug>/leaderboard/compare/",
        compare.CompareApi.as_view(),
        name="leaderboard-compare",
    ),
    path(
        "competitions/<slug:slug>/phases/",
        phases.PhaseListApi.as_view(),
        name="phase-list",
    ),
    path(
        "competitions/<slug:slug>/phases/<int:phase_id>/",
        phases.PhaseDetailApi.as_view(),
        name="phase-detail",
    ),
    path(
        "competitions/<slug:slug>/versions/",
        reproducibility.TaskVersionListCreateApi.as_view(),
        name="version-list",
    ),
    path(
        "competitions/<slug:slug>/versions/<int:number>/activate/",
        reproducibility.TaskVersionActivateApi.as_view(),
        name="version-activate",
    ),
    path(
        "competitions/<slug:slug>/scorer/workers/",
        reproducibility.ScorerWorkersApi.as_view(),
        name="scorer-workers",
    ),
    path(
        "competitions/<slug:slug>/scorer/adopt/",
        reproducibility.ScorerAdoptApi.as_view(),
        name="scorer-adopt",
    ),
    path(
        "competitions/<slug:slug>/model-index/",
        reproducibility.ModelIndexApi.as_view(),
        name="model-index",
    ),
    path(
        "competitions/<slug:slug>/submissions/",
        submissions.SubmissionListCreateApi.as_view(),
        name="submission-list",
    ),
    path("competitions/<slug:slug>/quota/", submissions.QuotaApi.as_view(), name="quota"),
    path(
        "competitions/<slug:slug>/rescore/", organizer.RescoreAllApi.as_view(), name="rescore-all"
    ),
    path("competitions/<slug:slug>/finalize/", organizer.FinalizeApi.as_view(), name="finalize"),
    path("competitions/<slug:slug>/reopen/", organizer.ReopenApi.as_view(), name="reopen"),
    path("competitions/<slug:slug>/export/", organizer.BundleExportApi.as_view(), name="export"),
    path("competitions/<slug:slug>/scorer/", scorers.TaskScorerApi.as_view(), name="scorer"),
    path("jobs/<int:job_id>/", jobs.OrganizerJobApi.as_view(), name="job-detail"),
    path(
        "competitions/<slug:slug>/teams/<int:team_id>/ban/",
        organizer.TeamBanApi.as_view(),
        name="team-ban",
    ),
    path(
        "submissions/<int:submission_id>/",
        submissions.SubmissionDetailApi.as_view(),
        name="submission-detail",
    ),
    path(
        "submissions/<int:submission_id>/file/",
        submissions.SubmissionFileApi.as_view(),
        name="submission-file",
    ),
    path(
        "submissions/<int:submission_id>/manifest/",
        reproducibility.SubmissionManifestApi.as_view(),
        name="submission-manifest",
    ),
    path(
        "submissions/<int:submission_id>/bundle/",
        reproducibility.SubmissionBundleApi.as_view(),
        name="submission-bundle",
    ),
    path(
        "submissions/<int:submission_id>/replications/",
        reproducibility.SubmissionReplicationListApi.as_view(),
        name="submission-replications",
    ),
    path(
        "submissions/<int:submission_id>/replicate/",
        reproducibility.SubmissionReplicateApi.as_view(),
        name="submission-replicate",
    ),
    path(
        "replications/<int:replication_id>/cancel/",
        reproducibility.ReplicationCancelApi.as_view(),
        name="replication-cancel",
    ),
    path(
        "submissions/<int:submission_id>/select/",
        submissions.SubmissionSelectApi.as_view(),
        name="submission-select",
    ),
    path(
        "submissions/<int:submission_id>/rescore/",
        organizer.SubmissionRescoreApi.as_view(),
        name="submission-rescore",
    ),
    path(
        "submissions/<int:submission_id>/disqualify/",
        organizer.SubmissionDisqualifyApi.as_view(),
        name="submission-disqualify",
    ),
    # Webhooks: docs/api.md#webhooks.
    path("webhooks/", webhooks.WebhookListCreateApi.as_view(), name="webhook-list"),
    path("webhooks/<int:webhook_id>/", webhooks.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "webhooks/<int:webhook_id>/deliveries/",
        webhooks.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path("webhooks/<int:webhook_id>/ping/", webhooks.WebhookPingApi.as_view(), name="webhook-ping"),
    # Resumable (tus) uploads: docs/uploads.md.
    path("uploads/", tus_uploads.UploadCreateApi.as_view(), name="upload-list"),
    path("uploads/<uuid:upload_id>/", tus_uploads.UploadDetailApi.as_view(), name="upload-detail"),
]

# Every route also answers without its trailing slash (never a redirect): see routing.py.
urlpatterns = slash_optional(urlpatterns)
