"""AI judge configurations and the audit trail of every MLLM call (jobs themselves live in core)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from pipeline.mllm.providers.openai_client import key_variable_check


def api_key_env_allowed() -> tuple[str, ...]:
    """The environment variables the operator declared as model API keys (setting AI_API_KEY_ENV_NAMES)."""
    return tuple(settings.AI_API_KEY_ENV_NAMES)


def validate_api_key_env(value: str) -> None:
    """Field validator: a declared API key variable's name (the one check lives in pipeline.mllm.providers)."""
    try:
        key_variable_check(value, allowed_names=api_key_env_allowed())
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid") from None


#: Option names that would put a secret into the database; keys come only from the named variable.
SECRET_OPTION_NAMES = frozenset(
    {"api_key", "apikey", "key", "secret", "password", "token", "access_token", "authorization", "headers"}
)


class AIJudgeConfig(models.Model):
    """How to call one AI judge. Holds the *name* of the environment variable with the key, never the key."""

    class Provider(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible API"
        LOCAL = "local", "Local transformers model"
        SIMULATED = "simulated", "Simulated (demo only)"

    class Mode(models.TextChoices):
        PAIR = "pair", "Pair (two images per call)"
        GROUP = "group", "Group (rank k images per call)"

    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    model = models.CharField(max_length=300, help_text="Model name, or hub id / local path for local models.")
    base_url = models.URLField(blank=True, max_length=500)
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_api_key_env],
        help_text=(
            "Name of the environment variable that holds the API key (e.g. OPENAI_API_KEY), never the key; "
            "one of the variables the operator declared in AI_API_KEY_ENV_NAMES."
        ),
    )
    template_version = models.CharField(max_length=32, default="vp-pair-v1")
    temperature = models.FloatField(default=0.0)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PAIR)
    swap_trial = models.BooleanField(default=False, help_text="Ask again with the order swapped (trial 2).")
    concurrency = models.PositiveSmallIntegerField(default=8)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    max_image_side = models.PositiveIntegerField(default=768)
    timeout_s = models.FloatField(default=60.0)
    max_attempts = models.PositiveSmallIntegerField(default=4)
    price_per_1k_prompt_tokens = models.DecimalField(max_digits=10, decimal_places=6, default=Decimal("0"))
    price_per_1k_completion_tokens = models.DecimalField(
        max_digits=10, decimal_places=6, default=Decimal("0")
    )
    options = models.JSONField(
        default=dict, blank=True, help_text="Provider-specific options (noise, device...)."
    )
    # The judge's identity among annotators (the link lives here, above annotate, so annotate names no
    # upper layer); created on first use by pipeline.services.judges.judge_annotator.
    annotator = models.OneToOneField(
        "annotate.Annotator", null=True, blank=True, on_delete=models.PROTECT, related_name="ai_judge"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(concurrency__gte=1), name="judge_concurrency_positive"),
        ]

    def __str__(self) -> str:
        suffix = " [simulated]" if self.provider == self.Provider.SIMULATED else ""
        return f"{self.name}{suffix}"

    @property
    def is_simulated(self) -> bool:
        return self.provider == self.Provider.SIMULATED

    def clean(self) -> None:
        """Admin form checks: a known template for the mode, no secrets in options, a model to call."""
        from pipeline.mllm.templates import DEFAULT_TEMPLATE_VERSION, TEMPLATES

        errors: dict[str, str] = {}
        if self.mode == self.Mode.GROUP and self.template_version == DEFAULT_TEMPLATE_VERSION["pair"]:
            # The field's default is the pair template: choosing group mode alone picks the group template.
            self.template_version = DEFAULT_TEMPLATE_VERSION[self.mode]
        template = TEMPLATES.get(self.template_version)
        if template is None:
            errors["template_version"] = f"Unknown template; known: {', '.join(sorted(TEMPLATES))}."
        elif template.mode != self.mode:
            errors["template_version"] = (
                f"{self.template_version} is a {template.mode}-mode template; "
                f"{self.mode} mode uses {DEFAULT_TEMPLATE_VERSION[self.mode]}."
            )
        options = self.options if isinstance(self.options, dict) else {}
        if not isinstance(self.options, dict):
            errors["options"] = "Options must be a JSON object."
        secret = sorted(name for name in options if str(name).lower() in SECRET_OPTION_NAMES)
        if secret:
            errors["options"] = (
                f"Options may not hold secrets ({', '.join(secret)}): put the key in an environment "
                "variable and give its name as the API key variable."
            )
        if self.provider == self.Provider.OPENAI and not self.model:
            errors["model"] = "An OpenAI-compatible judge needs a model name."
        if errors:
            raise ValidationError(errors)


class AICall(models.Model):
    """One MLLM request: what was asked, what came back, and what it cost. Makes batches resumable."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="ai_calls"
    )
    judge = models.ForeignKey(AIJudgeConfig, on_delete=models.PROTECT, related_name="calls")
    pair = models.ForeignKey(
        "annotate.Pair", null=True, blank=True, on_delete=models.CASCADE, related_name="ai_calls"
    )
    prompt = models.ForeignKey(
        "annotate.Prompt", null=True, blank=True, on_delete=models.CASCADE, related_name="ai_calls"
    )
    image_ids = models.JSONField(default=list, blank=True, help_text="Images in the order they were shown.")
    pair_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="Pairs this call labels (one in pair mode, up to k(k-1)/2 in group mode).",
    )
    trial = models.PositiveSmallIntegerField(default=1, help_text="2 = the same images in reverse order.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    latency_s = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    template_version = models.CharField(max_length=32, blank=True)
    rendered_prompt = models.TextField(blank=True)
    raw_response = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    error_reason = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    attempt_log = models.JSONField(
        default=list,
        blank=True,
        help_text="Every attempt of every run: outcome, HTTP status, latency, tokens, raw text (bounded).",
    )
    repairs = models.JSONField(
        default=list,
        blank=True,
        help_text="What the parser repaired in the answer used (json_in_fence, ...).",
    )
    # The claim: the run that is sending this call (its job lease owner and a chunk number), set in the
    # statement that picks the call; a claim older than the job lease timeout is stale and may be taken.
    claimed_by = models.CharField(max_length=220, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["job", "status"]), models.Index(fields=["judge", "pair"])]
        constraints = [
            # One call per unit of work and trial in a job: re-creating a job's work list after a crash
            # inserts nothing twice (pair mode keys on the pair, group mode on the prompt).
            models.UniqueConstraint(
                fields=["job", "pair", "trial"],
                condition=Q(pair__isnull=False),
                name="aicall_unique_job_pair",
            ),
            models.UniqueConstraint(
                fields=["job", "prompt", "trial"],
                condition=Q(pair__isnull=True, prompt__isnull=False),
                name="aicall_unique_job_prompt",
            ),
        ]

    def __str__(self) -> str:
        return f"AICall {self.pk} ({self.status})"
