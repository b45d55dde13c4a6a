"""The metrics the alert rules and the dashboard need beyond the first set (docs/operations.md): LLM cost,
calls to the fallback LLM provider, and whether the ingress reaches PostgreSQL and Temporal."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from app.devservers import LocalPostgres, free_port
from app.ingress.app import IngressDeps, create_app
from capabilities.task.activities.llm import LlmActivities
from lucy.contracts.llm import ChatMessage, LlmProvider, LlmRequest
from lucy.db.session import create_engine
from lucy.settings import load_settings
from tests.fakes.llm import FakeLlm


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_calls_to_the_fallback_provider_are_counted(fake_llm: FakeLlm):
    settings = load_settings(
        env="test",
        openrouter_api_key=fake_llm.api_key,
        openrouter_base_url=fake_llm.base_url,
        llm_fallback_base_url=fake_llm.base_url,
        llm_fallback_api_key=fake_llm.api_key,
        llm_fallback_model="fallback/model",
    )
    fake_llm.then(content="from the primary", cost=0.25).then(content="from the fallback")
    before = _sample("lucy_llm_fallback_requests_total", outcome="ok")
    cost_before = _sample(
        "lucy_llm_cost_usd_total", provider="127.0.0.1", model=settings.llm.model_tier_default
    )
    async with httpx.AsyncClient() as http:
        acts = LlmActivities(http, settings.llm)
        ask = [ChatMessage(role="user", content="hi")]
        await ActivityEnvironment().run(acts.chat, LlmRequest(messages=ask))
        assert _sample("lucy_llm_fallback_requests_total", outcome="ok") == before
        cost = _sample("lucy_llm_cost_usd_total", provider="127.0.0.1", model=settings.llm.model_tier_default)
        assert cost == cost_before + 0.25
        await ActivityEnvironment().run(
            acts.chat, LlmRequest(messages=ask, provider=LlmProvider.FALLBACK.value)
        )
    assert _sample("lucy_llm_fallback_requests_total", outcome="ok") == before + 1


async def _no_temporal() -> Client:
    raise ConnectionRefusedError("no Temporal here")


async def test_metrics_say_whether_the_database_and_temporal_answer(postgres: LocalPostgres):
    for url, up in ((postgres.app_url, 1.0), (f"postgresql://lucy:x@127.0.0.1:{free_port()}/lucy", 0.0)):
        settings = load_settings(env="test", database_url=url)
        engine = create_engine(settings.database)
        app = create_app(IngressDeps(settings=settings, engine=engine, temporal=_no_temporal))
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as http:
                text = (await http.get("/metrics")).text
                health = await http.get("/health/db")
        finally:
            await engine.dispose()
        assert f'lucy_dependency_up{{dependency="database"}} {up}' in text
        assert 'lucy_dependency_up{dependency="temporal"} 0.0' in text
        assert health.status_code == (200 if up else 503)
        assert _sample("lucy_dependency_up", dependency="database") == up
