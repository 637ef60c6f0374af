"""Settings shared by every environment. Values come from the environment via django-environ."""

from pathlib import Path
from urllib.parse import urlsplit

import environ
from kombu import Queue

from pipeline.mllm.providers.openai_client import DEFAULT_API_KEY_ENV_NAMES

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# A `.env` file is optional; the process environment always wins over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "core",
    "annotate",
    "pipeline",
    "scoring",
    "ninja",  # serves the API docs' Swagger UI assets from static/ (no CDN)
    "api",
]

MIDDLEWARE = [
    # Outermost, so every response gets the header, static files and refusals included.
    "core.middleware.ContentSecurityPolicyMiddleware",
    # Under /api/ every error answer is the API's JSON error document (404, 405, 413, 500 included).
    "api.middleware.ApiErrorShapeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Signed local media links, answered before sessions, CSRF and the user are loaded (core/media.py).
    "core.media.SignedMediaMiddleware",
    # gzip for HTML and JSON answers when the browser accepts it (static files come compressed already,
    # images are compressed formats); after WhiteNoise, which answers static files itself.
    "core.middleware.TextGZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Refuses oversize bodies by Content-Length before anything reads them (caps below).
    "core.middleware.RequestBodyLimitMiddleware",
    # The same for /api/ paths, with the API's caps (a bearer token counts as signed in).
    "api.middleware.ApiBodyLimitMiddleware",
    # 400 for a NUL byte in any parameter (PostgreSQL text cannot hold one; it would be a 500).
    "core.middleware.NulParameterMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # 429 for a throttled sign-in on any login path (the limiter is in the authentication backend).
    "annotate.middleware.LoginLimitMiddleware",
]

# Templates sent once per judgment set: loaded without the whitespace between tags (core/template_loaders.py).
LEAN_TEMPLATES = ("annotate/label.html",)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # Project templates through the lean loader (LEAN_TEMPLATES below lose their layout
            # whitespace when loaded), then the apps' own (the admin's); both cached, and wrapped by
            # template_partials' loader ("page.html#partial"), which keeps a list that starts with it.
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        (
                            "django.template.loaders.cached.Loader",
                            [
                                "core.template_loaders.LeanLoader",
                                "django.template.loaders.app_directories.Loader",
                            ],
                        )
                    ],
                )
            ],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # {% partialdef %} everywhere, for htmx partial rendering ("page.html#partial").
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default under a study's load (bench/embedded_load.py: 50 workers, 0 errors):
    # - WAL: readers never wait for the writer, and the web and worker processes share the file;
    # - a busy timeout: a writer waits up to 30 s for the write lock instead of failing at once;
    # - BEGIN IMMEDIATE for every transaction: a transaction takes the write lock when it starts. With
    #   SQLite's default (deferred), two transactions that read and then write deadlock, and SQLite fails
    #   one of them at once with "database is locked" whatever the busy timeout (47% of requests failed at 50
    #   workers). Transactions are short, so serialising them costs little.
    # https://docs.djangoproject.com/en/5.2/ref/databases/#database-is-locked-errors
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# ModelBackend, except that the session's user is loaded together with their annotator (one query per
# labeling request instead of two). Sessions signed in under another backend path must sign in again.
# https://docs.djangoproject.com/en/5.2/topics/auth/customizing/#specifying-authentication-backends
AUTHENTICATION_BACKENDS = ["annotate.auth_backends.UserAnnotatorBackend"]
# The sign-in limiter (annotate/services/login_limits.py): per account and client address, a few free
# attempts, then one attempt per delay (doubling up to LOGIN_BACKOFF_MAX_S); a correct password always
# signs in once the delay is over, and a browser that signed in before is never slowed by its address.
LOGIN_FREE_ATTEMPTS = env.int("LOGIN_FREE_ATTEMPTS", default=5)
LOGIN_FREE_ATTEMPTS_PER_ADDRESS = env.int("LOGIN_FREE_ATTEMPTS_PER_ADDRESS", default=30)
LOGIN_BACKOFF_BASE_S = env.float("LOGIN_BACKOFF_BASE_S", default=2.0)
LOGIN_BACKOFF_MAX_S = env.float("LOGIN_BACKOFF_MAX_S", default=60.0)
LOGIN_WINDOW_S = env.int("LOGIN_WINDOW_S", default=3600)
# Proxies in front of the app (addresses or CIDR networks, comma-separated) whose X-Forwarded-For is
# believed for the client's address (core/ratelimit.py). Empty: REMOTE_ADDR is the client. Behind a TLS
# proxy, list it here, or every client has the proxy's address and shares its limits.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# New crowd participants per client address (annotate/services/crowd.py): anyone can make up participant
# ids, so after this many new ones in the window, one more per delay (doubling up to the maximum).
# Returning participants are not counted. Raise it for a lab whose participants share one address.
CROWD_FREE_NEW_WORKERS_PER_ADDRESS = env.int("CROWD_FREE_NEW_WORKERS_PER_ADDRESS", default=20)
CROWD_NEW_WORKER_WINDOW_S = env.int("CROWD_NEW_WORKER_WINDOW_S", default=3600)
CROWD_NEW_WORKER_BACKOFF_BASE_S = env.float("CROWD_NEW_WORKER_BACKOFF_BASE_S", default=15.0)
CROWD_NEW_WORKER_BACKOFF_MAX_S = env.float("CROWD_NEW_WORKER_BACKOFF_MAX_S", default=600.0)
LOGIN_URL = "annotate:login"
LOGIN_REDIRECT_URL = "annotate:home"
LOGOUT_REDIRECT_URL = "annotate:login"
# What a job belongs to. The job core (core/) names no app; this setting points it at campaigns, the way
# AUTH_USER_MODEL points auth at a user model.
JOBS_CAMPAIGN_MODEL = "annotate.Campaign"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "media"))
# Where a training worker keeps a reward model's resumable state until its checkpoint is in storage
# (empty: the system temp folder). Finished checkpoints live in the default storage, not here.
VPSCORE_WORK_DIR = env("VPSCORE_WORK_DIR", default="")
# How long a signed local media link stays valid (between half of this and all of it; core/media.py).
MEDIA_URL_MAX_AGE_S = env.int("MEDIA_URL_MAX_AGE_S", default=1800)

