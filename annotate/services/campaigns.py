"""Creating campaigns and their annotators."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.text import slugify

from annotate.models import Annotator, Aspect, Campaign
from annotate.permissions import CROWDWORKERS_GROUP


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
