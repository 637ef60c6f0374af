"""Creating and editing campaigns, their custom aspects, and their annotators."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify

from annotate.models import Annotator, Aspect, Campaign
from annotate.permissions import CROWDWORKERS_GROUP

# Aspect keys are JSON keys in every AI judge's answer (pipeline.mllm.aspects checks the same pattern).
ASPECT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


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


def aspect_key_for(name: str) -> str:
    """The key a custom aspect gets from its name: lower-case words joined by underscores."""
    key = slugify(name).replace("-", "_")
    if key and not key[0].isalpha():
        key = f"aspect_{key}"
    return key[:64]


def aspect_custom_create(*, name: str, question: str, rubric: str = "") -> Aspect:
    """A new aspect with its question and rubric (one level per line, best first); its key comes from the name."""
    name, question = " ".join(name.split()), question.strip()
    if not name or not question:
        raise ValueError("A custom aspect needs a name and a question.")
    key = aspect_key_for(name)
    if not ASPECT_KEY.match(key):
        raise ValueError(f"The name {name!r} gives no usable key: use letters and digits.")
    if Aspect.objects.filter(key=key).exists():
        raise ValueError(f"An aspect with the key {key!r} exists already: tick it in the list instead.")
    order = (Aspect.objects.aggregate(top=Max("order"))["top"] or 0) + 1
    rubric = "\n".join(line.strip() for line in rubric.splitlines() if line.strip())
    return Aspect.objects.create(key=key, name=name, question=question, guideline=rubric, order=order)


def campaign_save(*, campaign: Campaign, aspects: list[Aspect], created_by: Any = None) -> Campaign:
    """Save a new or edited campaign with exactly these aspects; a new campaign gets a unique slug."""
    if not aspects:
        raise ValueError("A campaign needs at least one aspect.")
    with transaction.atomic():
        if campaign.pk is None:
            campaign.slug = campaign.slug or _unique_slug(campaign.name)
            if getattr(created_by, "is_authenticated", False):
                campaign.created_by = created_by
        campaign.full_clean(exclude=["prompts", "aspects"])
        campaign.save()
        campaign.aspects.set(aspects)
    return campaign


# Words the campaign routes use after campaigns/ (annotate.urls): never a campaign's slug.
RESERVED_SLUGS = frozenset({"new", "settings-check"})


def _unique_slug(name: str) -> str:
    base = slugify(name)[:180] or "campaign"
    if base in RESERVED_SLUGS:
        base = f"{base}-campaign"
    slug, n = base, 2
    while Campaign.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug
