"""Creating campaigns and their annotators."""

from __future__ import annotations

import random
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.text import slugify

from annotate.models import Annotator, Aspect, Campaign, Generator
from annotate.permissions import CROWDWORKERS_GROUP
from annotate.services.prompts import prompt_get_or_create

DEMO_CAMPAIGN = "Demo: shapes and colours"
DEMO_GENERATOR = "demo-synthetic"
# A second synthetic generator with more defects, so the demo's leaderboards have something to rank.
DEMO_GENERATOR_GLITCHY = "demo-synthetic-glitchy"


def campaign_create(*, name: str, aspect_keys: list[str] | None = None, **fields: Any) -> Campaign:
    """Create a campaign with the given aspects (default: all seeded aspects)."""
    aspects = Aspect.objects.filter(key__in=aspect_keys) if aspect_keys else Aspect.objects.all()
    if aspect_keys and aspects.count() != len(set(aspect_keys)):
        missing = set(aspect_keys) - set(aspects.values_list("key", flat=True))
        raise ValueError(f"Unknown aspects: {', '.join(sorted(missing))}")
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name, slug=fields.pop("slug", None) or slugify(name), **fields
        )
        campaign.aspects.set(aspects)
    return campaign


def human_annotator_for(*, user: Any) -> Annotator:
    """The annotator row of a user account, created on first use."""
    annotator, _ = Annotator.objects.get_or_create(
        user=user, defaults={"kind": Annotator.Kind.HUMAN, "name": user.get_username()}
    )
    return annotator


def crowdworker_create(*, username: str, password: str | None = None) -> Any:
    """A user in the crowdworkers group (no admin rights), with its annotator row."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username)
    if password is not None:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_staff = False
    user.save()
    user.groups.add(Group.objects.get_or_create(name=CROWDWORKERS_GROUP)[0])
    human_annotator_for(user=user)
    return user


def demo_campaign_seed(*, n_prompts: int = 24, seed: int = 7) -> Campaign:
    """Create (or return) the demo campaign with grammar prompts and the synthetic generator."""
    from pipeline.generation.demo import random_prompt

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
