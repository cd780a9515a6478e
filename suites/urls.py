"""The suite pages, under /s/."""

from django.urls import path

from suites import views, views_console, views_downloads

urlpatterns = [
    path("s/", views.suite_list, name="suite-list"),
    path("s/<slug:slug>/", views.suite_detail, name="suite"),
    path("s/<slug:slug>/join/", views.suite_join_view, name="suite-join"),
    path("s/<slug:slug>/matrix/", views.suite_matrix_page, name="suite-matrix"),
    path("s/<slug:slug>/methods/new/", views.method_new, name="suite-method-new"),
    path("s/<slug:slug>/methods/<int:method_id>/", views.method_page, name="suite-method"),
    path(
        "s/<slug:slug>/methods/<int:method_id>/upload/",
        views.method_upload,
        name="suite-method-upload",
    ),
    path(
        "s/<slug:slug>/methods/<int:method_id>/bundle/",
        views_downloads.method_bundle_download,
        name="suite-method-bundle",
    ),
    # The organizer's console (suites/views_console.py).
    path("s/<slug:slug>/organize/", views_console.overview, name="suite-organize"),
    path("s/<slug:slug>/organize/tasks/", views_console.tasks, name="suite-organize-tasks"),
    path(
        "s/<slug:slug>/organize/tasks/<slug:key>/remove/",
        views_console.task_remove,
        name="suite-organize-task-remove",
    ),
    path(
        "s/<slug:slug>/organize/tasks/<slug:key>/move/",
        views_console.task_move,
        name="suite-organize-task-move",
    ),
    path("s/<slug:slug>/organize/phases/", views_console.phases, name="suite-organize-phases"),
    path("s/<slug:slug>/organize/methods/", views_console.methods, name="suite-organize-methods"),
    path(
        "s/<slug:slug>/organize/refresh/",
        views_console.cells_refresh,
        name="suite-organize-refresh",
    ),
]
