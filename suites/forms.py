"""The suite pages' forms: a method's registration and an upload for one task (or all)."""

from __future__ import annotations

from django import forms

from suites.models import SuiteTask

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
