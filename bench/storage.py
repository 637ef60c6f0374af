"""Benchmark storage: 1,000 small images through the app's ingestion path, then downloaded by their signed links,
on local disk (the signed file storage) and on the loopback S3 server (moto; core/s3_loopback.py).

Each backend gets the same 1,000 distinct PNGs (64x64 noise, about 12 KB). Upload: ``image_ingest`` for each
(validation, hashing, the exists check, the write, the Image row) into a fresh SQLite database. Download: every
image's page URL (``image.file.url``: an HMAC link to the app's /media/ view, or an S3 presigned link), fetched
over loopback HTTP one after another; the local links through the app itself (Django's WSGI app behind
werkzeug, signed in by session cookie), the S3 links from the S3 server. Prints images/s, MB/s, CPU ms per
image (this process: the S3 server runs in it too, so S3's CPU includes the server's side), the ratio S3 / local,
and the load average before and after.

    .venv/bin/python bench/storage.py            # 1,000 images
    .venv/bin/python bench/storage.py --images 200
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import random
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pngs(n: int, size: int = 64, seed: int = 0) -> list[bytes]:
    from PIL import Image

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        picture = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def measure(label: str, images: list[bytes], base_url: str, cookie: str) -> dict[str, float]:
    from annotate.models import Image
    from annotate.services.images import image_ingest
    from tests.factories import GeneratorFactory

    generator = GeneratorFactory(name=f"bench-{label}")
    total = sum(len(data) for data in images)
    wall, used = time.perf_counter(), cpu()
    for i, data in enumerate(images):
        image_ingest(data=data, generator=generator, filename=f"{i}.png")
    up_wall, up_cpu = time.perf_counter() - wall, cpu() - used

    urls = [image.file.url for image in Image.objects.filter(generator=generator).order_by("pk")]
    wall, used = time.perf_counter(), cpu()
    got = 0
    for url in urls:
        request = urllib.request.Request(url if url.startswith("http") else base_url + url)
        request.add_header("Cookie", cookie)
        with urllib.request.urlopen(request, timeout=30) as response:
            got += len(response.read())
    down_wall, down_cpu = time.perf_counter() - wall, cpu() - used
    assert got == total, (got, total)
    n = len(images)
    return {
        "up_per_s": n / up_wall,
        "up_mb_s": total / up_wall / 1e6,
        "up_cpu_ms": up_cpu / n * 1000,
        "down_per_s": n / down_wall,
        "down_mb_s": total / down_wall / 1e6,
        "down_cpu_ms": down_cpu / n * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vp-bench-storage-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    os.environ["DJANGO_MEDIA_ROOT"] = str(work / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["DJANGO_DEBUG"] = "false"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.test import Client, override_settings
    from werkzeug.serving import make_server

    from core.s3_loopback import LoopbackS3
    from tests.factories import AdminFactory

    call_command("migrate", verbosity=0)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    settings.ALLOWED_HOSTS = ["*"]
    server = make_server("127.0.0.1", 0, get_wsgi_application(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_port}"
    client = Client()
    client.force_login(AdminFactory(username="bench-admin"))
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    load_before = os.getloadavg()
    print(f"{args.images} PNGs of 64x64 noise; load average before {load_before[0]:.2f} {load_before[1]:.2f}")
    local = measure("local", pngs(args.images, seed=1), base_url, cookie)
    s3 = LoopbackS3(bucket="studio-bench").start()
    storages = {
        **settings.STORAGES,
        "default": {"BACKEND": "config.storage.PublicEndpointS3Storage", "OPTIONS": s3.storage_options()},
    }
    with override_settings(STORAGES=storages):
        remote = measure("s3", pngs(args.images, seed=2), base_url, cookie)
    s3.stop()
    server.shutdown()
    print(
        f"{'':10}{'upload img/s':>14}{'MB/s':>8}{'CPU ms/img':>12}{'download img/s':>16}{'MB/s':>8}{'CPU ms/img':>12}"
    )
    for label, row in (("local", local), ("S3", remote)):
        print(
            f"{label:10}{row['up_per_s']:14.0f}{row['up_mb_s']:8.2f}{row['up_cpu_ms']:12.2f}"
            f"{row['down_per_s']:16.0f}{row['down_mb_s']:8.2f}{row['down_cpu_ms']:12.2f}"
        )
    print(
        f"S3 / local throughput: upload {remote['up_per_s'] / local['up_per_s']:.2f}x, "
        f"download {remote['down_per_s'] / local['down_per_s']:.2f}x"
    )
    load_after = os.getloadavg()
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
