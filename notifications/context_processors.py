"""The bell's unread count for the site's header (templates/base.html)."""

from __future__ import annotations

from django.http import HttpRequest

from notifications.selectors import notifications_unread_for_request


def bell(request: HttpRequest) -> dict[str, object]:
    """`notifications_unread`: a callable, so only a page that shows the header counts (once
    per request)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def unread() -> int:
        return notifications_unread_for_request(request)

    return {"notifications_unread": unread}
