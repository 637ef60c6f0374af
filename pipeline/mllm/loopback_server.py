"""A real loopback HTTP server speaking the OpenAI Chat Completions protocol, scriptable per test.

It listens on 127.0.0.1 (ephemeral port by default) and serves ``POST /v1/chat/completions`` and
``GET /v1/models`` over HTTP/1.1 with keep-alive, on a stdlib asyncio loop — so hundreds of slow requests
can be in flight at once without a thread each.

Answers: by default a valid judgment built from the request itself (the aspects, image labels and score
scale are read from the ``response_format`` JSON Schema, or from the schema spelled out in the prompt when
there is none). Tests queue behaviours with :meth:`LoopbackServer.script`; each chat request consumes
one, then the default resumes::

    with LoopbackServer(latency_s=0.2) as server:
        server.script(rate_limited(retry_after=1), server_error(500), fenced_json())
        ... OpenAI client with base_url=server.base_url ...
        assert server.usage == (prompt_tokens_seen_by_client, completion_tokens_seen_by_client)

Every request is recorded — the server-side request log: body, a fingerprint of its messages (the same
call sent twice has the same fingerprint), whether an Authorization header came (never its value), status
returned, usage reported, and whether the reply reached the client (a client that timed out never gets
it, though a real provider would bill it: ``billed_usage`` counts those too). ``max_in_flight`` is the
highest number of chat requests open at once.

From another process: ``python -m pipeline.mllm.loopback_server --port 0 --latency 0.2`` prints
``LOOPBACK_URL http://127.0.0.1:PORT/v1`` and serves until interrupted. Such a server is scripted over
HTTP: ``POST /_loopback/script`` with ``{"behaviours": [{"kind": "rate_limited", "retry_after": 1}]}``,
``GET /_loopback/stats``, ``POST /_loopback/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import email.parser
import email.policy
import hashlib
import itertools
import json
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# --- replies and behaviours --------------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    """What the server sends back: a status, headers and a JSON body (or raw bytes), after an extra delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"


Behaviour = Callable[[dict[str, Any]], Reply]
"""A scripted reply: takes the parsed request body, returns a :class:`Reply`."""

_SCHEMA_IN_PROMPT = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)


def request_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The answer JSON Schema of a chat request: from response_format, else from the prompt text."""
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema")
    if schema:
        return schema
    for message in reversed(body.get("messages", [])):
        content = message.get("content")
        texts = (
            [content]
            if isinstance(content, str)
            else [p.get("text", "") for p in content or [] if p.get("type") == "text"]
        )
        for text in reversed(texts):
            match = _SCHEMA_IN_PROMPT.search(text or "")
            if match:
                with contextlib.suppress(ValueError):
                    return json.loads(match.group(1))
    return None


def valid_answer(body: dict[str, Any]) -> dict[str, Any] | None:
    """A valid answer document for the request's schema (None if the request carries no schema).

    Scores differ per image and per aspect so that verdicts are not all ties: image order is rotated
    by the aspect's position.
    """
    schema = request_schema(body)
    if schema is None:
        return None
    aspects = schema["properties"]["aspects"]["properties"]
    out: dict[str, Any] = {}
    for index, (key, aspect_schema) in enumerate(aspects.items()):
        props = aspect_schema["properties"]
        score_props = props["scores"]["properties"]
        labels = list(score_props)
        low = score_props[labels[0]].get("minimum", 1)
        high = score_props[labels[0]].get("maximum", 10)
        scores = {}
        for i, label in enumerate(labels):
            rank = (i + index) % len(labels)
            scores[label] = max(low, high - 1 - 2 * rank)
        ordered = sorted(labels, key=lambda lab: -scores[lab])
        entry: dict[str, Any] = {"rationale": f"Loopback answer for {key}.", "scores": scores}
        if "preferred" in props:
            entry["preferred"] = ordered[0] if scores[ordered[0]] != scores[ordered[1]] else "tie"
        else:
            entry["ranking"] = [[label] for label in ordered]
        out[key] = entry
    return {"aspects": out}


def _content_reply(
    body: dict[str, Any],
    content: str | None,
    finish_reason: str = "stop",
    refusal: str | None = None,
    delay_s: float = 0.0,
) -> Reply:
    return Reply(200, _completion(body, content, finish_reason, refusal), delay_s=delay_s)


def _completion(
    body: dict[str, Any], content: str | None, finish_reason: str, refusal: str | None
) -> dict[str, Any]:
    prompt_tokens = estimate_prompt_tokens(body)
    completion_tokens = max(1, len(content or refusal or "") // 4)
    return {
        "id": f"chatcmpl-loopback-{next(_IDS)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "loopback"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


_IDS = itertools.count(1)


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt tokens this server reports: text characters / 4 plus 85 per image."""
    chars = images = 0
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                chars += len(part.get("text", ""))
            else:
                images += 1
    return chars // 4 + 85 * images


