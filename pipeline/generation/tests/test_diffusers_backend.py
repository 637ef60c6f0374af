import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from pipeline.generation import diffusers_backend as backend  # noqa: E402
from pipeline.generation.diffusers_backend import (  # noqa: E402
    GenerationJob,
    GeneratorSpec,
    ModelNotAvailableError,
    PipelineCache,
    generate_all,
    generate_batch,
    load_pipeline,
)

PROMPTS = ["three red circles above a blue square", "a green star", "two yellow rings", "a black cross"]


@pytest.fixture(scope="module")
def spec(tiny_sd_path) -> GeneratorSpec:
    return GeneratorSpec(
        model=tiny_sd_path, num_inference_steps=2, guidance_scale=5.0, negative_prompt="blurry"
    )


@pytest.fixture(scope="module")
def pipe(spec):
    return load_pipeline(spec)


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_tiny_pipeline_loads_through_auto_pipeline_by_local_path(pipe):
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    assert isinstance(pipe, StableDiffusionPipeline)
    assert isinstance(pipe.scheduler, PNDMScheduler)
    assert pipe.device.type == "cpu"
    assert pipe.unet.dtype == torch.float32


def test_scheduler_is_swapped_by_name(spec):
    from diffusers import EulerDiscreteScheduler

    euler = GeneratorSpec(model=spec.model, scheduler="EulerDiscreteScheduler", num_inference_steps=2)
    pipe = load_pipeline(euler)
    assert isinstance(pipe.scheduler, EulerDiscreteScheduler)
    # from_config carries the model's noise schedule over to the new scheduler.
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"
    assert generate_batch(pipe, euler, ["a red circle"], [1])[0].size == (64, 64)


def test_unknown_scheduler_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="unknown scheduler 'FancyScheduler'.*EulerDiscreteScheduler"):
        load_pipeline(GeneratorSpec(model=spec.model, scheduler="FancyScheduler"))


@pytest.mark.parametrize("size", [32, 64])
def test_generates_images_of_the_requested_size(pipe, spec, size):
    sized = GeneratorSpec(model=spec.model, num_inference_steps=2, width=size, height=size)
    images = generate_batch(pipe, sized, PROMPTS[:2], [0, 1])
    assert [im.size for im in images] == [(size, size)] * 2
    assert all(im.mode == "RGB" for im in images)


def test_same_seed_gives_identical_pixels_and_other_seeds_differ(pipe, spec):
    first = generate_batch(pipe, spec, [PROMPTS[0]], [42])[0]
    again = generate_batch(pipe, spec, [PROMPTS[0]], [42])[0]
    other = generate_batch(pipe, spec, [PROMPTS[0]], [43])[0]
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_an_image_does_not_depend_on_its_batch(pipe, spec):
    batched = generate_batch(pipe, spec, PROMPTS, [10, 11, 12, 13])
    for prompt, seed, image in zip(PROMPTS, [10, 11, 12, 13], batched, strict=True):
        single = generate_batch(pipe, spec, [prompt], [seed])[0]
        # Batched matrix products may round differently in the last float bit (about 1e-6 seen on CPU),
        # which can flip an 8-bit pixel by one level: one level is the tolerance.
        assert np.abs(pixels(single) - pixels(image)).max() <= 1


def test_generate_batch_needs_one_seed_per_prompt(pipe, spec):
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        generate_batch(pipe, spec, PROMPTS[:2], [1])


def test_spec_validation():
    with pytest.raises(ValueError, match="dtype"):
        GeneratorSpec(model="m", dtype="float64")
    with pytest.raises(ValueError, match="device"):
        GeneratorSpec(model="m", device="tpu")
    with pytest.raises(ValueError, match="multiple of 8"):
        GeneratorSpec(model="m", width=100)
    spec = GeneratorSpec(model="m", num_inference_steps=4)
    assert spec.parameters()["num_inference_steps"] == 4
    assert spec.pipeline_key == GeneratorSpec(model="m", num_inference_steps=50).pipeline_key


# ------------------------------------------------------------------------------------------------ cache


def test_cache_loads_a_pipeline_once_and_evicts_least_recently_used():
    loads = []

    def loader(spec):
        loads.append(spec.model)
        return object()

    cache = PipelineCache(max_size=2, loader=loader)
    a, b, c = (GeneratorSpec(model=name) for name in ("a", "b", "c"))
    first = cache.get(a)
    assert cache.get(GeneratorSpec(model="a", num_inference_steps=3)) is first
    cache.get(b)
    cache.get(a)  # a is now the most recently used: c must evict b
    cache.get(c)
    assert [key[0] for key in cache.cached_keys()] == ["a", "c"]
    assert cache.get(a) is first
    cache.get(b)
    assert loads == ["a", "b", "c", "b"]
    with pytest.raises(ValueError):
        PipelineCache(max_size=0)


