"""ops/: the alert rules and the dashboard ask only for series Lucy and the Temporal SDK really
export (Lucy's registry, and a live SDK runtime's scrape), every rule has a runbook section in
docs/operations.md, and promtool accepts the rules, passes their unit tests on synthetic series
and accepts the scrape config."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import lucy.metrics
from app.devservers import free_port
from lucy.temporal import metrics_runtime
from tests.conftest import eventually

ROOT = Path(__file__).resolve().parent.parent
OPS = ROOT / "ops"
METRIC = re.compile(r"\b((?:lucy|temporal)_[a-z0-9_]+)\b")
BY = re.compile(r"\bby \(([^)]*)\)")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)


def _rules() -> list[dict]:
    groups = yaml.safe_load((OPS / "prometheus" / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((OPS / "grafana" / "dashboards" / "lucy.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def _lucy_series() -> dict[str, set[str]]:
    """{series name: label names} for every metric in Lucy's registry (lucy.metrics)."""
    series: dict[str, set[str]] = {}
    for value in vars(lucy.metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        name, labels, kind = value._name, set(value._labelnames), value._type
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(kind, [""])
        for suffix in suffixes:
            series[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


@workflow.defn(name="ObsOneActivity")
class OneActivity:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            "obs.noop", start_to_close_timeout=timedelta(seconds=10), result_type=str
        )


@workflow.defn(name="ObsFailingTask")
class FailingTask:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a workflow task failure, as a nondeterminism error would be")


@activity.defn(name="obs.noop")
async def noop() -> str:
    return "ok"


def _scraped_series(text: str) -> dict[str, set[str]]:
    series: dict[str, set[str]] = {}
    for line in text.splitlines():
        found = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ", line)
        if found:
            labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', found[2] or ""))
            series.setdefault(found[1], set()).update(labels)
    return series


@pytest.fixture(scope="module")
async def sdk_series(temporal_env: WorkflowEnvironment) -> dict[str, set[str]]:
    """What a real Temporal SDK runtime serves after a workflow with an activity, and a workflow
    whose task fails (so the failure counter exists)."""
    port = free_port()
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace=temporal_env.client.namespace,
        runtime=metrics_runtime(port),
    )
    queue = f"obs-metrics-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[OneActivity, FailingTask],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await client.execute_workflow(OneActivity.run, id=f"{queue}-ok", task_queue=queue)
        failing = await client.start_workflow(FailingTask.run, id=f"{queue}-fail", task_queue=queue)

        async def failed() -> str | None:
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            return text if "temporal_workflow_task_execution_failed" in text else None

        text = await eventually(failed, "a workflow task failure counted", timeout=30)
        await failing.terminate()
    return _scraped_series(text)


def test_rules_and_dashboard_use_only_series_that_exist(sdk_series: dict[str, set[str]]):
    exported = {**_lucy_series(), **sdk_series, "up": {"job", "instance"}}
    exprs = [rule["expr"] for rule in _rules()] + _dashboard_exprs()
    assert len(exprs) > 20
    problems = []
    for expr in exprs:
        names = set(METRIC.findall(expr))
        for name in names - set(exported):
            problems.append(f"{name} is not exported ({expr.split()[0]}...)")
        labels = {label.strip() for group in BY.findall(expr) for label in group.split(",")}
        known = set().union(*(exported.get(n, set()) for n in names))
        for label in labels - known - {"le"}:
            problems.append(f"label {label} is on none of {sorted(names)}")
    assert not problems, problems
    # The series the issue names are among them.
    assert "temporal_workflow_task_schedule_to_start_latency_bucket" in sdk_series
    assert "failure_reason" in sdk_series["temporal_workflow_task_execution_failed"]


def test_every_rule_has_a_runbook_section_and_a_severity():
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in (ROOT / "docs" / "operations.md").read_text().splitlines()
        if line.startswith("## ")
    }
    rules = _rules()
    assert {rule["alert"] for rule in rules} >= {
        "LucySlackEventErrors",
        "LucyLlmFallbackInUse",
        "LucyDatabaseDown",
        "LucyTaskQueueBacklog",
        "LucyWorkflowTaskFailures",
        "LucyApprovalsPendingLong",
        "LucyRefusalsSpike",
    }
    for rule in rules:
        runbook = rule["annotations"]["runbook"]
        anchor = re.match(r"docs/operations\.md#([a-z0-9-]+)", runbook)
        assert anchor and anchor[1] in headings, (rule["alert"], runbook, sorted(headings))
        assert rule["labels"]["severity"] in ("page", "warn")
    tests = yaml.safe_load((OPS / "prometheus" / "alerts.test.yml").read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case.get("exp_alerts")}
    assert tested == {rule["alert"] for rule in rules}, "every rule has a unit test where it fires"


@needs_promtool
def test_promtool_checks_the_rules_and_the_config():
    for args in (
        ["check", "rules", "alerts.yml"],
        ["check", "config", "--syntax-only", "prometheus.yml"],
    ):
        done = subprocess.run([PROMTOOL, *args], cwd=OPS / "prometheus", capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_rules_pass():
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts.test.yml"], cwd=OPS / "prometheus", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
