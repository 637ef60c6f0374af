"""Admin pages for AI judges: the judges and their spending, create / edit / duplicate / test, launching a
batch, a job's calls and failures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotate.models import Campaign
from core.http import HtmxHttpRequest
from core.models import Job
from core.permissions import admin_required
from pipeline import selectors
from pipeline.forms import AnnotateForm, JudgeForm, JudgeTestForm
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.annotation import annotation_estimate, annotation_start
from pipeline.services.judge_test import TEST_TIMEOUT_S, judge_test, judge_test_sample_pair
from pipeline.services.judges import judge_queue

CALLS_PAGE_SIZE = 50
CALL_STATUSES = ["failed", "pending", "succeeded", "all"]


@admin_required
def judge_list(request: HtmxHttpRequest) -> HttpResponse:
    """AI judge configurations with their calls, tokens and spending, and recent annotation jobs."""
    context = {"judges": selectors.judges_with_spending(), "jobs": selectors.annotation_jobs_recent()}
    return render(request, "pipeline/ai/judge_list.html", context)


def _judge_form_page(
    request: HtmxHttpRequest,
    form: JudgeForm,
    judge: AIJudgeConfig | None,
    *,
    copy_of: AIJudgeConfig | None = None,
) -> HttpResponse:
    campaigns = Campaign.objects.filter(pairs__isnull=False).distinct().order_by("-created_at")
    context = {
        "form": form,
        "judge": judge,
        "copy_of": copy_of,
        "test_form": JudgeTestForm(initial={"campaign": campaigns.first()}) if judge else None,
        "test_timeout_s": TEST_TIMEOUT_S,
    }
    return render(request, "pipeline/ai/judge_form.html", context, status=422 if form.errors else 200)


@admin_required
def judge_create(request: HtmxHttpRequest) -> HttpResponse:
    """A new AI judge: provider, model, endpoint, key variable, template, mode, limits and prices."""
    form = JudgeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        judge = form.save()
        messages.success(request, f"Created AI judge {judge.name}. Test it on a sample pair below.")
        return redirect("pipeline:ai-judge-edit", pk=judge.pk)
    return _judge_form_page(request, form, None)


@admin_required
def judge_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """An AI judge's settings, with the Test button."""
    judge = get_object_or_404(AIJudgeConfig, pk=pk)
    form = JudgeForm(request.POST or None, instance=judge)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved AI judge {judge.name}.")
        return redirect("pipeline:ai-judge-edit", pk=judge.pk)
    return _judge_form_page(request, form, judge)