# Image storage: local disk by default; an S3-compatible bucket when a bucket name is configured.
# https://django-storages.readthedocs.io/en/latest/backends/amazon-S3.html
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "config.storage.PublicEndpointS3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            # Where browsers fetch images when it differs from where the app reaches the store (MinIO in
            # docker-compose: minio:9000 inside, localhost:9000 outside). Empty: the same endpoint.
            "public_endpoint_url": env("AWS_S3_PUBLIC_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            # Keys are read by boto3 from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment.
            "querystring_auth": env.bool("AWS_QUERYSTRING_AUTH", default=True),
            "file_overwrite": False,
        },
    }
else:
    # Local files behind short-lived signed links (core/media.py): only pages that show an image let a
    # browser load it.
    _default_storage = {"BACKEND": "config.storage.SignedFileSystemStorage"}
# Content-Security-Policy of every response (core/middleware.py): the app loads scripts, styles and fonts
# from itself only and has no inline script or style. Images may also come from the object store's public
# address (presigned links). form-action is left out: a crowd worker's completion redirect may end on the
# platform's site. https://developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy
_image_sources = ["'self'", "data:"]
if AWS_STORAGE_BUCKET_NAME:
    _store = env("AWS_S3_PUBLIC_ENDPOINT_URL", default="") or env("AWS_S3_ENDPOINT_URL", default="")
    _image_sources.append(_origin(_store) if _store else "https://*.amazonaws.com")
