"""The one place an OpenAI SDK client is made: for judges, the Batch API and prompt polishing.

A configuration holds the *name* of the environment variable with the API key, never the key; the key is
read here, when a client is created, and is never logged, stored or put in an error message.

`key_variable_check` is the one check of such a name, used by forms, the admin, services and here at
call time: the name must look like a variable name (so a key pasted by mistake is refused without being
echoed) and must be one the operator declared as a model API key (`allowed_names`). Without the second
rule anyone allowed to configure a judge could name DATABASE_URL or DJANGO_SECRET_KEY and have its value
sent as a Bearer token to a server of their choice. The web app passes its AI_API_KEY_ENV_NAMES setting;
code using this kit on its own passes its own list or DEFAULT_API_KEY_ENV_NAMES.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Literal, overload

if TYPE_CHECKING:
    import openai

#: Environment variable names as shells write them. Keys never look like this (lower case, dashes, dots).
ENV_VAR_NAME_RE = re.compile(r"\A[A-Z_][A-Z0-9_]{0,99}\Z")
ENV_VAR_NAME_MESSAGE = (
    "Give the name of the environment variable that holds the key (capitals, digits and _, for example "
    "OPENAI_API_KEY), never the key itself."
)
#: Local servers (vLLM, Ollama) ignore the key, but the SDK insists on one.
NO_KEY = "not-needed"
#: The variables model providers' SDKs and docs name for their keys: the default list of names a judge or
#: a polish job may use. Anything else (DATABASE_URL, DJANGO_SECRET_KEY, AWS_SECRET_ACCESS_KEY...) is refused.
DEFAULT_API_KEY_ENV_NAMES: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "TOGETHER_API_KEY",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
    "VLLM_API_KEY",
)


def key_variable_check(name: str, *, allowed_names: Collection[str]) -> None:
    """Raise ValueError unless `name` is a variable name declared in `allowed_names` (a key is never echoed)."""
    if not ENV_VAR_NAME_RE.match(name or ""):
        raise ValueError(ENV_VAR_NAME_MESSAGE)
    if name not in allowed_names:
        # The name passed the pattern above, so it is a variable name, not a key, and may be repeated.
        declared = ", ".join(sorted(allowed_names)) or "none"
        raise ValueError(
            f"{name} is not declared as a model API key variable (declared: {declared}); an operator can "
            "add it to AI_API_KEY_ENV_NAMES."
        )


def api_key_from_env(
    name: str | None, *, allowed_names: Collection[str], purpose: str = "the API key"
) -> str:
    """The key held by variable `name` (NO_KEY when no variable is named); RuntimeError if it is unset."""
    if not name:
        return NO_KEY
    key_variable_check(name, allowed_names=allowed_names)
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"environment variable {name} ({purpose}) is not set")
    return value


@overload
def openai_client(
    *,
    base_url: str | None,
    api_key_env: str | None,
    api_key_env_allowed: Collection[str],
    timeout_s: float,
    max_retries: int = 0,
    asynchronous: Literal[False] = False,
    purpose: str = "the API key",
) -> openai.OpenAI: ...


@overload
def openai_client(
    *,
    base_url: str | None,
    api_key_env: str | None,
    api_key_env_allowed: Collection[str],
    timeout_s: float,
    max_retries: int = 0,
    asynchronous: Literal[True],
    purpose: str = "the API key",
) -> openai.AsyncOpenAI: ...


def openai_client(
    *,
    base_url: str | None,
    api_key_env: str | None,
    api_key_env_allowed: Collection[str],
    timeout_s: float,
    max_retries: int = 0,
    asynchronous: bool = False,
    purpose: str = "the API key",
) -> openai.OpenAI | openai.AsyncOpenAI:
    """An SDK client for an OpenAI-compatible endpoint, with the key read from the named variable."""
    import openai  # lazily: only the code paths that call an endpoint pay for the SDK

    # Checked here as well as wherever the name was entered: a row written before the allow-list existed,
    # or by a path that skipped validation, still cannot send an undeclared variable anywhere.
    key = api_key_from_env(api_key_env, allowed_names=api_key_env_allowed, purpose=purpose)
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=base_url or None, api_key=key, timeout=timeout_s, max_retries=max_retries)
