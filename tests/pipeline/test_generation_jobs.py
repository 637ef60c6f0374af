"""Generation jobs with a tiny random Stable Diffusion pipeline, run by a real Celery worker.

The pipeline is built from config objects once per session, saved with save_pretrained and registered
as a Generator by its local path, so the job loads it through the real from_pretrained code.
"""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from annotate.models import Campaign, Generator, Image, Pair
from annotate.services.images import image_ingest
from annotate.services.pairs import CORRUPTED_GENERATOR, fidelity_gold_pairs_create, pairs_build
from annotate.services.prompts import prompt_get_or_create
from core.jobs import job_cancel, job_run
from core.models import Job
from pipeline.generation import diffusers_backend
from pipeline.generation.testing import TINY_IMAGE_SIZE
from pipeline.services.generation import generation_start, generator_spec
from tests.factories import AdminFactory, CampaignFactory, GeneratorFactory, ImageFactory, UserFactory
from tests.helpers import fresh, wait_for

pytestmark = pytest.mark.slow
worker_db = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tiny_generator(tiny_sd_path) -> Generator:
    return GeneratorFactory(
        name="tiny-sd",
        kind=Generator.Kind.DIFFUSERS,
        model_id=tiny_sd_path,
        params={"steps": 2, "guidance_scale": 3.0, "width": TINY_IMAGE_SIZE, "height": TINY_IMAGE_SIZE},
    )


def campaign_with_prompts(n: int) -> Campaign:
    campaign = CampaignFactory()
    campaign.prompts.set([prompt_get_or_create(text=f"a tiny painting number {i}")[0] for i in range(n)])
    return campaign


def finished(job: Job, timeout: float = 120) -> Job:
    return wait_for(lambda: (j := fresh(job.pk)).is_finished and j, timeout=timeout)


def stored_hashes() -> dict[tuple[int, int], str]:
    hashes = {}
    for image in Image.objects.all():
        with default_storage.open(image.file.name, "rb") as handle:
            hashes[(image.prompt_id, image.seed)] = hashlib.sha256(handle.read()).hexdigest()
    return hashes


@worker_db
def test_diffusers_job_stores_seeded_images_reproducibly_and_reruns_create_nothing(
    worker, aspects, tiny_generator
):
    campaign = campaign_with_prompts(2)
    start = {"campaign": campaign, "generators": [tiny_generator], "images_per_prompt": 3, "batch_size": 4}
    job = generation_start(**start, seed=11)
    assert job.queue == "gpu"
    done = finished(job)
    assert done.status == Job.Status.SUCCEEDED, done.error + done.log
    assert done.result == {
        "images_created": 6,
        "images_skipped": 0,
        "images_identical": 0,
        "pairs_created": 6,
    }
    assert (done.progress_done, done.progress_total) == (6, 6)
    assert "6 images in 2 batches" in done.log
    image = Image.objects.order_by("pk").first()
    assert (image.width, image.height, image.format) == (TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, "PNG")
    assert image.params["seed"] == image.seed and image.params["num_inference_steps"] == 2
    assert image.params["model"] == tiny_generator.model_id and image.params["batch_size"] == 4
    assert len({i.sha256 for i in Image.objects.all()}) == 6  # six different pictures

    again = finished(generation_start(**start, seed=11))
    assert again.result == {
        "images_created": 0,
        "images_skipped": 6,
        "images_identical": 0,
        "pairs_created": 0,
    }
    assert Image.objects.count() == 6 and Pair.objects.count() == 6

    # The same seeds and settings give identical pixels. (Another batch size may change the last bit of a
    # few pixels: batched kernels round differently, which is why the batch size is recorded.)
    before = stored_hashes()
    Pair.objects.all().delete()
    Image.objects.all().delete()
    redone = finished(generation_start(**start, seed=11))
    assert redone.result["images_created"] == 6
    assert stored_hashes() == before


@worker_db
def test_cancel_stops_a_diffusers_job_between_batches(worker, aspects, tiny_generator, monkeypatch):
    real = diffusers_backend.generate_batch

    def slow_batch(*args, **kwargs):
        import time

        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(diffusers_backend, "generate_batch", slow_batch)
    campaign = campaign_with_prompts(4)
    job = generation_start(campaign=campaign, generators=[tiny_generator], images_per_prompt=16, batch_size=1)
    wait_for(lambda: fresh(job.pk).progress_done >= 2, timeout=60)
    job_cancel(job=fresh(job.pk))
    done = finished(job)
    assert done.status == Job.Status.CANCELLED
    assert "cancellation requested" in done.log
    made = Image.objects.count()
    assert 2 <= made < 64 and done.progress_done == made  # every finished batch is stored, nothing more
    assert Pair.objects.count() == 0


