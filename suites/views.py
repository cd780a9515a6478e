"""The suite pages: the list, a suite's overview with its tasks, the matrix, a method's
page, the method registration form and the owner's upload. Thin: access through
suites/permissions.py, reads through the selectors, writes through suites/services.py."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from competitions.errors import ApplicationError
from competitions.forms import JoinForm
from competitions.markdown import plain_summary, render_markdown
from competitions.permissions import Forbidden, NotFound
from competitions.views.common import AuthenticatedRequest, page_of
from suites import matrix_data, selectors, selectors_web, services
from suites.forms import EVERY_TASK, MethodForm, MethodUploadForm
from suites.matrix_html import matrix_body_kept, wilcoxon_kept
from suites.models import Method, Suite
from suites.permissions import (
    access_method,
    access_suite,
    access_suite_task,
    is_suite_organizer,
)

LIST_PAGE_SIZE = 20


def _suite(request: HttpRequest, slug: str) -> Suite:
    try:
        return access_suite(request.user, slug)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _method(request: HttpRequest, suite: Suite, method_id: int, *, own: bool = False) -> Method:
    try:
        return access_method(request.user, suite, method_id, own=own)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except Forbidden as exc:
        raise PermissionDenied(str(exc)) from exc


def suite_list(request: HttpRequest) -> HttpResponse:
    page_obj = page_of(request, selectors_web.suite_list_for(request.user), LIST_PAGE_SIZE)
    for suite in page_obj:
        suite.summary = plain_summary(suite.description)  # type: ignore[attr-defined]
    return render(request, "suites/list.html", {"page_obj": page_obj, "query": ""})


def _overview(request: HttpRequest, suite: Suite, form: JoinForm, status: int = 200):
    tasks = selectors_web.suite_tasks_with_files(suite, request.user)
    joined = selectors_web.joined_tasks(request.user, suite)
    context = {
        "suite": suite,
        "tasks": tasks,
        "description": render_markdown(suite.description),
        "rules": render_markdown(suite.rules),
        "joined": bool(tasks) and joined >= len(tasks),
        "is_organizer": is_suite_organizer(request.user, suite),
        "methods": selectors_web.suite_methods(suite),
        "phases": selectors_web.suite_schedule(suite),
        "own_phases": selectors_web.schedule_followers(suite)[1],
        "form": form,
    }
    return render(request, "suites/detail.html", context, status=status)


def suite_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _overview(request, _suite(request, slug), JoinForm())


@login_required
@require_POST
def suite_join_view(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    suite = _suite(request, slug)
    form = JoinForm(request.POST)
    if not form.is_valid():
        return _overview(request, suite, form, status=400)
    try:
        services.suite_join(suite=suite, user=request.user, accept_rules=True)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("suite", slug)
    messages.success(request, f"You joined {suite.title}: register a method to submit.")
    return redirect("suite-method-new", slug)


def suite_matrix_page(request: HttpRequest, slug: str) -> HttpResponse:
    suite = _suite(request, slug)
    matrix = selectors.suite_matrix(suite=suite)
    tags = matrix_data.component_tags(matrix)
    tag = request.GET.get("pivot", "").strip().lower()
    tag = tag if tag in tags else ""

    kept = matrix_body_kept(matrix=matrix, tag=tag)
    # The page around the kept body is rendered per request (the header depends on who
    # asks), the body spliced in as the bytes kept: a 500 x 50 matrix is 5 MB, and decoding
    # it into the template and encoding it back cost more than the rest of the read.
    # Whatever the page shows is escaped, so the marker cannot come from its text.
    context = {
        "suite": suite,
        "body": mark_safe(BODY_MARK),
        "tag": tag,
        # The pairwise tests, after the body and only when asked (they are the costly part).
        "can_test": matrix.statistics is not None,
        "wilcoxon": wilcoxon_kept(matrix=matrix) if request.GET.get("tests") == "wilcoxon" else "",
    }
    page = render(request, "suites/matrix.html", context)
    head, tail = page.content.split(BODY_MARK.encode(), 1)
    page.content = b"".join((head, kept, tail))
    return page


BODY_MARK = "<!--suite-matrix-body-->"


@login_required
def method_new(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    suite = _suite(request, slug)
    form = MethodForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                method = services.method_create(
                    suite=suite, owner=request.user, **form.cleaned_data
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Method “{method.name}” registered.")
                return redirect("suite-method", slug, method.pk)
    return render(request, "suites/method_new.html", {"suite": suite, "form": form}, status=status)


def method_page(request: HttpRequest, slug: str, method_id: int) -> HttpResponse:
    suite = _suite(request, slug)
    method = _method(request, suite, method_id)
    return _method_page(request, suite, method, None)


def _method_page(
    request: HttpRequest, suite: Suite, method: Method, form: MethodUploadForm | None, status=200
) -> HttpResponse:
    own = request.user.is_authenticated and method.owner_id == request.user.pk
    if own and form is None:
        form = MethodUploadForm(tasks=list(selectors.suite_tasks(suite)))
    context = {
        "suite": suite,
        "method": method,
        "runs": selectors_web.method_runs(method),
        "own": own,
        "form": form if own else None,
    }
    return render(request, "suites/method.html", context, status=status)


@login_required
@require_POST
def method_upload(request: AuthenticatedRequest, slug: str, method_id: int) -> HttpResponse:
    suite = _suite(request, slug)
    method = _method(request, suite, method_id, own=True)
    form = MethodUploadForm(request.POST, request.FILES, tasks=list(selectors.suite_tasks(suite)))
    if not form.is_valid():
        return _method_page(request, suite, method, form, status=400)
    key, upload = form.cleaned_data["task"], form.cleaned_data["file"]
    try:
        if key == EVERY_TASK:
            runs = services.method_submit_everywhere(
                method=method, user=request.user, uploaded_file=upload
            )
            messages.success(request, f"Submitted to {len(runs)} tasks.")
        else:
            task = access_suite_task(suite, key)
            services.method_submit(
                method=method, task=task, user=request.user, uploaded_file=upload
            )
            messages.success(request, f"Submitted to {task.key}.")
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _method_page(request, suite, method, form, status=400)
    return redirect("suite-method", slug, method.pk)