_image_sources += env.list("CSP_EXTRA_IMG_SRC", default=[])
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {' '.join(_image_sources)}",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Image ingestion limits (pipeline of every stored image; see annotate/services/images.py).
IMAGE_MAX_BYTES = env.int("IMAGE_MAX_BYTES", default=25 * 1024 * 1024)
IMAGE_MAX_PIXELS = env.int("IMAGE_MAX_PIXELS", default=40_000_000)
# Request and upload limits. Django's own: form fields of one request, and the size above which an uploaded
# file goes to a temporary file instead of memory.
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
# Prompt files: bytes and rows (all formats; parquet is checked from its metadata before it is read).
PROMPT_IMPORT_MAX_BYTES = env.int("PROMPT_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
PROMPT_IMPORT_MAX_ROWS = env.int("PROMPT_IMPORT_MAX_ROWS", default=200_000)
# Whole request bodies, refused by Content-Length before they are read (core/middleware.py): anonymous
# visitors only send sign-in forms, workers judgments, staff also prompt files.
REQUEST_MAX_BODY_ANONYMOUS = env.int("REQUEST_MAX_BODY_ANONYMOUS", default=64 * 1024)
REQUEST_MAX_BODY_SIGNED_IN = env.int("REQUEST_MAX_BODY_SIGNED_IN", default=1024 * 1024)
REQUEST_MAX_BODY_STAFF = env.int("REQUEST_MAX_BODY_STAFF", default=PROMPT_IMPORT_MAX_BYTES + 1024 * 1024)

# The REST API (api/, docs/api.md). Its paths are capped by api.middleware.ApiBodyLimitMiddleware, which knows
# bearer tokens: anonymous and worker callers get the caps above, admins REQUEST_MAX_BODY_API_STAFF (one
# image upload). JSON bodies are also bound by DATA_UPLOAD_MAX_MEMORY_SIZE. Writes are limited per token (per
# user for a session): API_WRITE_RATE per API_WRITE_RATE_WINDOW_S seconds, then 429 with Retry-After.
REQUEST_BODY_LIMIT_SKIP_PREFIXES = ("/api/",)
REQUEST_MAX_BODY_API_STAFF = env.int("REQUEST_MAX_BODY_API_STAFF", default=IMAGE_MAX_BYTES + 1024 * 1024)
API_WRITE_RATE = env.int("API_WRITE_RATE", default=1200)
API_WRITE_RATE_WINDOW_S = env.int("API_WRITE_RATE_WINDOW_S", default=60)
API_PAGE_MAX = 500  # the most rows one list call returns
API_BULK_MAX = 1000  # the most prompts or judgments one bulk call takes

# The environment variables an AI judge or a polish job may name as its API key. A staff user configures
# judges (name of the key variable, base URL), so any other variable (DATABASE_URL, DJANGO_SECRET_KEY...)
# could otherwise be sent as a Bearer token to a server of their choice. Comma-separated; default: the
# usual provider variables (pipeline/mllm/providers/openai_client.py, DEFAULT_API_KEY_ENV_NAMES).
AI_API_KEY_ENV_NAMES = tuple(env.list("AI_API_KEY_ENV_NAMES", default=list(DEFAULT_API_KEY_ENV_NAMES)))

# Celery: https://docs.celeryq.dev/en/stable/userguide/configuration.html
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default"), Queue("ai"), Queue("gpu"))
# Explicit routing: MLLM calls are I/O-bound and run on a high-concurrency worker; generation and
# training hold a GPU and run on a worker that takes one task at a time.
CELERY_TASK_ROUTES = {
    "core.tasks.run_job": {"queue": "default"},
    "core.tasks.run_ai_job": {"queue": "ai"},
    "core.tasks.run_gpu_job": {"queue": "gpu"},
}
# One task reserved per worker process: jobs are long, and prefetching would starve other workers.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A crash of the worker must not lose a job: unacknowledged messages return to the queue.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# With Redis, a message taken by a worker that died is handed out again after this many seconds. Nothing
# waits on it: a dead run's job is re-queued by the sweeper once its lease goes stale (JOB_LEASE_TIMEOUT_S),
# and a message handed out again meets a live lease or a finished job and returns. Keep it long.
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=13 * 3600),
    # A broker that does not answer fails a connection attempt in seconds, not minutes.
    "socket_connect_timeout": env.float("CELERY_BROKER_CONNECT_TIMEOUT", default=3.0),
}
# Redis brokers go through config.broker's transport, which keeps a worker alive when Redis restarts
# while a task runs (celery 5.7 + kombu 5.7 die there; see config/broker.py).
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-transport
CELERY_BROKER_TRANSPORT = env(
    "CELERY_BROKER_TRANSPORT",
    default="config.broker:RedisTransport" if CELERY_BROKER_URL.startswith("redis://") else None,
)
# Jobs report through their rows, never through Celery results: nothing waits on the result backend.
CELERY_TASK_IGNORE_RESULT = True
# The job life cycle (core/jobs.py, README "Jobs"): a running job holds a lease its run renews every
# JOB_HEARTBEAT_INTERVAL_S; one not renewed for JOB_LEASE_TIMEOUT_S is stale and is taken over. The sweeper
# (Celery beat, every JOB_SWEEP_INTERVAL_S) re-queues stale jobs and sends jobs the broker did not take.
JOB_LEASE_TIMEOUT_S = env.float("JOB_LEASE_TIMEOUT_S", default=180.0)
JOB_HEARTBEAT_INTERVAL_S = env.float("JOB_HEARTBEAT_INTERVAL_S", default=15.0)
JOB_SWEEP_INTERVAL_S = env.float("JOB_SWEEP_INTERVAL_S", default=30.0)
# Sending a job's message: seconds per try and tries before it is left in the outbox for the sweeper.
JOB_PUBLISH_TIMEOUT_S = env.float("JOB_PUBLISH_TIMEOUT_S", default=2.0)
JOB_PUBLISH_RETRIES = env.int("JOB_PUBLISH_RETRIES", default=1)
CELERY_BEAT_SCHEDULE = {
    "sweep-jobs": {
        "task": "core.tasks.sweep_jobs",
        "schedule": JOB_SWEEP_INTERVAL_S,
        # A sweep that could not run in time (no worker, no broker) is dropped, not piled up.
        "options": {"queue": "default", "expires": JOB_SWEEP_INTERVAL_S},
    }
}
GPU_TASK_TIME_LIMIT = env.int("GPU_TASK_TIME_LIMIT", default=6 * 3600)
GPU_TASK_SOFT_TIME_LIMIT = env.int("GPU_TASK_SOFT_TIME_LIMIT", default=GPU_TASK_TIME_LIMIT - 300)
AI_TASK_TIME_LIMIT = env.int("AI_TASK_TIME_LIMIT", default=12 * 3600)
DEFAULT_TASK_TIME_LIMIT = env.int("DEFAULT_TASK_TIME_LIMIT", default=2 * 3600)

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "openai": {"level": "WARNING"}},
}
