"""Campaigns, prompts, images, pairs, annotators, assignments and judgments.

Human and AI labels share the Judgment table so that agreement can be measured on the same rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Aspect(models.Model):
    """A question a judge answers about a pair (prompt-following, aesthetic, ...)."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    question = models.TextField()
    guideline = models.TextField(blank=True, help_text="A one-line reminder shown under the question.")
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "key"]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    """A text-to-image prompt; a polished prompt links to the raw one it was rewritten from."""

    text = models.TextField()
    text_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    source = models.CharField(max_length=32, default="upload", db_index=True)
    source_id = models.CharField(max_length=128, blank=True)
    polished_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="polished_versions"
    )
    is_unsafe = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    meta = models.JSONField(default=dict, blank=True, help_text="Source metadata: seed, steps, cfg, ...")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text[:80]


class Generator(models.Model):
    """A named way to make images: a diffusers pipeline, the synthetic demo renderer, or imported files."""

    class Kind(models.TextChoices):
        DIFFUSERS = "diffusers", "Diffusers pipeline"
        DEMO = "demo", "Demo (synthetic scenes)"
        IMPORTED = "imported", "Imported images"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    model_id = models.CharField(max_length=500, blank=True, help_text="Hub id or local path (diffusers).")
    params = models.JSONField(
        default=dict, blank=True, help_text="scheduler, steps, guidance_scale, width, height, dtype, ..."
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_synthetic(self) -> bool:
        return self.kind == self.Kind.DEMO


class Image(models.Model):
    """One stored image file; identical bytes are stored once (sha256 is unique)."""

    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.PROTECT, related_name="images")
    generator = models.ForeignKey(Generator, on_delete=models.PROTECT, related_name="images")
    file = models.FileField(upload_to="images/", max_length=300)
    sha256 = models.CharField(max_length=64, unique=True)
    format = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    seed = models.BigIntegerField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="Generation parameters and defect record.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["prompt", "generator"])]
        constraints = [
            # A generator run with the same prompt and seed makes the same image: never store it twice.
            models.UniqueConstraint(
                fields=["prompt", "generator", "seed"],
                condition=Q(seed__isnull=False),
                name="image_unique_prompt_generator_seed",
            ),
        ]

    def __str__(self) -> str:
        return f"Image {self.pk} ({self.sha256[:10]})"


