"""The organizer page that applies a bundle: upload, review the diff, confirm.

The uploaded zip is kept in the private storage between the two steps (named in the
session), and the diff shown is remembered by its digest: if the competition changed in
between, the page shows the new diff and asks again instead of applying something the
organizer did not see.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import uuid
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import storages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from competitions.errors import ApplicationError, BundleInvalid
from competitions.forms import BundleForm
from competitions.permissions import Forbidden, NotFound
from competitions.services.bundle_apply import BundleRefused, bundle_apply
from competitions.services.bundle_diff import BundleDiff
from competitions.views.common import AuthenticatedRequest, posted

STAGED = "bundle_apply_staged"


@login_required
def bundle_apply_page(request: AuthenticatedRequest) -> HttpResponse:
    """Show what applying the uploaded bundle changes; apply it once confirmed."""
    if not request.user.is_staff:
        raise PermissionDenied("Only organizer accounts can apply bundles.")
    form = BundleForm(*posted(request))
    context: dict = {"form": form, "problems": [], "diff": None}
    try:
        if request.method == "POST" and request.POST.get("action") == "apply":
            return _confirm(request, context)
        if request.method == "POST" and form.is_valid():
            staged = private().save(f"bundle_staging/{uuid.uuid4().hex}.zip", form.files["bundle"])
            context["diff"] = _dry_run(request, staged)
            context["staged"] = staged
    except (BundleInvalid, BundleRefused) as exc:
        context["problems"] = exc.extra.get("problems") or [exc.message]
    except ApplicationError as exc:
        context["problems"] = [exc.message]
    except Forbidden as exc:
        raise PermissionDenied(str(exc)) from None
    except NotFound as exc:
        raise Http404(str(exc)) from None
    status = 400 if context["problems"] else 200
    return render(request, "organize/apply.html", context, status=status)


def _confirm(request: AuthenticatedRequest, context: dict) -> HttpResponse:
    staged = request.session.get(STAGED) or {}
    if not staged or request.POST.get("staged") != staged.get("name"):
        context["problems"] = ["Upload the bundle again: the one you reviewed is gone."]
        return render(request, "organize/apply.html", context, status=400)
    with _local_copy(staged["name"]) as path:
        current = bundle_apply(source=path, organizer=request.user, dry_run=True)
        if _digest(current) != staged["digest"]:
            context["diff"] = _dry_run(request, staged["name"])
            context["staged"], context["changed"] = staged["name"], True
            return render(request, "organize/apply.html", context, status=409)
        diff = bundle_apply(source=path, organizer=request.user, dry_run=False)
    private().delete(staged["name"])
    del request.session[STAGED]
    verb = "created" if diff.created else "updated"
    ranked = f" A background job ranks version {diff.version}." if diff.job else ""
    messages.success(request, f"{diff.slug} is {verb} from the bundle.{ranked}")
    return redirect("organize", diff.slug)


def _dry_run(request: AuthenticatedRequest, name: str) -> BundleDiff:
    with _local_copy(name) as path:
        try:
            diff = bundle_apply(source=path, organizer=request.user, dry_run=True)
        except BaseException:
            private().delete(name)
            raise
    earlier = (request.session.get(STAGED) or {}).get("name")
    if earlier and earlier != name:
        private().delete(earlier)  # one staged bundle per session
    if diff.refusals or diff.empty:
        private().delete(name)  # nothing to confirm
        request.session.pop(STAGED, None)
    else:
        request.session[STAGED] = {"name": name, "digest": _digest(diff)}
    return diff


class _local_copy:
    """The staged zip as a local file (the private storage may not be a local disk)."""

    def __init__(self, name: str):
        self.name = name
        self.tmp = tempfile.TemporaryDirectory(prefix="heldout-apply-")

    def __enter__(self) -> Path:
        path = Path(self.tmp.name) / "bundle.zip"
        with private().open(self.name, "rb") as source, path.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        return path

    def __exit__(self, *exc: object) -> None:
        self.tmp.cleanup()


def _digest(diff: BundleDiff) -> str:
    text = json.dumps(dataclasses.asdict(diff), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def private():
    return storages["private"]
