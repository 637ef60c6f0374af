"""Text-to-image generation with diffusers pipelines: loading, a per-process cache, batched generation.

The Django side turns a Generator row into a `GeneratorSpec`, asks `get_pipeline` for the loaded
pipeline (a worker process loads each pipeline once) and hands `generate_all` the (key, prompt, seed)
jobs; it stores each batch of images through `on_images` before the next batch starts, so a crash
loses at most one batch.

Reproducibility: every image gets its own `torch.Generator` seeded with the image's seed, so an image
depends on its prompt, seed and spec only, not on which other prompts shared its batch. The generators
live on the CPU whatever the device, as diffusers recommends: CPU random streams are the same on every
machine, so a seed names the same starting noise on a laptop and on a GPU worker.

torch and diffusers are imported inside the functions that need them: importing this module is cheap
and works on machines without them (the web app imports the spec).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import torch
    from PIL import Image

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_CACHE_SIZE = 1
CACHE_SIZE_ENV = "GENERATION_PIPELINE_CACHE_SIZE"


class ModelNotAvailableError(RuntimeError):
    """The model is neither a local directory nor in the local Hugging Face cache, and cannot be fetched."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        super().__init__(f"model {model!r} is not available: {reason}")


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything that decides what a diffusers text-to-image generator draws for a (prompt, seed)."""

    model: str
    """A Hugging Face hub id ("stable-diffusion-v1-5/stable-diffusion-v1-5") or a local directory."""
    scheduler: str | None = None
    """A diffusers scheduler class name ("EulerDiscreteScheduler"); None keeps the model's own."""
    num_inference_steps: int = 30
    guidance_scale: float = 7.5
    width: int | None = None
    """None lets the pipeline use the model's native size."""
    height: int | None = None
    dtype: str = "float32"
    negative_prompt: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("a generator needs a model: a hub id or a local path")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {self.num_inference_steps}")
        for name in ("width", "height"):
            value = getattr(self, name)
            # The VAE downsamples by 8 in every released Stable Diffusion family.
            if value is not None and (value < 8 or value % 8):
                raise ValueError(f"{name} must be a positive multiple of 8, got {value}")

    @property
    def pipeline_key(self) -> tuple[str, str | None, str, str]:
        """What a loaded pipeline depends on; steps, guidance, size and prompts are per call."""
        return (self.model, self.scheduler, self.dtype, self.device)

    def parameters(self) -> dict[str, Any]:
        """JSON-ready parameters to record with every image this spec makes."""
        return asdict(self)


class GenerationJob(NamedTuple):
    """One image to make: `key` is the caller's handle for it (a row id, a tuple)."""

    key: Hashable
    prompt: str
    seed: int


@dataclass(frozen=True)
class GeneratedImage:
    """An image made for a job, with the job it answers."""

    key: Hashable
    prompt: str
    seed: int
    image: Image.Image


@dataclass
class GenerationSummary:
    """What `generate_all` did: images made, batches run, the final batch size, whether it was stopped."""

    images: int = 0
    batches: int = 0
    batch_size: int = 0
    out_of_memory_retries: int = 0
    stopped: bool = False


# --------------------------------------------------------------------------------------------- loading


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def _dtype_keyword() -> str:
    # diffusers renamed from_pretrained's torch_dtype to dtype (the old name now warns); the releases
    # before the rename know only torch_dtype.
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def _hub_offline_by_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(model: str) -> bool:
    # Hub ids are "name" or "org/name"; anything absolute, relative-dotted or home-based is a path.
    return os.path.isabs(model) or model.startswith((".", "~")) or model.count("/") > 1


def scheduler_class(name: str) -> Any:
    """The diffusers scheduler class of this name; ValueError listing the known names otherwise."""
    import diffusers

    candidate = getattr(diffusers, name, None)
    if not (isinstance(candidate, type) and issubclass(candidate, diffusers.SchedulerMixin)):
        known = sorted(
            n
            for n in dir(diffusers)
            if n.endswith("Scheduler") and isinstance(getattr(diffusers, n, None), type)
        )
        raise ValueError(f"unknown scheduler {name!r}; diffusers has: {', '.join(known)}")
    return candidate


