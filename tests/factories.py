"""factory_boy factories for the core models. Images get real PNG bytes through the ingestion service."""

from __future__ import annotations

import io
import itertools
from typing import Any

import factory
from django.contrib.auth import get_user_model
from PIL import Image as PILImage

from annotate.models import Annotator, Aspect, Campaign, Generator, Image, Judgment, Pair, Prompt
from annotate.services.images import image_ingest
from annotate.services.prompts import prompt_text_key
from core.models import Job
from pipeline.models import AIJudgeConfig

_colour = itertools.count(1)


def png_bytes(size: tuple[int, int] = (16, 16), colour: tuple[int, int, int] | None = None) -> bytes:
    """A small valid PNG; each call without a colour gives different bytes."""
    if colour is None:
        n = next(_colour)
        colour = (n * 37 % 256, n * 91 % 256, (n // 7) * 53 % 256)
    buffer = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    text = factory.Sequence(lambda n: f"{n % 5 + 1} red circles above a blue square, variant {n}")
    text_sha256 = factory.LazyAttribute(lambda o: prompt_text_key(o.text))
    source = "test"


class GeneratorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Generator
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"generator-{n}")
    kind = Generator.Kind.IMPORTED


class ImageFactory(factory.django.DjangoModelFactory):
    """Creates images through image_ingest, so files, sizes and hashes are real."""

    class Meta:
        model = Image

    prompt = factory.SubFactory(PromptFactory)
    generator = factory.SubFactory(GeneratorFactory)
    seed = None

    @classmethod
    def _create(cls, model_class: type[Image], *args: Any, **kwargs: Any) -> Image:
        data = kwargs.pop("data", None) or png_bytes()
        image, _ = image_ingest(
            data=data,
            generator=kwargs["generator"],
            prompt=kwargs.get("prompt"),
            seed=kwargs.get("seed"),
            params=kwargs.get("params") or {},
            filename="factory.png",
        )
        return image


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    status = Campaign.Status.ACTIVE

    @factory.post_generation
    def aspects(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        from pipeline.services.aspects import aspects_ensure_defaults

        if create:
            self.aspects.set(extracted if extracted is not None else aspects_ensure_defaults())


class PairFactory(factory.django.DjangoModelFactory):
    """A pair of two fresh images of one prompt, in canonical order."""

    class Meta:
        model = Pair

    campaign = factory.SubFactory(CampaignFactory)
    prompt = factory.SubFactory(PromptFactory)

    @classmethod
    def _create(cls, model_class: type[Pair], *args: Any, **kwargs: Any) -> Pair:
        prompt = kwargs["prompt"]
        kwargs["campaign"].prompts.add(prompt)
        if "image_a" not in kwargs or "image_b" not in kwargs:
            generator = GeneratorFactory()
            first, second = (
                ImageFactory(prompt=prompt, generator=generator),
                ImageFactory(prompt=prompt, generator=generator),
            )
            kwargs["image_a"], kwargs["image_b"] = sorted([first, second], key=lambda i: i.pk)
        return super()._create(model_class, *args, **kwargs)


class HumanAnnotatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Annotator

    kind = Annotator.Kind.HUMAN
    user = factory.SubFactory(UserFactory)
    name = factory.LazyAttribute(lambda o: o.user.username)


class AIJudgeConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AIJudgeConfig

    name = factory.Sequence(lambda n: f"judge-{n}")
    provider = AIJudgeConfig.Provider.SIMULATED
    model = "simulated-judge"


class AIAnnotatorFactory(factory.django.DjangoModelFactory):
    """An AI annotator and the judge configuration that points at it (``annotator.ai_judge``)."""

    class Meta:
        model = Annotator
        skip_postgeneration_save = True

    kind = Annotator.Kind.AI
    name = factory.Sequence(lambda n: f"judge-{n}")

    @factory.post_generation
    def ai_judge(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            AIJudgeConfigFactory(name=self.name, annotator=self, **kwargs)


class JudgmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Judgment

    pair = factory.SubFactory(PairFactory)
    annotator = factory.SubFactory(HumanAnnotatorFactory)
    aspect = factory.LazyFunction(lambda: Aspect.objects.order_by("order").first())
    choice = Judgment.Choice.A


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    kind = "demo"
    title = "test job"
