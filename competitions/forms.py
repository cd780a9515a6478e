"""Forms of the server-rendered pages. They check input only; writes go through services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from competitions.models import Competition, Phase, Task
from scoring.metrics import metric_get


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        help_text="Used only to reset your password.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class CompetitionFilterForm(forms.Form):
    STATUS_CHOICES = [
        ("", "Any status"),
        ("open", "Open"),
        ("upcoming", "Upcoming"),
        ("finished", "Finished"),
    ]

    q = forms.CharField(label="Search", required=False, max_length=100)
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    task_type = forms.ChoiceField(
        label="Task type", choices=[("", "Any task type"), *Task.Type.choices], required=False
    )


class JoinForm(forms.Form):
    accept_rules = forms.BooleanField(label="I have read the rules and accept them", required=True)


class SubmissionForm(forms.Form):
    file = forms.FileField(
        label="Predictions file",
        help_text="CSV, gzipped CSV or Parquet with the columns of the sample submission.",
        allow_empty_file=True,
        # Not required by the form: the page's script sends the file as a resumable upload
        # and posts `upload` instead; the browser still asks for a file without the script.
        required=False,
        widget=forms.ClearableFileInput(attrs={"required": True}),
    )
    upload = forms.UUIDField(required=False, widget=forms.HiddenInput)
    method_name = forms.CharField(label="Method name", max_length=200, required=False)
    description = forms.CharField(
        label="Description",
        max_length=10_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    paper_url = forms.URLField(label="Paper URL", required=False, assume_scheme="https")
    code_url = forms.URLField(label="Code URL", required=False, assume_scheme="https")
    hardware_declared = forms.CharField(
        label="Hardware used for training",
        max_length=300,
        required=False,
        help_text="As you would report it, e.g. “one A100 40 GB for 3 hours”.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload is not None and upload.size > settings.HELDOUT_MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than the upload limit.")
        return upload

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if not cleaned.get("file") and not cleaned.get("upload") and "file" not in self.errors:
            self.add_error("file", "Choose a file to submit.")
        return cleaned


class TeamNameForm(forms.Form):
    name = forms.CharField(label="Team name", max_length=100)


class InviteForm(forms.Form):
    username = forms.CharField(
        label="Username to invite",
        max_length=150,
        required=False,
        help_text="Leave empty to make a link anyone who can see the competition can use once.",
    )


class AcceptInvitationForm(forms.Form):
    accept_rules = forms.BooleanField(
        label="I have read the competition's rules and accept them", required=False
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300, required=False)


class BundleForm(forms.Form):
    bundle = forms.FileField(
        label="Bundle (zip)",
        help_text="A zip holding competition.yaml and the files it names (docs/bundle.md).",
    )


class LimitsForm(forms.ModelForm):
    """The limits' rules are the model's (Competition.clean, competitions/rules.py)."""

    class Meta:
        model = Competition
        fields = ["selection_limit", "max_team_size", "public_board"]
        labels = {
            "selection_limit": "Submissions a team may select for the private board",
            "max_team_size": "Largest team size",
            "public_board": "Public leaderboard",
        }
        help_texts = {
            "selection_limit": "",
            "max_team_size": "",
            "public_board": "The Ladder shows a team a new public score only when it beats the "
            "team's shown score by more than the noise of the public rows (docs/leaderboard.md).",
        }

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # Left out of a post: the board stays as it is (the model keeps its value).
        self.fields["public_board"].required = False


class TieRuleForm(forms.ModelForm):
    """How ties are resolved for prizes; the rules are the model's (rules.tie_rule_problems)."""

    class Meta:
        model = Competition
        fields = ["tie_rule", "tie_break_metric"]
        labels = {"tie_rule": "Ties for prizes", "tie_break_metric": "Tie-break metric"}
        help_texts = {"tie_break_metric": "Only when a tie-break metric decides."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        metrics = self.instance.task.secondary_metrics  # the ones the task computes
        self.fields["tie_break_metric"] = forms.ChoiceField(
            label="Tie-break metric",
            choices=[("", "none")] + [(m, metric_get(m).label) for m in metrics],
            required=False,
            help_text="Only when a tie-break metric decides: one the task computes.",
        )


class PhaseForm(forms.ModelForm):
    """The phase rules are the model's (Phase.clean, competitions/rules.py), overlap included."""

    class Meta:
        model = Phase
        fields = ["name", "start_at", "end_at", "daily_limit", "total_limit"]
        fields += ["late_submissions_scored"]
        labels = {
            "start_at": "Starts (UTC)",
            "end_at": "Ends (UTC, empty: never)",
            "daily_limit": "Submissions per team per UTC day",
            "total_limit": "Submissions per team in the phase (empty: no limit)",
            "late_submissions_scored": "After the end, accept submissions (scored, never ranked)",
        }
        help_texts = {"daily_limit": "", "late_submissions_scored": ""}
        widgets = {
            "start_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
            "end_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
        }


class PhaseVersionForm(forms.Form):
    """The task version a phase pins; the rules are the model's (Phase.clean), applied by
    services/phase_versions.py's phase_version_set."""

    task_version = forms.TypedChoiceField(
        label="Task version",
        coerce=int,
        empty_value=None,
        required=False,
        help_text="The phase's submissions are scored under this version, and while the "
        "phase is open the leaderboard ranks it (switching the ranked version by hand is "
        "refused then).",
    )

    def __init__(self, *args, versions: list[tuple[int, str]], ranked: int, **kwargs):
        """`versions`: the task's (number, note), oldest first; `ranked`: the ranked one."""
        super().__init__(*args, **kwargs)
        field = self.fields["task_version"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", f"None: the ranked version (now {ranked})")] + [
            (number, f"Version {number}" + (f": {note}" if note else ""))
            for number, note in versions
        ]


class GroundTruthForm(forms.Form):
    ground_truth = forms.FileField(
        label="New ground truth",
        help_text="The same columns as now (with a Usage column for the split, if any).",
    )
    note = forms.CharField(label="What changed", max_length=300, required=False)
    activate = forms.BooleanField(
        label="Rank the leaderboard by it now and rescore every submission", required=False
    )


class CompetitionDetailsForm(forms.ModelForm):
    """What participants read, the announced dates and who may see the competition; the
    rules are the model's (Competition.clean, competitions/rules.py)."""

    reason = forms.CharField(
        label="Why (for the log, optional)",
        max_length=300,
        required=False,
        help_text="The organizers' log records who changed what and when, with this note.",
    )

    class Meta:
        model = Competition
        fields = ["title", "description", "rules", "prize", "visibility", "start_at", "end_at"]
        labels = {
            "description": "Overview (Markdown)",
            "rules": "Rules (Markdown)",
            "start_at": "Starts (UTC, empty: not announced)",
            "end_at": "Ends (UTC, empty: not announced)",
        }
        help_texts = {
            "description": "The Overview tab. Preview shows it as participants will see it.",
            "rules": "Participants accept these to join.",
            "visibility": "Public: listed. Unlisted: anyone with the link. Invite only: "
            "organizers and the users invited on the People page.",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 12}),
            "rules": forms.Textarea(attrs={"rows": 12}),
            "start_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
            "end_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
        }


class UsernameForm(forms.Form):
    username = forms.CharField(max_length=150)

    def __init__(self, *args, label: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["username"].label = label


class BulkActionForm(forms.Form):
    """What to do with the submissions chosen on the Submissions page (their ids are posted
    as `ids`)."""

    ACTIONS = [("rescore", "Rescore"), ("disqualify", "Disqualify")]

    action = forms.ChoiceField(label="With the selected submissions", choices=ACTIONS)
    reason = forms.CharField(
        label="Reason to disqualify (each team sees it)", max_length=300, required=False
    )
