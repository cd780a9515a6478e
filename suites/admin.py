"""The admin for suites, scoped as competitions/admin.py scopes competitions: a suite's
organizers (staff users) see and edit their own suites and read their methods and runs;
anything else is not in their lists and "not found" by id; superusers see everything.
The organizers, the visibility (which the competitions a suite owns follow: see
services.owned_visibility) and the tasks are the superuser's to change. The suite's phases
are read only here: they change through services_phases.suite_phases_set (the console, the
API), which the tasks' competitions follow."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from suites.models import Method, MethodRun, Suite, SuitePhase, SuiteTask


def _organizes_some(request: HttpRequest) -> bool:
    user = request.user
    return (
        bool(user.is_active and user.is_staff) and Suite.objects.filter(organizers=user.pk).exists()
    )


class SuiteScopedAdmin(admin.ModelAdmin):
    """Rows of the suites the user organizes; `suite_path` leads from the model to its Suite."""

    suite_path = "suite"
    organizer_may_change = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        field = f"{self.suite_path}__organizers" if self.suite_path else "organizers"
        return qs.filter(**{field: request.user.pk}).distinct()

    def _in_scope(self, request: HttpRequest, obj: Model | None) -> bool:
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or _organizes_some(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return True
        return _organizes_some(request) and self._in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return True
        return self.organizer_may_change and self.has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser


class SuiteTaskInline(admin.TabularInline):
    model = SuiteTask
    extra = 0
    fields = ("position", "key", "competition", "owned")
    raw_id_fields = ("competition",)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True  # inside a suite the user may view (SuiteAdmin decided)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser


class SuitePhaseInline(admin.TabularInline):
    """The suite's phases, read only: a change goes through suite_phases_set (the console's
    Phases page, the API), which mirrors it into the tasks the suite made; saving rows here
    would leave their competitions' phases behind."""

    model = SuitePhase
    extra = 0
    fields = readonly_fields = (
        "position",
        "name",
        "start_at",
        "end_at",
        "daily_limit",
        "total_limit",
        "late_submissions_scored",
        "submission_kind",
        "allow_build_context",
    )

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True  # inside a suite the user may view (SuiteAdmin decided)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Suite)
class SuiteAdmin(SuiteScopedAdmin):
    suite_path = ""
    organizer_may_change = True
    list_display = ("slug", "title", "visibility", "created_at")
    search_fields = ("slug", "title")
    filter_horizontal = ("organizers", "invited")
    inlines = [SuitePhaseInline, SuiteTaskInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None):
        if request.user.is_superuser:
            return ()
        return ("slug", "organizers", "visibility", "split_seed", "created_at")


@admin.register(Method)
class MethodAdmin(SuiteScopedAdmin):
    list_display = ("name", "suite", "owner", "created_at")
    list_filter = ("suite",)
    search_fields = ("name",)
    raw_id_fields = ("owner",)


@admin.register(MethodRun)
class MethodRunAdmin(SuiteScopedAdmin):
    suite_path = "method__suite"
    list_display = ("method", "suite_task", "submission", "created_at")
    raw_id_fields = ("method", "suite_task", "submission")
