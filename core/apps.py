from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from core.jobs import DemoParams
        from core.registry import JobKind, job_kind_register

        # The core's own kind: a job that only counts, to see and test the machinery without a model.
        job_kind_register(
            JobKind(name="demo", label="Demo job", handler="core.jobs.demo_countdown", params=DemoParams)
        )
