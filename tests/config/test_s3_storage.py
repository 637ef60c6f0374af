"""The production storage path (config.storage.PublicEndpointS3Storage, django-storages, boto3) against a real
S3 API server on loopback: objects written, pages' presigned links fetched over HTTP, expiry, deletion,
the stored judgments export, and no bucket secret in a page or a log."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import time
import urllib.error
import urllib.request
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from annotate.models import Image
from annotate.services.campaigns import crowdworker_create
from annotate.services.images import image_ingest
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.factories import (
    AdminFactory,
    CampaignFactory,
    GeneratorFactory,
    HumanAnnotatorFactory,
    JudgmentFactory,
    PairFactory,
    png_bytes,
)

pytestmark = pytest.mark.django_db


def image_urls(page) -> list[str]:
    return [html.unescape(u) for u in re.findall(r'<img src="([^"]+)"', page.content.decode())]


def http_get(url: str) -> tuple[int, bytes, Message]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def test_ingestion_writes_the_object_with_its_content_type(s3_storage, s3_server):
    data = png_bytes(colour=(10, 200, 30))
    image, created = image_ingest(data=data, generator=GeneratorFactory(), filename="leaf.png")
    assert created
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=image.file.name)
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(data)
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key=image.file.name)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == image.sha256


def test_the_labeling_screen_links_fetch_the_images_bytes_over_http(client, aspects, s3_storage, s3_server):
    campaign = campaign_with_pairs(2)
    client.force_login(crowdworker_create(username="w-s3", password="a-long-password-1"))
    page = client.get(reverse("annotate:label", args=[campaign.slug]))
    assert page.status_code == 200
    assert s3_server.endpoint_url in page["Content-Security-Policy"]
    urls = image_urls(page)
    assert len(urls) == 2
    by_name = {image.file.name: image for image in Image.objects.all()}
    for url in urls:
        parts = urlsplit(url)
        assert url.startswith(f"{s3_server.endpoint_url}/{s3_server.bucket}/images/")
        query = parse_qs(parts.query)
        assert query["X-Amz-Expires"] == ["3600"] and "X-Amz-Signature" in query
        status, body, headers = http_get(url)
        assert (status, headers["Content-Type"]) == (200, "image/png"), body[:300]
        image = by_name[parts.path.split(f"/{s3_server.bucket}/", 1)[1]]
        assert hashlib.sha256(body).hexdigest() == image.sha256
        # The object's address without the signature is refused: the bucket is private.
        assert http_get(f"{parts.scheme}://{parts.netloc}{parts.path}")[0] == 403


def test_an_admin_page_links_load_and_an_expired_link_is_refused(client, aspects, s3_storage):
    campaign = campaign_with_pairs(1, status="draft")
    client.force_login(AdminFactory())
    urls = image_urls(client.get(reverse("annotate:campaign-detail", args=[campaign.slug])))
    assert urls and all(http_get(u)[0] == 200 for u in urls)
    name = campaign.pairs.first().image_a.file.name
    short = s3_storage.url(name, expire=1)
    assert http_get(short)[0] == 200
    time.sleep(2.2)
    status, body, _ = http_get(short)
    assert status == 403 and b"Request has expired" in body


def test_deleting_an_images_row_keeps_its_object_and_reingesting_reuses_it(s3_storage, s3_server):
    """README "Object storage": images are content-addressed and a row's delete leaves the object (another
    row, an export or a backup may name the same bytes); ingesting the same bytes again reuses it."""
    data = png_bytes(colour=(1, 2, 3))
    generator = GeneratorFactory()
    image, _ = image_ingest(data=data, generator=generator, filename="a.png")
    name = image.file.name
    image.delete()
    assert s3_storage.exists(name)
    puts: list[str] = []
    save = s3_storage.save
    s3_storage.save = lambda n, *a, **k: puts.append(n) or save(n, *a, **k)  # type: ignore[method-assign]
    try:
        again, created = image_ingest(data=data, generator=generator, filename="a.png")
    finally:
        del s3_storage.save
    assert created and again.file.name == name and puts == []


def test_the_judgments_export_is_stored_and_downloaded_through_a_signed_link(
    client, aspects, s3_storage, s3_server
):
    campaign = CampaignFactory()
    human = HumanAnnotatorFactory()
    for _ in range(3):
        JudgmentFactory(pair=PairFactory(campaign=campaign), annotator=human, aspect=aspects[0], choice="A")
    client.force_login(AdminFactory())
    direct = b"".join(client.get(reverse("scoring:export-judgments", args=[campaign.slug])).streaming_content)
    response = client.post(reverse("scoring:export-judgments-stored", args=[campaign.slug]))
    assert response.status_code == 302
    link = response["Location"]
    assert link.startswith(f"{s3_server.endpoint_url}/{s3_server.bucket}/exports/judgments/{campaign.slug}-")
    status, body, headers = http_get(link)
    assert status == 200
    assert headers["Content-Disposition"].startswith(f'attachment; filename="{campaign.slug}-')
    assert body.count(b"\n") == 3
    # The same lines as the streamed download, up to the pseudonymised names (the form's default).
    assert len(body.splitlines()) == len(direct.splitlines())


def test_no_bucket_secret_reaches_a_page_or_a_log(client, aspects, s3_storage, s3_server, caplog):
    caplog.set_level(logging.DEBUG)
    campaign = campaign_with_pairs(2)
    admin = AdminFactory()
    client.force_login(admin)
    pages = [
        client.get(reverse("annotate:campaign-detail", args=[campaign.slug])),
        client.get(reverse("annotate:pair-list", args=[campaign.slug])),
    ]
    client.force_login(crowdworker_create(username="w-secret", password="a-long-password-1"))
    pages.append(client.get(reverse("annotate:label", args=[campaign.slug])))
    text = "".join(p.content.decode() for p in pages) + caplog.text
    assert s3_server.secret_key not in text
    # The access key id is in every presigned link by design (SigV4's X-Amz-Credential); it is no secret.
    assert "X-Amz-Credential" in text
