"""The batch engine: bounded concurrency, rate limits, results in the caller's thread, stopping."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pipeline.mllm import CallRequest, ImageEncoding, RequestImage, TokenBucket, iter_batch, iter_batch_ready
from pipeline.mllm.calls import CallResult
from pipeline.mllm.loopback_server import LoopbackServer
from pipeline.mllm.providers import CallTracker, SimulatedJudge
from pipeline.mllm.tests.helpers import image_bytes, make_judge, make_request


class FakeJudge:
    """A judge that sleeps, counts calls in flight and can be told to blow up."""

    provider = "fake"
    model = "fake-judge"
    needs_pixels = False

    def __init__(
        self,
        latency_s: float = 0.0,
        tokens: int = 0,
        explode_on: str | None = None,
        fast_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.latency_s = latency_s
        self.fast_keys = fast_keys
        self.tokens = tokens
        self.explode_on = explode_on
        self.in_flight = self.max_in_flight = 0
        self.sent_at: list[float] = []
        self.closed = 0

    def estimate_tokens(self, request: CallRequest) -> int:
        return self.tokens

    async def aclose(self) -> None:
        self.closed += 1

    async def judge(self, request: CallRequest) -> CallResult:
        self.sent_at.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if request.key == self.explode_on:
                raise ZeroDivisionError("judge bug")
            await asyncio.sleep(0 if request.key in self.fast_keys else self.latency_s)
            return CallTracker(request=request, model=self.model, provider=self.provider).finish("ok")
        finally:
            self.in_flight -= 1


def plain_requests(n: int, taken: list[str] | None = None):
    for i in range(n):
        if taken is not None:
            taken.append(str(i))
        yield CallRequest(key=str(i), prompt="p", images=(RequestImage("a"), RequestImage("b")))


@pytest.mark.usefixtures("api_key")
def test_concurrency_bound_respected_against_a_slow_server(small_image):
    with LoopbackServer(latency_s=0.2) as server:
        judge = make_judge(server)
        started = time.perf_counter()
        requests = (make_request(str(i), small_image) for i in range(96))
        results = list(iter_batch(requests, judge, concurrency=32))
        elapsed = time.perf_counter() - started
    assert sorted(r.key for r in results) == sorted(str(i) for i in range(96))
    assert all(r.ok for r in results)
    assert server.max_in_flight == 32  # reached, never exceeded
    assert elapsed < 1.5  # three waves of 0.2 s; a serial client would need 19 s
    prompt_tokens, completion_tokens = server.usage
    assert sum(r.prompt_tokens for r in results) == prompt_tokens
    assert sum(r.completion_tokens for r in results) == completion_tokens


def test_results_arrive_in_the_calling_thread_outside_any_event_loop():
    caller = threading.get_ident()
    for result in iter_batch(plain_requests(5), FakeJudge(), concurrency=2):
        assert threading.get_ident() == caller
        with pytest.raises(RuntimeError):  # Django's ORM refuses to run inside a running loop
            asyncio.get_running_loop()
        assert result.ok


def test_every_request_yields_exactly_one_result_and_the_judge_is_closed():
    judge = FakeJudge(latency_s=0.01)
    results = list(iter_batch(plain_requests(50), judge, concurrency=7))
    assert sorted(int(r.key) for r in results) == list(range(50))
    assert judge.max_in_flight == 7
    assert judge.closed == 1


def test_requests_are_taken_lazily():
    taken: list[str] = []
    batch = iter_batch(plain_requests(100, taken), FakeJudge(latency_s=0.05), concurrency=4, prefetch=2)
    next(batch)
    assert len(taken) <= 4 + 2 + 1
    batch.close()


def test_judge_bug_costs_one_call_not_the_batch():
    results = list(iter_batch(plain_requests(5), FakeJudge(explode_on="2"), concurrency=2))
    by_key = {r.key: r for r in results}
    assert by_key["2"].status == "api_error" and by_key["2"].error.reason == "internal_error"
    assert "ZeroDivisionError" in by_key["2"].error.message
    assert all(r.ok for k, r in by_key.items() if k != "2")


def test_should_stop_drains_sent_calls_and_cancels_the_rest():
    taken: list[str] = []
    judge = FakeJudge(latency_s=0.2)
    seen: list[CallResult] = []
    for result in iter_batch(
        plain_requests(40, taken),
        judge,
        concurrency=4,
        should_stop=lambda: bool(seen),
        stop_check_interval_s=0,
    ):
        seen.append(result)
    ok = [r for r in seen if r.ok]
    cancelled = [r for r in seen if r.status == "cancelled"]
    assert len(seen) == len(taken) < 40  # one result per request taken, and taking stopped
    assert len(ok) + len(cancelled) == len(seen)
    assert len(ok) == len(judge.sent_at) >= 4  # everything sent was allowed to finish
    assert all(r.attempts == 0 and r.error.reason == "cancelled" for r in cancelled)
    assert all("before this call was sent" in r.error.message for r in cancelled)


def test_should_stop_with_cancel_cuts_calls_in_flight():
    judge = FakeJudge(latency_s=5.0)
    start = time.monotonic()
    results = list(
        iter_batch(
            plain_requests(10),
            judge,
            concurrency=4,
            should_stop=lambda: time.monotonic() - start > 0.1,
            on_stop="cancel",
            stop_check_interval_s=0.05,
        )
    )
    assert time.monotonic() - start < 2.0
    assert len(results) == 8 and {r.status for r in results} == {"cancelled"}
    assert sum("in flight" in r.error.message for r in results) == 4


def test_closing_the_generator_early_cancels_calls_in_flight():
    judge = FakeJudge(latency_s=5.0, fast_keys=frozenset({"0"}))
    start = time.monotonic()
    batch = iter_batch(plain_requests(10), judge, concurrency=4)
    assert next(batch).key == "0"
    batch.close()  # what a `break` or an exception in the caller's loop body does
    assert time.monotonic() - start < 1.5
    assert judge.closed == 1
    assert not any(t.name == "mllm-batch-loop" for t in threading.enumerate())


def test_requests_per_minute_limit():
    judge = FakeJudge()
    start = time.monotonic()
    results = list(iter_batch(plain_requests(40), judge, concurrency=40, requests_per_minute=1200))
    elapsed = time.monotonic() - start
    assert len(results) == 40
    # 1200/min = 20/s with a one-second burst: 20 at once, the other 20 over the next second.
    assert 0.85 <= elapsed < 2.0
    sends = sorted(judge.sent_at)
    assert sends[-1] - sends[0] >= 0.85


def test_tokens_per_minute_limit():
    judge = FakeJudge(tokens=100)
    start = time.monotonic()
    list(iter_batch(plain_requests(30), judge, concurrency=30, tokens_per_minute=60_000))
    # 1000 tokens/s, burst 1000: 10 calls at once, then 10 per second.
    assert 1.8 <= time.monotonic() - start < 3.0


def test_token_bucket_refund_and_oversized_requests():
    async def run() -> float:
        bucket = TokenBucket(rate_per_s=100, capacity=10)
        start = time.monotonic()
        await bucket.acquire(50)  # bigger than capacity: allowed when full, level goes to -40
        await bucket.acquire(10)  # must wait for -40 -> 10: 0.5 s
        bucket.refund(1000)  # capped at capacity
        await bucket.acquire(10)
        return time.monotonic() - start

    assert 0.45 <= asyncio.run(run()) < 0.8


@pytest.mark.usefixtures("api_key")
def test_image_sources_are_encoded_by_the_executor(server):
    requests = [
        CallRequest(
            key="1",
            prompt="p",
            images=(
                RequestImage("a", source=image_bytes((400, 200))),
                RequestImage("b", source=lambda: image_bytes((100, 300))),
            ),
            image_encoding=ImageEncoding(max_side=128),
        ),
        CallRequest(
            key="2", prompt="p", images=(RequestImage("a", source=b"junk"), RequestImage("b", source=b""))
        ),
    ]
    results = {r.key: r for r in iter_batch(requests, make_judge(server), concurrency=2)}
    assert results["1"].ok
    encoded = [image.encoded for image in results["1"].request.images]
    assert [(e.width, e.height) for e in encoded] == [(128, 64), (43, 128)]
    sent = server.chat_requests[0].body["messages"][1]["content"]
    assert sent[2]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert results["2"].status == "api_error" and results["2"].error.reason == "image_error"
    assert len(server.chat_requests) == 1


def test_judges_that_need_no_pixels_skip_encoding():
    def never() -> bytes:
        raise AssertionError("the simulated judge must not load images")

    request = CallRequest(
        key="1", prompt="p", images=(RequestImage("a", source=never), RequestImage("b", source=never))
    )
    (result,) = iter_batch([request], SimulatedJudge(), concurrency=1)
    assert result.ok


def test_bad_arguments_raise_at_the_call():
    with pytest.raises(ValueError, match="concurrency"):
        iter_batch([], FakeJudge(), concurrency=0)
    assert list(iter_batch([], FakeJudge(), concurrency=3)) == []


def test_ready_results_come_together_when_the_caller_is_slower_than_the_judge():
    batches = []
    for ready in iter_batch_ready(plain_requests(40), FakeJudge(latency_s=0.01), concurrency=8, max_ready=16):
        batches.append([r.key for r in ready])
        time.sleep(0.05)  # writing a batch takes longer than the judge takes to answer
    keys = [key for batch in batches for key in batch]
    assert sorted(keys, key=int) == [str(i) for i in range(40)]  # each request exactly once
    assert max(len(batch) for batch in batches) > 1 and all(len(batch) <= 16 for batch in batches)
    assert len(batches) < 40


def test_ready_results_refuse_a_bad_limit_at_the_call():
    with pytest.raises(ValueError, match="max_ready"):
        iter_batch_ready(plain_requests(1), FakeJudge(), concurrency=1, max_ready=0)
