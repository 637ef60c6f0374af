"""The demo study: the campaign of grammar prompts, its two synthetic generators, the simulated judge and
the simulated crowdworkers who label part of it, so the first agreement report has human and AI figures.

Used by `manage.py seed_demo` (make demo), tests and benches. Everything it makes is labelled synthetic or
simulated wherever it appears.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from annotate.models import Campaign, Generator
from annotate.services.campaigns import campaign_create
from annotate.services.prompts import prompt_get_or_create
from pipeline.generation.demo import random_prompt

DEMO_CAMPAIGN = "Demo: shapes and colours"
DEMO_GENERATOR = "demo-synthetic"
# A second synthetic generator with more defects, so the demo's leaderboards have something to rank.
DEMO_GENERATOR_GLITCHY = "demo-synthetic-glitchy"


def demo_campaign_seed(*, n_prompts: int = 24, seed: int = 7) -> Campaign:
    """Create (or return) the demo campaign with grammar prompts and the synthetic generator."""
    existing = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
    if existing is not None:
        return existing
    for name, defect_rate in ((DEMO_GENERATOR, 0.06), (DEMO_GENERATOR_GLITCHY, 0.2)):
        Generator.objects.get_or_create(
            name=name,
            defaults={
                "kind": Generator.Kind.DEMO,
                "params": {"size": 256, "defect_rate": defect_rate},
                "description": "Synthetic scenes drawn from a small prompt grammar, with recorded defects "
                f"(each defect with probability {defect_rate}). Not a diffusion model: demos and tests only.",
            },
        )
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < n_prompts:
        text = random_prompt(rng)
        if text not in texts:
            texts.append(text)
    campaign = campaign_create(
        name=DEMO_CAMPAIGN,
        status=Campaign.Status.ACTIVE,
        guidelines="Compare the two pictures for each aspect. Read the prompt first: count the shapes and "
        "check their colours and positions. Choose tie only when you truly cannot prefer one.",
        completion_code="DEMO-DONE",
        worker_quota=20,
        # About five gold pairs per worker within the quota, so gold accuracy can flag one (the campaign
        # page warns about thresholds that cannot trigger).
        gold_rate=0.25,
        min_gold_for_status=4,
    )
    campaign.prompts.set([prompt_get_or_create(text=t, source="demo-grammar")[0] for t in texts])
    return campaign


# --- simulated crowdworkers --------------------------------------------------------------------------

#: The demo's simulated crowd: accuracy on each aspect (graded from careful to sloppy) and a small
#: position bias (extra probability of answering "left" when not answering from the truth).
SIMULATED_WORKERS: tuple[tuple[float, float], ...] = (
    (0.92, 0.04),
    (0.86, 0.06),
    (0.80, 0.08),
    (0.72, 0.10),
    (0.64, 0.12),
)
SIMULATED_USERNAME = "simulated-worker-{n}"


@dataclass(frozen=True)
class CrowdSimulation:
    """What the simulated crowd did: workers, judgment sets submitted, pairs complete afterwards."""

    workers: int
    submitted: int
    complete_pairs: int


def simulated_truth(*, defects_a: list[str], defects_b: list[str], aspect: str) -> str:
    """The better image on an aspect by the demo's recorded defects (A, B or tie), like the simulated judge."""
    from pipeline.mllm.providers.simulated import DEFECT_PENALTIES

    def penalty(defects: list[str]) -> float:
        return sum(DEFECT_PENALTIES.get(d, {}).get(aspect, 0.0) for d in defects)

    a, b = penalty(defects_a), penalty(defects_b)
    return "tie" if abs(a - b) < 1e-9 else ("A" if a < b else "B")


def simulated_answer(
    *, truth: str, swapped: bool, accuracy: float, left_bias: float, allow_tie: bool, rng: random.Random
) -> str:
    """A simulated worker's side (left / tie / right): the truth with probability `accuracy`, else a guess
    leaning left by `left_bias`."""
    if rng.random() < accuracy:
        if truth == "tie":
            return "tie" if allow_tie else rng.choice(["left", "right"])
        a_left = not swapped
        return "left" if (truth == "A") == a_left else "right"
    tie_share = 0.15 if allow_tie else 0.0
    draw = rng.random()
    if draw < tie_share:
        return "tie"
    return "left" if draw < tie_share + (1 - tie_share) * (0.5 + left_bias) else "right"


