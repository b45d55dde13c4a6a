"""deploy/k8s, checked offline: each overlay rendered (``kubectl kustomize`` when kubectl is on PATH,
else the base and the overlay's settings read as plain manifests), every resource validated with
kubernetes-validate against a named Kubernetes version, and the policy facts the manifests promise
(probes, limits, non-root, secrets only by secretKeyRef, NetworkPolicies) asserted on the result."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from app.cli import build_parser
from lucy.contracts.queues import ALL_ROLES, QueueRole, parse_roles
from lucy.crypto import KeyRing
from lucy.production import settings_problems
from lucy.settings import _GROUPS, ENV_PREFIX, all_variable_names, load_settings

ROOT = Path(__file__).parent.parent
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31.0"
OVERLAYS = ("dev", "production")
LUCY_ROLES = ("ingress", "worker", "migrate")
# Every LUCY_* setting typed SecretStr: these may come only from the Secret.
SECRETS = frozenset(
    f"{ENV_PREFIX}{name.upper()}"
    for group in _GROUPS.values()
    for name, field in group.model_fields.items()
    if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
)
# What a literal secret looks like: Slack tokens, API keys, webhook secrets, a password in a URL.
LITERAL_SECRET = re.compile(r"xox[abpr]-|xapp-|sk-[A-Za-z0-9-]{8,}|whsec_|://[^/\s:@]+:[^@\s]+@")
PRIVATE = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"}


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _plain(overlay: str) -> list[dict[str, Any]]:
    """No kubectl: the base's resources as written, with its lucy-config merged with the overlay's
    literals (patches not applied; the kubectl path checks them)."""
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    over = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    docs = [doc for name in base["resources"] for doc in _load(K8S / "base" / name)]
    literals = [*base["configMapGenerator"][0]["literals"], *over["configMapGenerator"][0]["literals"]]
    data = dict(line.split("=", 1) for line in literals)
    docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lucy-config"}, "data": data})
    for doc in docs:
        doc["metadata"]["namespace"] = over["namespace"]
    return docs


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    overlay = request.param
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return _plain(overlay)
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _pods(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc["spec"]["template"] for doc in docs if doc["kind"] in ("Deployment", "Job")]


def _containers(docs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(pod, c) for pod in _pods(docs) for c in pod["spec"]["containers"]]


def _role(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"]["app.kubernetes.io/component"])


def secret_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Every way a secret could be in the manifests rather than in a Kubernetes Secret."""
    problems = [f"Secret {d['metadata']['name']} is in the manifests" for d in _of(docs, "Secret")]
    for cm in _of(docs, "ConfigMap"):
        problems += [f"ConfigMap holds {k}" for k in cm.get("data", {}) if k in SECRETS]
    for _pod, container in _containers(docs):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if env["name"] in SECRETS and (ref is None or ref["key"] != env["name"]):
                problems.append(f"{container['name']}: {env['name']} is not a secretKeyRef of its own name")
    literal = LITERAL_SECRET.search(yaml.safe_dump_all(docs))
    if literal:
        problems.append(f"a literal secret: {literal.group(0)[:8]}...")
    return problems


def test_every_resource_validates_against_kubernetes(rendered: list[dict[str, Any]]):
    kinds = {doc["kind"] for doc in rendered}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job"} <= kinds
    assert {"NetworkPolicy", "ConfigMap", "ServiceAccount"} <= kinds
    for doc in rendered:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_catches_a_broken_manifest(rendered: list[dict[str, Any]]):
    broken = next(d for d in rendered if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(broken))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_container_has_probes_limits_and_runs_as_non_root(rendered: list[dict[str, Any]]):
    for pod, container in _containers(rendered):
        name = container["name"]
        if pod["spec"].get("restartPolicy") != "Never":  # a Job's pod ends: no probes
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, (name, probe)
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        security = {**pod["spec"].get("securityContext", {}), **container.get("securityContext", {})}
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0, name
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
        assert pod["spec"]["automountServiceAccountToken"] is False, name
        if _role(pod) in LUCY_ROLES:
            assert security["readOnlyRootFilesystem"] is True, name


