"""Labeling for custom front ends: the next pair, submit, skip. Any signed-in worker, own assignments only.

The same assignment engine and checks as the labeling page: reservations are never over-assigned or
duplicated, quality control runs on submit, and an assignment that is not the caller's is refused.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from annotate.models import Annotator, Campaign
from annotate.selectors import campaign_for_labeling
from annotate.services.assignments import assignment_skip, worker_queue_fill
from annotate.services.campaigns import human_annotator_for
from annotate.services.judgments import judgment_submit
from annotate.services.members import campaign_worker_for_labeling
from api import schemas
from api.auth import worker_auth
from core.permissions import is_admin

router = Router(auth=worker_auth, tags=["labeling"])


def _campaign(slug: str) -> tuple[Campaign, list[Any]]:
    found = campaign_for_labeling(slug=slug)
    if found is None:
        from django.http import Http404

        raise Http404("No such campaign.")
    return found


def _worker(request: HttpRequest) -> Annotator:
    annotator = getattr(request.user, "annotator", None)
    return annotator if annotator is not None else human_annotator_for(user=request.user)


def _image(request: HttpRequest, image: Any) -> dict[str, Any]:
    return {
        "id": image.pk,
        "url": request.build_absolute_uri(image.file.url),
        "width": image.width,
        "height": image.height,
    }


@router.get("/label/{slug}/next", response=schemas.LabelNext)
def label_next(request: HttpRequest, slug: str) -> Any:
    """The pair reserved to the caller (reserving one if needed); done=true when there is nothing left."""
    campaign, aspects = _campaign(slug)
    annotator = _worker(request)
    link = campaign_worker_for_labeling(campaign=campaign, annotator=annotator, staff=is_admin(request.user))
    queue = worker_queue_fill(campaign=campaign, annotator=annotator, link=link)
    assignment = queue.current
    if assignment is None:
        return {"done": True, "task": None}
    pair = assignment.pair
    left, right = (pair.image_b, pair.image_a) if assignment.swapped else (pair.image_a, pair.image_b)
    task = {
        "assignment_id": assignment.pk,
        "pair_id": pair.pk,
        "prompt": pair.prompt.text,
        "left": _image(request, left),
        "right": _image(request, right),
        "left_is": "B" if assignment.swapped else "A",
        "expires_at": assignment.expires_at,
        "aspects": [
            {"key": a.key, "name": a.name, "question": a.question, "guideline": a.guideline} for a in aspects
        ],
        "allow_tie": campaign.allow_tie,
        "rationale_required": campaign.rationale_required,
        "scores": [campaign.score_min, campaign.score_max] if campaign.human_scores else None,
    }
    return {"done": False, "task": task}


@router.post("/label/{slug}/assignments/{assignment_id}/submit", response=schemas.LabelSubmitOut)
def label_submit(request: HttpRequest, slug: str, assignment_id: int, body: schemas.LabelSubmitIn) -> Any:
    """Store the caller's choices (as shown: left, right or tie) for their reserved pair."""
    campaign, aspects = _campaign(slug)
    stored = judgment_submit(
        campaign=campaign,
        aspects=aspects,
        assignment_id=assignment_id,
        annotator=_worker(request),
        choices=dict(body.choices),
        rationales=dict(body.rationales),
        scores={k: (str(v[0]), str(v[1])) for k, v in body.scores.items()},
    )
    return {
        "assignment_id": stored.assignment.pk,
        "duplicate": stored.duplicate,
        "pair_complete": stored.pair_complete,
    }


@router.post("/label/{slug}/assignments/{assignment_id}/skip", response={204: None})
def label_skip(request: HttpRequest, slug: str, assignment_id: int, body: schemas.LabelSkipIn) -> Any:
    """The caller cannot judge this pair: record why; the pair goes back to the pool."""
    _campaign(slug)
    assignment_skip(assignment_id=assignment_id, annotator=_worker(request), reason=body.reason)
    return HttpResponse(status=204)
