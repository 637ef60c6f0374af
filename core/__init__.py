"""The job core and shared web helpers: the lowest Django layer, which every app plugs into.

Owns: the Job model (one row per background job of any kind), the job-kind registry, the runner
(`core.jobs`: job_create / job_run / job_cancel and the JobContext handlers see), the three thin Celery
tasks (one per queue), the jobs pages, and the web helpers every app's views share (`core.http`,
`core.permissions`, the client address and backoff counters of `core.ratelimit`, signed media links in
`core.media`, the request-body, NUL-parameter and Content-Security-Policy middleware of `core.middleware`,
and the `core_web` template filters).

May import: Django, Celery and the standard library only. It names no app: each app registers its job
kinds from its AppConfig.ready(), and the model a job belongs to (a campaign) comes from the
JOBS_CAMPAIGN_MODEL setting, the way auth's user model comes from AUTH_USER_MODEL.
"""