def test_get_pipeline_reuses_the_real_loaded_pipeline(spec):
    cache = backend.configure_pipeline_cache(1)
    try:
        first = backend.get_pipeline(spec)
        assert backend.get_pipeline(GeneratorSpec(model=spec.model, num_inference_steps=7)) is first
        half = backend.get_pipeline(GeneratorSpec(model=spec.model, dtype="bfloat16"))
        assert half is not first
        assert half.unet.dtype == torch.bfloat16
        assert len(cache.cached_keys()) == 1
    finally:
        backend.configure_pipeline_cache(backend.DEFAULT_CACHE_SIZE)


# ------------------------------------------------------------------------------------- missing models


def test_missing_local_path_names_it(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ModelNotAvailableError, match="no-such-model.*no directory"):
        load_pipeline(GeneratorSpec(model=missing))


def test_directory_without_a_pipeline_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="does not hold a loadable diffusers pipeline"):
        load_pipeline(GeneratorSpec(model=str(tmp_path)))


def test_hub_model_without_network_names_the_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = "example-org/model-that-is-not-here"
    with pytest.raises(ModelNotAvailableError) as caught:
        load_pipeline(GeneratorSpec(model=model))
    message = str(caught.value)
    assert model in message
    assert "cannot be downloaded on this machine" in message
    assert caught.value.model == model


# --------------------------------------------------------------------------------------- generate_all


class OutOfMemoryAbove:
    """Wraps a pipeline and fails like a too-small GPU for batches larger than `limit`."""

    def __init__(self, pipe, limit: int, error=None):
        self.pipe, self.limit = pipe, limit
        self.calls: list[int] = []
        self.error = error or (
            lambda: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        )

    def __call__(self, **kwargs):
        self.calls.append(len(kwargs["prompt"]))
        if len(kwargs["prompt"]) > self.limit:
            raise self.error()
        return self.pipe(**kwargs)


def jobs(n: int) -> list[GenerationJob]:
    return [GenerationJob(key=f"image-{i}", prompt=PROMPTS[i % len(PROMPTS)], seed=100 + i) for i in range(n)]


@pytest.mark.parametrize(
    "error",
    [
        lambda: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
        lambda: RuntimeError("CUDA error: out of memory"),
    ],
)
def test_out_of_memory_halves_the_batch_and_goes_on(pipe, spec, error):
    wrapped = OutOfMemoryAbove(pipe, limit=2, error=error)
    received, messages = [], []
    summary = generate_all(
        spec, jobs(7), batch_size=8, on_images=received.extend, log=messages.append, pipe=wrapped
    )
    assert [g.key for g in received] == [f"image-{i}" for i in range(7)]
    assert wrapped.calls == [7, 4, 2, 2, 2, 1]
    assert messages == [
        "out of memory at batch size 8; retrying with batch size 4",
        "out of memory at batch size 4; retrying with batch size 2",
    ]
    assert (summary.images, summary.batch_size, summary.out_of_memory_retries) == (7, 2, 2)
    # Halving changes nothing in the pictures: each image keeps its own seeded generator.
    reference = generate_batch(pipe, spec, [received[5].prompt], [received[5].seed])[0]
    assert np.abs(pixels(reference) - pixels(received[5].image)).max() <= 1


def test_out_of_memory_at_batch_size_one_is_raised(pipe, spec):
    with pytest.raises(torch.cuda.OutOfMemoryError):
        generate_all(
            spec, jobs(2), batch_size=2, on_images=lambda _: None, pipe=OutOfMemoryAbove(pipe, limit=0)
        )


def test_other_errors_are_not_retried(pipe, spec):
    wrapped = OutOfMemoryAbove(pipe, limit=0, error=lambda: RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        generate_all(spec, jobs(4), batch_size=4, on_images=lambda _: None, pipe=wrapped)
    assert wrapped.calls == [4]


def test_should_stop_is_honoured_between_batches(pipe, spec):
    batches: list[list] = []
    summary = generate_all(
        spec,
        jobs(9),
        batch_size=3,
        on_images=batches.append,
        should_stop=lambda: len(batches) >= 2,
        log=lambda _: None,
        pipe=pipe,
    )
    assert [len(b) for b in batches] == [3, 3]
    assert summary.stopped and summary.images == 6 and summary.batches == 2


def test_generate_all_uses_the_cached_pipeline_by_default(spec):
    backend.configure_pipeline_cache(1)
    try:
        received = []
        summary = generate_all(spec, [("k", "a red circle", 3)], batch_size=4, on_images=received.extend)
        assert summary.images == 1 and received[0].key == "k"
        assert len(backend.pipeline_cache().cached_keys()) == 1
    finally:
        backend.configure_pipeline_cache(backend.DEFAULT_CACHE_SIZE)
