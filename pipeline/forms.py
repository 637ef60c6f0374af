"""Forms of pipeline's admin pages: generation, generators, prompt import and polishing, AI annotation."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings

from annotate.models import Aspect, Campaign, Generator
from pipeline.generation.diffusers_backend import DTYPES
from pipeline.models import SECRET_OPTION_NAMES, AIJudgeConfig, api_key_env_allowed, validate_api_key_env
from pipeline.services.annotation import EXECUTIONS
from pipeline.services.annotation_calls import SELECTIONS
from pipeline.services.generation import PAIR_STRATEGIES
from pipeline.services.prompt_import import FORMATS

PAIR_STRATEGY_LABELS = {
    "all": "All pairs of a prompt's images",
    "cross_generator": "Only pairs from different generators",
    "sample": "A random sample per prompt",
}


class GenerateForm(forms.Form):
    generators = forms.ModelMultipleChoiceField(
        queryset=Generator.objects.exclude(kind=Generator.Kind.IMPORTED),
        widget=forms.CheckboxSelectMultiple,
    )
    images_per_prompt = forms.IntegerField(min_value=1, max_value=64, initial=4)
    batch_size = forms.IntegerField(
        min_value=1, max_value=64, initial=4, help_text="Images per pipeline call; halved on out-of-memory."
    )
    seed = forms.IntegerField(min_value=0, initial=0, help_text="The same seed reproduces the same images.")
    pair_strategy = forms.ChoiceField(choices=[(s, PAIR_STRATEGY_LABELS[s]) for s in PAIR_STRATEGIES])
    pairs_per_prompt = forms.IntegerField(min_value=1, required=False, help_text="For the random sample.")


class GeneratorRegisterForm(forms.Form):
    name = forms.CharField(max_length=100)
    model_id = forms.CharField(
        max_length=500,
        label="Hub id or local path",
        help_text="For example stable-diffusion-v1-5/stable-diffusion-v1-5, or /models/sdxl on the GPU worker.",
    )
    scheduler = forms.CharField(
        required=False,
        help_text="A diffusers scheduler class, e.g. EulerDiscreteScheduler; empty keeps the model's.",
    )
    steps = forms.IntegerField(min_value=1, max_value=1000, initial=30)
    guidance_scale = forms.FloatField(min_value=0, max_value=50, initial=7.5, label="Guidance scale")
    width = forms.IntegerField(
        min_value=8, required=False, help_text="A multiple of 8; empty: the model's size."
    )
    height = forms.IntegerField(
        min_value=8, required=False, help_text="A multiple of 8; empty: the model's size."
    )
    dtype = forms.ChoiceField(choices=[(d, d) for d in DTYPES], initial="float16", label="Dtype")
    device = forms.CharField(initial="cuda", help_text="cpu, cuda or cuda:N (where the GPU worker runs it).")
    negative_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def params(self) -> dict[str, Any]:
        """The Generator.params of the cleaned form."""
        keys = (
            "scheduler",
            "steps",
            "guidance_scale",
            "width",
            "height",
            "dtype",
            "device",
            "negative_prompt",
        )
        return {key: self.cleaned_data[key] for key in keys}


class GoldPairsForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=1000, initial=10, label="Gold pairs to make")


class PromptImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a prompt column, JSONL, plain text, or DiffusionDB parquet.")
    format = forms.ChoiceField(
        choices=[("", "From the file name")] + [(f, f) for f in FORMATS], required=False
    )
    campaign = forms.ModelChoiceField(Campaign.objects.all(), required=False, empty_label="(none)")
    unsafe = forms.ChoiceField(
        choices=[
            ("flag", "Flag prompts with unsafe words"),
            ("skip", "Skip prompts with unsafe words"),
            ("off", "No unsafe-word filter"),
        ],
        initial="flag",
        label="Unsafe words",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.PROMPT_IMPORT_MAX_BYTES
        if upload is not None and upload.size > limit:
            raise forms.ValidationError(f"The file is {upload.size:,} bytes; the limit is {limit:,} bytes.")
        return upload


class PolishForm(forms.Form):
    campaign = forms.ModelChoiceField(Campaign.objects.all())
    ai_config = forms.ModelChoiceField(
        AIJudgeConfig.objects.filter(provider=AIJudgeConfig.Provider.OPENAI),
        required=False,
        label="Endpoint configuration",
        help_text="An OpenAI-compatible AI configuration; or fill in the fields below.",
    )
    base_url = forms.URLField(required=False, label="Base URL", assume_scheme="https")
    model = forms.CharField(required=False)
    api_key_env = forms.CharField(
        required=False,
        validators=[validate_api_key_env],
        label="API key variable",
        help_text="The name of the environment variable, not the key.",
    )
    replace_in_campaign = forms.BooleanField(
        required=False, label="Replace raw prompts in the campaign with their polished versions"
    )


class AnnotateForm(forms.Form):
    campaign = forms.ModelChoiceField(Campaign.objects.order_by("name"))
    judge = forms.ModelChoiceField(AIJudgeConfig.objects.order_by("name"), label="AI judge")
    selection = forms.ChoiceField(
        choices=list(SELECTIONS.items()), initial="unlabelled", widget=forms.RadioSelect
    )
    sample_n = forms.IntegerField(min_value=1, required=False, label="n (random sample)")
    seed = forms.IntegerField(min_value=0, initial=0, required=False, help_text="Seeds the random sample.")
    execution = forms.ChoiceField(choices=list(EXECUTIONS.items()), initial="online")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("selection") == "sample" and not data.get("sample_n"):
            self.add_error("sample_n", "Give the number of pairs to sample.")
        judge = data.get("judge")
        if data.get("execution") == "batch" and judge and judge.provider != AIJudgeConfig.Provider.OPENAI:
            self.add_error("execution", "The Batch API needs an OpenAI-compatible judge.")
        return data


def allowed_key_variables() -> list[str]:
    """Environment variables an AI judge may take its key from (the AI_API_KEY_ENV_NAMES setting)."""
    return list(api_key_env_allowed())


class JudgeForm(forms.ModelForm):
    """Every setting of an AI judge; the model's clean() checks template against mode and secrets in options."""

    api_key_env = forms.ChoiceField(
        required=False,
        label="API key variable",
        help_text="The environment variable the worker reads the key from (the allowed list is set by "
        "AI_API_KEY_ENV_NAMES). The key itself never enters the database.",
    )
    template_version = forms.ChoiceField(label="Prompt template")
    base_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Base URL",
        help_text="An OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 or a vLLM server; empty "
        "for OpenAI itself.",
    )
    options = forms.JSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text='Provider options as JSON, e.g. {"max_output_tokens": 1024, "image_detail": "low"}; '
        "never a key.",
    )

    class Meta:
        model = AIJudgeConfig
        fields = [
            "name",
            "provider",
            "model",
            "base_url",
            "api_key_env",
            "mode",
            "template_version",
            "swap_trial",
            "temperature",
            "concurrency",
            "requests_per_minute",
            "tokens_per_minute",
            "max_image_side",
            "timeout_s",
            "max_attempts",
            "price_per_1k_prompt_tokens",
            "price_per_1k_completion_tokens",
            "options",
        ]
        labels = {
            "base_url": "Base URL",
            "swap_trial": "Ask again with the order swapped (trial 2)",
            "requests_per_minute": "Requests per minute",
            "tokens_per_minute": "Tokens per minute",
            "max_image_side": "Longest image side sent (px)",
            "timeout_s": "Timeout per call (s)",
            "max_attempts": "Attempts per call",
            "price_per_1k_prompt_tokens": "$ per 1k prompt tokens",
            "price_per_1k_completion_tokens": "$ per 1k completion tokens",
        }
        help_texts = {
            "base_url": "An OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 or a vLLM server; "
            "empty for OpenAI itself.",
            "swap_trial": "Measures the judge's position bias; costs twice the calls.",
            "requests_per_minute": "Empty: no limit.",
            "tokens_per_minute": "Empty: no limit.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from pipeline.mllm.templates import TEMPLATES

        allowed = allowed_key_variables()
        choices = [("", "No key (a local server that needs none)")] + [(name, name) for name in allowed]
        current = self.instance.api_key_env if self.instance.pk else ""
        if current and current not in allowed:
            choices.append((current, f"{current} (not allowed any more: choose another)"))
        cast(forms.ChoiceField, self.fields["api_key_env"]).choices = choices
        cast(forms.ChoiceField, self.fields["template_version"]).choices = [
            (version, f"{version} ({template.mode} mode)") for version, template in sorted(TEMPLATES.items())
        ]
        for name in ("temperature", "timeout_s"):
            self.fields[name].widget.attrs["step"] = "0.1"
        self.fields["concurrency"].widget.attrs["min"] = "1"
        self.fields["max_attempts"].widget.attrs["min"] = "1"

    def clean_api_key_env(self) -> str:
        value = self.cleaned_data.get("api_key_env") or ""
        if value:
            validate_api_key_env(value)  # the one check (pipeline.mllm.providers.openai_client)
        return value

    def clean_options(self) -> dict[str, Any]:
        value = self.cleaned_data.get("options")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Options must be a JSON object.")
        secret = sorted(name for name in value if str(name).lower() in SECRET_OPTION_NAMES)
        if secret:
            # Never show a pasted secret again: the re-rendered form gets empty options.
            data: Any = self.data.copy()  # type: ignore[attr-defined]  # a QueryDict: copied to change it
            data["options"] = "{}"
            self.data = data
            raise forms.ValidationError(
                f"Options may not hold secrets ({', '.join(secret)}): put the key in an environment variable "
                "and choose its name as the API key variable. The options were cleared."
            )
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("concurrency", "max_attempts", "max_image_side"):
            if data.get(name) is not None and data[name] < 1:
                self.add_error(name, "At least 1.")
        if data.get("timeout_s") is not None and data["timeout_s"] <= 0:
            self.add_error("timeout_s", "Give a positive number of seconds.")
        for name in ("price_per_1k_prompt_tokens", "price_per_1k_completion_tokens"):
            if data.get(name) is not None and data[name] < 0:
                self.add_error(name, "Prices cannot be negative.")
        if data.get("temperature") is not None and not 0 <= data["temperature"] <= 2:
            self.add_error("temperature", "Between 0 and 2.")
        if (
            data.get("provider") == AIJudgeConfig.Provider.OPENAI
            and data.get("api_key_env") == ""
            and not data.get("base_url")
        ):
            self.add_error("api_key_env", "OpenAI itself needs a key: choose the variable that holds it.")
        return data


class JudgeTestForm(forms.Form):
    """Which campaign's pair the Test button sends (a random regular pair of it, or a given pair id)."""

    campaign = forms.ModelChoiceField(Campaign.objects.order_by("name"), empty_label=None)
    pair = forms.IntegerField(required=False, min_value=1, label="Pair id (optional)")


class DatasetImportForm(forms.Form):
    """Upload a Pick-a-Pic-shaped parquet shard and import it as a job (bigger files: manage.py import_dataset)."""

    file = forms.FileField(
        help_text="A Pick-a-Pic parquet shard (or a DPO parquet exported here), or a zip of ImageReward test.json "
        "with its images."
    )
    format = forms.ChoiceField(
        choices=[
            ("pickapic", "Pick-a-Pic parquet"),
            ("imagereward", "ImageReward test.json + images (zip)"),
            ("hpdv2", "HPD v2 test.json / train.json + images (zip or tar.gz)"),
        ]
    )
    campaign = forms.ModelChoiceField(
        Campaign.objects.all(),
        required=False,
        empty_label="(a new campaign)",
        help_text="Where the pairs go.",
    )
    campaign_name = forms.CharField(max_length=200, required=False, help_text="Name of the new campaign.")
    aspect = forms.SlugField(
        initial="overall", help_text="The aspect the labels answer when the file has no aspect column."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("campaign") and not (data.get("campaign_name") or "").strip():
            raise forms.ValidationError("Choose a campaign or name a new one.")
        return data


class DatasetExportForm(forms.Form):
    """What to export: campaigns, aspects, where the labels come from, and which pairs and ties to keep."""

    format = forms.ChoiceField(
        choices=[
            ("dpo_parquet", "Diffusion-DPO parquet"),
            ("hf_datasets", "Hugging Face datasets folder (zip)"),
            ("visionprefer_jsonl", "VisionPrefer-style JSONL (per prompt)"),
            ("imagereward", "ImageReward test.json + images (zip, per aspect)"),
        ]
    )
    campaigns = forms.ModelMultipleChoiceField(Campaign.objects.all(), widget=forms.CheckboxSelectMultiple)
    aspects = forms.ModelMultipleChoiceField(
        Aspect.objects.all(), required=False, widget=forms.CheckboxSelectMultiple, help_text="None: all."
    )
    label_source = forms.ChoiceField(
        choices=[
            ("human_majority", "Human majority"),
            ("ai", "One AI judge"),
            ("consensus", "Consensus: the AI judge agrees with the human majority"),
        ]
    )
    judge = forms.ModelChoiceField(AIJudgeConfig.objects.all(), required=False, empty_label="(no AI judge)")
    min_human_agreement = forms.FloatField(
        min_value=0, max_value=1, initial=0, help_text="Share of humans on the pair who chose the majority."
    )
    include_flagged = forms.BooleanField(required=False, label="Count flagged workers")
    include_gold = forms.BooleanField(required=False, label="Include gold pairs")
    ties = forms.ChoiceField(choices=[("drop", "Drop ties"), ("half", "Keep ties as 0.5 / 0.5")])
    images = forms.ChoiceField(choices=[("bytes", "Image bytes"), ("paths", "Storage paths")])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("label_source") in ("ai", "consensus") and not data.get("judge"):
            self.add_error("judge", "Choose the AI judge whose labels to export.")
        return data
