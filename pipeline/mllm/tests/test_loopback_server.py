"""The loopback server itself: protocol details, the control API, and the command-line entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipeline.mllm import loopback_server as lb
from pipeline.mllm.tests.helpers import make_judge, make_request
from pipeline.mllm.tests.test_openai_judge import judge_one

ROOT = Path(__file__).resolve().parents[3]


def http(url: str, body: object = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_models_route_and_unknown_routes(server):
    status, body = http(f"{server.base_url}/models")
    assert status == 200 and body["data"][0]["id"] == "loopback-judge"
    assert http(f"{server.url}/nope")[0] == 404


def test_bad_json_body_is_a_400(server):
    request = urllib.request.Request(f"{server.base_url}/chat/completions", data=b"{not json")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400


def test_request_without_schema_gets_a_plain_answer(server):
    status, body = http(
        f"{server.base_url}/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "There is no schema in this request."
    assert body["usage"]["prompt_tokens"] == 0


def test_reset_forgets_requests_and_script(server):
    server.script(lb.empty())
    http(f"{server.base_url}/models")
    server.reset()
    assert server.requests == [] and server.stats()["scripted_left"] == 0


@pytest.mark.usefixtures("api_key")
def test_cli_server_in_another_process_is_scriptable_over_http(small_image):
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline.mllm.loopback_server", "--port", "0", "--latency", "0.05"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline().strip()
        assert line.startswith("LOOPBACK_URL http://127.0.0.1:")
        base_url = line.split(" ", 1)[1]
        root = base_url.removesuffix("/v1")
        assert http(
            f"{root}/_loopback/script", {"behaviours": [{"kind": "rate_limited", "retry_after": 0}]}
        ) == (
            200,
            {"ok": True, "queued": 1},
        )
        assert http(f"{root}/_loopback/script", {"behaviours": [{"kind": "bogus"}]})[0] == 400
        result = judge_one(make_judge(base_url), make_request("r", small_image))
        assert result.ok and [a.outcome for a in result.attempt_log] == ["rate_limited", "ok"]
        status, stats = http(f"{root}/_loopback/stats")
        assert stats["requests"] == 2 and stats["statuses"] == {"429": 1, "200": 1}
        assert (stats["prompt_tokens"], stats["completion_tokens"]) == (
            result.prompt_tokens,
            result.completion_tokens,
        )
    finally:
        child.terminate()
        child.wait(timeout=10)
    assert child.returncode == 0
