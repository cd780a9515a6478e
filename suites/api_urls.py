"""The suite API's routes, under /api/v1/suites/ (config/urls.py), namespace `suites-api`;
each also answers without its trailing slash (competitions/api/routing.py)."""

from django.urls import path

from competitions.api.routing import slash_optional
from suites import api

app_name = "suites-api"

urlpatterns = [
    path("", api.SuiteListApi.as_view(), name="suite-list"),
    path("<slug:slug>/", api.SuiteDetailApi.as_view(), name="suite-detail"),
    path("<slug:slug>/join/", api.SuiteJoinApi.as_view(), name="suite-join"),
    path("<slug:slug>/matrix/", api.MatrixApi.as_view(), name="suite-matrix"),
    path("<slug:slug>/matrix.csv", api.MatrixCsvApi.as_view(), name="suite-matrix-csv"),
    path("<slug:slug>/cd-diagram.svg", api.CdDiagramApi.as_view(), name="suite-cd-diagram"),
    path("<slug:slug>/methods/", api.MethodListCreateApi.as_view(), name="method-list"),
    path(
        "<slug:slug>/methods/<int:method_id>/",
        api.MethodDetailApi.as_view(),
        name="method-detail",
    ),
    path(
        "<slug:slug>/methods/<int:method_id>/submissions/",
        api.MethodSubmitEverywhereApi.as_view(),
        name="method-submit-everywhere",
    ),
    path(
        "<slug:slug>/methods/<int:method_id>/tasks/<slug:key>/submissions/",
        api.MethodTaskSubmitApi.as_view(),
        name="method-task-submit",
    ),
]

urlpatterns = slash_optional(urlpatterns)