class Campaign(models.Model):
    """A labeling campaign: pairs, aspects, and the rules humans and AI judges follow."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    class Access(models.TextChoices):
        OPEN = "open", "Crowd link: anyone with the entry link, and every signed-in worker"
        INVITE = "invite", "Invite only: members an admin invited"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True)
    aspects = models.ManyToManyField(Aspect, related_name="campaigns")
    prompts = models.ManyToManyField(Prompt, related_name="campaigns", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    access = models.CharField(
        max_length=8,
        choices=Access.choices,
        default=Access.OPEN,
        db_default=Access.OPEN,
        help_text="Invite only: the crowd link is refused and only members see and label the campaign.",
    )
    humans_per_pair = models.PositiveSmallIntegerField(
        default=3, help_text="Overlap: distinct humans per pair."
    )
    gold_rate = models.FloatField(default=0.1, help_text="Share of served pairs that are gold pairs.")
    allow_tie = models.BooleanField(default=True)
    rationale_required = models.BooleanField(default=False)
    human_scores = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Humans also score each image per aspect on the score scale.",
    )
    score_min = models.SmallIntegerField(default=1)
    score_max = models.SmallIntegerField(default=10)
    reservation_minutes = models.PositiveSmallIntegerField(default=10)
    min_seconds_per_pair = models.FloatField(default=3.0, help_text="Faster submissions are flagged.")
    worker_quota = models.PositiveIntegerField(null=True, blank=True, help_text="Pairs per worker (crowd).")
    min_labeled_pairs = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=(
            "Labeled pairs a worker needs for the completion code (skips never count); empty: the worker "
            "quota, or 1. Fewer earn it only when no pair is left for them."
        ),
    )
    flag_gold_accuracy_below = models.FloatField(default=0.6)
    block_gold_accuracy_below = models.FloatField(default=0.4)
    min_gold_for_status = models.PositiveSmallIntegerField(default=5)
    flag_too_fast_share = models.FloatField(
        default=0.3, help_text="Flag a worker when more than this share of their submissions is too fast."
    )
    min_submissions_for_flag = models.PositiveSmallIntegerField(
        default=5,
        db_default=5,
        help_text="Submissions before the too-fast share can flag a worker; keep it within the quota.",
    )
    completion_code = models.CharField(max_length=64, blank=True)
    completion_url = models.URLField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(humans_per_pair__gte=1), name="campaign_overlap_positive"),
            models.CheckConstraint(condition=Q(score_min__lt=F("score_max")), name="campaign_score_range"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="campaign_gold_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Pair(models.Model):
    """Two images of one prompt, stored in canonical order (image_a.id < image_b.id)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="pairs")
    image_a = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    image_b = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    is_gold = models.BooleanField(default=False)
    gold_answers = models.JSONField(default=dict, blank=True, help_text='{"aspect_key": "A" | "B" | "tie"}')
    # Denormalised counters, kept by annotate.services.assignments in the same transaction as each
    # reservation, submission, skip and expiry, so choosing the next pair is one index range scan instead
    # of a count over the campaign's assignments.
    slots_taken = models.PositiveSmallIntegerField(
        default=0, db_default=0, editable=False, help_text="Live human reservations plus submissions."
    )
    slots_submitted = models.PositiveSmallIntegerField(
        default=0, db_default=0, editable=False, help_text="Submitted human judgment sets."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Next regular pair: campaign = ? AND slots_taken < overlap ORDER BY slots_taken DESC, id.
            models.Index(
                fields=["campaign", "-slots_taken", "id"],
                condition=Q(is_gold=False),
                name="pair_next_regular",
            ),
            # Next gold pair: the least-served gold pair first.
            models.Index(
                fields=["campaign", "slots_taken", "id"], condition=Q(is_gold=True), name="pair_next_gold"
            ),
            models.Index(
                fields=["campaign", "slots_submitted"], condition=Q(is_gold=False), name="pair_progress"
            ),
        ]
        constraints = [
            # Canonical order also guarantees that the two images differ.
            models.CheckConstraint(condition=Q(image_a__lt=F("image_b")), name="pair_canonical_order"),
            models.UniqueConstraint(
                fields=["campaign", "image_a", "image_b"], name="pair_unique_per_campaign"
            ),
        ]

    def __str__(self) -> str:
        return f"Pair {self.pk} ({self.image_a_id} vs {self.image_b_id})"