def demo_crowd_simulate(*, campaign: Campaign, seed: int = 0, now: datetime | None = None) -> CrowdSimulation:
    """Let the simulated crowdworkers label the campaign up to its quota, through the real labeling services.

    Each worker gets pairs exactly as a person would (reservations, gold pairs, random left/right) and
    submits with a simulated clock: 6 to 20 seconds per pair, never below the too-fast threshold, within the
    last half hour. Their accounts cannot sign in and are marked simulated (annotate.Annotator.is_simulated),
    so every page labels them and reports can leave them out.
    """
    from annotate.models import Annotator, Assignment, Pair
    from annotate.services.assignments import campaign_worker_get, worker_queue_fill
    from annotate.services.campaigns import crowdworker_create
    from annotate.services.judgments import judgment_submit

    rng = random.Random(seed)
    now = now or timezone.now()
    aspects = list(campaign.aspects.order_by("order", "key"))
    quota = campaign.worker_quota or 20
    submitted = 0
    for n, (accuracy, left_bias) in enumerate(SIMULATED_WORKERS, start=1):
        user = crowdworker_create(username=SIMULATED_USERNAME.format(n=n))
        Annotator.objects.filter(user=user).update(
            name=f"Simulated worker {n} (accuracy {accuracy:.0%})", is_simulated=True
        )
        annotator = Annotator.objects.get(user=user)
        link = campaign_worker_get(campaign=campaign, annotator=annotator)
        clock = now - timedelta(minutes=30) + timedelta(minutes=5 * (n - 1))
        for _ in range(quota):
            queue = worker_queue_fill(campaign=campaign, annotator=annotator, link=link, now=clock)
            current = queue.current
            if current is None:
                break
            pair = Pair.objects.select_related("image_a", "image_b").get(pk=current.pair.pk)
            defects_a = list((pair.image_a.params or {}).get("defects", []))
            defects_b = list((pair.image_b.params or {}).get("defects", []))
            choices = {
                aspect.key: simulated_answer(
                    truth=simulated_truth(defects_a=defects_a, defects_b=defects_b, aspect=aspect.key),
                    swapped=current.swapped,
                    accuracy=accuracy,
                    left_bias=left_bias,
                    allow_tie=campaign.allow_tie,
                    rng=rng,
                )
                for aspect in aspects
            }
            low = max(6.0, campaign.min_seconds_per_pair + 1.0)
            seconds = rng.uniform(low, max(low + 1.0, 20.0))
            scores = None
            if campaign.human_scores:
                scores = {a.key: (str(campaign.score_max), str(campaign.score_max)) for a in aspects}
            result = judgment_submit(
                campaign=campaign,
                aspects=aspects,
                assignment_id=current.pk,
                annotator=annotator,
                choices=choices,
                rationales={},
                scores=scores,
                now=clock + timedelta(seconds=seconds),
            )
            submitted += 1
            clock += timedelta(seconds=seconds + rng.uniform(0.5, 2.0))
            link = result.link or campaign_worker_get(campaign=campaign, annotator=annotator)
        # A simulated worker leaves nothing on hold: their preloaded next pair goes back to the pool.
        held = Assignment.objects.filter(
            annotator=annotator, campaign=campaign, status=Assignment.Status.RESERVED
        )
        for assignment in held:
            if Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.RESERVED).update(
                status=Assignment.Status.EXPIRED
            ):
                Pair.objects.filter(pk=assignment.pair_id).update(slots_taken=F("slots_taken") - 1)
    complete = Pair.objects.filter(
        campaign=campaign, is_gold=False, slots_submitted__gte=campaign.humans_per_pair
    ).count()
    return CrowdSimulation(workers=len(SIMULATED_WORKERS), submitted=submitted, complete_pairs=complete)


def demo_jobs_wait(*, job_id: int, timeout_s: float = 900.0, on_wait: Any = None) -> list[int]:
    """Wait until a job and the follow-up jobs it queued have succeeded; returns their ids in order.

    Follow-ups are queued in the same transaction that records a job's success, so once a job has
    succeeded its follow-ups exist. RuntimeError when one fails, is cancelled, or the time runs out.
    """
    from core.models import Job

    deadline = time.monotonic() + timeout_s
    pending, done = [job_id], []
    while pending:
        job = Job.objects.get(pk=pending[0])
        if not job.is_finished:
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job.pk} ({job.title}) did not finish within {timeout_s:.0f} s")
            if on_wait is not None:
                on_wait(job)
            time.sleep(0.5)
            continue
        if job.status != Job.Status.SUCCEEDED:
            reason = job.error.splitlines()[0] if job.error else "no reason recorded"
            raise RuntimeError(f"job {job.pk} ({job.title}) {job.status}: {reason}")
        done.append(pending.pop(0))
        kinds = [spec.get("kind") for spec in job.follow_ups or []]
        if kinds:
            queued = Job.objects.filter(campaign=job.campaign, kind__in=kinds, created_at__gte=job.created_at)
            pending += [
                pk for pk in queued.exclude(pk__in=done + pending).order_by("pk").values_list("pk", flat=True)
            ]
    return done
