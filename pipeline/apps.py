from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "AI judges, generation and data"

    def ready(self) -> None:
        from pipeline.jobs import register_job_kinds

        register_job_kinds()
