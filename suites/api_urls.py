"""The suite API's routes, /api/v1/suites/... (included under /api/v1/ by config/urls.py,
so that the list too answers without its trailing slash), namespace `suites-api`; each
also answers without its trailing slash (competitions/api/routing.py)."""

from django.urls import path

from competitions.api.routing import slash_optional
from suites import api, api_organize, api_phases

app_name = "suites-api"

urlpatterns = [
    path("suites/", api.SuiteListApi.as_view(), name="suite-list"),
    path("suites/<slug:slug>/", api.SuiteDetailApi.as_view(), name="suite-detail"),
    path("suites/<slug:slug>/join/", api.SuiteJoinApi.as_view(), name="suite-join"),
    path("suites/<slug:slug>/matrix/", api.MatrixApi.as_view(), name="suite-matrix"),
    path(
        "suites/<slug:slug>/matrix/refresh/",
        api_organize.MatrixRefreshApi.as_view(),
        name="suite-matrix-refresh",
    ),
    path("suites/<slug:slug>/matrix/csv/", api.MatrixCsvApi.as_view(), name="suite-matrix-csv"),
    path("suites/<slug:slug>/cd-diagram/", api.CdDiagramApi.as_view(), name="suite-cd-diagram"),
    # The organizer's (suites/api_organize.py).
    path(
        "suites/<slug:slug>/tasks/", api_organize.SuiteTaskListApi.as_view(), name="suite-task-list"
    ),
    path(
        "suites/<slug:slug>/tasks/<slug:key>/",
        api_organize.SuiteTaskDetailApi.as_view(),
        name="suite-task-detail",
    ),
    path(
        "suites/<slug:slug>/tasks/<slug:key>/move/",
        api_organize.SuiteTaskMoveApi.as_view(),
        name="suite-task-move",
    ),
    path("suites/<slug:slug>/phases/", api_phases.SuitePhasesApi.as_view(), name="suite-phases"),
    path("suites/<slug:slug>/methods/", api.MethodListCreateApi.as_view(), name="method-list"),
    path(
        "suites/<slug:slug>/methods/<int:method_id>/",
        api.MethodDetailApi.as_view(),
        name="method-detail",
    ),
    path(
        "suites/<slug:slug>/methods/<int:method_id>/submissions/",
        api.MethodSubmitEverywhereApi.as_view(),
        name="method-submit-everywhere",
    ),
    path(
        "suites/<slug:slug>/methods/<int:method_id>/tasks/<slug:key>/submissions/",
        api.MethodTaskSubmitApi.as_view(),
        name="method-task-submit",
    ),
]

urlpatterns = slash_optional(urlpatterns)