def test_lucy_roles_run_one_image_with_real_cli_commands(rendered: list[dict[str, Any]]):
    lucy = [(p, c) for p, c in _containers(rendered) if _role(p) in LUCY_ROLES]
    assert {_role(p) for p, _ in lucy} == set(LUCY_ROLES)
    assert len({c["image"] for _, c in lucy}) == 1, "one image (the Dockerfile's) for every role"
    parser = build_parser()
    for pod, container in lucy:
        command = container["command"]
        steps = command[2].split(" && ") if command[:2] == ["sh", "-c"] else [" ".join(command)]
        for step in steps:
            words = step.split()
            assert words[0] == "lucy", step
            parser.parse_args(words[1:])  # exits (fails the test) on a command the CLI lacks
        if _role(pod) == "ingress":
            port = int(command[command.index("--port") + 1])
            assert container["ports"][0]["containerPort"] == port
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["path"] == "/health"
    assert any(step.startswith("lucy db upgrade") for _, c in lucy for step in c["command"])


def test_ingress_has_service_autoscaler_and_disruption_budget(rendered: list[dict[str, Any]]):
    (deployment,) = [d for d in _of(rendered, "Deployment") if d["metadata"]["name"] == "lucy-ingress"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (service,) = [s for s in _of(rendered, "Service") if s["metadata"]["name"] == "lucy-ingress"]
    assert service["spec"]["selector"].items() <= labels.items()
    (hpa,) = _of(rendered, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "lucy-ingress"
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    budgets = [
        p
        for p in _of(rendered, "PodDisruptionBudget")
        if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(budgets) == 1


def _workers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The worker Deployments by their queue role label."""
    workers = [d for d in _of(docs, "Deployment") if _role(d["spec"]["template"]) == "worker"]
    return {d["spec"]["template"]["metadata"]["labels"]["lucy.dev/queue-role"]: d for d in workers}


def test_one_worker_deployment_per_queue_role(rendered: list[dict[str, Any]]):
    workers = _workers(rendered)
    assert sorted(workers) == sorted(ALL_ROLES)
    (config,) = _of(rendered, "ConfigMap")
    assert config["data"]["LUCY_TEMPORAL_TASK_QUEUE"] == "lucy-tasks"  # the roles' queues derive from it
    budgets = _of(rendered, "PodDisruptionBudget")
    for role, worker in workers.items():
        assert worker["metadata"]["name"] == f"lucy-worker-{role}"
        (container,) = worker["spec"]["template"]["spec"]["containers"]
        args = build_parser().parse_args(container["command"][1:])
        assert (args.command, parse_roles(args.queues)) == ("worker", (QueueRole(role),)), container[
            "command"
        ]
        assert "LUCY_TEMPORAL_TASK_QUEUE" not in {e["name"] for e in container.get("env", [])}
        labels = worker["spec"]["template"]["metadata"]["labels"]
        assert [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()], role
    outside = {
        "LUCY_SLACK_BOT_TOKEN",
        "LUCY_OPENROUTER_API_KEY",
        "LUCY_OPENCLAW_API_KEY",
        "LUCY_COMPOSIO_API_KEY",
    }
    (workflows,) = workers["workflows"]["spec"]["template"]["spec"]["containers"]
    # it verifies who clicked (a local activity: Slack's users.info), and reaches nothing else outside
    assert outside & {e["name"] for e in workflows["env"]} == {"LUCY_SLACK_BOT_TOKEN"}


def test_secrets_come_only_from_secret_key_refs(rendered: list[dict[str, Any]]):
    assert {"LUCY_SLACK_BOT_TOKEN", "LUCY_DATABASE_URL", "LUCY_ENCRYPTION_KEYS"} <= SECRETS
    assert secret_problems(rendered) == []
    known = set(all_variable_names())
    for cm in _of(rendered, "ConfigMap"):
        assert set(cm["data"]) <= known, set(cm["data"]) - known
    for _pod, container in _containers(rendered):
        names = {e["name"] for e in container.get("env", []) if e["name"].startswith(ENV_PREFIX)}
        assert names <= known, names - known
    owner = [_role(p) for p, c in _containers(rendered) if "LUCY_DATABASE_MIGRATION_URL" in str(c.get("env"))]
    assert owner == ["migrate"], "the schema owner's URL is the migrations Job's only"


@pytest.mark.parametrize(
    "leak",
    [
        {"name": "LUCY_SLACK_BOT_TOKEN", "value": "not-from-a-secret"},
        {"name": "LUCY_OPENROUTER_API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "OTHER"}}},
        {"name": "SOMETHING", "value": "postgresql://lucy:hunter2@db/lucy"},
    ],
)
def test_secret_check_catches_a_leak(rendered: list[dict[str, Any]], leak: dict[str, Any]):
    docs = yaml.safe_load(yaml.safe_dump(rendered))
    _containers(docs)[0][1].setdefault("env", []).append(leak)
    assert secret_problems(docs)


def _settings_of(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The settings a container starts with, every required secret given a strong made-up value."""
    (config,) = _of(docs, "ConfigMap")
    env = dict(config["data"])
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if "value" in item:
            env[item["name"]] = item["value"]
        elif ref and not ref.get("optional"):
            env[item["name"]] = secrets.token_urlsafe(24)
    if "LUCY_ENCRYPTION_KEYS" in env:
        env["LUCY_ENCRYPTION_KEYS"] = KeyRing.new_key("k1")
    for url in ("LUCY_DATABASE_URL", "LUCY_DATABASE_MIGRATION_URL"):
        if url in env:
            env[url] = f"postgresql+asyncpg://lucy_app:{secrets.token_urlsafe(16)}@postgres:5432/lucy"
    return {name.removeprefix(ENV_PREFIX).lower(): value for name, value in env.items()}


def test_apps_pass_production_checks_with_only_the_required_secrets(rendered: list[dict[str, Any]]):
    for pod, container in _containers(rendered):
        role = _role(pod)
        if role not in ("ingress", "worker"):
            continue
        settings = load_settings(**_settings_of(rendered, container))
        assert not settings.core.is_development
        assert settings_problems(settings, role=role, http_ingress=role == "ingress") == [], role


def _policy(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [p for p in _of(docs, "NetworkPolicy") if p["metadata"]["name"] == name]
    return found["spec"]


def _egress_ports(spec: dict[str, Any]) -> set[int]:
    return {port["port"] for rule in spec.get("egress", []) for port in rule.get("ports", [])}


def _reach(docs: list[dict[str, Any]], deployment: dict[str, Any]) -> set[int]:
    """The ports a Deployment's pods may reach (DNS aside): every egress rule of every policy that
    selects them (NetworkPolicies add up)."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    ports: set[int] = set()
    for policy in _of(docs, "NetworkPolicy"):
        spec = policy["spec"]
        if (
            policy["metadata"]["name"] != "lucy-dns"
            and spec["podSelector"].get("matchLabels", {}).items() <= labels.items()
        ):
            ports |= _egress_ports(spec)
    return ports


def test_network_policies_deny_by_default_and_isolate_the_browser(rendered: list[dict[str, Any]]):
    deny = _policy(rendered, "default-deny")
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    # Each queue role's workers reach what its activities need and nothing else: the workflows
    # worker Temporal, PostgreSQL and Slack (who clicked); only the tools worker the gateway and
    # the browser.
    reach = {role: _reach(rendered, w) for role, w in _workers(rendered).items()}
    assert reach == {
        "workflows": {7233, 5432, 443},
        "llm": {7233, 5432, 443},
        "slack": {7233, 5432, 443},
        "tools": {7233, 5432, 443, 18791, 9377},
    }
    assert _egress_ports(_policy(rendered, "lucy-migrate")) == {5432}
    browser = _policy(rendered, "lucy-browser")
    (only,) = browser["ingress"]
    assert only["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "lucy",
                    "app.kubernetes.io/component": "worker",
                    "lucy.dev/queue-role": "tools",
                }
            }
        }
    ]
    assert _egress_ports(browser) == {80, 443}
    for rule in browser["egress"]:
        for peer in rule["to"]:
            assert set(peer) == {"ipBlock"}, "the browser reaches no pod, only public addresses"
            if peer["ipBlock"]["cidr"] == "0.0.0.0/0":
                assert PRIVATE <= set(peer["ipBlock"]["except"])
    for name in (
        "lucy-worker",
        "lucy-ingress",
        *(f"lucy-worker-{role}" for role in ("workflows", "llm", "slack", "tools")),
    ):
        for rule in _policy(rendered, name)["egress"]:
            for peer in rule["to"]:
                if peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0":
                    assert PRIVATE <= set(peer["ipBlock"]["except"]), name
