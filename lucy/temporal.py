"""Temporal client factory: address, namespace, API key and TLS from settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import start_http_server
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from lucy.codec import data_converter
from lucy.contracts.priority import HOUSEKEEPING_PRIORITY
from lucy.crypto import KeyRing
from lucy.logging import get_logger
from lucy.settings import TemporalSettings
from lucy.tracing import temporal_interceptors

log = get_logger(__name__)


def _tls(settings: TemporalSettings) -> TLSConfig | bool:
    if not settings.uses_tls:
        return False
    paths = (
        settings.temporal_tls_client_cert_path,
        settings.temporal_tls_client_key_path,
        settings.temporal_tls_server_ca_cert_path,
    )
    if not any(paths):
        return True  # TLS with the system roots (Temporal Cloud with an API key)
    cert, key, ca = (p.read_bytes() if p else None for p in paths)
    return TLSConfig(client_cert=cert, client_private_key=key, server_root_ca_cert=ca)


def metrics_runtime(port: int, host: str = "127.0.0.1") -> Runtime:
    """A Temporal runtime that serves the SDK's own metrics (task latencies, slots, polls) for
    Prometheus on ``host:port``."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


def serve_worker_metrics(port: int, host: str = "127.0.0.1") -> Any:
    """Serve Lucy's own Prometheus registry (``lucy_llm_request_seconds``...) on ``host:port``
    from a daemon thread; returns the HTTP server (``shutdown()`` stops it)."""
    server, _thread = start_http_server(port, addr=host)
    return server


async def connect(
    settings: TemporalSettings,
    *,
    runtime: Runtime | None = None,
    keyring: KeyRing | None = None,
    strict: bool = False,
) -> Client:
    """Connect to the configured Temporal frontend (with encrypted payloads when ``keyring``;
    ``strict``: unencrypted payloads are refused, as production does)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=_tls(settings),
        runtime=runtime,
        data_converter=data_converter(keyring, strict=strict),
        interceptors=temporal_interceptors(),  # a worker on this client inherits them
    )


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register Lucy's search attributes on the client's namespace; returns the ones added.

    Workflows upsert ``LucyStatus`` and friends; on a namespace without them every workflow
    task would fail, so the worker makes sure they exist at start-up. On Temporal Cloud, where
    API keys usually may not add attributes, create them once with ``tcld`` or the UI instead.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    from lucy.contracts.ids import SEARCH_ATTRIBUTES

    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as err:  # the time-skipping test server can add but not list
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = [k.name for k in SEARCH_ATTRIBUTES if k.name not in known]
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing},
                )
            )
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return missing


def recurring_schedule(
    workflow: str,
    arg: object,
    *,
    schedule_id: str,
    task_queue: str,
    spec: ScheduleSpec,
    summary: str,
    catchup: timedelta,
) -> Schedule:
    """A schedule of Lucy's own that starts ``workflow`` on ``spec`` (run id ``<schedule_id>-run``):
    a slow run is never doubled up, a run missed while the cluster was down is replayed only
    within ``catchup``, and its tasks wait behind everyone's (``PriorityKey.HOUSEKEEPING``)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow,
            arg,
            id=f"{schedule_id}-run",
            task_queue=task_queue,
            static_summary=summary,
            priority=HOUSEKEEPING_PRIORITY,
        ),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup),
    )


async def ensure_schedule(
    client: Client, schedule_id: str, schedule: Schedule, *, run_now: bool = False
) -> str:
    """Create ``schedule_id``, or replace its spec, action and policy if it exists, so every
    worker start converges on the same one; returns its id. ``run_now``: also trigger it at once
    (skipped by the overlap policy if a run is going)."""
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("schedule created", schedule_id=schedule_id)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
        log.info("schedule updated", schedule_id=schedule_id)
    if run_now:
        await client.get_schedule_handle(schedule_id).trigger()
    return schedule_id
