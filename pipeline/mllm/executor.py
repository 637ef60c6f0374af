"""The batch engine: many judge calls in flight, results handed back one by one in the caller's thread.

Why a background loop: judges are async (hundreds of HTTP calls share one thread), but the caller — a
Celery task writing AICall and Judgment rows — must stay synchronous, because Django refuses ORM calls
from a thread that runs an event loop. So :func:`iter_batch` runs an asyncio loop in a daemon thread and
passes each finished :class:`CallResult` through a ``queue.Queue`` to the calling thread, which is also
the thread that pulls requests from the caller's iterable (so building requests may touch the ORM too).

Usage from a task (sketch)::

    requests = (build_request(call) for call in pending_calls)   # lazy; may read rows, encode images
    for result in iter_batch(requests, judge, concurrency=32, requests_per_minute=500,
                             tokens_per_minute=None, should_stop=lambda: job_cancel_requested(job_id)):
        ai_call_record_result(result)        # ORM writes, synchronous, one transaction per result

Guarantees: every request taken from the iterable yields exactly one result (``ok``, ``parse_error``,
``api_error`` or ``cancelled``) unless the caller abandons the generator. Results come in completion
order, not request order; match them by ``result.key``. At most ``concurrency`` calls are in flight, and
at most ``concurrency + prefetch`` requests have been taken from the iterable but not yet yielded.

Stopping: ``should_stop`` is polled between results and while waiting for one (at most every
``stop_check_interval_s``). Once it returns True no further request is taken from the iterable; requests
taken but not yet sent come back as ``cancelled`` (attempts == 0, safe to resend later). Calls already
sent are then drained — run to completion, including their retries — with ``on_stop="drain"`` (the
default: their tokens are paid for anyway), or cancelled with ``on_stop="cancel"`` (reported as
``cancelled``; the server may still bill them). Closing the generator early (``break``, an exception in
the loop body) cancels everything still in flight and drops those results.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from pipeline.mllm.calls import CallError, CallRequest, CallResult, CallStatus
from pipeline.mllm.providers.base import CallTracker, Judge

log = logging.getLogger(__name__)

StopMode = Literal["drain", "cancel"]


class TokenBucket:
    """Async token bucket: refills ``rate_per_s`` units per second up to ``capacity``; FIFO waiters.

    A request larger than the capacity may go once the bucket is full; the level then goes negative and
    later requests wait for it to recover, so the long-run rate still holds.
    """

    def __init__(self, rate_per_s: float, capacity: float | None = None) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate must be positive, got {rate_per_s}")
        self.rate = rate_per_s
        self.capacity = capacity if capacity is not None else max(1.0, rate_per_s)
        self._level = self.capacity
        self._stamp = time.monotonic()
        self._lock: asyncio.Lock | None = None

    @classmethod
    def per_minute(cls, amount: float) -> TokenBucket:
        """A bucket for a per-minute limit, allowing a burst of one second's worth."""
        return cls(amount / 60.0)

    def _refill(self) -> None:
        now = time.monotonic()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` units may be spent, then spend them."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one waiter at a time keeps the order fair
            need = min(amount, self.capacity)
            while True:
                self._refill()
                if self._level >= need:
                    self._level -= amount
                    return
                await asyncio.sleep((need - self._level) / self.rate)

    def refund(self, amount: float) -> None:
        """Give back units spent on an estimate that turned out too high (negative: charge more)."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)


class _LoopRunner:
    """Owns the background event loop; everything in it runs in that loop's thread."""

    def __init__(
        self,
        judge: Judge,
        *,
        concurrency: int,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        encode_workers: int,
    ) -> None:
        self.judge = judge
        self._encode_pool = ThreadPoolExecutor(max_workers=encode_workers, thread_name_prefix="mllm-encode")
        self.results: queue.Queue[CallResult] = queue.Queue()
        self._semaphore = asyncio.Semaphore(concurrency)  # binds to the loop on first use (3.10+)
        self._rpm = TokenBucket.per_minute(requests_per_minute) if requests_per_minute else None
        self._tpm = TokenBucket.per_minute(tokens_per_minute) if tokens_per_minute else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sent: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="mllm-batch-loop", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    # Called from the caller's thread -------------------------------------------------------------

    def submit(self, request: CallRequest) -> None:
        """Schedule one request in the loop."""
        self.loop.call_soon_threadsafe(self._spawn, request)

    def stop(self, mode: StopMode) -> None:
        """Cancel what was not sent; with mode 'cancel', what is in flight too."""
        self.loop.call_soon_threadsafe(self._stop, mode)

    def close(self, *, cancel: bool) -> None:
        """Finish (or cancel) the remaining tasks, close the judge's clients, stop and join the loop."""
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(cancel), self.loop).result(timeout=60)
        except Exception:  # a judge failing to close must not hide the batch's own outcome
            log.exception("error while shutting down the batch loop")
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            if not self.thread.is_alive():
                self.loop.close()
            self._encode_pool.shutdown(wait=False, cancel_futures=True)

    # Inside the loop -----------------------------------------------------------------------------

    def _spawn(self, request: CallRequest) -> None:
        task = self.loop.create_task(self._run(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stop(self, mode: StopMode) -> None:
        self._stopping = True
        for task in list(self._tasks):
            if mode == "cancel" or task not in self._sent:
                task.cancel()

    async def _shutdown(self, cancel: bool) -> None:
        if cancel:
            self._stop("cancel")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.judge.aclose()

    async def _run(self, request: CallRequest) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            result = await self._call(task, request)
        except asyncio.CancelledError:
            result = _failed(self.judge, request, "cancelled", _cancel_message(task in self._sent))
        except _ImageError as exc:
            result = _failed(self.judge, request, "image_error", str(exc))
        except Exception as exc:  # a judge bug must cost one call, not the batch
            log.exception("judge %r raised on request %s", self.judge, request.key)
            result = _failed(self.judge, request, "internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            self._sent.discard(task)
        self.results.put(result)

    async def _call(self, task: asyncio.Task[None], request: CallRequest) -> CallResult:
        if request.needs_encoding and self.judge.needs_pixels:
            # Before taking a slot, so encoding the next requests overlaps with the calls in flight.
            try:
                request = await self.loop.run_in_executor(self._encode_pool, request.with_encoded_images)
            except (OSError, ValueError) as exc:  # missing file, not an image, decoder error
                raise _ImageError(f"{type(exc).__name__}: {exc}") from exc
        async with self._semaphore:
            estimate = 0
            if self._rpm is not None:
                await self._rpm.acquire(1)
            if self._tpm is not None:
                estimate = self.judge.estimate_tokens(request)
                await self._tpm.acquire(estimate)
            if self._stopping:
                raise asyncio.CancelledError
            self._sent.add(task)
            result = await self.judge.judge(request)
            if self._tpm is not None and (result.prompt_tokens or result.completion_tokens):
                self._tpm.refund(estimate - result.prompt_tokens - result.completion_tokens)
            return result


class _ImageError(Exception):
    pass


def _cancel_message(sent: bool) -> str:
    if sent:
        return "batch stopped while this call was in flight; the server may still bill it"
    return "batch stopped before this call was sent"


def _failed(judge: Judge, request: CallRequest, reason: str, message: str) -> CallResult:
    tracker = CallTracker(request=request, model=judge.model, provider=judge.provider)
    status: CallStatus = "cancelled" if reason == "cancelled" else "api_error"
    return tracker.finish(status, error=CallError(reason, message))


def iter_batch(
    requests: Iterable[CallRequest],
    judge: Judge,
    *,
    concurrency: int,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_stop: StopMode = "drain",
    stop_check_interval_s: float = 0.5,
    prefetch: int | None = None,
    encode_workers: int = 2,
) -> Iterator[CallResult]:
    """Run ``judge`` on every request with bounded concurrency and rate limits; yield results as they finish.

    Results are yielded in the calling thread (safe for Django ORM writes). See the module docstring for
    the stop and completeness guarantees. ``prefetch`` (default: ``concurrency``) is how many requests
    beyond the in-flight ones are taken from the iterable ahead of time, so the loop never idles while
    the caller is busy writing a result. Images given as ``RequestImage.source`` are encoded by
    ``encode_workers`` threads before their call takes a slot.
    """
    ready = iter_batch_ready(
        requests,
        judge,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        should_stop=should_stop,
        on_stop=on_stop,
        stop_check_interval_s=stop_check_interval_s,
        prefetch=prefetch,
        encode_workers=encode_workers,
        max_ready=1,
    )
    return _flatten(ready)


def _flatten(batches: Generator[list[CallResult], None, None]) -> Iterator[CallResult]:
    try:
        for batch in batches:
            yield from batch
    finally:
        batches.close()  # closing early cancels what is in flight, as the batches' generator promises


def iter_batch_ready(
    requests: Iterable[CallRequest],
    judge: Judge,
    *,
    concurrency: int,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_stop: StopMode = "drain",
    stop_check_interval_s: float = 0.5,
    prefetch: int | None = None,
    encode_workers: int = 2,
    max_ready: int = 64,
) -> Generator[list[CallResult], None, None]:
    """Like :func:`iter_batch`, but yields every result that is ready at once (1 to ``max_ready``).

    A caller that records results in a database writes a list in one transaction: when writing is slower
    than the server answers, results that arrived meanwhile are written together instead of queueing,
    so fewer answers wait unwritten in memory (where a crash of the process loses them)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if max_ready < 1:
        raise ValueError(f"max_ready must be at least 1, got {max_ready}")
    window = concurrency + (concurrency if prefetch is None else max(0, prefetch))
    # A separate generator, so that bad arguments raise here, at the call, not at the first next().
    return _results(
        requests,
        max_ready=max_ready,
        window=window,
        should_stop=should_stop,
        on_stop=on_stop,
        stop_check_interval_s=stop_check_interval_s,
        make_runner=lambda: _LoopRunner(
            judge,
            concurrency=concurrency,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            encode_workers=encode_workers,
        ),
    )


def _results(
    requests: Iterable[CallRequest],
    *,
    max_ready: int,
    window: int,
    should_stop: Callable[[], bool] | None,
    on_stop: StopMode,
    stop_check_interval_s: float,
    make_runner: Callable[[], _LoopRunner],
) -> Generator[list[CallResult], None, None]:
    runner = make_runner()  # the loop thread starts with the first next(), not at the call
    source = iter(requests)
    outstanding = 0
    exhausted = stopped = False
    next_check = -math.inf
    poll = max(0.05, stop_check_interval_s) if should_stop is not None else 1.0
    try:
        while True:
            if should_stop is not None and not stopped and time.monotonic() >= next_check:
                next_check = time.monotonic() + stop_check_interval_s
                if should_stop():
                    stopped = True
                    runner.stop(on_stop)
            while not (exhausted or stopped) and outstanding < window:
                try:
                    request = next(source)
                except StopIteration:
                    exhausted = True
                    break
                runner.submit(request)
                outstanding += 1
            if outstanding == 0:
                return
            try:
                result = runner.results.get(timeout=poll)
            except queue.Empty:
                if not runner.thread.is_alive():
                    raise RuntimeError("the batch event loop died") from None
                continue
            ready = [result]
            while len(ready) < max_ready:
                try:
                    ready.append(runner.results.get_nowait())
                except queue.Empty:
                    break
            outstanding -= len(ready)
            yield ready
    finally:
        runner.close(cancel=outstanding > 0)
