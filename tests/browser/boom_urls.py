"""The site's URLs plus one view that fails, to see the 500 page a visitor gets."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config import urls as site


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug, on purpose")


urlpatterns = [path("boom/", boom), path("api/v1/boom/", boom), *site.urlpatterns]
handler400 = site.handler400
handler403 = site.handler403
handler404 = site.handler404
handler500 = site.handler500