class Annotator(models.Model):
    """Anyone or anything that labels: a human (a user account) or an AI judge.

    An AI annotator is pointed at by its configuration (``pipeline.AIJudgeConfig.annotator``, reverse
    accessor ``ai_judge``), so this app needs nothing from the layers above it.
    """

    class Kind(models.TextChoices):
        HUMAN = "human", "Human"
        AI = "ai", "AI judge"
        MODEL = "model", "Reward model"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FLAGGED = "flagged", "Flagged"
        BLOCKED = "blocked", "Blocked"

    kind = models.CharField(max_length=8, choices=Kind.choices, db_index=True)
    name = models.CharField(max_length=200)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="annotator"
    )
    platform = models.CharField(max_length=16, blank=True, help_text="prolific, mturk, or empty")
    external_id = models.CharField(max_length=128, blank=True, help_text="The crowd platform's worker id.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    status_reason = models.CharField(max_length=300, blank=True)
    status_set_by_admin = models.BooleanField(default=False)
    is_simulated = models.BooleanField(
        default=False,
        db_default=False,
        help_text="A simulated crowdworker of the demo: never a person's labels.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A human is a user account; anything else is linked from the layer that defines it (an AI
            # judge configuration's or a reward model's `annotator` field), never from here.
            models.CheckConstraint(
                condition=(Q(kind="human") & Q(user__isnull=False))
                | (~Q(kind="human") & Q(user__isnull=True)),
                name="annotator_kind_matches_link",
            ),
            models.UniqueConstraint(
                fields=["platform", "external_id"],
                condition=~Q(external_id=""),
                name="annotator_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Assignment(models.Model):
    """A pair reserved to one human; which image was shown on the left is recorded."""

    class Status(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        SUBMITTED = "submitted", "Submitted"
        EXPIRED = "expired", "Expired"
        SKIPPED = "skipped", "Skipped"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="assignments")
    # Denormalised from pair.campaign so per-campaign activity (judgments per hour) is one index scan.
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    swapped = models.BooleanField(default=False, help_text="True when image B was shown on the left.")
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    shown_at = models.DateTimeField(null=True, blank=True, help_text="When the worker first saw the pair.")
    submitted_at = models.DateTimeField(null=True, blank=True)
    seconds_spent = models.FloatField(null=True, blank=True)
    too_fast = models.BooleanField(default=False)
    skip_reason = models.CharField(max_length=200, blank=True)
    gold_total = models.PositiveSmallIntegerField(default=0, db_default=0, help_text="Gold aspects answered.")
    gold_correct = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pair", "annotator"], name="assignment_unique_pair_annotator"),
        ]
        indexes = [
            models.Index(fields=["annotator", "status"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["campaign", "submitted_at"]),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.pk} ({self.status})"


class CampaignWorker(models.Model):
    """One human's enrolment in one campaign: crowd session ids and running quality counters."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="workers")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="campaign_links")
    crowd_params = models.JSONField(
        default=dict, blank=True, help_text="Platform session ids: STUDY_ID/SESSION_ID or assignmentId/hitId."
    )
    submitted = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    too_fast = models.PositiveIntegerField(default=0)
    seconds_total = models.FloatField(default=0.0)
    gold_pairs = models.PositiveIntegerField(default=0)
    gold_answers = models.PositiveIntegerField(default=0, help_text="Aspect answers given on gold pairs.")
    gold_correct = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    last_active_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Membership of an invite-only campaign lives on the enrolment row the labeling screen reads anyway,
    # so checking it costs no query. Empty: not (or no longer) a member.
    invited_at = models.DateTimeField(null=True, blank=True, help_text="When an admin made them a member.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator"], name="campaign_worker_unique"),
        ]
        indexes = [models.Index(fields=["campaign", "-last_active_at"])]

    def __str__(self) -> str:
        return f"{self.annotator_id} in {self.campaign_id}"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answers if self.gold_answers else None

    @property
    def too_fast_share(self) -> float | None:
        return self.too_fast / self.submitted if self.submitted else None


class Judgment(models.Model):
    """One answer to one aspect of one pair by one annotator (and trial), in canonical terms."""

    class Choice(models.TextChoices):
        A = "A", "Image A"
        B = "B", "Image B"
        TIE = "tie", "Tie"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="judgments")
    aspect = models.ForeignKey(Aspect, on_delete=models.PROTECT, related_name="judgments")
    trial = models.PositiveSmallIntegerField(
        default=1, help_text="2 = the AI asked again with order swapped."
    )
    choice = models.CharField(max_length=3, choices=Choice.choices)
    presented_order = models.CharField(max_length=2, default="AB", help_text="AB: A shown left/first.")
    score_a = models.FloatField(null=True, blank=True)
    score_b = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    template_version = models.CharField(max_length=32, blank=True)
    # Review: a rejected judgment is kept and marked; reports and exports leave it out by default.
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # db_default: the labeling screen inserts judgments with plain SQL that names only the columns it sets.
    rejection_reason = models.CharField(max_length=300, blank=True, default="", db_default="")
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgments"
    )
    # The one link from annotate to an upper layer, kept on purpose: each AI judgment points at the MLLM
    # call that produced it (audit trail), and a join table would cost the recorder a second insert. It is
    # a string reference (no import), so the layering of the code is untouched.
    ai_call = models.ForeignKey(
        "pipeline.AICall", null=True, blank=True, on_delete=models.SET_NULL, related_name="judgments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "annotator", "aspect", "trial"], name="judgment_unique_per_trial"
            ),
            models.CheckConstraint(condition=Q(choice__in=["A", "B", "tie"]), name="judgment_choice_valid"),
            models.CheckConstraint(
                condition=Q(presented_order__in=["AB", "BA"]), name="judgment_order_valid"
            ),
            models.CheckConstraint(condition=Q(trial__gte=1), name="judgment_trial_positive"),
        ]
        indexes = [
            models.Index(fields=["annotator", "aspect"]),
            # "N judgments since this report": recent rows only (timestamps grow, so inserts stay cheap).
            models.Index(fields=["created_at"], name="judgment_created"),
            models.Index(
                fields=["rejected_at"], condition=Q(rejected_at__isnull=False), name="judgment_rejected"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id}: pair {self.pair_id} {self.aspect_id} -> {self.choice}"

    @property
    def is_rejected(self) -> bool:
        return self.rejected_at is not None
