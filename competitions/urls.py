from django.contrib.auth import views as auth_views
from django.urls import path

from competitions import views

urlpatterns = [
    path("", views.competition_list, name="competition-list"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("account/token/", views.token_create, name="token-create"),
    path("account/token/revoke/", views.token_revoke, name="token-revoke"),
    path("c/<slug:slug>/", views.competition_detail, name="competition"),
    path("c/<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
]