def load_pipeline(spec: GeneratorSpec, *, local_files_only: bool | None = None) -> Any:
    """Load the text-to-image pipeline `spec` names, on its device and dtype, with its scheduler.

    `local_files_only` defaults to the HF_HUB_OFFLINE environment variable: a worker without network
    should say so there, or each load spends seconds on retries before failing.
    """
    from diffusers import AutoPipelineForText2Image

    # Validate the scheduler name before spending time on loading weights.
    scheduler = scheduler_class(spec.scheduler) if spec.scheduler else None
    if local_files_only is None:
        local_files_only = _hub_offline_by_env()
    source = os.path.expanduser(spec.model)
    if _looks_like_path(spec.model) and not os.path.isdir(source):
        raise ModelNotAvailableError(spec.model, f"there is no directory at {source!r} on this machine")
    try:
        pipe = AutoPipelineForText2Image.from_pretrained(
            source, local_files_only=local_files_only, **{_dtype_keyword(): _torch_dtype(spec.dtype)}
        )
    except Exception as exc:
        if not _is_unavailable_error(exc):
            raise
        raise ModelNotAvailableError(spec.model, _unavailable_reason(source, local_files_only, exc)) from exc
    if scheduler is not None:
        pipe.scheduler = scheduler.from_config(pipe.scheduler.config)
    pipe = pipe.to(spec.device)
    # Progress bars go to stderr once per call; a worker reports progress through its Job row instead.
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _unavailable_reason(source: str, local_files_only: bool, exc: BaseException) -> str:
    cause = f"{type(exc).__name__}: {exc}"
    if os.path.isdir(source):
        return f"the directory {source!r} does not hold a loadable diffusers pipeline ({cause})"
    offline = (
        "offline mode: only local files are used"
        if local_files_only
        else "the Hugging Face Hub cannot be reached, or has no such model"
    )
    return (
        "it is neither a local directory nor in the local Hugging Face cache, and it cannot be "
        f"downloaded on this machine ({offline}). Download it where there is network, copy the folder "
        f"here and register the generator by its local path. ({cause})"
    )


def _is_unavailable_error(exc: BaseException) -> bool:
    # diffusers turns most hub failures into OSError (EnvironmentError); huggingface_hub and its HTTP
    # client raise their own types when they escape it.
    if isinstance(exc, OSError):
        return True
    try:
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - very old huggingface_hub
        return False
    return isinstance(exc, HfHubHTTPError | LocalEntryNotFoundError)


# ----------------------------------------------------------------------------------------------- cache


class PipelineCache:
    """A bounded least-recently-used cache of loaded pipelines, keyed by `GeneratorSpec.pipeline_key`."""

    def __init__(
        self, max_size: int = DEFAULT_CACHE_SIZE, loader: Callable[[GeneratorSpec], Any] | None = None
    ):
        if max_size < 1:
            raise ValueError(f"the pipeline cache holds at least one pipeline, got max_size={max_size}")
        self.max_size = max_size
        self._loader = loader or load_pipeline
        self._pipelines: OrderedDict[tuple, Any] = OrderedDict()
        # One lock for lookups and loads: two threads asking for the same model must not load it twice.
        self._lock = threading.Lock()

    def get(self, spec: GeneratorSpec) -> Any:
        """The loaded pipeline for `spec`, loading it (and evicting the least recently used) if needed."""
        key = spec.pipeline_key
        with self._lock:
            if key in self._pipelines:
                self._pipelines.move_to_end(key)
                return self._pipelines[key]
            # Evict before loading: on a GPU the old pipeline's memory must be free for the new one.
            while len(self._pipelines) >= self.max_size:
                evicted, _ = self._pipelines.popitem(last=False)
                logger.info("evicting pipeline %s from the cache", evicted)
                _release_memory()
            pipe = self._loader(spec)
            self._pipelines[key] = pipe
            return pipe

    def cached_keys(self) -> list[tuple]:
        """Cached pipeline keys, least recently used first."""
        with self._lock:
            return list(self._pipelines)

    def clear(self) -> None:
        """Drop every cached pipeline and free the memory it held."""
        with self._lock:
            self._pipelines.clear()
            _release_memory()