def _mutated(mutate: Callable[[dict[str, Any]], str | None], finish_reason: str = "stop") -> Behaviour:
    def behaviour(body: dict[str, Any]) -> Reply:
        document = valid_answer(body)
        if document is None:
            return _content_reply(body, "There is no schema in this request.")
        return _content_reply(body, mutate(document), finish_reason)

    return behaviour


def answer(delay_s: float = 0.0) -> Behaviour:
    """A valid answer (after ``delay_s`` more than the server's latency)."""

    def behaviour(body: dict[str, Any]) -> Reply:
        document = valid_answer(body)
        content = json.dumps(document) if document else "There is no schema in this request."
        return _content_reply(body, content, delay_s=delay_s)

    return behaviour


def slow(delay_s: float) -> Behaviour:
    """A valid answer that takes ``delay_s`` extra seconds (longer than a client's timeout, say)."""
    return answer(delay_s)


def content(text: str | None, finish_reason: str = "stop") -> Behaviour:
    """An answer with exactly this content."""
    return lambda body: _content_reply(body, text, finish_reason)


def rate_limited(retry_after: float | str | None = 1, *, retry_after_ms: float | None = None) -> Behaviour:
    """HTTP 429 with ``Retry-After`` (seconds, or an HTTP date string) and/or ``retry-after-ms``."""
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    error = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    return lambda body: Reply(429, error, headers)


def server_error(status: int = 500) -> Behaviour:
    """An HTTP 5xx (or any status) error."""
    error = {"error": {"message": f"Loopback error {status}", "type": "server_error", "code": None}}
    return lambda body: Reply(status, error)


def non_json(
    text: str = "<html><body><h1>502 Bad Gateway</h1></body></html>",
    *,
    status: int = 200,
    content_type: str = "text/html",
) -> Behaviour:
    """A body that is not JSON at all (a proxy's HTML page), with the given status and content type."""
    return lambda body: Reply(status, text.encode(), content_type=content_type)


def error_in_200(message: str = "model overloaded", *, code: str | None = "overloaded") -> Behaviour:
    """HTTP 200 whose body is an error object instead of a completion, as some gateways answer."""
    error = {"error": {"message": message, "type": "server_error", "code": code}}
    return lambda body: Reply(200, error)


def reject_response_format() -> Behaviour:
    """HTTP 400 naming response_format, as servers without structured outputs answer (if one was sent)."""

    def behaviour(body: dict[str, Any]) -> Reply:
        if "response_format" not in body:
            return answer()(body)
        return Reply(400, _RESPONSE_FORMAT_ERROR)

    return behaviour


_RESPONSE_FORMAT_ERROR = {
    "error": {
        "message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": None,
    }
}


def invalid_json() -> Behaviour:
    """A JSON answer cut short (but claiming it stopped normally)."""
    return _mutated(lambda doc: json.dumps(doc)[:-7])


def prose_json() -> Behaviour:
    """A valid JSON answer inside prose."""
    return _mutated(
        lambda doc: f"Here is my evaluation of the images.\n{json.dumps(doc)}\nI hope this helps!"
    )


def fenced_json() -> Behaviour:
    """A valid JSON answer inside a ```json fence."""
    return _mutated(lambda doc: f"```json\n{json.dumps(doc, indent=2)}\n```")


def missing_aspect() -> Behaviour:
    """A JSON answer without its last aspect."""

    def mutate(doc: dict[str, Any]) -> str:
        doc["aspects"].pop(list(doc["aspects"])[-1])
        return json.dumps(doc)

    return _mutated(mutate)


def score_out_of_range(offset: int = 5) -> Behaviour:
    """A JSON answer whose first score is above the scale's maximum."""

    def mutate(doc: dict[str, Any]) -> str:
        first = next(iter(doc["aspects"].values()))
        label = next(iter(first["scores"]))
        first["scores"][label] += offset + 10
        return json.dumps(doc)

    return _mutated(mutate)


def scores_as_strings() -> Behaviour:
    """A JSON answer with every score as a numeric string ("7")."""

    def mutate(doc: dict[str, Any]) -> str:
        for aspect in doc["aspects"].values():
            aspect["scores"] = {label: str(score) for label, score in aspect["scores"].items()}
        return json.dumps(doc)

    return _mutated(mutate)


