"""The crowdworker side: crowd entry links, the labeling screen, submit, skip and the completion screen.

Views stay thin: services decide what may happen, these functions turn the outcome into HTML. The
labeling screen is one template with a named partial (`pane`); htmx requests get the partial, so a submit
swaps in the next pair with one request.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.models import Annotator, Aspect, Campaign, CampaignWorker
from annotate.selectors import campaign_for_labeling, worker_progress
from annotate.services.assignments import (
    SKIP_REASONS,
    AssignmentError,
    WorkerQueue,
    assignment_skip,
    campaign_worker_get,
    worker_queue_fill,
)
from annotate.services.campaigns import human_annotator_for
from annotate.services.crowd import (
    CrowdEntryLimited,
    CrowdIdInvalid,
    CrowdPreview,
    crowd_identity_parse,
    crowd_worker_complete,
    crowd_worker_enter,
)
from annotate.services.judgments import JudgmentInvalid, Scores, judgment_submit, judgment_undo
from annotate.services.members import NotAMember, campaign_worker_for_labeling
from core.http import HtmxHttpRequest
from core.permissions import is_admin
from core.ratelimit import client_address

PANE = "annotate/label.html#pane"
ASPECT_ROWS = "annotate/label.html#aspect_rows"
# Rendered aspect rows per campaign settings (see _aspect_rows_html); bounded, per process.
_ROWS_HTML: dict[tuple[Any, ...], str] = {}
_ROWS_HTML_MAX = 512


def _aspect_rows_html(campaign: Campaign, aspects: list[Aspect], score_range: range | None) -> str:
    """The aspect rows of an unanswered pane, rendered once per campaign settings and process.

    They are most of the pane's template work and the same for every pair of a campaign; the key holds
    everything they show, so a changed setting or aspect renders them anew.
    """
    key = (
        campaign.pk,
        campaign.allow_tie,
        campaign.rationale_required,
        campaign.score_min,
        campaign.score_max,
        score_range is not None,
        tuple((a.pk, a.key, a.name, a.question, a.guideline) for a in aspects),
    )
    found = _ROWS_HTML.get(key)
    if found is None:
        rows = [
            {"aspect": a, "error": "", "choice": "", "rationale": "", "score_left": "", "score_right": ""}
            for a in aspects
        ]
        context = {"campaign": campaign, "rows": rows, "score_range": score_range}
        found = render_to_string(ASPECT_ROWS, context)
        if len(_ROWS_HTML) >= _ROWS_HTML_MAX:
            _ROWS_HTML.clear()
        _ROWS_HTML[key] = found
    return found


def _open_campaign(slug: str) -> Campaign:
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


def _labeling_campaign(slug: str) -> tuple[Campaign, list[Aspect]]:
    found = campaign_for_labeling(slug=slug)
    if found is None:
        raise Http404("No such campaign.")
    return found


def _is_crowd_account(user: Any) -> bool:
    annotator = getattr(user, "annotator", None)
    return annotator is not None and bool(annotator.platform) and not user.is_staff


@require_http_methods(["GET", "POST"])
def crowd_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Entry link for crowd platforms: validate the participant id, sign the worker in, start labeling.

    Someone signed in with an account of their own (an admin trying the link) is asked first: going on
    signs them out. Only a POST of that page's form switches; the ids stay in the query string.
    """
    campaign = _open_campaign(slug)
    try:
        identity = crowd_identity_parse(query=request.GET)
    except CrowdPreview as preview:
        return render(
            request,
            "annotate/crowd_message.html",
            {"campaign": campaign, "title": "Preview", "message": str(preview)},
        )
    except CrowdIdInvalid as error:
        context = {
            "campaign": campaign,
            "title": "This link is not valid",
            "message": str(error),
            "error": True,
        }
        return render(request, "annotate/crowd_message.html", context, status=400)
    if campaign.access == Campaign.Access.INVITE:
        context = {
            "campaign": campaign,
            "title": "Invitation needed",
            "message": "This campaign is for invited members only. Sign in with the account you were "
            "invited with to take part.",
        }
        return render(request, "annotate/crowd_message.html", context, status=403)
    if campaign.status != Campaign.Status.ACTIVE:
        return _closed(request, campaign)
    signed_in = request.user if request.user.is_authenticated else None
    confirmed = request.method == "POST" and request.POST.get("switch") == "1"
    same_participant = (
        signed_in is not None
        and getattr(getattr(signed_in, "annotator", None), "external_id", None) == identity.external_id
    )
    if signed_in is not None and not same_participant and not _is_crowd_account(signed_in) and not confirmed:
        context = {"campaign": campaign, "identity": identity, "signed_in": signed_in}
        return render(request, "annotate/crowd_switch.html", context)
    if request.method == "POST" and not confirmed:
        return redirect("annotate:home")
    try:
        user, _link = crowd_worker_enter(
            campaign=campaign, identity=identity, address=client_address(request)
        )
    except CrowdEntryLimited as limited:
        context = {
            "campaign": campaign,
            "title": "Please try again shortly",
            "message": "Many new participants joined from your network just now. Please open the link "
            f"again in {max(1, round(limited.retry_after_s))} seconds.",
            "error": True,
        }
        response = render(request, "annotate/crowd_message.html", context, status=429)
        response["Retry-After"] = str(max(1, round(limited.retry_after_s)))
        return response
    if request.user.is_authenticated and request.user.pk != user.pk:
        logout(request)  # a shared browser: never label under someone else's account
    if not request.user.is_authenticated:
        login(request, user, backend="annotate.auth_backends.UserAnnotatorBackend")
    return redirect("annotate:label", slug=campaign.slug)


