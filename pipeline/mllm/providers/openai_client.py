"""The one place an OpenAI SDK client is made: for judges, the Batch API and prompt polishing.

A configuration holds the *name* of the environment variable with the API key, never the key; the key is
read here, when a client is created, and is never logged, stored or put in an error message. Names are
checked to look like variable names, so a key pasted by mistake is refused without being echoed.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Literal, overload

if TYPE_CHECKING:
    import openai

#: Environment variable names as shells write them. Keys never look like this (lower case, dashes, dots).
ENV_VAR_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
ENV_VAR_NAME_MESSAGE = (
    "Give the name of the environment variable that holds the key (capitals, digits and _, for example "
    "OPENAI_API_KEY), never the key itself."
)
#: Local servers (vLLM, Ollama) ignore the key, but the SDK insists on one.
NO_KEY = "not-needed"


def key_variable_check(name: str) -> None:
    """Raise ValueError (without repeating `name`: it may be a pasted key) unless it is a variable name."""
    if not ENV_VAR_NAME_RE.match(name or ""):
        raise ValueError(ENV_VAR_NAME_MESSAGE)


def api_key_from_env(name: str | None, *, purpose: str = "the API key") -> str:
    """The key held by variable `name` (NO_KEY when no variable is named); RuntimeError if it is unset."""
    if not name:
        return NO_KEY
    key_variable_check(name)
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"environment variable {name} ({purpose}) is not set")
    return value


@overload
def openai_client(
    *,
    base_url: str | None,
    api_key_env: str | None,
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
    timeout_s: float,
    max_retries: int = 0,
    asynchronous: Literal[True],
    purpose: str = "the API key",
) -> openai.AsyncOpenAI: ...


def openai_client(
    *,
    base_url: str | None,
    api_key_env: str | None,
    timeout_s: float,
    max_retries: int = 0,
    asynchronous: bool = False,
    purpose: str = "the API key",
) -> openai.OpenAI | openai.AsyncOpenAI:
    """An SDK client for an OpenAI-compatible endpoint, with the key read from the named variable."""
    import openai  # lazily: only the code paths that call an endpoint pay for the SDK

    key = api_key_from_env(api_key_env, purpose=purpose)
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=base_url or None, api_key=key, timeout=timeout_s, max_retries=max_retries)
