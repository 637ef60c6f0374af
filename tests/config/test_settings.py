"""Production settings pass Django's deployment checklist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_reports_no_errors_or_warnings_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "a-production-secret-that-is-long-and-random-0123456789-abcdefghijk",
        "DJANGO_ALLOWED_HOSTS": "studio.example.org",
        "DATABASE_URL": "sqlite:////tmp/unused.sqlite3",
        "DJANGO_SECURE_HSTS_PRELOAD": "true",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_image_urls_are_signed_for_the_public_endpoint_when_one_is_configured():
    from config.storage import PublicEndpointS3Storage

    options = {
        "bucket_name": "studio-images",
        "endpoint_url": "http://minio:9000",
        "region_name": "us-east-1",
        "access_key": "studio",
        "secret_key": "studio-secret",
    }
    public = PublicEndpointS3Storage(public_endpoint_url="http://localhost:9000", **options)
    url = public.url("images/ab/cd.png")
    assert url.startswith("http://localhost:9000/studio-images/images/ab/cd.png?")
    assert "Signature=" in url
    internal = PublicEndpointS3Storage(**options).url("images/ab/cd.png")
    assert internal.startswith("http://minio:9000/studio-images/images/ab/cd.png?")


def test_compose_services_and_settings_agree():
    """docker-compose.yml is checked by reading (no Docker engine here): the services the README names,
    one image, the GPU reservation, and every variable it sets is one the settings read."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "gpu-worker", "postgres", "redis", "minio", "createbucket"} <= set(services)
    assert "-Q default,ai" in services["worker"]["command"]
    assert "-Q gpu" in services["gpu-worker"]["command"]
    assert "--concurrency 1" in services["gpu-worker"]["command"]
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    for name in ("web", "worker", "gpu-worker"):
        build = services[name]["build"]
        assert (build if isinstance(build, str) else build["context"]) == "."
        # The bucket exists before anything stores an image.
        assert services[name]["depends_on"]["createbucket"] == {"condition": "service_completed_successfully"}
    settings_text = "".join(p.read_text() for p in (ROOT / "config" / "settings").glob("*.py"))
    read_elsewhere = {"DJANGO_SETTINGS_MODULE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # Django, boto3
    for variable in services["web"]["environment"]:
        assert variable in read_elsewhere or f'"{variable}"' in settings_text, variable


def test_compose_publishes_no_minio_default_credentials():
    """MinIO's root and the app's key come from .env with no default, and MinIO listens on loopback only."""
    import yaml

    text = (ROOT / "docker-compose.yml").read_text()
    services = yaml.safe_load(text)["services"]
    assert "studio-secret" not in text
    for name in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        assert services["minio"]["environment"][name] == f"${{{name}:?set {name} in .env}}"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert services["web"]["environment"][name] == f"${{{name}:?set {name} in .env}}"
    # Every variable with a fallback value is a harmless address, never a credential.
    defaults = re.findall(r"\$\{(\w+):-", text)
    assert set(defaults) <= {"AWS_S3_PUBLIC_ENDPOINT_URL"}, defaults
    ports = services["minio"].get("ports", [])
    assert ports == ["127.0.0.1:9000:9000"]  # the API for presigned links, on loopback; no console
    assert "--user" in services["createbucket"]["entrypoint"]  # the app gets its own bucket-scoped user