def _screen_context(
    *, campaign: Campaign, aspects: list[Aspect], queue: WorkerQueue, link: CampaignWorker, **extra: Any
) -> dict[str, Any]:
    assignment = queue.current
    assert assignment is not None
    pair = assignment.pair
    left, right = (pair.image_b, pair.image_a) if assignment.swapped else (pair.image_a, pair.image_b)
    errors: dict[str, str] = extra.pop("errors", {})
    values: dict[str, str] = extra.pop("values", {})
    rows = [
        {
            "aspect": aspect,
            "error": errors.get(aspect.key, ""),
            "choice": values.get(f"choice-{aspect.key}", ""),
            "rationale": values.get(f"rationale-{aspect.key}", ""),
            "score_left": values.get(f"score-left-{aspect.key}", ""),
            "score_right": values.get(f"score-right-{aspect.key}", ""),
        }
        for aspect in aspects
    ]
    preload = []
    if queue.lookahead is not None:
        preload = [queue.lookahead.pair.image_a.file.url, queue.lookahead.pair.image_b.file.url]
    score_range = range(campaign.score_min, campaign.score_max + 1) if campaign.human_scores else None
    answered = bool(errors or values)
    return {
        "campaign": campaign,
        "assignment": assignment,
        "prompt": pair.prompt,
        "left": left,
        "right": right,
        "rows": rows,
        "rows_html": "" if answered else mark_safe(_aspect_rows_html(campaign, aspects, score_range)),
        "left_url": left.file.url,
        "right_url": right.file.url,
        "preload": preload,
        "progress": worker_progress(campaign=campaign, link=link),
        "skip_reasons": SKIP_REASONS,
        "score_range": score_range,
        **extra,
    }


def _worker(request: HtmxHttpRequest) -> Annotator:
    annotator = getattr(request.user, "annotator", None)
    return annotator if annotator is not None else human_annotator_for(user=request.user)


