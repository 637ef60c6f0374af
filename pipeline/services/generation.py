"""Generation jobs: make k images per prompt with each chosen generator, store them, build pairs.

Idempotent: an image is identified by (prompt, generator, seed), and seeds are derived from the job
parameters, so a re-run or a resumed run skips every image that already exists.

Generators of kind `diffusers` run through `pipeline.generation.diffusers_backend`: the worker process
loads each pipeline once (a bounded cache), generates `batch_size` images per call, stores every batch
before the next starts (a crash loses at most one batch), checks the cancel flag between batches, and
halves the batch on out-of-memory, saying so in the job log. A model that is not on the machine fails
the job with ModelNotAvailableError's message, which names the model and what to do.
"""

from __future__ import annotations

import hashlib
import io
import random
from typing import Any, cast

from annotate.models import Campaign, Generator, Image, Prompt
from annotate.services.images import image_ingest
from annotate.services.pairs import fidelity_gold_pairs_create, pairs_build
from core.jobs import JobContext, job_create
from core.models import Job
from pipeline.generation.diffusers_backend import GeneratedImage, GeneratorSpec, generate_all, get_pipeline
from pipeline.jobs import GENERATE, GenerationParams


def image_seed(*, base_seed: int, prompt_id: int, index: int) -> int:
    """A stable per-image seed, so re-runs reproduce the same images (fits a signed 63-bit field)."""
    digest = hashlib.sha256(f"{base_seed}:{prompt_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 62) - 1)


def demo_draw_seed(*, seed: int, generator_id: int) -> int:
    """The seed a demo generator draws an image with: the image seed mixed with the generator."""
    return image_seed(base_seed=seed, prompt_id=-generator_id, index=-1)


def _render_demo(*, generator: Generator, prompt: Prompt, seed: int) -> tuple[bytes, dict[str, Any]]:
    from pipeline.generation import demo

    options = generator.params or {}
    # Diffusers generators share seeds on purpose (same starting noise across models); two demo
    # generators would then draw byte-identical scenes, so each one draws from its own seed stream.
    draw_seed = demo_draw_seed(seed=seed, generator_id=generator.pk)
    rng = random.Random(draw_seed)
    defects = demo.sample_defects(rng, p=float(options.get("defect_rate", 0.12)))
    size = int(options.get("size", 256))
    picture, record = demo.render_with_record(prompt.text, seed=draw_seed, defects=defects, size=size)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue(), {"generator": "demo", "size": size, **record}


PAIR_STRATEGIES = ("all", "cross_generator", "sample")
SPEC_PARAMS = {
    # Generator.params key -> GeneratorSpec field
    "scheduler": "scheduler",
    "steps": "num_inference_steps",
    "num_inference_steps": "num_inference_steps",
    "guidance_scale": "guidance_scale",
    "width": "width",
    "height": "height",
    "dtype": "dtype",
    "negative_prompt": "negative_prompt",
    "device": "device",
}


def generator_spec(generator: Generator) -> GeneratorSpec:
    """The diffusers spec of a `diffusers` generator: model_id plus its params; a clear error if invalid."""
    params = dict(generator.params or {})
    unknown = sorted(set(params) - set(SPEC_PARAMS))
    if unknown:
        raise ValueError(
            f"generator {generator.name!r} has unknown params {', '.join(unknown)}; "
            f"known: {', '.join(sorted(SPEC_PARAMS))}"
        )
    fields = {SPEC_PARAMS[key]: value for key, value in params.items() if value not in (None, "")}
    try:
        return GeneratorSpec(model=generator.model_id, **fields)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"generator {generator.name!r}: {exc}") from exc


def generator_register(
    *, name: str, model_id: str, params: dict[str, Any], description: str = "", check_scheduler: bool = True
) -> Generator:
    """Register a diffusers generator (hub id or local path); every parameter is checked before it is saved."""
    name, model_id = name.strip(), model_id.strip()
    if not name:
        raise ValueError("a generator needs a name")
    if Generator.objects.filter(name=name).exists():
        raise ValueError(f"a generator named {name!r} exists already")
    params = {key: value for key, value in params.items() if value not in (None, "")}
    generator = Generator(name=name, kind=Generator.Kind.DIFFUSERS, model_id=model_id, params=params)
    spec = generator_spec(generator)  # unknown keys, dtype, device, steps, sizes: ValueError
    if check_scheduler and spec.scheduler:
        from pipeline.generation.diffusers_backend import scheduler_class

        scheduler_class(spec.scheduler)  # imports diffusers: an unknown name is refused here, not on the GPU
    generator.description = description
    generator.save()
    return generator


