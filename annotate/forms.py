"""Forms of annotate's admin pages: campaign settings, members and invitations, and review."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from annotate.models import Aspect, Campaign
from annotate.services.campaigns import ASPECT_KEY, aspect_key_for

# Digits type a score on the labeling screen (0 means 10), so a human score scale fits in 0..10.
HUMAN_SCALE_MIN, HUMAN_SCALE_MAX = 0, 10
DEFAULT_ASPECT_KEYS = ("prompt_following", "aesthetic", "fidelity", "harmlessness")
USERNAME = re.compile(r"^[\w.@+-]{1,150}$")

FIELDSETS: list[tuple[str, list[str]]] = [
    ("Campaign", ["name", "status", "access", "guidelines"]),
    ("Labeling", ["humans_per_pair", "allow_tie", "rationale_required", "human_scores", "score_min", "score_max"]),
    ("Crowd", ["reservation_minutes", "worker_quota", "min_labeled_pairs", "completion_code", "completion_url"]),
    (
        "Quality control",
        [
            "gold_rate",
            "min_seconds_per_pair",
            "flag_too_fast_share",
            "min_submissions_for_flag",
            "min_gold_for_status",
            "flag_gold_accuracy_below",
            "block_gold_accuracy_below",
        ],
    ),
]  # fmt: skip


class CampaignForm(forms.ModelForm):
    """Every setting of a campaign; hard errors here, soft warnings from annotate.selectors.campaign_warnings."""

    aspects = forms.ModelMultipleChoiceField(
        queryset=Aspect.objects.order_by("order", "key"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The questions every judge answers per pair, in this order.",
    )
    completion_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Completion URL",
        help_text="Workers who finish are sent here (e.g. Prolific's completion link).",
    )
    new_aspect_name = forms.CharField(required=False, max_length=100, label="Name")
    new_aspect_question = forms.CharField(
        required=False, label="Question", widget=forms.Textarea(attrs={"rows": 2})
    )
    new_aspect_rubric = forms.CharField(
        required=False,
        label="Rubric",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One level per line, best first. People see it under the question; AI judges get it as the rubric.",
    )

    class Meta:
        model = Campaign
        fields = [name for _, names in FIELDSETS for name in names]
        widgets = {
            "guidelines": forms.Textarea(attrs={"rows": 8}),
            "status": forms.Select,
            "access": forms.RadioSelect,
        }
        labels = {
            "humans_per_pair": "Humans per pair",
            "allow_tie": "Ties allowed",
            "rationale_required": "Reason required for every answer",
            "human_scores": "Humans score each image",
            "score_min": "Score scale from",
            "score_max": "to",
            "reservation_minutes": "Reservation (minutes)",
            "worker_quota": "Quota (pairs per worker)",
            "min_labeled_pairs": "Labeled pairs for the completion code",
            "min_seconds_per_pair": "Too fast below (seconds per pair)",
            "flag_too_fast_share": "Flag when the too-fast share exceeds",
            "min_submissions_for_flag": "Submissions before the speed check",
            "min_gold_for_status": "Gold pairs before gold accuracy counts",
            "flag_gold_accuracy_below": "Flag below gold accuracy",
            "block_gold_accuracy_below": "Block below gold accuracy",
            "completion_code": "Completion code",
            "completion_url": "Completion URL",
        }
        help_texts = {
            "guidelines": "Markdown: **bold**, lists, headings, links. Shown to workers under Guidelines (G).",
            "worker_quota": "Empty: no quota.",
            "min_labeled_pairs": "Skips never count. Empty: the quota, or 1.",
            "completion_url": "Workers who finish are sent here (e.g. Prolific's completion link).",
            "gold_rate": "Share of served pairs that are gold pairs (0 to 1).",
            "min_gold_for_status": "Gold pairs a worker must answer before the thresholds below apply.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["aspects"].initial = list(self.instance.aspects.values_list("pk", flat=True))
        else:
            self.fields["aspects"].initial = list(
                Aspect.objects.filter(key__in=DEFAULT_ASPECT_KEYS).values_list("pk", flat=True)
            )
        for name in (
            "gold_rate",
            "flag_too_fast_share",
            "flag_gold_accuracy_below",
            "block_gold_accuracy_below",
        ):
            self.fields[name].widget.attrs.update({"step": "0.05", "min": "0", "max": "1"})
        self.fields["reservation_minutes"].widget.attrs["min"] = "1"
        self.fields["humans_per_pair"].widget.attrs["min"] = "1"

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The form's fields grouped as the page shows them."""
        return [(title, [self[name] for name in names]) for title, names in FIELDSETS]

    def new_aspect_fields(self) -> list[forms.BoundField]:
        """The fields that add a custom aspect."""
        return [self["new_aspect_name"], self["new_aspect_question"], self["new_aspect_rubric"]]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        name, question = data.get("new_aspect_name", "").strip(), data.get("new_aspect_question", "").strip()
        if name or question or data.get("new_aspect_rubric", "").strip():
            if not name:
                self.add_error("new_aspect_name", "Give the new aspect a name.")
            if not question:
                self.add_error("new_aspect_question", "Give the question judges answer for this aspect.")
            key = aspect_key_for(name) if name else ""
            if name and not ASPECT_KEY.match(key):
                self.add_error(
                    "new_aspect_name", "Use letters and digits: the name becomes the aspect's key."
                )
            elif name and Aspect.objects.filter(key=key).exists():
                self.add_error("new_aspect_name", f"An aspect with the key {key!r} exists: tick it above.")
        elif not data.get("aspects"):
            self.add_error("aspects", "Choose at least one aspect, or add a custom one.")
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None:
            if low >= high:
                self.add_error("score_max", "The scale must go up: the top must be above the bottom.")
            elif data.get("human_scores") and (
                low < HUMAN_SCALE_MIN or high > HUMAN_SCALE_MAX or (low == 0 and high == 10)
            ):
                self.add_error(
                    "score_max",
                    "With human scores the scale must fit the digit keys: from 0 or 1 up to at most 9, "
                    "or 1 to 10 (the 0 key types 10).",
                )
        for name in (
            "gold_rate",
            "flag_too_fast_share",
            "flag_gold_accuracy_below",
            "block_gold_accuracy_below",
        ):
            value = data.get(name)
            if value is not None and not 0 <= value <= 1:
                self.add_error(name, "Give a share between 0 and 1.")
        flag, block = data.get("flag_gold_accuracy_below"), data.get("block_gold_accuracy_below")
        if flag is not None and block is not None and block > flag:
            self.add_error(
                "block_gold_accuracy_below",
                "Blocking must need worse accuracy than flagging: set it at or below the flag threshold.",
            )
        if data.get("reservation_minutes") is not None and data["reservation_minutes"] < 1:
            self.add_error(
                "reservation_minutes", "At least one minute, or every reservation expires at once."
            )
        if data.get("humans_per_pair") is not None and data["humans_per_pair"] < 1:
            self.add_error("humans_per_pair", "At least one human per pair.")
        if data.get("min_seconds_per_pair") is not None and data["min_seconds_per_pair"] < 0:
            self.add_error("min_seconds_per_pair", "Seconds cannot be negative.")
        return data


