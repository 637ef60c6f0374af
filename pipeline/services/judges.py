"""AI judge configurations as the mllm kit sees them: the judge object, its annotator, queue, template and prices."""

from __future__ import annotations

from decimal import Decimal

from annotate.models import Annotator, Campaign
from pipeline.mllm import DEFAULT_TEMPLATE_VERSION, Aspect, get_template
from pipeline.mllm.aspects import DEFAULT_ASPECTS
from pipeline.mllm.providers import Judge, RetryPolicy, SimulatedJudge
from pipeline.mllm.providers.openai_client import key_variable_check
from pipeline.models import AIJudgeConfig, api_key_env_allowed

DEFAULT_MAX_OUTPUT_TOKENS = 1024
_MLLM_ASPECTS = {aspect.key: aspect for aspect in DEFAULT_ASPECTS}


def judge_from_config(config: AIJudgeConfig) -> Judge:
    """The mllm judge an AIJudgeConfig describes; raises RuntimeError if its API key variable is unset."""
    options = config.options or {}
    if config.api_key_env:
        try:
            key_variable_check(config.api_key_env, allowed_names=api_key_env_allowed())
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
    if config.provider == AIJudgeConfig.Provider.SIMULATED:
        return SimulatedJudge(
            seed=int(options.get("seed", 0)),
            flip_probability=float(options.get("noise", options.get("flip_probability", 0.1))),
            latency_s=float(options.get("latency_s", 0.0)),
            first_bias=float(options.get("first_bias", 0.0)),
        )
    if config.provider == AIJudgeConfig.Provider.OPENAI:
        from pipeline.mllm.providers import OpenAICompatibleJudge

        return OpenAICompatibleJudge(openai_judge_config(config), retry_policy_for(config))
    if config.provider == AIJudgeConfig.Provider.LOCAL:
        from pipeline.mllm.providers import LocalModelConfig, LocalTransformersJudge

        return LocalTransformersJudge(
            LocalModelConfig(
                model=config.model,
                device=str(options.get("device", "cpu")),
                dtype=str(options.get("dtype", "float32")),
                max_new_tokens=int(options.get("max_new_tokens", 512)),
                do_sample=config.temperature > 0,
                temperature=config.temperature or 1.0,
                max_parse_attempts=int(options.get("max_parse_attempts", 1)),
            )
        )
    raise ValueError(f"judge {config.name!r} has unknown provider {config.provider!r}")


def openai_judge_config(config: AIJudgeConfig):  # -> OpenAIJudgeConfig (imported lazily: it loads openai)
    """The kit's OpenAI-compatible configuration of a judge (online calls and Batch API lines alike)."""
    from pipeline.mllm.providers import OpenAIJudgeConfig

    options = config.options or {}
    return OpenAIJudgeConfig(
        model=config.model,
        base_url=config.base_url or None,
        api_key_env=config.api_key_env or None,
        api_key_env_allowed=api_key_env_allowed(),
        temperature=config.temperature,
        max_output_tokens=int(options.get("max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS)),
        max_tokens_param=options.get("max_tokens_param", "max_tokens"),
        timeout_s=config.timeout_s,
        # How long a request stays open after the timeout, to record a late reply's (billed) tokens.
        late_reply_grace_s=float(options.get("late_reply_grace_s", min(30.0, config.timeout_s))),
        image_detail=options.get("image_detail"),
        structured_output=bool(options.get("structured_output", True)),
        seed=options.get("seed"),
    )


def retry_policy_for(config: AIJudgeConfig) -> RetryPolicy:
    """The judge's retry rules: attempts from the row, backoff and caps from its options."""
    options = config.options or {}
    return RetryPolicy(
        max_attempts=max(1, config.max_attempts),
        max_parse_attempts=int(options.get("max_parse_attempts", 2)),
        backoff_base_s=float(options.get("backoff_base_s", 0.5)),
        backoff_max_s=float(options.get("backoff_max_s", 30.0)),
        retry_after_cap_s=float(options.get("retry_after_cap_s", 60.0)),
    )


def judge_annotator(config: AIJudgeConfig) -> Annotator:
    """The Annotator row of an AI judge configuration, created (and linked) on first use."""
    if config.annotator is not None:
        return config.annotator
    annotator = Annotator.objects.create(kind=Annotator.Kind.AI, name=config.name)
    # Conditional, so two first uses at once link one annotator; the loser's row is removed.
    linked = AIJudgeConfig.objects.filter(pk=config.pk, annotator__isnull=True).update(annotator=annotator)
    if not linked:
        annotator.delete()
        config.refresh_from_db(fields=["annotator"])
        assert config.annotator is not None  # another process linked one first
        return config.annotator
    config.annotator = annotator
    return annotator


def judge_queue(config: AIJudgeConfig) -> str:
    """Local models run on the gpu queue; API and simulated judges on the ai queue."""
    return "gpu" if config.provider == AIJudgeConfig.Provider.LOCAL else "ai"


def template_version_for(config: AIJudgeConfig) -> str:
    """The config's template if it fits its mode, else the default template of the mode."""
    try:
        if get_template(config.template_version).mode == config.mode:
            return config.template_version
    except KeyError:
        pass
    return DEFAULT_TEMPLATE_VERSION[config.mode]


def campaign_mllm_aspects(campaign: Campaign) -> tuple[Aspect, ...]:
    """The campaign's aspects as the judge sees them: the built-in rubric for the four defaults."""
    out = []
    for row in campaign.aspects.order_by("order", "key"):
        out.append(
            _MLLM_ASPECTS.get(row.key)
            or Aspect.custom(
                key=row.key,
                question=row.question,
                # A custom aspect's rubric is its guideline, one level per line (best first).
                rubric=[line.strip() for line in row.guideline.splitlines() if line.strip()],
                name=row.name,
            )
        )
    return tuple(out)


def judge_call_cost(config: AIJudgeConfig, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """Dollars a call cost at the judge's prices per 1k tokens."""
    cost = (
        Decimal(prompt_tokens) * config.price_per_1k_prompt_tokens
        + Decimal(completion_tokens) * config.price_per_1k_completion_tokens
    ) / 1000
    return cost.quantize(Decimal("0.000001"))


def demo_judge_ensure() -> AIJudgeConfig:
    """The simulated demo judge ("simulated-judge") and its AI annotator, created on first use."""
    config, _ = AIJudgeConfig.objects.get_or_create(
        name="simulated-judge",
        defaults={
            "provider": AIJudgeConfig.Provider.SIMULATED,
            "model": "simulated-defects-v1",
            "concurrency": 8,
            "options": {"noise": 0.15, "seed": 0, "latency_s": 0.02},
        },
    )
    judge_annotator(config)
    return config
