"""Routes of pipeline's admin pages (namespace "pipeline")."""

from django.urls import path

from pipeline.views import annotation, datasets, generation

app_name = "pipeline"
urlpatterns = [
    path("campaigns/<slug:slug>/generate/", generation.campaign_generate, name="campaign-generate"),
    path("generators/", generation.generator_list, name="generator-list"),
    path("prompts/import/", generation.prompt_import, name="prompt-import"),
    path("prompts/polish/", generation.polish_launch, name="prompt-polish"),
    path("datasets/", datasets.datasets_page, name="datasets"),
    path("ai/judges/", annotation.judge_list, name="ai-judges"),
    path("ai/judges/new/", annotation.judge_create, name="ai-judge-create"),
    path("ai/judges/<int:pk>/", annotation.judge_edit, name="ai-judge-edit"),
    path("ai/judges/<int:pk>/duplicate/", annotation.judge_duplicate, name="ai-judge-duplicate"),
    path("ai/judges/<int:pk>/test/", annotation.judge_test_view, name="ai-judge-test"),
    path("ai/annotate/", annotation.annotate_launch, name="ai-annotate"),
    path("ai/annotate/estimate/", annotation.annotate_estimate, name="ai-annotate-estimate"),
    path("ai/jobs/<int:pk>/calls/", annotation.job_calls, name="ai-job-calls"),
    path("ai/calls/<int:pk>/", annotation.call_detail, name="ai-call-detail"),
]
