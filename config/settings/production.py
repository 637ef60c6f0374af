"""Production settings: PostgreSQL, Redis, S3-compatible storage; secrets only from the environment."""

from .base import *  # noqa: F403
from .base import DATABASES, REDIS_URL, STORAGES, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Shared cache so login rate limits and report caches hold across web processes.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# Sessions are read from Redis and written through to the database: every labeling request reads the
# session, and a cache GET is much cheaper than a query.
# https://docs.djangoproject.com/en/5.2/topics/http/sessions/#using-cached-sessions
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Keep database connections open across requests (one per gunicorn thread): reconnecting per request
# costs a PostgreSQL process fork and authentication. 0 closes after each request.
# https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)

# Server-side parameter binding and prepared statements: psycopg prepares a statement once a connection has
# run it prepare_threshold times, so PostgreSQL stops parsing and planning the labeling queries on every
# request. Turn both off (DJANGO_DB_PREPARED_STATEMENTS=false) behind a transaction-mode connection pooler.
# https://docs.djangoproject.com/en/5.2/ref/databases/#server-side-parameters-binding
if env.bool("DJANGO_DB_PREPARED_STATEMENTS", default=True):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": 5}
    )

# Static files under content-hashed names (collectstatic writes them and their gzip copies): WhiteNoise
# serves a hashed name with a ten-year immutable Cache-Control, so a browser fetches htmx, the scripts
# and the styles once, not on every page. https://whitenoise.readthedocs.io/en/stable/django.html
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