def _release_memory() -> None:
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but the cache does not need it
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _cache_size_from_env() -> int:
    value = os.environ.get(CACHE_SIZE_ENV, "")
    return int(value) if value.strip() else DEFAULT_CACHE_SIZE


_cache = PipelineCache(_cache_size_from_env())


def get_pipeline(spec: GeneratorSpec) -> Any:
    """The process-wide cached pipeline for `spec` (size from GENERATION_PIPELINE_CACHE_SIZE, default 1)."""
    return _cache.get(spec)


def configure_pipeline_cache(
    max_size: int, loader: Callable[[GeneratorSpec], Any] | None = None
) -> PipelineCache:
    """Replace the process-wide cache (dropping what it held) with an empty one of `max_size`."""
    global _cache
    _cache.clear()
    _cache = PipelineCache(max_size, loader)
    return _cache


def pipeline_cache() -> PipelineCache:
    """The process-wide pipeline cache."""
    return _cache


# ------------------------------------------------------------------------------------------ generation


def generate_batch(
    pipe: Any, spec: GeneratorSpec, prompts: Sequence[str], seeds: Sequence[int]
) -> list[Image.Image]:
    """Generate one image per (prompt, seed) in a single pipeline call."""
    import torch

    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    if not prompts:
        return []
    generators = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]
    kwargs: dict[str, Any] = {
        "prompt": list(prompts),
        "num_inference_steps": spec.num_inference_steps,
        "guidance_scale": spec.guidance_scale,
        "generator": generators,
        "output_type": "pil",
    }
    if spec.negative_prompt:
        kwargs["negative_prompt"] = [spec.negative_prompt] * len(prompts)
    if spec.width is not None:
        kwargs["width"] = spec.width
    if spec.height is not None:
        kwargs["height"] = spec.height
    with torch.inference_mode():
        return list(pipe(**kwargs).images)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is a CUDA (or other accelerator) out-of-memory error."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def generate_all(
    spec: GeneratorSpec,
    jobs: Iterable[GenerationJob | tuple[Hashable, str, int]],
    *,
    batch_size: int,
    on_images: Callable[[list[GeneratedImage]], None],
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
    pipe: Any = None,
) -> GenerationSummary:
    """Generate every job in batches, calling `on_images` after each batch; halve the batch on OOM.

    `should_stop` is asked before every batch (a cancelled job stops between batches, never inside
    one). When a batch runs out of accelerator memory the batch size is halved, the message goes to
    `log`, and the same images are tried again; at batch size 1 the error is raised. `pipe` defaults to
    the cached pipeline for `spec`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    log = log or logger.info
    pipe = pipe if pipe is not None else get_pipeline(spec)
    summary = GenerationSummary(batch_size=batch_size)
    pending = iter(GenerationJob(*job) for job in jobs)
    batch: list[GenerationJob] = []
    while True:
        while len(batch) < summary.batch_size:
            job = next(pending, None)
            if job is None:
                break
            batch.append(job)
        if not batch:
            return summary
        if should_stop is not None and should_stop():
            summary.stopped = True
            log(f"stopped after {summary.images} images: cancellation requested")
            return summary
        current = batch[: summary.batch_size]
        try:
            images = generate_batch(pipe, spec, [j.prompt for j in current], [j.seed for j in current])
        except Exception as exc:
            if not is_out_of_memory(exc) or summary.batch_size == 1:
                raise
            oom = True
        else:
            oom = False
        if oom:
            # Outside the except block: the exception's traceback pins the failed batch's tensors,
            # and they must be gone before the cache is emptied.
            old = summary.batch_size
            summary.batch_size = max(old // 2, 1)
            summary.out_of_memory_retries += 1
            _release_memory()
            log(f"out of memory at batch size {old}; retrying with batch size {summary.batch_size}")
            continue
        on_images(
            [GeneratedImage(j.key, j.prompt, j.seed, image) for j, image in zip(current, images, strict=True)]
        )
        summary.images += len(images)
        summary.batches += 1
        batch = batch[len(current) :]
