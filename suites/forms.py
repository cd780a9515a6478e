"""The suite pages' forms: a method's registration and an upload for one task (or all);
the organizer console's: the suite's details, a task to add."""

from __future__ import annotations

from django import forms

from competitions.models import Competition
from suites.models import Suite, SuiteTask

EVERY_TASK = "*"


class MethodForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    paper_url = forms.URLField(label="Paper URL", required=False, assume_scheme="https")
    code_url = forms.URLField(label="Code URL", required=False, assume_scheme="https")
    hardware_declared = forms.CharField(label="Hardware", max_length=300, required=False)
    components = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One tag a line: <code>model: gradient boosting</code>; several values "
        "separated by commas.",
    )

    def clean_components(self) -> dict[str, list[str]]:
        """The lines as tag -> values; services.components_clean checks them further."""
        found: dict[str, list[str]] = {}
        for number, line in enumerate(self.cleaned_data["components"].splitlines(), 1):
            if not line.strip():
                continue
            tag, colon, values = line.partition(":")
            if not colon:
                raise forms.ValidationError(f"Line {number}: write it as “tag: value”.")
            found[tag.strip()] = [v.strip() for v in values.split(",") if v.strip()]
        return found


class MethodUploadForm(forms.Form):
    task = forms.ChoiceField(label="Task")
    file = forms.FileField(
        label="Predictions file (or container image archive)", allow_empty_file=True
    )

    def __init__(self, *args, tasks: list[SuiteTask], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(t.key, f"{t.key} ({t.competition.title})") for t in tasks]
        task_field = self.fields["task"]
        assert isinstance(task_field, forms.ChoiceField)
        task_field.choices = [
            *choices,
            (EVERY_TASK, "Every task: one container run once per task"),
        ]


class SuiteDetailsForm(forms.ModelForm):
    """What participants read and who may see the suite; services.suite_update saves it."""

    class Meta:
        model = Suite
        fields = ["title", "description", "rules", "visibility"]
        labels = {"description": "Overview (Markdown)", "rules": "Rules (Markdown)"}
        help_texts = {
            "description": "The suite's overview page. Preview shows it as participants will.",
            "rules": "Participants accept these to join (they join every task's competition).",
            "visibility": "Public: listed. Unlisted: anyone with the link. Invite only: "
            "organizers, the invited and participants. The competitions the suite made "
            "follow it (never listed on their own).",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 10}),
            "rules": forms.Textarea(attrs={"rows": 10}),
        }


class SuiteTaskAddForm(forms.Form):
    competition = forms.ChoiceField(
        label="Competition", help_text="A competition you organize, not in the suite yet."
    )
    key = forms.SlugField(
        label="Column name",
        max_length=80,
        required=False,
        help_text="The matrix's column; empty: the competition's slug.",
    )

    def __init__(self, *args, competitions: list[Competition], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["competition"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(c.slug, f"{c.title} ({c.slug})") for c in competitions]


def _when() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class SuitePhaseForm(forms.Form):
    """One phase of the suite's schedule; services_phases.schedule_problems checks them as
    a whole (order, overlap) when suite_phases_set saves."""

    name = forms.CharField(max_length=100)
    start_at = forms.DateTimeField(label="Starts (UTC)", widget=_when())
    end_at = forms.DateTimeField(label="Ends (UTC, empty: never)", required=False, widget=_when())
    daily_limit = forms.IntegerField(
        label="Submissions per team per UTC day, on each task", min_value=1, initial=5
    )
    total_limit = forms.IntegerField(
        label="Submissions per team in the phase, on each task (empty: no limit)",
        min_value=1,
        required=False,
    )
    late_submissions_scored = forms.BooleanField(
        label="After the end, accept submissions (scored, never ranked)", required=False
    )
    submission_kind = forms.ChoiceField(
        label="Participants submit",
        choices=[("predictions", "Prediction files"), ("container", "Containers")],
        initial="predictions",
    )
    allow_build_context = forms.BooleanField(
        label="Container phases: accept a build context built offline", required=False
    )


# The schedule as rows: the stored phases, one empty row to add one; a row marked for
# deletion (or left empty) is not in the schedule saved.
SuitePhaseFormSet = forms.formset_factory(SuitePhaseForm, extra=1, can_delete=True)
