"""Downloads of a suite: a method's reproducibility bundle (suites/reproducibility.py).

Anyone who can see the suite may download a method's bundle: it holds manifests as the
reader may read them (no label, no row of any ground truth) and the method's public
description, nothing else. A suite nobody may see answers "not found", as competitions do.
The URL is /s/<slug>/methods/<id>/bundle/ (suites/urls.py), linked from the method's page.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_safe

from competitions.downloads import file_download
from suites.models import Method, Suite
from suites.permissions import can_view_suite
from suites.reproducibility import method_bundle_file, method_bundle_name


def suite_visible(user: User | AnonymousUser, suite: Suite) -> bool:
    """Who may see the suite: suites/permissions.py decides, for every suite URL."""
    return can_view_suite(user, suite)


@require_safe
def method_bundle_download(request: HttpRequest, slug: str, method_id: int) -> HttpResponseBase:
    method = (
        Method.objects.select_related("suite", "owner")
        .filter(suite__slug=slug, pk=method_id)
        .first()
    )
    if method is None or not suite_visible(request.user, method.suite):
        raise Http404("No such method.")
    stream = method_bundle_file(method=method, user=request.user)
    return file_download(request, stream, filename=method_bundle_name(method))