def _png(picture: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _run_demo(
    ctx: JobContext, generator: Generator, missing: list[tuple[Prompt, int]], counts: dict[str, int]
) -> None:
    for prompt, seed in missing:
        ctx.check_cancelled()
        data, record = _render_demo(generator=generator, prompt=prompt, seed=seed)
        _, was_created = image_ingest(
            data=data, generator=generator, prompt=prompt, seed=seed, params=record, filename="demo.png"
        )
        counts["created" if was_created else "identical"] += 1
        ctx.advance()


def _run_diffusers(
    ctx: JobContext,
    generator: Generator,
    missing: list[tuple[Prompt, int]],
    counts: dict[str, int],
    batch_size: int,
) -> None:
    spec = generator_spec(generator)
    ctx.log(
        f"{generator.name}: loading {spec.model} ({spec.dtype} on {spec.device}) for {len(missing)} images"
    )
    pipe = get_pipeline(spec)  # ModelNotAvailableError fails the job with a message naming the model
    prompts = {prompt.pk: prompt for prompt, _ in missing}
    recorded = {**spec.parameters(), "generator": generator.name, "batch_size": batch_size}

    def store(batch: list[GeneratedImage]) -> None:
        for made in batch:
            prompt_id, seed = cast(tuple[int, int], made.key)
            _, was_created = image_ingest(
                data=_png(made.image),
                generator=generator,
                prompt=prompts[prompt_id],
                seed=seed,
                params={**recorded, "seed": seed},
                filename="generated.png",
            )
            counts["created" if was_created else "identical"] += 1
        ctx.advance(len(batch))

    summary = generate_all(
        spec,
        [((prompt.pk, seed), prompt.text, seed) for prompt, seed in missing],
        batch_size=batch_size,
        on_images=store,
        should_stop=ctx.should_stop,
        log=lambda message: ctx.log(f"{generator.name}: {message}"),
        pipe=pipe,
    )
    if summary.stopped:
        ctx.check_cancelled()  # raises JobCancelled: the runner records the job as cancelled
    ctx.log(
        f"{generator.name}: {summary.images} images in {summary.batches} batches"
        + (f", final batch size {summary.batch_size}" if summary.out_of_memory_retries else "")
    )


def demo_prompts_outside_grammar(prompts: list[Prompt]) -> list[Prompt]:
    """The prompts a demo generator cannot draw (outside its grammar); they are skipped, not failed on."""
    from pipeline.generation.demo import prompt_fits_grammar

    return [prompt for prompt in prompts if not prompt_fits_grammar(prompt.text)]


def demo_skip_message(skipped: int, total: int) -> str:
    """One line for the job log and the launch page: how many prompts a demo generator skips, and why."""
    from pipeline.generation.demo import GRAMMAR_SUMMARY

    return f"skipped {skipped} of {total} prompts outside the demo grammar: {GRAMMAR_SUMMARY}"


def generation_job(ctx: JobContext) -> dict[str, Any]:
    """Job handler (GenerationParams): render the missing images, build pairs, add fidelity gold pairs."""
    params: GenerationParams = ctx.params
    campaign = Campaign.objects.get(pk=params.campaign_id)
    generators = list(Generator.objects.filter(pk__in=params.generator_ids).order_by("pk"))
    if not generators:
        raise ValueError("No generators selected for this generation job.")
    per_prompt = params.images_per_prompt
    batch_size = params.batch_size
    base_seed = params.seed
    prompts = list(campaign.prompts.order_by("pk"))
    existing = set(
        Image.objects.filter(prompt__in=prompts, generator__in=generators, seed__isnull=False).values_list(
            "generator_id", "prompt_id", "seed"
        )
    )
    missing: dict[int, list[tuple[Prompt, int]]] = {g.pk: [] for g in generators}
    skipped = 0
    # The demo generator draws only its grammar: other prompts are skipped with a count and a reason.
    outside = (
        {p.pk for p in demo_prompts_outside_grammar(prompts)}
        if any(g.kind == Generator.Kind.DEMO for g in generators)
        else set()
    )
    if outside:
        ctx.log(demo_skip_message(len(outside), len(prompts)))
    for generator in generators:
        for prompt in prompts:
            if generator.kind == Generator.Kind.DEMO and prompt.pk in outside:
                continue
            for index in range(per_prompt):
                seed = image_seed(base_seed=base_seed, prompt_id=prompt.pk, index=index)
                if (generator.pk, prompt.pk, seed) in existing:
                    skipped += 1
                else:
                    missing[generator.pk].append((prompt, seed))
    demo_generators = sum(1 for g in generators if g.kind == Generator.Kind.DEMO)
    planned = (len(generators) * len(prompts) - demo_generators * len(outside)) * per_prompt
    ctx.set_progress(skipped, total=planned)
    if skipped:
        remaining = sum(len(todo) for todo in missing.values())
        ctx.log(f"{skipped} images exist already; generating the other {remaining}")
    counts = {"created": 0, "identical": 0}
    for generator in generators:
        todo = missing[generator.pk]
        if not todo:
            continue
        ctx.check_cancelled()
        if generator.kind == Generator.Kind.DEMO:
            _run_demo(ctx, generator, todo, counts)
        elif generator.kind == Generator.Kind.DIFFUSERS:
            _run_diffusers(ctx, generator, todo, counts, batch_size)
        else:
            raise ValueError(f"Generator {generator.name!r} of kind {generator.kind} cannot generate images.")
    new_pairs = pairs_build(
        campaign=campaign,
        strategy=params.pair_strategy,
        sample_per_prompt=params.pairs_per_prompt,
        seed=base_seed,
    )
    created = counts["created"]
    identical = (
        f", {counts['identical']} came out byte-identical to a stored image and were not stored again"
        if counts["identical"]
        else ""
    )
    ctx.log(f"created {created} images, skipped {skipped} existing{identical}, built {new_pairs} new pairs")
    result = {
        "images_created": created,
        "images_skipped": skipped,
        "images_identical": counts["identical"],
        "pairs_created": new_pairs,
    }
    if outside:
        result["prompts_outside_demo_grammar"] = len(outside)
    gold_count = params.fidelity_gold_pairs
    if gold_count > 0:
        gold = fidelity_gold_pairs_create(campaign=campaign, count=gold_count, seed=base_seed)
        ctx.log(f"fidelity gold pairs: {len(gold)} (an image against a corrupted copy of itself)")
        result["gold_pairs"] = len(gold)
    return result


def generation_start(
    *,
    campaign: Campaign,
    generators: list[Generator],
    images_per_prompt: int,
    batch_size: int = 4,
    seed: int = 0,
    pair_strategy: str = "all",
    pairs_per_prompt: int | None = None,
    created_by: Any = None,
) -> Job:
    """Start a generation job: on the gpu queue if any generator is a diffusers pipeline, else default."""
    if not generators:
        raise ValueError("choose at least one generator")
    if images_per_prompt < 1 or batch_size < 1:
        raise ValueError("images per prompt and batch size must be at least 1")
    if pair_strategy not in PAIR_STRATEGIES:
        raise ValueError(f"unknown pair strategy {pair_strategy!r}; use {', '.join(PAIR_STRATEGIES)}")
    if pair_strategy == "sample" and not pairs_per_prompt:
        raise ValueError("the sample strategy needs pairs per prompt (at least 1)")
    if pair_strategy == "cross_generator" and len(generators) < 2:
        raise ValueError("cross-generator pairs need at least two generators")
    unusable = [g.name for g in generators if g.kind == Generator.Kind.IMPORTED]
    if unusable:
        raise ValueError(f"imported generators cannot generate images: {', '.join(unusable)}")
    for generator in generators:
        if generator.kind == Generator.Kind.DIFFUSERS:
            generator_spec(generator)  # a bad parameter fails here, in the form, not on the GPU worker
    if not campaign.prompts.exists():
        raise ValueError(f"campaign {campaign.name!r} has no prompts yet; import some first")
    uses_gpu = any(g.kind == Generator.Kind.DIFFUSERS for g in generators)
    n_images = campaign.prompts.count() * images_per_prompt * len(generators)
    return job_create(
        kind=GENERATE,
        params=GenerationParams(
            campaign_id=campaign.pk,
            generator_ids=[g.pk for g in generators],
            images_per_prompt=images_per_prompt,
            batch_size=batch_size,
            seed=seed,
            pair_strategy=pair_strategy,
            pairs_per_prompt=pairs_per_prompt,
        ),
        title=f"Generate {n_images} images for {campaign.name}",
        campaign=campaign,
        created_by=created_by,
        queue="gpu" if uses_gpu else "default",
    )
