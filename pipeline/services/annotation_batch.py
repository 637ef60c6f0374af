"""AI annotation through the OpenAI Batch API: the job's side (state kept on the Job, results recorded).

Same work list and the same recording as online execution (:mod:`pipeline.services.annotation_calls`),
so results land in AICall and Judgment rows with the same idempotency; the protocol itself is in
:mod:`pipeline.mllm.batch_api`. The job stays resumable: the input file id and then the batch id are saved
in ``job.state["batch"]`` as soon as the server returns them, so a re-run polls the existing batch instead
of creating a new one. (A crash in the instant between creating the batch and saving its id would make the
re-run submit a second batch; its answers would still never duplicate a judgment.)

Lines that come back with an error, and requests the batch never answered (expired or cancelled), are
recorded as failed calls with a reason; a new job with selection "unlabelled" sends them again.
"""

from __future__ import annotations

from annotate.models import Campaign
from core.jobs import JobContext
from core.models import Job
from pipeline.mllm.batch_api import BatchSession, batch_line_result, batch_unanswered_result
from pipeline.mllm.providers import OpenAICompatibleJudge
from pipeline.mllm.providers.openai_client import openai_client
from pipeline.models import AIJudgeConfig
from pipeline.services.annotation_calls import AnnotationRecorder, annotation_requests
from pipeline.services.judges import openai_judge_config

DEFAULT_POLL_S = 30.0


def batch_run(
    *,
    ctx: JobContext,
    job: Job,
    campaign: Campaign,
    judge_config: AIJudgeConfig,
    recorder: AnnotationRecorder,
    owner: str,
) -> None:
    """Submit the job's unsent calls as one batch (or find the batch already submitted), wait, ingest."""
    config = openai_judge_config(judge_config)
    session = BatchSession(
        openai_client(
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            api_key_env_allowed=config.api_key_env_allowed,
            timeout_s=config.timeout_s,
            max_retries=3,
            purpose="the judge's API key",
        )
    )
    # Requests are rebuilt from the rows on every run (cheap: no encoding unless a file is written),
    # because recording an answer needs its request (prompt text, answer spec).
    requests = {
        r.key: r
        for r in annotation_requests(
            job=job, campaign=campaign, judge_config=judge_config, infos=recorder.infos, owner=owner
        )
    }
    state = dict(ctx.state.get("batch") or {})
    if not state.get("batch_id"):
        if not requests:
            return
        if not state.get("input_file_id"):
            # One body builder for online calls and batch lines: the judge's own.
            judge = OpenAICompatibleJudge(config)
            bodies = {
                key: judge.request_body(r.with_encoded_images(), structured=True)
                for key, r in requests.items()
            }
            state["input_file_id"], state["calls"] = session.upload(bodies), len(bodies)
            ctx.save_state(batch=state)
            ctx.log(f"uploaded {len(bodies)} requests as {state['input_file_id']}")
        state["batch_id"] = session.create(
            input_file_id=state["input_file_id"], metadata={"job_id": str(job.pk)}
        )
        ctx.save_state(batch=state)
        ctx.log(f"created batch {state['batch_id']}")
    else:
        ctx.log(f"resuming batch {state['batch_id']}")
    poll_s = float((judge_config.options or {}).get("batch_poll_s", DEFAULT_POLL_S))
    batch = session.wait(state["batch_id"], poll_s=poll_s, should_stop=ctx.should_stop)
    if batch is None:
        ctx.log(f"cancelled batch {state['batch_id']}")
        ctx.check_cancelled()
        return
    ctx.save_state(batch={**state, "status": batch.status})
    ctx.log(f"batch {batch.id} {batch.status}")
    for line in session.result_lines(batch):
        request = requests.pop(str(line.get("custom_id")), None)
        if request is not None:  # None: recorded by an earlier run of this job
            recorder.record(batch_line_result(line, request, judge_config.model))
    for request in list(requests.values()):
        recorder.record(
            batch_unanswered_result(
                request, batch_status=batch.status, errors=batch.errors, model=judge_config.model
            )
        )
