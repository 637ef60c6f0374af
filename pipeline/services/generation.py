"""Generation jobs: make k images per prompt with each chosen generator, store them, build pairs.

Idempotent: an image is identified by (prompt, generator, seed), and seeds are derived from the job
parameters, so a re-run or a resumed run skips every image that already exists.
"""

from __future__ import annotations

import hashlib
import io
import random
from typing import Any

from annotate.models import Campaign, Generator, Image, Prompt
from annotate.services.images import image_ingest
from annotate.services.pairs import pairs_build
from pipeline.jobs import JobContext


def image_seed(*, base_seed: int, prompt_id: int, index: int) -> int:
    """A stable per-image seed, so re-runs reproduce the same images (fits a signed 63-bit field)."""
    digest = hashlib.sha256(f"{base_seed}:{prompt_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 62) - 1)


def _render_demo(*, generator: Generator, prompt: Prompt, seed: int) -> tuple[bytes, dict[str, Any]]:
    from pipeline.generation import demo

    options = generator.params or {}
    rng = random.Random(seed)
    defects = demo.sample_defects(rng, p=float(options.get("defect_rate", 0.12)))
    size = int(options.get("size", 256))
    picture, record = demo.render_with_record(prompt.text, seed=seed, defects=defects, size=size)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue(), {"generator": "demo", "size": size, **record}


def generation_job(ctx: JobContext) -> dict[str, Any]:
    """Job handler: params campaign_id, generator_ids, images_per_prompt, seed, pair_strategy."""
    campaign = Campaign.objects.get(pk=ctx.params["campaign_id"])
    generators = list(Generator.objects.filter(pk__in=ctx.params["generator_ids"]).order_by("pk"))
    if not generators:
        raise ValueError("No generators selected for this generation job.")
    per_prompt = int(ctx.params.get("images_per_prompt", 4))
    base_seed = int(ctx.params.get("seed", 0))
    prompts = list(campaign.prompts.order_by("pk"))
    todo: list[tuple[Generator, Prompt, int]] = []
    for generator in generators:
        for prompt in prompts:
            for index in range(per_prompt):
                todo.append(
                    (generator, prompt, image_seed(base_seed=base_seed, prompt_id=prompt.pk, index=index))
                )
    existing = set(
        Image.objects.filter(prompt__in=prompts, generator__in=generators, seed__isnull=False).values_list(
            "generator_id", "prompt_id", "seed"
        )
    )
    ctx.set_progress(0, total=len(todo))
    created = skipped = 0
    for generator, prompt, seed in todo:
        if (generator.pk, prompt.pk, seed) in existing:
            skipped += 1
            ctx.advance()
            continue
        ctx.check_cancelled()
        if generator.kind != Generator.Kind.DEMO:
            raise ValueError(f"Generator {generator.name!r} of kind {generator.kind} cannot run here.")
        data, record = _render_demo(generator=generator, prompt=prompt, seed=seed)
        _, was_created = image_ingest(
            data=data, generator=generator, prompt=prompt, seed=seed, params=record, filename="demo.png"
        )
        created += int(was_created)
        ctx.advance()
    new_pairs = pairs_build(
        campaign=campaign,
        strategy=ctx.params.get("pair_strategy", "all"),
        sample_per_prompt=ctx.params.get("pairs_per_prompt"),
        seed=base_seed,
    )
    ctx.log(f"created {created} images, skipped {skipped} existing, built {new_pairs} new pairs")
    return {"images_created": created, "images_skipped": skipped, "pairs_created": new_pairs}
