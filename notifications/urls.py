from django.urls import path

from notifications import views

urlpatterns = [
    path("notifications/", views.notifications_page, name="notifications"),
    path("notifications/read/", views.notifications_read_all, name="notifications-read"),
    path(
        "notifications/<int:notification_id>/open/",
        views.notification_open,
        name="notification-open",
    ),
    path("notifications/preferences/", views.preferences, name="notification-preferences"),
]
