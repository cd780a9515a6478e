"""Page numbers and next/previous links for list endpoints that page by hand (their rows
come from selectors, not a queryset DRF's paginator could slice): the same query
parameters (`page`, `page_size`) and absolute `next`/`previous` URLs as DRF's
PageNumberPagination, so a client follows `next` until it is null."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param


def page_params(request: Request, *, default_size: int, max_size: int) -> tuple[int, int]:
    """The requested page (from 1) and page size, clamped; malformed values give defaults."""
    page_size = _int(request.query_params.get("page_size"), default_size, 1, max_size)
    page = _int(request.query_params.get("page"), 1, 1, 10**9)
    return page, page_size


def page_links(request: Request, *, page: int, page_size: int, count: int) -> dict:
    """`next` (null on the last page) and `previous` (null on the first) as absolute URLs
    that keep the request's other parameters."""
    url = request.build_absolute_uri()
    has_next = page * page_size < count
    if page <= 1:
        previous = None
    elif page == 2:
        previous = remove_query_param(url, "page")
    else:
        previous = replace_query_param(url, "page", page - 1)
    return {
        "next": replace_query_param(url, "page", page + 1) if has_next else None,
        "previous": previous,
    }


def page_of(
    request: Request, rows: QuerySet | Sequence[Any], *, default_size: int, max_size: int
) -> tuple[list[Any], dict]:
    """The requested page's rows (a queryset is sliced in SQL: one COUNT, one page query)
    and the envelope without `results`: `count`, `next`, `previous`."""
    page, page_size = page_params(request, default_size=default_size, max_size=max_size)
    count = rows.count() if isinstance(rows, QuerySet) else len(rows)
    offset = (page - 1) * page_size
    items = list(rows[offset : offset + page_size])
    return items, {
        "count": count,
        **page_links(request, page=page, page_size=page_size, count=count),
    }


def _int(raw, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(raw), low), high)
    except (TypeError, ValueError):
        return default


# The query parameters of every paged list, for its OpenAPI operation.
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="The page, from 1"),
    OpenApiParameter("page_size", int, description="Rows a page (clamped to the list's maximum)"),
]
