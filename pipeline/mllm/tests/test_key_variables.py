"""The one check of an API key variable's name: a variable name, and one the operator declared as a key."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.mllm.loopback_server import LoopbackServer
from pipeline.mllm.polish import PolishConfig, PromptPolisher
from pipeline.mllm.providers import OpenAICompatibleJudge, OpenAIJudgeConfig
from pipeline.mllm.providers.openai_client import (
    DEFAULT_API_KEY_ENV_NAMES,
    key_variable_check,
    openai_client,
)

SECRETS = ("DATABASE_URL", "DJANGO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "CELERY_BROKER_URL")


@pytest.fixture
def secret_env(monkeypatch):
    """Variables a web app holds that must never leave it, set to recognisable values."""
    for name in SECRETS:
        monkeypatch.setenv(name, f"secret-value-of-{name}")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-declared-key")
    return SECRETS


@pytest.mark.parametrize("name", SECRETS)
def test_undeclared_variables_are_refused_and_the_message_lists_the_declared_ones(name):
    with pytest.raises(ValueError) as raised:
        key_variable_check(name, allowed_names=DEFAULT_API_KEY_ENV_NAMES)
    assert "not declared" in str(raised.value) and "OPENAI_API_KEY" in str(raised.value)


def test_declared_provider_variables_pass_and_a_trailing_newline_does_not():
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "VLLM_API_KEY"):
        key_variable_check(name, allowed_names=DEFAULT_API_KEY_ENV_NAMES)
    with pytest.raises(ValueError, match="name of the environment variable"):
        key_variable_check("OPENAI_API_KEY\n", allowed_names=DEFAULT_API_KEY_ENV_NAMES)
    key_variable_check("MY_LAB_KEY", allowed_names=("MY_LAB_KEY",))  # an operator's own list


def test_no_client_is_made_for_an_undeclared_variable_even_when_it_is_set(secret_env):
    for name in secret_env:
        with pytest.raises(ValueError, match="not declared"):
            openai_client(
                base_url="http://127.0.0.1:9/v1",
                api_key_env=name,
                api_key_env_allowed=DEFAULT_API_KEY_ENV_NAMES,
                timeout_s=1,
            )
    client = openai_client(
        base_url="http://127.0.0.1:9/v1",
        api_key_env="OPENAI_API_KEY",
        api_key_env_allowed=DEFAULT_API_KEY_ENV_NAMES,
        timeout_s=1,
    )
    assert client.api_key == "sk-test-declared-key"


def test_a_judge_naming_the_database_url_sends_nothing(secret_env):
    with LoopbackServer() as server:
        with pytest.raises(ValueError, match="not declared"):
            OpenAICompatibleJudge(
                OpenAIJudgeConfig(
                    model="loopback-judge", base_url=server.base_url, api_key_env="DATABASE_URL"
                )
            )
        # A config built by hand with the secret "declared" for the constructor but not for the client
        # still cannot send it: the client checks again when it is made.
        judge = OpenAICompatibleJudge(
            OpenAIJudgeConfig(model="loopback-judge", base_url=server.base_url, api_key_env="OPENAI_API_KEY")
        )
        object.__setattr__(judge.config, "api_key_env", "DATABASE_URL")

        async def first_client() -> None:
            judge._get_client()

        with pytest.raises(ValueError, match="not declared"):
            asyncio.run(first_client())
        assert server.requests == []


def test_a_polisher_naming_a_secret_is_refused(secret_env):
    with pytest.raises(ValueError, match="not declared"):
        PromptPolisher(
            PolishConfig(model="m", base_url="http://127.0.0.1:9/v1", api_key_env="DJANGO_SECRET_KEY")
        )