def refusal(text: str = "I'm sorry, but I can't help with evaluating these images.") -> Behaviour:
    """A refusal in the content."""
    return content(text)


def refusal_field(text: str = "I can't help with that.") -> Behaviour:
    """A refusal in the message's ``refusal`` field (content null), as structured-output servers do."""
    return lambda body: _content_reply(body, None, "stop", refusal=text)


def empty() -> Behaviour:
    """An empty content string."""
    return content("")


def truncated() -> Behaviour:
    """Half a JSON answer with ``finish_reason == "length"``."""
    return _mutated(lambda doc: json.dumps(doc)[: len(json.dumps(doc)) // 2], finish_reason="length")


BEHAVIOURS: dict[str, Callable[..., Behaviour]] = {
    "answer": answer,
    "slow": slow,
    "content": content,
    "rate_limited": rate_limited,
    "server_error": server_error,
    "non_json": non_json,
    "error_in_200": error_in_200,
    "reject_response_format": reject_response_format,
    "invalid_json": invalid_json,
    "prose_json": prose_json,
    "fenced_json": fenced_json,
    "missing_aspect": missing_aspect,
    "score_out_of_range": score_out_of_range,
    "scores_as_strings": scores_as_strings,
    "refusal": refusal,
    "refusal_field": refusal_field,
    "empty": empty,
    "truncated": truncated,
}


def behaviour_from_spec(spec: dict[str, Any]) -> Behaviour:
    """Build a behaviour from ``{"kind": name, **kwargs}`` (the HTTP control API's format)."""
    kwargs = dict(spec)
    kind = kwargs.pop("kind")
    if kind not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {kind!r}; known: {sorted(BEHAVIOURS)}")
    return BEHAVIOURS[kind](**kwargs)


# --- the server ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class RecordedRequest:
    """One request as the server saw it, and what it answered."""

    method: str
    path: str
    body: Any
    authorized: bool
    received_at: float
    status: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    delivered: bool = False
    content_type: str = ""
    fingerprint: str = ""


def request_fingerprint(body: Any) -> str:
    """A digest of a chat request's messages: equal for the same call (prompt and images) sent twice."""
    messages = body.get("messages") if isinstance(body, dict) else None
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:24]


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


class LoopbackServer:
    """The Chat Completions loopback server; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        responder: Behaviour | None = None,
        supports_response_format: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        model_ids: tuple[str, ...] = ("loopback-judge",),
    ) -> None:
        self.latency_s = latency_s
        self.responder = responder or answer()
        self.supports_response_format = supports_response_format
        self.host = host
        self.port = port
        self.model_ids = model_ids
        self._lock = threading.Lock()
        self._script: collections.deque[Behaviour] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_delay_s = 0.0

    # --- test-facing API -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each chat request consumes the next one, then the default responder answers."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def requests(self) -> list[RecordedRequest]:
        """All requests received so far (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Chat completion requests received so far."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def usage(self) -> tuple[int, int]:
        """(prompt_tokens, completion_tokens) summed over answers actually sent to a client."""
        delivered = [r for r in self.requests if r.delivered]
        return sum(r.prompt_tokens for r in delivered), sum(r.completion_tokens for r in delivered)

    @property
    def billed_usage(self) -> tuple[int, int]:
        """(prompt_tokens, completion_tokens) of every answer produced, delivered or not (what a provider bills)."""
        chats = self.chat_requests
        return sum(r.prompt_tokens for r in chats), sum(r.completion_tokens for r in chats)

    def sent_twice(self) -> dict[str, int]:
        """Fingerprints of chat requests received more than once, with their counts (aim: none)."""
        counts = collections.Counter(r.fingerprint for r in self.chat_requests if r.fingerprint)
        return {fingerprint: n for fingerprint, n in counts.items() if n > 1}

    def stats(self) -> dict[str, Any]:
        """Counters as a JSON-able dict (also served at GET /_loopback/stats)."""
        prompt_tokens, completion_tokens = self.usage
        chats = self.chat_requests
        billed_prompt, billed_completion = self.billed_usage
        return {
            "requests": len(chats),
            "statuses": dict(collections.Counter(str(r.status) for r in chats)),
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "billed_prompt_tokens": billed_prompt,
            "billed_completion_tokens": billed_completion,
            "sent_twice": len(self.sent_twice()),
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
            "scripted_left": len(self._script),
        }

    def reset(self) -> None:
        """Forget recorded requests, counters and any scripted behaviours left."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self.max_in_flight = self.in_flight

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        """Start serving in a background thread; returns once the port is bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._bind())
            except BaseException as exc:  # surfaced in start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._close())
            self._loop.close()

        self._thread = threading.Thread(target=main, name="loopback-openai", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _bind(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Server.close() leaves open keep-alive connections alone; end their handlers before the loop goes.
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def serve_forever(self) -> None:
        """Bind and serve in the current loop until cancelled (the CLI's entry)."""
        await self._bind()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    # --- HTTP ---------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    raw = await _read_chunked(reader)
                else:
                    length = int(headers.get("content-length", "0"))
                    raw = await reader.readexactly(length) if length else b""
                keep_alive = (
                    version.strip() == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                )
                record = RecordedRequest(
                    method,
                    target.split("?", 1)[0],
                    None,
                    "authorization" in headers,
                    time.time(),
                    content_type=headers.get("content-type", ""),
                )
                status, reply_headers, payload = await self._route(record, raw)
                if reader.at_eof() or writer.is_closing():
                    return  # the client gave up (timeout) while we were "thinking"
                reply_headers = dict(reply_headers)
                content_type = reply_headers.pop("content-type", "application/json")
                head_out = [
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
                    f"Content-Type: {content_type}",
                ]
                head_out += [f"{k}: {v}" for k, v in reply_headers.items()]
                head_out.append(f"Content-Length: {len(payload)}")
                head_out.append("Connection: keep-alive" if keep_alive else "Connection: close")
                writer.write(("\r\n".join(head_out) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
                record.delivered = True
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return  # server shutting down; a handler task has nobody to report cancellation to
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _route(self, record: RecordedRequest, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        path = record.path
        if path.endswith("/chat/completions") and record.method == "POST":
            reply = await self._chat(record, raw)
        elif path.endswith("/models") and record.method == "GET":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "loopback"} for m in self.model_ids
            ]
            reply = Reply(200, {"object": "list", "data": data})
        elif "/files" in path or "/batches" in path:
            reply = self._batch_api(record, raw)
        elif path.startswith("/_loopback/"):
            reply = self._control(record, raw)
        else:
            reply = Reply(
                404, {"error": {"message": f"no route {record.method} {path}", "type": "not_found"}}
            )
        record.status = reply.status
        if not path.startswith("/_loopback/"):
            with self._lock:
                self._requests.append(record)
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        return reply.status, {**reply.headers, "content-type": reply.content_type}, payload

    async def _chat(self, record: RecordedRequest, raw: bytes) -> Reply:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            try:
                body = json.loads(raw)
            except ValueError:
                return Reply(
                    400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}}
                )
            record.body = body
            record.fingerprint = request_fingerprint(body)
            if not self.supports_response_format and "response_format" in body:
                reply = Reply(400, _RESPONSE_FORMAT_ERROR)
            else:
                with self._lock:
                    behaviour = self._script.popleft() if self._script else self.responder
                reply = behaviour(body)
            delay = self.latency_s + reply.delay_s
            if delay > 0:
                await asyncio.sleep(delay)
            if reply.status == 200 and isinstance(reply.body, dict) and "usage" in reply.body:
                record.prompt_tokens = reply.body["usage"]["prompt_tokens"]
                record.completion_tokens = reply.body["usage"]["completion_tokens"]
            return reply
        finally:
            self.in_flight -= 1

    # --- Batch API (files + batches), minimal ---------------------------------------------------------

    def _batch_api(self, record: RecordedRequest, raw: bytes) -> Reply:
        """``POST /v1/files`` (multipart), ``GET /v1/files/{id}/content``, ``POST /v1/batches``,
        ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``.

        A batch is answered line by line when it is created (scripted behaviours apply, in line order;
        latency is not simulated); it reports ``in_progress`` until ``batch_delay_s`` has passed, then
        ``completed``. Every line is recorded as a delivered chat request, so ``usage`` includes it.
        """
        parts = [p for p in record.path.split("/") if p and p != "v1"]
        if parts == ["files"] and record.method == "POST":
            fields = _multipart(record.content_type, raw)
            file_id = f"file-loopback-{next(_IDS)}"
            self.files[file_id] = {
                "data": fields.get("file", b""),
                "purpose": fields.get("purpose", b"").decode(),
            }
            return Reply(200, self._file_object(file_id))
        if len(parts) == 3 and parts[0] == "files" and parts[2] == "content" and parts[1] in self.files:
            return Reply(200, self.files[parts[1]]["data"])
        if parts == ["batches"] and record.method == "POST":
            return self._batch_create(json.loads(raw))
        if len(parts) >= 2 and parts[0] == "batches" and parts[1] in self.batches:
            batch = self.batches[parts[1]]
            if parts[2:] == ["cancel"] and record.method == "POST":
                batch["status"] = "cancelled"
            elif batch["status"] == "in_progress" and time.time() >= batch["_done_at"]:
                batch["status"] = "completed"
            return Reply(200, {k: v for k, v in batch.items() if not k.startswith("_")})
        return Reply(
            404, {"error": {"message": f"no route {record.method} {record.path}", "type": "not_found"}}
        )

    def _file_object(self, file_id: str) -> dict[str, Any]:
        entry = self.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(entry["data"]),
            "created_at": int(time.time()),
            "filename": f"{file_id}.jsonl",
            "purpose": entry["purpose"] or "batch_output",
            "status": "processed",
        }

    def _batch_create(self, body: dict[str, Any]) -> Reply:
        source = self.files.get(body.get("input_file_id", ""))
        if source is None:
            return Reply(
                400, {"error": {"message": "unknown input_file_id", "type": "invalid_request_error"}}
            )
        output: list[str] = []
        errors: list[str] = []
        for line in source["data"].decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            with self._lock:
                behaviour = self._script.popleft() if self._script else self.responder
            reply = behaviour(item["body"])
            record = RecordedRequest("POST", "/v1/chat/completions", item["body"], True, time.time())
            record.status, record.delivered = reply.status, True
            if reply.status == 200 and isinstance(reply.body, dict) and "usage" in reply.body:
                record.prompt_tokens = reply.body["usage"]["prompt_tokens"]
                record.completion_tokens = reply.body["usage"]["completion_tokens"]
            with self._lock:
                self._requests.append(record)
            result = {
                "id": f"batch_req_{next(_IDS)}",
                "custom_id": item["custom_id"],
                "response": {
                    "status_code": reply.status,
                    "request_id": f"req_{next(_IDS)}",
                    "body": reply.body,
                },
                "error": None,
            }
            (output if reply.status == 200 else errors).append(json.dumps(result))
        batch_id = f"batch_loopback_{next(_IDS)}"
        out_ids = []
        for lines in (output, errors):
            file_id = f"file-loopback-{next(_IDS)}"
            self.files[file_id] = {"data": "\n".join(lines).encode(), "purpose": "batch_output"}
            out_ids.append(file_id if lines else None)
        now = int(time.time())
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body.get("endpoint", "/v1/chat/completions"),
            "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window", "24h"),
            "status": "in_progress",
            "output_file_id": out_ids[0],
            "error_file_id": out_ids[1],
            "created_at": now,
            "metadata": body.get("metadata"),
            "request_counts": {
                "total": len(output) + len(errors),
                "completed": len(output),
                "failed": len(errors),
            },
            "_done_at": time.time() + self.batch_delay_s,
        }
        return Reply(200, {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")})

    def _control(self, record: RecordedRequest, raw: bytes) -> Reply:
        action = record.path.removeprefix("/_loopback/")
        try:
            if action == "stats" and record.method == "GET":
                return Reply(200, self.stats())
            if action == "reset" and record.method == "POST":
                self.reset()
                return Reply(200, {"ok": True})
            if action == "script" and record.method == "POST":
                specs = json.loads(raw or b"{}").get("behaviours", [])
                self.script(*(behaviour_from_spec(s) for s in specs))
                return Reply(200, {"ok": True, "queued": len(specs)})
            if action == "latency" and record.method == "POST":
                self.latency_s = float(json.loads(raw)["latency_s"])
                return Reply(200, {"ok": True})
        except (ValueError, TypeError, KeyError) as exc:
            return Reply(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
        return Reply(404, {"error": {"message": f"no control action {action!r}", "type": "not_found"}})


def _multipart(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (name -> bytes), as the OpenAI SDK uploads files."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + raw
    )
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def main(argv: list[str] | None = None) -> None:
    """CLI: serve until SIGINT/SIGTERM, printing the base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every chat answer")
    parser.add_argument("--no-response-format", action="store_true", help="reject response_format with 400")
    args = parser.parse_args(argv)
    server = LoopbackServer(
        latency_s=args.latency,
        host=args.host,
        port=args.port,
        supports_response_format=not args.no_response_format,
    )

    async def run() -> None:
        task = asyncio.create_task(server.serve_forever())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        while server._server is None:
            await asyncio.sleep(0.01)
        print(f"LOOPBACK_URL {server.base_url}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
