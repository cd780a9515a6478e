"""The Django admin, scoped so that an organizer only ever sees their own competitions.

An organizer is a user with is_staff in the "Organizers" group (see organizers_group_sync);
superusers see everything. Every ModelAdmin here filters its queryset by the
competition's organizers and answers "not found" for anything outside it, as the rest of
the site does. Private files (ground truth, submissions) are shown by hash and size, never
linked. Writes go through the services, so the admin keeps leaderboards consistent.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from competitions.admin_forms import (
    CompetitionAdminForm,
    PhaseInlineForm,
    PhaseInlineFormSet,
    TeamAdminForm,
)
from competitions.csvsafe import csv_writer
from competitions.errors import ApplicationError
from competitions.models import (
    Attempt,
    Competition,
    CompetitionEvent,
    Membership,
    Phase,
    ReferenceResult,
    Score,
    Submission,
    Task,
    TaskFile,
    Team,
)
from competitions.selectors import leaderboard_page
from competitions.services.bundles import BundleInvalid, bundle_import
from competitions.services.submissions import (
    submission_cancel,
    submission_rescore,
    submission_set_disqualified,
)
from competitions.services.teams import team_rename_by_organizer, team_set_banned

ORGANIZERS_GROUP = "Organizers"
# What the Organizers group may do in the admin; the querysets below narrow it to the
# competitions each organizer runs. add_competition is what lets them import a bundle.
ORGANIZER_PERMISSIONS = [
    "add_competition", "view_competition", "change_competition",
    "view_task", "change_task",
    "add_taskfile", "view_taskfile", "change_taskfile", "delete_taskfile",
    "add_phase", "view_phase", "change_phase", "delete_phase",
    "view_team", "change_team", "view_membership",
    "view_submission", "change_submission", "view_score",
    "view_referenceresult",
]  # fmt: skip


def organizers_group_sync() -> Group:
    """Create the Organizers group, or reset its permissions to ORGANIZER_PERMISSIONS."""
    group, _ = Group.objects.get_or_create(name=ORGANIZERS_GROUP)
    permissions = Permission.objects.filter(
        content_type__app_label="competitions", codename__in=ORGANIZER_PERMISSIONS
    )
    group.permissions.set(permissions)
    return group


def _size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024:
            return f"{size:g} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size:.1f} GiB"


def _staff(request: HttpRequest) -> User:
    # admin_view lets only signed-in staff through.
    assert isinstance(request.user, User)
    return request.user


# The admin is for site staff; organizers work in the Organize tab (the organizer console).
admin.site.site_header = "Heldout administration"
admin.site.site_title = "Heldout administration"
admin.site.index_title = "Heldout administration"


class OrganizerScopedAdmin(admin.ModelAdmin):
    """Rows of the competitions the user organizes; everything for superusers.

    `competition_path` is the lookup from the model to its Competition ("" for Competition).
    An out-of-scope object is "not found" (404) rather than the admin's redirect.
    """

    competition_path = "competition"

    def _lookup(self, field: str) -> str:
        return f"{self.competition_path}__{field}" if self.competition_path else field

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{self._lookup("organizers"): request.user.pk})

    def _in_scope(self, request: HttpRequest, obj: Model | None) -> bool:
        if obj is None or request.user.is_superuser:
            return True
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_view_permission(request, obj) and self._in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_change_permission(request, obj) and self._in_scope(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._in_scope(request, obj)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if not request.user.is_superuser and db_field.related_model is Competition:
            kwargs["queryset"] = Competition.objects.filter(organizers=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _404_unless_visible(self, request: HttpRequest, object_id: str) -> None:
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("Not found.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._404_unless_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._404_unless_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._404_unless_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)


class ReasonActionForm(ActionForm):
    """The action bar with a reason, used by the disqualify and ban actions."""

    reason = forms.CharField(required=False, max_length=300, label="Reason (disqualify/ban)")


def _run_each(modeladmin, request, queryset, service, verb: str) -> None:
    """Call `service(obj)` on each selected row, reporting successes and refusals (the
    service's own sentence, once for all the rows it refused alike)."""
    done = 0
    refused: dict[str, list[str]] = {}
    for obj in queryset:
        try:
            service(obj)
            done += 1
        except ApplicationError as exc:
            refused.setdefault(exc.message, []).append(str(obj))
    for message, objs in refused.items():
        modeladmin.message_user(request, f"{', '.join(objs)}: {message}", messages.WARNING)
    if done:
        modeladmin.message_user(request, f"{verb} {done} of {len(queryset)}.", messages.SUCCESS)


# --- competitions ----------------------------------------------------------------------


class TaskInline(admin.StackedInline):
    """Read-only here: the scoring fields change only with a new task version (re-import)."""

    model = Task
    can_delete = False
    show_change_link = True
    fields = readonly_fields = (
        "task_type", "id_column", "target_columns", "classes", "primary_metric",
        "secondary_metrics", "ground_truth_info", "version", "queue", "scorer_info",
    )  # fmt: skip

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Ground truth")
    def ground_truth_info(self, task: Task) -> str:
        return f"sha256 {task.ground_truth_sha256}, {_size(task.ground_truth_size)} (never downloadable here)"

    @admin.display(description="Scorer")
    def scorer_info(self, task: Task) -> str:
        # Uploaded through POST /api/v1/competitions/<slug>/scorer/ (docs/scorers.md).
        if not task.scorer_program:
            return "Built-in scorer"
        run = task.scorer_dry_run or {}
        return (
            f"Program sha256 {task.scorer_program_sha256} on {task.scorer_image}; "
            f"dry run on {run.get('sample')}: {run.get('scores')} "
            f"in {run.get('duration_s')} s ({run.get('ran_at')})"
        )


class PhaseInline(admin.TabularInline):
    model = Phase
    form = PhaseInlineForm
    formset = PhaseInlineFormSet
    extra = 0
    fields = [
        "name",
        "start_at",
        "end_at",
        "daily_limit",
        "total_limit",
        "late_submissions_scored",
        "board_metrics",
        "task_version",
    ]


class CompetitionEventInline(admin.TabularInline):
    """The finalize/reopen audit trail: read only (the Organize tab finalizes and reopens)."""

    model = CompetitionEvent
    extra = 0
    fields = ("at", "kind", "by", "reason", "ended_phases")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BundleImportForm(forms.Form):
    bundle = forms.FileField(help_text="A zip holding competition.yaml and the files it names.")


@admin.register(Competition)
class CompetitionAdmin(OrganizerScopedAdmin):
    competition_path = ""
    list_display = ["title", "slug", "visibility", "start_at", "end_at", "finalized_at"]
    list_filter = ["visibility"]
    search_fields = ["title", "slug"]
    readonly_fields = ["slug", "finalized_at", "reopened_at", "reopen_reason", "created_at"]
    filter_horizontal = ["organizers", "invited"]
    inlines = [TaskInline, PhaseInline, CompetitionEventInline]
    form = CompetitionAdminForm
    actions = ["leaderboard_csv"]

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return self.readonly_fields
        # Only a superuser adds or removes organizers.
        return [*self.readonly_fields, "organizers"]

    def has_add_permission(self, request) -> bool:
        # A competition needs a task and ground truth: it is created by importing a bundle.
        return False

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_bundle_view)
        return [path("import/", view, name="competitions_competition_import"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        can_import = request.user.has_perm("competitions.add_competition")
        return super().changelist_view(request, {**(extra_context or {}), "can_import": can_import})

    def import_bundle_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("competitions.add_competition"):
            raise PermissionDenied
        form = BundleImportForm(request.POST or None, request.FILES or None)
        problems: list[str] = []
        if request.method == "POST" and form.is_valid():
            with tempfile.TemporaryDirectory(prefix="heldout-admin-import-") as workdir:
                source = Path(workdir) / "bundle.zip"
                with open(source, "wb") as out:
                    for chunk in form.cleaned_data["bundle"].chunks():
                        out.write(chunk)
                try:
                    competition = bundle_import(source=source, organizer=_staff(request))
                except BundleInvalid as exc:
                    problems = exc.problems
                else:
                    self.message_user(request, f"Imported “{competition}”.", messages.SUCCESS)
                    return redirect("admin:competitions_competition_change", competition.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import a competition bundle",
            "form": form,
            "problems": problems,
        }
        return TemplateResponse(
            request, "admin/competitions/competition/import_bundle.html", context
        )

    @admin.action(description="Download leaderboards as CSV", permissions=["view"])
    def leaderboard_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        competitions = list(queryset.select_related("task").order_by("slug"))
        metrics: list[str] = []
        for competition in competitions:
            for name in (competition.task.primary_metric, *competition.task.secondary_metrics):
                if name not in metrics:
                    metrics.append(name)
        name = competitions[0].slug if len(competitions) == 1 else "leaderboards"
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        writer = csv_writer(response)  # formula cells neutralized (csvsafe.py)
        header = ["competition", "split", "rank", "team", "score", *metrics]
        writer.writerow([*header, "submission", "submitted_at", "entries"])
        for competition in competitions:
            for split in Score.Split.values:
                # The selector's order: best sort_key first, the earlier submission on ties.
                page = leaderboard_page(competition=competition, split=split, limit=None)
                for row in page.rows:
                    writer.writerow(
                        [competition.slug, split, row.rank, row.team, row.score]
                        + [row.scores.get(m, "") for m in metrics]
                        + [row.submission_id, row.submitted_at.isoformat(), row.entries]  # type: ignore[attr-defined]
                    )
        return response


class TaskFileInline(admin.TabularInline):
    model = TaskFile
    extra = 0
    fields = ["kind", "name", "description", "file", "released_with", "sha256", "size"]
    readonly_fields = ["sha256", "size"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # Only this competition's phases (TaskFile.clean refuses others anyway).
        field = formset.form.base_fields.get("released_with")
        if isinstance(field, forms.ModelChoiceField):
            phases = Phase.objects.filter(competition_id=obj.competition_id) if obj else None
            field.queryset = phases if phases is not None else Phase.objects.none()
        return formset


@admin.register(Task)
class TaskAdmin(OrganizerScopedAdmin):
    """The public files of a task. The ground truth is shown by hash and size only."""

    list_display = ["competition", "task_type", "primary_metric", "version"]
    fields = readonly_fields = (*TaskInline.fields, "competition")
    inlines = [TaskFileInline]
    ground_truth_info = TaskInline.ground_truth_info
    scorer_info = TaskInline.scorer_info

    def has_add_permission(self, request) -> bool:
        return False

    def save_formset(self, request, form, formset, change) -> None:
        files = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for task_file in files:
            task_file.save()  # stores the upload, so it can be hashed from storage
            sha = hashlib.sha256()
            with task_file.file.open("rb") as stored:
                for chunk in stored.chunks():
                    sha.update(chunk)
            task_file.sha256 = sha.hexdigest()
            task_file.size = task_file.file.size
            task_file.save(update_fields=["sha256", "size"])


# --- submissions and teams -------------------------------------------------------------


class ScoreInline(admin.TabularInline):
    model = Score
    extra = 0
    can_delete = False
    fields = readonly_fields = ("task_version", "split", "metric", "value", "created_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class AttemptInline(admin.StackedInline):
    """Each claim of the submission by a worker, as recorded; read only."""

    model = Attempt
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "number", "outcome", "worker", "queued_at", "started_at", "heartbeat_at",
        "finished_at", "duration_s", "peak_memory_bytes", "scorer_name", "scorer_image",
        "scorer_log",
    )  # fmt: skip

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Submission)
class SubmissionAdmin(OrganizerScopedAdmin):
    list_display = [
        "id", "competition", "team", "submitter", "status", "failure",
        "is_late", "is_disqualified", "created_at",
    ]  # fmt: skip
    list_filter = [
        "status", "failure", ("competition", admin.RelatedOnlyFieldListFilter),
        "is_late", "is_disqualified",
    ]  # fmt: skip
    list_select_related = ["competition", "team", "submitter"]
    search_fields = ["original_name", "team__name", "submitter__username", "sha256", "method_name"]
    # Everything is read-only: state changes go through the actions (and so the services).
    fields = readonly_fields = (
        "competition", "phase", "team", "submitter", "file_info", "original_name", "sha256",
        "size", "method_name", "description", "paper_url", "code_url", "status", "failure",
        "error_message", "problems", "total_problems", "is_late", "is_disqualified",
        "disqualified_reason", "is_selected", "created_at", "queued_at", "task_version",
    )  # fmt: skip
    inlines = [ScoreInline, AttemptInline]
    action_form = ReasonActionForm
    actions = ["rescore", "disqualify", "requalify", "cancel"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="File")
    def file_info(self, submission: Submission) -> str:
        # A private file: never linked from the admin.
        return f"{submission.original_name} (sha256 {submission.sha256}, {_size(submission.size)})"

    @admin.action(description="Rescore under the current task version", permissions=["change"])
    def rescore(self, request, queryset) -> None:
        queryset = queryset.select_related("competition__task")
        _run_each(
            self,
            request,
            queryset,
            lambda s: submission_rescore(submission=s, by=request.user),
            "Queued",
        )

    @admin.action(description="Disqualify (give a reason)", permissions=["change"])
    def disqualify(self, request, queryset) -> None:
        # The service refuses an empty reason, with the same sentence as the API and pages.
        reason = request.POST.get("reason", "")
        _run_each(
            self, request, queryset.select_related("team"),
            lambda s: submission_set_disqualified(
                submission=s, disqualified=True, reason=reason, by=request.user
            ),
            "Disqualified",
        )  # fmt: skip

    @admin.action(description="Lift disqualification", permissions=["change"])
    def requalify(self, request, queryset) -> None:
        _run_each(
            self, request, queryset.select_related("team"),
            lambda s: submission_set_disqualified(
                submission=s, disqualified=False, by=request.user
            ),
            "Requalified",
        )  # fmt: skip

    @admin.action(description="Cancel (queued only)", permissions=["change"])
    def cancel(self, request, queryset) -> None:
        _run_each(self, request, queryset, lambda s: submission_cancel(submission=s), "Cancelled")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    can_delete = False
    fields = readonly_fields = ("user", "accepted_rules_at", "joined_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Team)
class TeamAdmin(OrganizerScopedAdmin):
    list_display = ["name", "competition", "is_banned", "banned_reason", "created_at"]
    list_filter = ["is_banned", ("competition", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["competition"]
    search_fields = ["name", "members__username"]
    fields = ["name", "competition", "is_banned", "banned_reason", "created_at"]
    # Banning goes through the actions, which refresh the leaderboard.
    readonly_fields = ["competition", "is_banned", "banned_reason", "created_at"]
    inlines = [MembershipInline]
    form = TeamAdminForm
    action_form = ReasonActionForm
    actions = ["ban", "unban"]

    def save_model(self, request, obj, form, change) -> None:
        # Only the name is editable here; it goes through the service (freeze, clash race).
        try:
            team_rename_by_organizer(team=obj, name=form.cleaned_data["name"])
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Ban (give a reason)", permissions=["change"])
    def ban(self, request, queryset) -> None:
        reason = request.POST.get("reason", "").strip()
        _run_each(
            self, request, queryset,
            lambda t: team_set_banned(team=t, banned=True, reason=reason, by=request.user),
            "Banned",
        )  # fmt: skip

    @admin.action(description="Unban", permissions=["change"])
    def unban(self, request, queryset) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda t: team_set_banned(team=t, banned=False, by=request.user),
            "Unbanned",
        )


@admin.register(ReferenceResult)
class ReferenceResultAdmin(OrganizerScopedAdmin):
    """The board's reference rows as the worker recorded them, with the full reason of a
    failure (the board says only that it failed). Read only: a worker writes them."""

    list_display = ["competition", "task_version", "kind", "status", "reason", "computed_at"]
    list_filter = ["status", "kind", ("competition", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["competition"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