def _next_screen(
    request: HtmxHttpRequest,
    campaign: Campaign,
    annotator: Annotator,
    *,
    aspects: list[Aspect],
    link: CampaignWorker | None = None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    """Render the worker's current pair, or send them to the completion screen when there is none."""
    if link is None:
        try:
            link = campaign_worker_for_labeling(
                campaign=campaign, annotator=annotator, staff=is_admin(request.user)
            )
        except NotAMember as refused:
            return _refused(request, campaign, refused)
    queue = worker_queue_fill(campaign=campaign, annotator=annotator, link=link)
    if queue.current is None:
        done = reverse("annotate:label-done", args=[campaign.slug])
        if request.htmx:
            return HttpResponse(status=204, headers={"HX-Redirect": done})
        return redirect(done)
    if extra.get("values") and extra.get("values_for") != queue.current.pk:
        extra.pop("values")  # answers given back by an undo belong to that pair only
    extra.pop("values_for", None)
    context = _screen_context(campaign=campaign, aspects=aspects, queue=queue, link=link, **extra)
    template = PANE if request.htmx else "annotate/label.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
def label(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The labeling screen: the pair reserved to this worker, with the next one preloaded."""
    campaign, aspects = _labeling_campaign(slug)
    return _next_screen(request, campaign, _worker(request), aspects=aspects)


def _form_values(
    request: HtmxHttpRequest, aspects: list[Aspect]
) -> tuple[dict[str, str], dict[str, str], Scores]:
    choices = {a.key: request.POST.get(f"choice-{a.key}", "") for a in aspects}
    rationales = {a.key: request.POST.get(f"rationale-{a.key}", "") for a in aspects}
    scores = {
        a.key: (request.POST.get(f"score-left-{a.key}", ""), request.POST.get(f"score-right-{a.key}", ""))
        for a in aspects
    }
    return choices, rationales, scores


@login_required
@require_POST
def label_submit(request: HtmxHttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    """Store the worker's choices for their reserved pair and answer with the next pair."""
    campaign, aspects = _labeling_campaign(slug)
    annotator = _worker(request)
    choices, rationales, scores = _form_values(request, aspects)
    try:
        stored = judgment_submit(
            campaign=campaign,
            aspects=aspects,
            assignment_id=assignment_id,
            annotator=annotator,
            choices=choices,
            rationales=rationales,
            scores=scores,
        )
    except JudgmentInvalid as invalid:
        return _invalid_form(request, campaign, aspects, annotator, assignment_id, invalid)
    except AssignmentError as refused:
        return _refused(request, campaign, refused)
    if not request.htmx:
        return redirect("annotate:label", slug=campaign.slug)  # post/redirect/get without JavaScript
    undo = None if stored.duplicate or stored.pair_complete else stored.assignment.pk
    return _next_screen(request, campaign, annotator, aspects=aspects, link=stored.link, undo_id=undo)


@login_required
@require_POST
def label_undo(request: HtmxHttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    """Take back the worker's last submission (while its pair is not complete) and show that pair again."""
    campaign, aspects = _labeling_campaign(slug)
    annotator = _worker(request)
    try:
        undone = judgment_undo(campaign=campaign, annotator=annotator, assignment_id=assignment_id)
    except AssignmentError as refused:
        return _refused(request, campaign, refused)
    if not request.htmx:
        return redirect("annotate:label", slug=campaign.slug)
    return _next_screen(
        request,
        campaign,
        annotator,
        aspects=aspects,
        values=undone.values,
        values_for=undone.assignment.pk,
        notice_info="Your last answer is back: change it and submit again.",
    )


def _invalid_form(
    request: HtmxHttpRequest,
    campaign: Campaign,
    aspects: list[Aspect],
    annotator: Annotator,
    assignment_id: int,
    invalid: JudgmentInvalid,
) -> HttpResponse:
    # Re-render the same pair with the worker's answers kept and each problem next to its aspect.
    link = campaign_worker_get(campaign=campaign, annotator=annotator)
    queue = worker_queue_fill(campaign=campaign, annotator=annotator, link=link)
    if queue.current is None or queue.current.pk != assignment_id:
        return _refused(request, campaign, AssignmentError("This pair is not reserved to you.", status=404))
    context = _screen_context(
        campaign=campaign,
        aspects=aspects,
        queue=queue,
        link=link,
        errors=invalid.errors,
        values=request.POST.dict(),
        notice=str(invalid),
    )
    return render(request, PANE if request.htmx else "annotate/label.html", context, status=422)


def _refused(request: HtmxHttpRequest, campaign: Campaign, refused: AssignmentError) -> HttpResponse:
    title = "Members only" if isinstance(refused, NotAMember) else "Not saved"
    context = {"campaign": campaign, "title": title, "message": str(refused), "error": True}
    template = "annotate/crowd_message.html#message" if request.htmx else "annotate/crowd_message.html"
    return render(request, template, context, status=refused.status)


@login_required
@require_POST
def label_skip(request: HtmxHttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    """The worker cannot judge this pair (broken image, unclear prompt, offensive): record why, show the next."""
    campaign, aspects = _labeling_campaign(slug)
    annotator = _worker(request)
    try:
        assignment_skip(
            assignment_id=assignment_id, annotator=annotator, reason=request.POST.get("reason", "")
        )
    except AssignmentError as refused:
        return _refused(request, campaign, refused)
    if not request.htmx:
        return redirect("annotate:label", slug=campaign.slug)
    return _next_screen(request, campaign, annotator, aspects=aspects)


@login_required
@require_GET
def label_done(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Completion screen: the campaign's code, or a redirect to the platform's completion URL."""
    campaign = get_object_or_404(Campaign, slug=slug)
    annotator = _worker(request)
    try:
        campaign_worker_for_labeling(campaign=campaign, annotator=annotator, staff=is_admin(request.user))
    except NotAMember as refused:
        return _refused(request, campaign, refused)
    if (
        campaign.status != Campaign.Status.ACTIVE
        and not CampaignWorker.objects.filter(
            campaign=campaign, annotator=annotator, submitted__gt=0
        ).exists()
    ):
        return _closed(request, campaign)
    done = crowd_worker_complete(campaign=campaign, annotator=annotator)
    if done.still_labeling:
        return redirect("annotate:label", slug=campaign.slug)  # still has work on screen
    if done.earned and campaign.completion_url:
        return redirect(campaign.completion_url)
    context = {
        "campaign": campaign,
        "link": done.link,
        "earned": done.earned,
        "blocked": done.blocked,
        "quota_reached": done.quota_reached,
        "labeled_needed": done.labeled_needed,
        "progress": worker_progress(campaign=campaign, link=done.link),
    }
    return render(request, "annotate/label_done.html", context)


def _closed(request: HtmxHttpRequest, campaign: Campaign) -> HttpResponse:
    """A friendly page for a campaign that is not (or no longer) open, with a status that says so."""
    return render(request, "annotate/campaign_closed.html", {"campaign": campaign}, status=403)
