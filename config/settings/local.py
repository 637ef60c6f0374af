"""Laptop/demo settings: SQLite, local media, an embedded broker started by `make demo`."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
