"""Search attribute registration used by `lucy worker` at start-up."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import SEARCH_ATTRIBUTES
from lucy.temporal import ensure_search_attributes


async def test_ensure_search_attributes_is_idempotent(temporal_env: WorkflowEnvironment):
    # The session's dev server was started with them registered: nothing to add, twice.
    assert await ensure_search_attributes(temporal_env.client) == []
    assert await ensure_search_attributes(temporal_env.client) == []


async def test_registers_missing_attributes_on_a_fresh_server():
    env = await WorkflowEnvironment.start_local(dev_server_log_level="error", dev_server_existing_path=_cli())
    try:
        added = await ensure_search_attributes(env.client)
        assert added == [k.name for k in SEARCH_ATTRIBUTES]
        assert await ensure_search_attributes(env.client) == []
    finally:
        await env.shutdown()


def _cli() -> str:
    from app.devservers import temporal_cli_path

    return temporal_cli_path()
