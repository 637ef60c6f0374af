"""Test settings: real PostgreSQL and Redis over loopback (CI starts them), fast password hashing."""

from .base import *  # noqa: F403
from .base import AI_API_KEY_ENV_NAMES, BASE_DIR, env
from .base import DATABASES as BASE_DATABASES

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-production"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each concurrent test run (a developer's, CI's) may point at its own database and Redis DB number.
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/visionprefer")}
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_visionprefer")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The SQLite lane (`make pytest-sqlite`): the embedded default exactly as `make demo` runs it (WAL, busy
    # timeout, BEGIN IMMEDIATE from base), on a test database file, never in memory.
    DATABASES = {"default": {**BASE_DATABASES["default"], "TEST": DATABASES["default"]["TEST"]}}
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / ".test-media"))
STORAGES = {
    "default": {"BACKEND": "config.storage.SignedFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The variables the loopback-server tests keep their fake keys in, declared like an operator would.
AI_API_KEY_ENV_NAMES = (
    *AI_API_KEY_ENV_NAMES,
    "VP_TEST_LOOPBACK_KEY",
    "VP_TEST_POLISH_KEY",
    "VP_TEST_NO_SUCH_KEY",  # declared but never set: the "key variable is unset" error
)
