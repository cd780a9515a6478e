from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from competitions.api.routing import slash_optional
from competitions.ops.health import healthz, readyz
from competitions.ops.metrics import metrics
from competitions.throttles import AUTH, throttle
from competitions.views.site import favicon

urlpatterns = [
    # For balancers, orchestrators and Prometheus (docs/production.md#health-checks-and-metrics).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    # The admin's log in counts in the API's "auth" throttle too; this route shadows the
    # admin's own, which `admin:login` still names.
    path("admin/login/", throttle(AUTH)(admin.site.login)),
    path("admin/", admin.site.urls),
    # Benchmark suites (issue 12): their own app and namespace, `suites-api`.
    path("api/v1/", include("suites.api_urls")),
    path("api/v1/", include("competitions.api.urls")),
    *slash_optional(
        [
            path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
            path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
        ]
    ),
    path("", include("notifications.urls")),
    path("", include("suites.urls")),
    path("", include("competitions.urls")),
]

# Error pages a person understands (templates/errors/); JSON under /api/.
handler400 = "competitions.views.errors.bad_request"
handler403 = "competitions.views.errors.forbidden"
handler404 = "competitions.views.errors.not_found"
handler500 = "competitions.views.errors.server_error"
