from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring and reports"

    def ready(self) -> None:
        from scoring.jobs import register_job_kinds

        register_job_kinds()
