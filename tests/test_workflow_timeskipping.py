"""LucyTaskWorkflow on the time-skipping server, with fake activities under the real names.

Long retry backoffs (LLM down for minutes, a database that is down) run in a fraction of
a second because the server skips time while the workflow waits.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from lucy.contracts import (
    ErrorType,
    LlmRequest,
    LlmResponse,
    PostMessageRequest,
    PostMessageResult,
    TaskFinished,
    TaskInput,
    TaskResult,
    TaskStarted,
)
from lucy.devservers import temporal_test_server_path
from lucy.temporal import ensure_search_attributes
from workflows.task import LLM_RETRY, LucyTaskWorkflow, escalation_path


@pytest.fixture(scope="module")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_test_server_path())
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@dataclass
class Fakes:
    llm_failures: int = 0  # how many LLM attempts fail (retryably) before one succeeds
    db_failures: int = 0  # how many record attempts fail with a connection error
    llm_attempts: int = 0
    db_attempts: int = 0
    failing_tiers: frozenset[str] = frozenset()  # tiers that are down (retryable errors)
    llm_status: dict[str, str] = field(default_factory=dict)  # tier -> permanent error type, once
    llm_requests: list[LlmRequest] = field(default_factory=list)
    posts: list[PostMessageRequest] = field(default_factory=list)
    finished: list[TaskFinished] = field(default_factory=list)

    def activities(self) -> list:
        @activity.defn(name="records.task_running")
        async def task_running(started: TaskStarted) -> str:
            self.db_attempts += 1
            if self.db_attempts <= self.db_failures:
                raise ConnectionRefusedError("database is down")
            return str(uuid.uuid4())

        @activity.defn(name="records.task_finished")
        async def task_finished(finished: TaskFinished) -> bool:
            self.finished.append(finished)
            return True

        @activity.defn(name="llm.chat")
        async def chat(request: LlmRequest) -> LlmResponse:
            self.llm_attempts += 1
            self.llm_requests.append(request)
            if self.llm_attempts <= self.llm_failures or request.tier in self.failing_tiers:
                raise ApplicationError("HTTP 503", type=ErrorType.LLM_RETRYABLE)
            permanent = self.llm_status.pop(request.tier, None)
            if permanent:
                raise ApplicationError("refused", type=permanent, non_retryable=True)
            return LlmResponse(
                content="done",
                model=f"model-{request.tier}",
                prompt_tokens=3,
                completion_tokens=2,
                cost_usd=0.01,
            )

        @activity.defn(name="slack.post_message")
        async def post_message(request: PostMessageRequest) -> PostMessageResult:
            self.posts.append(request)
            return PostMessageResult(ts=f"1.{len(self.posts)}", channel=request.channel)

        return [task_running, task_finished, chat, post_message]


TASK_TEXT = "explain " * 100

TASK = TaskInput(
    workspace_id=str(uuid.uuid4()),
    user_id=str(uuid.uuid4()),
    channel_id=str(uuid.uuid4()),
    slack_team_id="T1",
    slack_user_id="U1",
    slack_channel_id="C1",
    thread_ts="100.1",
    message_ts="100.1",
    text=TASK_TEXT,
)


async def _run(env: WorkflowEnvironment, fakes: Fakes) -> TaskResult:
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=queue, workflows=[LucyTaskWorkflow], activities=fakes.activities()
    ):
        return await env.client.execute_workflow(
            LucyTaskWorkflow.run, TASK, id=f"ts-{uuid.uuid4().hex}", task_queue=queue
        )


async def test_llm_down_exhausts_retries_then_user_is_told(ts_env: WorkflowEnvironment):
    fakes = Fakes(llm_failures=100)
    result = await _run(ts_env, fakes)
    assert result.status == "failed"
    assert result.error_type == ErrorType.LLM_RETRYABLE
    # Every tier of the escalation path was tried through all its retries.
    assert [r.tier for r in fakes.llm_requests] == [
        t for t in escalation_path("default") for _ in range(LLM_RETRY.maximum_attempts)
    ]
    assert len(fakes.posts) == 1 and fakes.posts[0].text.startswith("Sorry")
    assert fakes.posts[0].thread_ts == "100.1"
    assert [f.status for f in fakes.finished] == ["failed"]


async def test_llm_recovers_within_retries(ts_env: WorkflowEnvironment):
    fakes = Fakes(llm_failures=3)
    result = await _run(ts_env, fakes)
    assert result.status == "completed"
    assert fakes.llm_attempts == 4
    assert [p.text for p in fakes.posts] == ["done"]
    assert fakes.finished[0].prompt_tokens == 3 and fakes.finished[0].cost_usd == 0.01


async def test_database_briefly_down_delays_but_loses_nothing(ts_env: WorkflowEnvironment):
    fakes = Fakes(db_failures=8)  # about four minutes of backoff, skipped
    result = await _run(ts_env, fakes)
    assert result.status == "completed"
    assert fakes.db_attempts == 9
    assert [f.status for f in fakes.finished] == ["completed"]


async def test_post_keys_are_stable_per_step(ts_env: WorkflowEnvironment):
    fakes = Fakes()
    await _run(ts_env, fakes)
    (post,) = fakes.posts
    assert len(post.idempotency_key) == 32


async def test_an_unavailable_tier_escalates_to_the_next(ts_env: WorkflowEnvironment):
    fakes = Fakes(failing_tiers=frozenset({"default"}))
    result = await _run(ts_env, fakes)
    assert result.status == "completed"
    assert [r.tier for r in fakes.llm_requests][-1] == "frontier"
    assert fakes.finished[0].model == "model-frontier"


async def test_a_400_is_answered_once_with_a_trimmed_context(ts_env: WorkflowEnvironment):
    fakes = Fakes(llm_status={"default": ErrorType.LLM_REJECTED})
    result = await _run(ts_env, fakes)
    assert result.status == "completed"
    first, second = fakes.llm_requests
    assert first.tier == second.tier == "default"
    assert len(second.messages[-1].content) < len(first.messages[-1].content)
    assert second.messages[0].role == "system"


async def test_credentials_errors_are_not_escalated(ts_env: WorkflowEnvironment):
    fakes = Fakes(llm_status={"default": ErrorType.LLM_UNAUTHORIZED})
    result = await _run(ts_env, fakes)
    assert result.status == "failed" and result.error_type == ErrorType.LLM_UNAUTHORIZED
    assert [r.tier for r in fakes.llm_requests] == ["default"]
