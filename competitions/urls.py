from django.contrib.auth import views as auth_views
from django.urls import path

from competitions.views import accounts, pages

urlpatterns = [
    path("", pages.competition_list, name="competition-list"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", accounts.account, name="account"),
    path("account/token/", accounts.token_create, name="token-create"),
    path("account/token/revoke/", accounts.token_revoke, name="token-revoke"),
    path("c/<slug:slug>/", pages.competition_detail, name="competition"),
    path("c/<slug:slug>/leaderboard/", pages.leaderboard, name="leaderboard"),
]