@worker_db
def test_out_of_memory_halves_the_batch_and_says_so(worker, aspects, tiny_generator, monkeypatch):
    real = diffusers_backend.generate_batch

    def small_memory(pipe, spec, prompts, seeds):
        if len(prompts) > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(pipe, spec, prompts, seeds)

    monkeypatch.setattr(diffusers_backend, "generate_batch", small_memory)
    campaign = campaign_with_prompts(1)
    job = generation_start(campaign=campaign, generators=[tiny_generator], images_per_prompt=3, batch_size=4)
    done = finished(job)
    assert done.status == Job.Status.SUCCEEDED, done.error
    assert "tiny-sd: out of memory at batch size 4; retrying with batch size 2" in done.log
    assert "tiny-sd: out of memory at batch size 2; retrying with batch size 1" in done.log
    assert "final batch size 1" in done.log
    assert Image.objects.count() == 3


@worker_db
def test_a_missing_model_fails_the_job_with_a_clear_message(worker, aspects, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    campaign = campaign_with_prompts(1)
    absent = GeneratorFactory(
        name="absent", kind=Generator.Kind.DIFFUSERS, model_id=str(tmp_path / "nothing")
    )
    done = finished(generation_start(campaign=campaign, generators=[absent], images_per_prompt=1))
    assert done.status == Job.Status.FAILED
    assert done.error.startswith(f"ModelNotAvailableError: model '{tmp_path / 'nothing'}' is not available")
    assert "there is no directory" in done.error

    hub = GeneratorFactory(name="hub", kind=Generator.Kind.DIFFUSERS, model_id="example-org/not-downloaded")
    done = finished(generation_start(campaign=campaign, generators=[hub], images_per_prompt=1))
    assert done.status == Job.Status.FAILED
    assert "model 'example-org/not-downloaded' is not available" in done.error
    assert "register the generator by its local path" in done.error
    assert Image.objects.count() == 0


@pytest.mark.django_db
def test_generation_start_picks_the_queue_and_checks_its_input(tiny_generator):
    campaign = campaign_with_prompts(2)
    demo = GeneratorFactory(name="demo", kind=Generator.Kind.DEMO)
    assert generation_start(campaign=campaign, generators=[demo], images_per_prompt=2).queue == "default"
    mixed = generation_start(
        campaign=campaign,
        generators=[demo, tiny_generator],
        images_per_prompt=2,
        pair_strategy="cross_generator",
    )
    assert mixed.queue == "gpu" and mixed.title == f"Generate 8 images for {campaign.name}"
    with pytest.raises(ValueError, match="needs pairs per prompt"):
        generation_start(campaign=campaign, generators=[demo], images_per_prompt=2, pair_strategy="sample")
    with pytest.raises(ValueError, match="at least two generators"):
        generation_start(
            campaign=campaign, generators=[demo], images_per_prompt=2, pair_strategy="cross_generator"
        )
    with pytest.raises(ValueError, match="has no prompts"):
        generation_start(campaign=CampaignFactory(), generators=[demo], images_per_prompt=2)
    bad = GeneratorFactory(
        name="bad", kind=Generator.Kind.DIFFUSERS, model_id="x/y", params={"dtype": "int8"}
    )
    with pytest.raises(ValueError, match="generator 'bad': dtype must be one of"):
        generation_start(campaign=campaign, generators=[bad], images_per_prompt=2)
    typo = GeneratorFactory(name="typo", kind=Generator.Kind.DIFFUSERS, model_id="x/y", params={"stepz": 3})
    with pytest.raises(ValueError, match="unknown params stepz"):
        generator_spec(typo)


@pytest.mark.django_db
def test_pair_strategies_and_fidelity_gold_pairs():
    campaign = CampaignFactory()
    first, second = GeneratorFactory(), GeneratorFactory()
    prompt = prompt_get_or_create(text="a lamp")[0]
    campaign.prompts.add(prompt)
    images = [ImageFactory(prompt=prompt, generator=g) for g in (first, first, second)]
    assert pairs_build(campaign=campaign, strategy="cross_generator") == 2
    assert pairs_build(campaign=campaign, strategy="all") == 1  # only the same-generator pair is new

    gold = fidelity_gold_pairs_create(campaign=campaign, count=2, seed=3)
    assert len(gold) == 2 and all(p.is_gold for p in gold)
    for pair in gold:
        original = pair.image_a if pair.image_a.generator.name != CORRUPTED_GENERATOR else pair.image_b
        assert original in images and pair.image_a_id < pair.image_b_id
        assert pair.gold_answers == {"fidelity": "A" if pair.image_a_id == original.pk else "B"}
        copy = pair.image_b if original == pair.image_a else pair.image_a
        assert copy.params["source_image_id"] == original.pk and copy.prompt == prompt
        # Recorded as a defect, so the simulated judge (and reports by defect) see the damage.
        expected = {"blur": "blur", "noise": "noise", "blocks": "artefacts"}[copy.params["corruption"]]
        assert expected in copy.params["defects"]
    assert [p.pk for p in fidelity_gold_pairs_create(campaign=campaign, count=2, seed=3)] == [
        p.pk for p in gold
    ]
    assert Image.objects.count() == 5
    assert pairs_build(campaign=campaign, strategy="all") == 0, (
        "corrupted copies are never paired by strategy"
    )


@pytest.mark.django_db
def test_generate_page_starts_a_job(client, tiny_generator):
    campaign = campaign_with_prompts(1)
    url = reverse("pipeline:campaign-generate", args=[campaign.slug])
    client.force_login(UserFactory())
    assert client.get(url).status_code == 403
    client.force_login(AdminFactory())
    page = client.get(url)
    assert page.status_code == 200 and "tiny-sd" in page.content.decode()
    response = client.post(
        url,
        {
            "generators": [tiny_generator.pk],
            "images_per_prompt": 2,
            "batch_size": 2,
            "seed": 0,
            "pair_strategy": "all",
        },
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("core:job-detail", args=[job.pk])
    assert job.queue == "gpu" and job.params["batch_size"] == 2

    invalid = client.post(
        url, {"generators": [], "images_per_prompt": 2, "batch_size": 2, "pair_strategy": "all"}
    )
    assert invalid.status_code == 200 and Job.objects.count() == 1


@pytest.mark.django_db
def test_generators_page_registers_a_local_pipeline_with_checked_parameters(client, tiny_sd_path):
    url = reverse("pipeline:generator-list")
    client.force_login(UserFactory())
    assert client.get(url).status_code == 403
    client.force_login(AdminFactory())
    fields = {
        "name": "tiny-euler",
        "model_id": tiny_sd_path,
        "scheduler": "EulerDiscreteScheduler",
        "steps": 2,
        "guidance_scale": 3.0,
        "width": TINY_IMAGE_SIZE,
        "height": TINY_IMAGE_SIZE,
        "dtype": "float32",
        "device": "cpu",
        "negative_prompt": "blurry",
    }
    bad = {
        "scheduler": ("NoSuchScheduler", "unknown scheduler"),
        "width": (100, "multiple of 8"),
        "dtype": ("float8", "Select a valid choice"),
        "device": ("tpu", "device must be"),
        "steps": (0, "greater than or equal to 1"),
        "guidance_scale": ("strong", "Enter a number"),
    }
    for name, (value, message) in bad.items():
        page = client.post(url, {**fields, name: value})
        assert page.status_code == 200 and message.lower() in page.content.decode().lower(), name
    assert not Generator.objects.exists()

    assert client.post(url, fields).status_code == 302
    generator = Generator.objects.get(name="tiny-euler")
    assert (generator.kind, generator.model_id) == (Generator.Kind.DIFFUSERS, tiny_sd_path)
    assert generator.params == {k: v for k, v in fields.items() if k not in ("name", "model_id")}
    spec = generator_spec(generator)
    assert (spec.scheduler, spec.num_inference_steps, spec.negative_prompt) == (
        "EulerDiscreteScheduler",
        2,
        "blurry",
    )
    assert "exists already" in client.post(url, fields).content.decode()
    assert "tiny-euler" in client.get(url).content.decode()


@pytest.mark.django_db
def test_byte_identical_images_are_stored_once_and_the_log_says_so():
    from pipeline.services.generation import _render_demo, image_seed

    campaign = CampaignFactory()
    prompt = prompt_get_or_create(text="two red circles above a blue square")[0]
    campaign.prompts.set([prompt])
    demo = GeneratorFactory(kind=Generator.Kind.DEMO, params={"defect_rate": 0, "size": 64})
    # The same bytes were already imported (say, by an earlier export/import round trip).
    imported = GeneratorFactory()
    for index in range(2):
        data, _ = _render_demo(
            generator=demo, prompt=prompt, seed=image_seed(base_seed=0, prompt_id=prompt.pk, index=index)
        )
        image_ingest(data=data, generator=imported, prompt=prompt, filename="copy.png")
    job = generation_start(campaign=campaign, generators=[demo], images_per_prompt=2)
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    done = fresh(job.pk)
    assert (done.result["images_created"], done.result["images_identical"]) == (0, 2)
    assert "2 came out byte-identical to a stored image" in done.log
    assert Image.objects.count() == 2


@pytest.mark.django_db
def test_two_demo_generators_draw_different_images_for_the_same_prompt_and_seed():
    campaign = CampaignFactory()
    campaign.prompts.set([prompt_get_or_create(text="two red circles above a blue square")[0]])
    clean = [
        GeneratorFactory(kind=Generator.Kind.DEMO, params={"defect_rate": 0, "size": 64}) for _ in range(2)
    ]
    job = generation_start(campaign=campaign, generators=clean, images_per_prompt=2)
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    assert (fresh(job.pk).result["images_created"], fresh(job.pk).result["images_identical"]) == (4, 0)
    assert Image.objects.count() == 4


@pytest.mark.django_db
def test_a_gold_copy_gets_a_damage_its_original_does_not_already_show(aspects):
    """A blurred original blurred again would tie with its copy for a judge that counts defects."""
    campaign = CampaignFactory()
    generator = GeneratorFactory()
    originals = [ImageFactory(generator=generator, params={"defects": ["blur"]}) for _ in range(6)]
    for image in originals:
        campaign.prompts.add(image.prompt)
    gold = fidelity_gold_pairs_create(campaign=campaign, count=6, seed=0)
    assert len(gold) == 6
    for pair in gold:
        copy = pair.image_b if pair.image_b.params.get("source_image_id") else pair.image_a
        assert copy.params["corruption"] != "blur"
        assert set(copy.params["defects"]) > {"blur"}