class InviteForm(forms.Form):
    """Invite people by email: each gets an account (if new), membership and a link to set a password."""

    emails = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "ana@lab.org\nben@lab.org"}),
        help_text="One address per line (or separated by commas).",
    )

    def clean_emails(self) -> list[str]:
        raw = self.cleaned_data["emails"].replace(",", "\n").split()
        field = forms.EmailField()
        emails, bad = [], []
        for value in raw:
            try:
                emails.append(field.clean(value).lower())
            except forms.ValidationError:
                bad.append(value)
        if bad:
            raise forms.ValidationError(f"Not email addresses: {', '.join(bad[:10])}")
        if not emails:
            raise forms.ValidationError("Give at least one address.")
        if len(emails) > 500:
            raise forms.ValidationError("At most 500 invitations at once.")
        return list(dict.fromkeys(emails))


class BulkAccountsForm(forms.Form):
    """Create accounts in bulk: one username per line, or a prefix and a count."""

    usernames = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "rater01\nrater02"}),
        help_text="One username per line.",
    )
    name_prefix = forms.SlugField(
        required=False, max_length=40, label="Prefix", help_text="Or a prefix, e.g. team-a …"
    )
    count = forms.IntegerField(required=False, min_value=1, max_value=500, help_text="… and how many.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        names = [n.strip() for n in (data.get("usernames") or "").split() if n.strip()]
        if data.get("name_prefix") and data.get("count"):
            names += [f"{data['name_prefix']}-{i:02d}" for i in range(1, data["count"] + 1)]
        bad = [n for n in names if not USERNAME.match(n)]
        if bad:
            raise forms.ValidationError(
                f"Usernames may use letters, digits and @ . + - _ (check {', '.join(bad[:5])})."
            )
        if not names:
            raise forms.ValidationError("Give usernames, or a prefix and a count.")
        if len(names) > 500:
            raise forms.ValidationError("At most 500 accounts at once.")
        data["names"] = list(dict.fromkeys(names))
        return data


class RejectForm(forms.Form):
    """Reject a judgment with a reason, or take a rejection back."""

    reason = forms.CharField(
        max_length=300, required=False, widget=forms.TextInput(attrs={"placeholder": "Why?"})
    )
    undo = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("undo") and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why this judgment is rejected.")
        return data
