"""VP-Score reward models, the scores they give images, and cached agreement reports."""

from __future__ import annotations

from django.db import models


class RewardModel(models.Model):
    """A VP-Score training run: what trained it, where its checkpoint is, how accurate it is."""

    class LabelSource(models.TextChoices):
        AI = "ai", "AI labels"
        HUMAN = "human", "Human labels"
        BOTH = "both", "AI and human labels"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200, unique=True)
    backbone = models.CharField(max_length=300)
    base_weights = models.CharField(max_length=500, blank=True)
    label_source = models.CharField(max_length=8, choices=LabelSource.choices, default=LabelSource.AI)
    aspects = models.ManyToManyField("annotate.Aspect", blank=True)
    campaigns = models.ManyToManyField("annotate.Campaign", blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    checkpoint = models.CharField(max_length=500, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL)
    backbone_kind = models.CharField(max_length=8, default="blip", help_text="blip or clip")
    # The reward model labels pairs as this annotator (kind "model"), so every report covers it.
    annotator = models.OneToOneField(
        "annotate.Annotator", null=True, blank=True, on_delete=models.SET_NULL, related_name="reward_model"
    )
    is_demo = models.BooleanField(default=False, help_text="A tiny demo model: random backbone, CPU-trained.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ImageScore(models.Model):
    """The score one reward model gives one image on one aspect."""

    image = models.ForeignKey("annotate.Image", on_delete=models.CASCADE, related_name="scores")
    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="scores")
    aspect = models.ForeignKey("annotate.Aspect", on_delete=models.CASCADE)
    score = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "reward_model", "aspect"], name="image_score_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.reward_model_id}/{self.aspect_id}: image {self.image_id} = {self.score:.3f}"


class Report(models.Model):
    """A cached agreement report: the JSON of scoring.services.reports for one campaign and parameter set."""

    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="reports")
    params_hash = models.CharField(max_length=64, help_text="sha256 of the canonical report parameters.")
    parameters = models.JSONField(default=dict)
    schema_version = models.PositiveSmallIntegerField()
    data = models.JSONField(help_text="The report, as documented in docs/report-schema.md.")
    n_judgments = models.PositiveIntegerField(default=0)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["campaign", "params_hash", "-created_at"], name="report_cache_lookup")
        ]

    def __str__(self) -> str:
        return f"Report {self.pk} of campaign {self.campaign_id} ({self.created_at:%Y-%m-%d %H:%M})"
