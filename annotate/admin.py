"""Django admin for annotation models, with the filters and searches admins use daily."""

from django import forms
from django.contrib import admin

from annotate.models import (
    Annotator,
    Aspect,
    Assignment,
    Campaign,
    CampaignWorker,
    Generator,
    Image,
    Judgment,
    Pair,
    Prompt,
)
from annotate.services.pairs import gold_answers_validate


@admin.register(Aspect)
class AspectAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "order"]
    list_filter = ["campaigns"]
    search_fields = ["key", "name", "question"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "text", "source", "is_unsafe", "polished_from", "created_at"]
    list_filter = ["source", "is_unsafe", "campaigns"]
    search_fields = ["text", "source_id"]
    raw_id_fields = ["polished_from"]


@admin.register(Generator)
class GeneratorAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "model_id", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "model_id"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "generator", "prompt", "format", "width", "height", "seed", "created_at"]
    list_filter = ["generator", "format"]
    search_fields = ["sha256", "prompt__text"]
    raw_id_fields = ["prompt"]
    readonly_fields = ["sha256", "format", "width", "height", "size_bytes"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "humans_per_pair", "gold_rate", "allow_tie", "created_at"]
    list_filter = ["status", "allow_tie", "rationale_required"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["aspects"]
    raw_id_fields = ["prompts"]


class PairForm(forms.ModelForm):
    """Gold pairs need a valid expected answer (A, B or tie) for aspects of the pair's campaign."""

    class Meta:
        model = Pair
        fields = ["campaign", "prompt", "image_a", "image_b", "is_gold", "gold_answers"]

    def clean(self):
        data = super().clean()
        if data.get("is_gold") and data.get("campaign"):
            try:
                data["gold_answers"] = gold_answers_validate(
                    campaign=data["campaign"], answers=data.get("gold_answers")
                )
            except ValueError as error:
                self.add_error("gold_answers", str(error))
        return data


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    form = PairForm
    list_display = [
        "id",
        "campaign",
        "prompt",
        "image_a",
        "image_b",
        "is_gold",
        "slots_taken",
        "slots_submitted",
    ]
    readonly_fields = ["slots_taken", "slots_submitted"]
    list_filter = ["campaign", "is_gold"]
    search_fields = ["prompt__text"]
    raw_id_fields = ["prompt", "image_a", "image_b"]


@admin.register(Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "status", "status_set_by_admin", "platform", "external_id", "created_at"]
    list_filter = ["kind", "status", "status_set_by_admin", "platform"]
    search_fields = ["name", "external_id", "user__username"]
    raw_id_fields = ["user"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "pair", "annotator", "status", "swapped", "seconds_spent", "too_fast", "created_at"]
    list_filter = ["status", "too_fast", "pair__campaign"]
    search_fields = ["annotator__name", "annotator__external_id"]
    raw_id_fields = ["pair", "annotator"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "pair", "annotator", "aspect", "trial", "choice", "presented_order", "created_at"]
    list_filter = ["aspect", "choice", "annotator__kind", "trial", "pair__campaign"]
    search_fields = ["annotator__name", "rationale"]
    raw_id_fields = ["pair", "annotator", "assignment", "ai_call"]


@admin.register(CampaignWorker)
class CampaignWorkerAdmin(admin.ModelAdmin):
    list_display = [
        "annotator",
        "campaign",
        "submitted",
        "skipped",
        "gold_pairs",
        "gold_correct",
        "too_fast",
        "last_active_at",
    ]
    list_filter = ["campaign"]
    search_fields = ["annotator__name", "annotator__external_id"]
    raw_id_fields = ["annotator"]
