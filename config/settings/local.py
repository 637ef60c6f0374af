"""Laptop/demo settings: SQLite, local media, an embedded broker started by `make demo`."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# `make demo` (scripts/run_demo.py) points this at its embedded Redis, so every web process shares one
# cache: sign-in and crowd-entry limits, campaign progress. Without it: memory of each process.
if env("DJANGO_CACHE_REDIS_URL", default=""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env("DJANGO_CACHE_REDIS_URL"),
        }
    }
