from django.contrib.auth import views as auth_views
from django.urls import path

from competitions import views_entries
from competitions.throttles import AUTH, throttle
from competitions.views import (
    accounts,
    bundles,
    compare,
    console,
    organizer,
    pages,
    submit,
    teams,
    versions,
    webhooks,
)

urlpatterns = [
    path("", pages.competition_list, name="competition-list"),
    # Accounts: Django's own views for logging in and out and resetting a password.
    # Every form that checks a password or sends mail counts in the API's "auth" throttle.
    path("accounts/login/", throttle(AUTH)(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path(
        "accounts/password/change/",
        throttle(AUTH)(auth_views.PasswordChangeView.as_view()),
        name="password_change",
    ),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        throttle(AUTH)(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        throttle(AUTH)(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("account/", accounts.account, name="account"),
    path("account/token/", accounts.token_create, name="token-create"),
    path("account/token/revoke/", accounts.token_revoke, name="token-revoke"),
    path("account/webhooks/", webhooks.webhooks_page, name="webhooks"),
    path(
        "account/webhooks/<int:webhook_id>/<slug:action>/",
        webhooks.webhook_action,
        name="webhook-action",
    ),
    # A competition's tabs.
    path("c/<slug:slug>/", pages.competition_detail, name="competition"),
    path("c/<slug:slug>/data/", pages.competition_data, name="competition-data"),
    path("c/<slug:slug>/rules/", pages.competition_rules, name="competition-rules"),
    path("c/<slug:slug>/join/", pages.competition_join_view, name="competition-join"),
    path("c/<slug:slug>/leaderboard/", pages.leaderboard, name="leaderboard"),
    path("c/<slug:slug>/leaderboard/compare/", compare.compare, name="compare"),
    path("c/<slug:slug>/entries/<int:submission_id>/", views_entries.entry, name="entry"),
    path("c/<slug:slug>/statistics/", pages.competition_stats, name="competition-stats"),
    path("c/<slug:slug>/submit/", submit.submit, name="submit"),
    path("c/<slug:slug>/submissions/", submit.my_submissions, name="my-submissions"),
    path(
        "c/<slug:slug>/submissions/<int:submission_id>/",
        submit.submission_page,
        name="submission-page",
    ),
    path(
        "c/<slug:slug>/submissions/<int:submission_id>/select/",
        submit.submission_select,
        name="submission-select",
    ),
    path("c/<slug:slug>/team/", teams.team, name="team"),
    path("c/<slug:slug>/team/name/", teams.team_rename, name="team-rename"),
    path("c/<slug:slug>/team/invite/", teams.team_invite, name="team-invite"),
    path("c/<slug:slug>/team/leave/", teams.team_leave, name="team-leave"),
    path(
        "c/<slug:slug>/team/invitations/<int:invitation_id>/revoke/",
        teams.invitation_revoke,
        name="invitation-revoke",
    ),
    path("c/<slug:slug>/team/invitations/<str:token>/", teams.invitation, name="invitation"),
    # Organizers.
    path("organize/import/", organizer.bundle_upload, name="bundle-upload"),
    path("organize/apply/", bundles.bundle_apply_page, name="bundle-apply"),
    path("c/<slug:slug>/organize/", organizer.dashboard, name="organize"),
    path("c/<slug:slug>/organize/data/", organizer.data, name="organize-data"),
    path(
        "c/<slug:slug>/organize/versions/", versions.version_create, name="organize-version-create"
    ),
    path(
        "c/<slug:slug>/organize/versions/<int:number>/activate/",
        versions.version_activate,
        name="organize-version-activate",
    ),
    path(
        "c/<slug:slug>/organize/scorer/adopt/", versions.scorer_adopt, name="organize-scorer-adopt"
    ),
    path("c/<slug:slug>/organize/overview/", console.overview, name="organize-overview"),
    path("c/<slug:slug>/organize/phases/", console.phases, name="organize-phases"),
    path(
        "c/<slug:slug>/organize/phases/<int:phase_id>/delete/",
        console.phase_delete,
        name="organize-phase-delete",
    ),
    path("c/<slug:slug>/organize/people/", console.people, name="organize-people"),
    path("c/<slug:slug>/organize/log/", console.log, name="organize-log"),
    path(
        "c/<slug:slug>/organize/submissions/bulk/",
        console.submissions_bulk,
        name="organize-submissions-bulk",
    ),
    path(
        "c/<slug:slug>/organize/submissions/",
        organizer.submissions,
        name="organize-submissions",
    ),
    path("c/<slug:slug>/organize/teams/", organizer.teams, name="organize-teams"),
    path("c/<slug:slug>/organize/shake-up/", organizer.shakeup, name="organize-shakeup"),
    path("c/<slug:slug>/organize/rescore/", organizer.rescore_all, name="organize-rescore"),
    path("c/<slug:slug>/organize/finalize/", organizer.finalize, name="organize-finalize"),
    path(
        "c/<slug:slug>/organize/replications/<int:replication_id>/cancel/",
        organizer.replication_cancel,
        name="organize-replication-cancel",
    ),
    path("c/<slug:slug>/organize/reopen/", organizer.reopen, name="organize-reopen"),
    path("c/<slug:slug>/organize/export/", organizer.export, name="organize-export"),
    path(
        "c/<slug:slug>/organize/submissions/<int:submission_id>/disqualify/",
        organizer.disqualify,
        name="organize-disqualify",
    ),
    path(
        "c/<slug:slug>/organize/submissions/<int:submission_id>/rescore/",
        organizer.rescore,
        name="organize-rescore-one",
    ),
    path("c/<slug:slug>/organize/teams/<int:team_id>/ban/", organizer.ban, name="organize-ban"),
]
