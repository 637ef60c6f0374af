"""Images (upload through the ingestion checks; list) and judgments (incremental pull; idempotent bulk create)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router, Status
from ninja.files import UploadedFile

from annotate.models import Campaign, Generator, Image, Prompt
from annotate.services.images import image_ingest
from api import schemas
from api.auth import admin_auth
from api.endpoints.campaigns import judgment_out
from api.selectors import images_list, judgments_pull
from scoring.services.judgments_io import judgments_import

router = Router(auth=admin_auth, tags=["images and judgments"])


def image_out(request: HttpRequest, image: Image, created: bool = False) -> dict[str, Any]:
    return {
        "id": image.pk,
        "prompt_id": image.prompt_id,
        "generator": image.generator.name,
        "sha256": image.sha256,
        "format": image.format,
        "width": image.width,
        "height": image.height,
        "seed": image.seed,
        "url": request.build_absolute_uri(image.file.url),
        "created": created,
    }


@router.post("/images", response={201: schemas.ImageOut, 200: schemas.ImageOut})
def image_upload(
    request: HttpRequest,
    file: File[UploadedFile],
    generator: Form[str],
    prompt_id: Form[int | None] = None,
    seed: Form[int | None] = None,
) -> Any:
    """Upload one image (multipart) for a prompt, made by a registered generator.

    The image goes through the same checks as every stored image (format, size, pixels, trailing data).
    Identical bytes are stored once: a second upload answers 200 with the existing image.
    """
    maker = get_object_or_404(Generator, name=generator)
    prompt = get_object_or_404(Prompt, pk=prompt_id) if prompt_id is not None else None
    if file.size is not None and file.size > settings.IMAGE_MAX_BYTES:
        raise ValueError(f"The image is {file.size:,} bytes; the limit is {settings.IMAGE_MAX_BYTES:,}.")
    image, created = image_ingest(
        data=file.read(), generator=maker, prompt=prompt, filename=file.name or "", seed=seed
    )
    return Status(201 if created else 200, image_out(request, image, created))


@router.get("/images", response=list[schemas.ImageOut])
def image_list(
    request: HttpRequest,
    prompt_id: int | None = None,
    generator: str = "",
    campaign: str = "",
    after_id: int = 0,
    limit: int = 100,
) -> Any:
    """Images by id, filtered by prompt, generator or campaign; pass the last id as after_id for more."""
    found = get_object_or_404(Campaign, slug=campaign) if campaign else None
    images = images_list(prompt_id=prompt_id, generator=generator, campaign=found).filter(id__gt=after_id)
    return [image_out(request, i) for i in images[: max(1, min(limit, settings.API_PAGE_MAX))]]


@router.get("/judgments", response=schemas.JudgmentPage)
def judgment_list(
    request: HttpRequest,
    campaign: str = "",
    aspect: str = "",
    annotator_kind: str = "",
    since_id: int = 0,
    include_rejected: bool = False,
    limit: int = 500,
) -> Any:
    """Judgments with an id above since_id, oldest first: pull incrementally by passing next_since_id back."""
    found = get_object_or_404(Campaign, slug=campaign) if campaign else None
    limit = max(1, min(limit, settings.API_PAGE_MAX))
    rows = list(
        judgments_pull(
            campaign=found,
            aspect=aspect,
            annotator_kind=annotator_kind,
            since_id=max(0, since_id),
            include_rejected=include_rejected,
        )[: limit + 1]
    )
    items = [judgment_out(j) for j in rows[:limit]]
    return {
        "items": items,
        "next_since_id": items[-1]["id"] if items else max(0, since_id),
        "has_more": len(rows) > limit,
    }


@router.post("/judgments/bulk", response={201: schemas.JudgmentsBulkOut})
def judgments_bulk_create(request: HttpRequest, body: schemas.JudgmentsBulkIn) -> Any:
    """Add judgments made elsewhere, all or nothing, through the JSONL importer.

    Idempotent by (pair, annotator, aspect, trial): sending the same judgment again changes nothing; the same
    key with a different choice is an error, never an overwrite.
    """
    lines = [json.dumps(j.model_dump(exclude_none=True)) for j in body.judgments]
    result = judgments_import(lines=lines, dry_run=body.dry_run)
    return Status(
        201,
        {
            "lines": result.lines,
            "created": result.created,
            "unchanged": result.unchanged,
            "annotators_created": result.annotators_created,
        },
    )