@admin_required
def judge_duplicate(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A new judge form filled with another judge's settings (saved as a new judge under a new name)."""
    original = get_object_or_404(AIJudgeConfig, pk=pk)
    initial = {name: getattr(original, name) for name in JudgeForm.Meta.fields}
    name, n = f"{original.name} (copy)", 2
    while AIJudgeConfig.objects.filter(name=name).exists():
        name, n = f"{original.name} (copy {n})", n + 1
    initial["name"] = name
    return _judge_form_page(request, JudgeForm(initial=initial), None, copy_of=original)


@admin_required
@require_POST
def judge_test_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Send one real call on a sample pair with the judge's saved settings; show prompt, raw answer, verdict."""
    judge = get_object_or_404(AIJudgeConfig, pk=pk)
    form = JudgeTestForm(request.POST)
    context: dict[str, Any] = {"judge": judge}
    if not form.is_valid():
        context["test_error"] = "; ".join(str(e) for errors in form.errors.values() for e in errors)
    else:
        try:
            pair = judge_test_sample_pair(
                campaign=form.cleaned_data["campaign"], pair_id=form.cleaned_data["pair"]
            )
        except ValueError as exc:
            context["test_error"] = str(exc)
        else:
            context["result"] = judge_test(config=judge, pair=pair)
    return render(request, "pipeline/ai/judge_form.html#test-result", context)


def _estimate_context(form: AnnotateForm) -> dict[str, Any]:
    if not form.is_valid():
        return {"estimate": None, "estimate_errors": form.errors}
    data = form.cleaned_data
    try:
        estimate = annotation_estimate(
            campaign=data["campaign"],
            judge_config=data["judge"],
            selection=data["selection"],
            sample_n=data.get("sample_n"),
            seed=data.get("seed") or 0,
        )
    except ValueError as exc:
        return {"estimate": None, "estimate_errors": {"__all__": [str(exc)]}}
    return {"estimate": estimate, "judge": data["judge"], "queue": judge_queue(data["judge"])}


@admin_required
def annotate_launch(request: HtmxHttpRequest) -> HttpResponse:
    """Annotate campaign X with judge Y: the estimate updates as the selection changes, then launch."""
    if request.method == "POST":
        form = AnnotateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = annotation_start(
                    campaign=data["campaign"],
                    judge_config=data["judge"],
                    selection=data["selection"],
                    sample_n=data.get("sample_n"),
                    seed=data.get("seed") or 0,
                    execution=data["execution"],
                    created_by=request.user,
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Started AI annotation job {job.pk} on the {job.queue} queue.")
                return redirect("pipeline:ai-job-calls", pk=job.pk)
    else:
        campaigns = Campaign.objects.order_by("-created_at")
        initial: dict[str, Any] = {
            "campaign": campaigns.filter(slug=request.GET.get("campaign", "")).first() or campaigns.first()
        }
        if request.GET.get("judge"):
            judge_id = request.GET["judge"]
            if not (judge_id.isascii() and judge_id.isdigit()):
                raise BadRequest("judge must be the id of an AI judge configuration (a number).")
            initial["judge"] = AIJudgeConfig.objects.filter(pk=int(judge_id)).first()
        else:  # with a single judge there is nothing to choose; with several, spending is a choice
            judges = list(AIJudgeConfig.objects.all()[:2])
            initial["judge"] = judges[0] if len(judges) == 1 else None
        form = AnnotateForm(initial={k: v for k, v in initial.items() if v is not None})
    bound = form if form.is_bound else AnnotateForm({**form.initial, **_initial_values(form)})
    context = {"form": form, **_estimate_context(bound)}
    return render(request, "pipeline/ai/annotate.html", context)


def _initial_values(form: AnnotateForm) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        values[name] = getattr(value, "pk", value)
    return values


@admin_required
def annotate_estimate(request: HtmxHttpRequest) -> HttpResponse:
    """The estimate partial for the launch form's current values (htmx)."""
    form = AnnotateForm(request.GET)
    return render(request, "pipeline/ai/annotate.html#estimate", _estimate_context(form))


@admin_required
def job_calls(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """An annotation job's calls: totals, failures with reason and raw text (filter by status)."""
    job = get_object_or_404(Job.objects.select_related("campaign"), pk=pk)
    totals = selectors.job_call_totals(job=job)
    status = request.GET.get("status", "failed")
    if status not in CALL_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(CALL_STATUSES)}.")
    page = Paginator(selectors.job_calls_page_rows(job=job, status=status), CALLS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    judge_id = job.params.get("judge_config_id")
    context = {
        "job": job,
        "totals": totals,
        "cost": totals["cost"] or Decimal("0"),
        "reasons": selectors.job_failure_reasons(job=job),
        "status": status,
        "page": page,
        "judge": AIJudgeConfig.objects.filter(pk=judge_id).first() if judge_id else None,
        "statuses": CALL_STATUSES,
    }
    template = "pipeline/ai/job_calls.html#calls-live" if request.htmx else "pipeline/ai/job_calls.html"
    return render(request, template, context)


@admin_required
def call_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One MLLM call: the exact rendered prompt, the raw response, its attempts and judgments."""
    call = get_object_or_404(AICall.objects.select_related("job", "judge", "pair", "prompt"), pk=pk)
    judgments = call.judgments.select_related("aspect", "pair").order_by("pair_id", "aspect__order")
    return render(request, "pipeline/ai/call_detail.html", {"call": call, "judgments": judgments})
