"""The demo study: the campaign of grammar prompts, its two synthetic generators and the simulated judge.

Used by `manage.py seed_demo` (make demo), tests and benches. Everything it makes is labelled synthetic or
simulated wherever it appears.
"""

from __future__ import annotations

import random

from annotate.models import Campaign, Generator
from annotate.services.campaigns import campaign_create
from annotate.services.prompts import prompt_get_or_create
from pipeline.generation.demo import random_prompt

DEMO_CAMPAIGN = "Demo: shapes and colours"
DEMO_GENERATOR = "demo-synthetic"
# A second synthetic generator with more defects, so the demo's leaderboards have something to rank.
DEMO_GENERATOR_GLITCHY = "demo-synthetic-glitchy"


def demo_campaign_seed(*, n_prompts: int = 24, seed: int = 7) -> Campaign:
    """Create (or return) the demo campaign with grammar prompts and the synthetic generator."""
    existing = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
    if existing is not None:
        return existing
    for name, defect_rate in ((DEMO_GENERATOR, 0.06), (DEMO_GENERATOR_GLITCHY, 0.2)):
        Generator.objects.get_or_create(
            name=name,
            defaults={
                "kind": Generator.Kind.DEMO,
                "params": {"size": 256, "defect_rate": defect_rate},
                "description": "Synthetic scenes drawn from a small prompt grammar, with recorded defects "
                f"(each defect with probability {defect_rate}). Not a diffusion model: demos and tests only.",
            },
        )
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < n_prompts:
        text = random_prompt(rng)
        if text not in texts:
            texts.append(text)
    campaign = campaign_create(
        name=DEMO_CAMPAIGN,
        status=Campaign.Status.ACTIVE,
        guidelines="Compare the two pictures for each aspect. Read the prompt first: count the shapes and "
        "check their colours and positions. Choose tie only when you truly cannot prefer one.",
        completion_code="DEMO-DONE",
        worker_quota=20,
    )
    campaign.prompts.set([prompt_get_or_create(text=t, source="demo-grammar")[0] for t in texts])
    return campaign
