"""The admin's forms that apply the rule book (competitions/rules.py, docs/site.md): the
admin calls the models' full_clean like every service; these add what spans rows (phase
overlap across an inline's rows) and the freeze, with the services' own sentences."""

from __future__ import annotations

from django import forms

from competitions import rules
from competitions.services.organize import LIMITS_FROZEN
from competitions.services.teams import TEAMS_FROZEN


class PhaseInlineForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The formset checks overlap across its rows as they will be saved (below).
        self.instance.overlap_checked_elsewhere = True


class PhaseInlineFormSet(forms.BaseInlineFormSet):
    """Each row keeps Phase.clean's own rules; overlap is checked here across the rows
    as submitted, since one save may move several phases at once."""

    def clean(self) -> None:
        super().clean()
        kept: list[tuple[forms.ModelForm, tuple]] = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or form.errors:
                continue
            if data.get("start_at") is None:
                continue
            row = (data.get("name", ""), data["start_at"], data.get("end_at"))
            overlapped = rules.phase_overlapping(row[1], row[2], [r for _f, r in kept])
            if overlapped is not None:
                form.add_error(None, rules.phase_overlap(overlapped))
            kept.append((form, row))


class CompetitionAdminForm(forms.ModelForm):
    """Competition.clean checks the limits (at least 1); the freeze is services.organize's."""

    LIMITS = ("selection_limit", "max_team_size")

    def clean(self):
        data = super().clean()
        changed = any(field in self.changed_data for field in self.LIMITS)
        if changed and self.instance.pk and self.instance.is_finalized:
            raise forms.ValidationError(LIMITS_FROZEN)
        return data


class TeamAdminForm(forms.ModelForm):
    """Team.clean checks the name (unique regardless of case); the freeze is the service's."""

    def clean(self):
        data = super().clean()
        if "name" in self.changed_data and self.instance.competition.is_finalized:
            raise forms.ValidationError(TEAMS_FROZEN)
        return data
