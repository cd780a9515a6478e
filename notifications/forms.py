from __future__ import annotations

from django import forms

from notifications.models import Kind


class PreferencesForm(forms.Form):
    """Two checkboxes per kind: `site:<kind>` and `email:<kind>` (unchecked: absent)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for kind in Kind.values:
            self.fields[f"site:{kind}"] = forms.BooleanField(required=False)
            self.fields[f"email:{kind}"] = forms.BooleanField(required=False)

    def choices(self) -> dict[str, tuple[bool, bool]]:
        data = self.cleaned_data
        return {kind: (data[f"site:{kind}"], data[f"email:{kind}"]) for kind in Kind.values}
