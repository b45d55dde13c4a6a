"""The browser's way out in docker-compose.yml: CamoFox sits on internal networks and reaches the
internet only through the egress proxy (Debian's squid with docker/egress-proxy/squid.conf),
which refuses internal destinations on every connection. The compose file is checked by reading
it (no Docker engine here); the proxy's config is checked by running the real squid with it."""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
SQUID_CONF = ROOT / "docker" / "egress-proxy" / "squid.conf"
SQUID = shutil.which("squid") or shutil.which("squid", path="/usr/sbin:/sbin")
PROXY = "egress-proxy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _networks(compose: dict, service: str) -> set[str]:
    return set(compose["services"][service].get("networks", []))


def _internal(compose: dict, network: str) -> bool:
    return (compose["networks"][network] or {}).get("internal") is True


def test_the_browser_reaches_the_internet_only_through_the_egress_proxy(compose: dict):
    services = compose["services"]
    assert _networks(compose, "camofox") and all(_internal(compose, n) for n in _networks(compose, "camofox"))
    # On the browser's network with CamoFox: the proxy alone. The only other neighbour with a
    # way out is the worker, on the API network (next test); neither forwards packets.
    (browser,) = _networks(compose, "camofox") & _networks(compose, PROXY)
    assert {name for name in services if browser in _networks(compose, name)} == {"camofox", PROXY}
    neighbours = {
        name
        for name in services
        if name != "camofox" and _networks(compose, name) & _networks(compose, "camofox")
    }
    assert {
        name for name in neighbours if not all(_internal(compose, n) for n in _networks(compose, name))
    } == {
        PROXY,
        "lucy-worker",
    }
    # The proxy's own way out is a network of its own: it cannot reach the backend or the worker.
    (outside,) = [n for n in _networks(compose, PROXY) if not _internal(compose, n)]
    assert {name for name in services if outside in _networks(compose, name)} == {PROXY}
    assert "backend" not in _networks(compose, PROXY)
    # CamoFox's browser is configured to use it (camofox-browser reads PROXY_HOST / PROXY_PORT).
    env = services["camofox"]["environment"]
    assert env["PROXY_HOST"] == PROXY and env["PROXY_PORT"] == "3128"
    assert "http_port 3128" in SQUID_CONF.read_text().splitlines()
    assert services["camofox"]["depends_on"][PROXY]["condition"] == "service_started"
    # Anonymised crash reports would carry page URLs out to a third party.
    assert env["CAMOFOX_CRASH_REPORT_ENABLED"] == "false"
    proxy = services[PROXY]
    assert proxy["build"]["context"] == "docker/egress-proxy" and not proxy.get("ports")


def test_the_worker_reaches_the_browser_api_but_not_the_browsers_network(compose: dict):
    """The worker calls CamoFox's HTTP API over a network with nobody else on it. Through it,
    CamoFox's process could reach the worker's own ports only: a page cannot (its traffic goes to
    the proxy, which is not on that network and refuses private addresses), and neither container
    routes packets on to its other networks."""
    worker, camofox = _networks(compose, "lucy-worker"), _networks(compose, "camofox")
    shared = worker & camofox
    assert len(shared) == 1, shared
    (api,) = shared
    assert _internal(compose, api)
    assert {name for name in compose["services"] if api in _networks(compose, name)} == {
        "lucy-worker",
        "camofox",
    }
    assert worker == {"backend", "egress", api}  # not the browser's network, nothing shared with the proxy
    assert compose["services"]["lucy-worker"]["environment"]["LUCY_CAMOFOX_URL"] == "http://camofox:9377"


# ---- the proxy itself: Debian's squid, run with the shipped config on loopback

# Deployment-only lines the test replaces: its own port, and logs in files the test can read.
# Every ACL and http_access rule is the shipped file's, untouched.
DEPLOYMENT_LINES = ("http_port 3128", "access_log stdio:/dev/stdout", "cache_log stdio:/dev/stderr")
# Names the test's squid resolves from its own hosts file, as a hostile DNS server would answer.
HOSTS = "127.0.0.1 rebind.test\n198.51.100.7 mixed.test\n10.1.2.3 mixed.test\n"


class LoopbackServer(ThreadingHTTPServer):
    hits = 0


class _Secret(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, LoopbackServer)
        self.server.hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"internal-only secret")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer(("127.0.0.1", 0), _Secret)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _test_config(workdir: Path, port: int, loopback_port: int) -> str:
    lines = SQUID_CONF.read_text().splitlines()
    replacements = {
        "http_port 3128": f"http_port 127.0.0.1:{port}",
        "access_log stdio:/dev/stdout": f"access_log stdio:{workdir}/access.log",
        "cache_log stdio:/dev/stderr": f"cache_log {workdir}/cache.log",
    }
    for line in DEPLOYMENT_LINES:
        assert lines.count(line) == 1, f"squid.conf should have the line {line!r} once"
    lines = [replacements.get(line, line) for line in lines]
    # The loopback server's port joins the web's ports, so what refuses it is the destination.
    extra = [
        f"acl web_ports port {loopback_port}",
        f"hosts_file {workdir}/hosts",
        "connect_timeout 3 seconds",
    ]
    return "\n".join([*lines, *extra, ""])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logs = [(workdir / n).read_text() for n in ("stderr", "cache.log") if (workdir / n).exists()]
            pytest.fail(f"squid exited with {proc.returncode}: {''.join(logs)[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail("squid did not listen within 30 s")


@pytest.fixture(scope="module")
def squid_proxy(loopback_server: LoopbackServer) -> Iterator[tuple[int, Path]]:
    if SQUID is None:
        pytest.skip("squid is not installed (`apt-get install squid`; python3 run.py test does it as root)")
    # Not under pytest's tmp_path (0700): squid started as root writes its logs as the proxy user.
    with tempfile.TemporaryDirectory(prefix="lucy-squid-") as name:
        workdir = Path(name)
        workdir.chmod(0o777)
        (workdir / "hosts").write_text(HOSTS)
        port = _free_port()
        (workdir / "squid.conf").write_text(_test_config(workdir, port, loopback_server.server_address[1]))
        with (workdir / "stderr").open("wb") as stderr:
            proc = subprocess.Popen(
                [SQUID, "-N", "-f", str(workdir / "squid.conf")], stdout=stderr, stderr=stderr
            )
            try:
                _wait_for_port(port, proc, workdir)
                yield port, workdir
            finally:
                proc.terminate()
                proc.wait(timeout=30)


def _through_proxy(port: int, method: str, target: str) -> tuple[int, str, bytes]:
    """(status, X-Squid-Error, body) of one request sent to the proxy as a browser sends it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, target, headers={"Host": target.split("/")[2] if "//" in target else target})
        response = conn.getresponse()
        return response.status, response.getheader("X-Squid-Error", ""), response.read()
    finally:
        conn.close()


def test_the_shipped_config_parses():
    if SQUID is None:
        pytest.skip("squid is not installed (`apt-get install squid`)")
    done = subprocess.run([SQUID, "-k", "parse", "-f", str(SQUID_CONF)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FATAL" not in done.stderr and "ERROR" not in done.stderr


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{loopback}/",  # the page's iframe to a service on the proxy's own host
        "http://localhost:{loopback}/",
        "http://rebind.test:{loopback}/",  # a name that resolves to loopback
        "http://mixed.test/",  # one public and one private address: refused
        "http://[::1]:{loopback}/",
        "http://[::ffff:127.0.0.1]:{loopback}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/latest/meta-data/",
        "http://10.0.0.1/",
        "http://172.17.0.1/",
        "http://192.168.1.1/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://0.0.0.0:{loopback}/",
    ],
)
def test_the_proxy_refuses_internal_destinations(
    squid_proxy: tuple[int, Path], loopback_server: LoopbackServer, target: str
):
    port, _ = squid_proxy
    hits = loopback_server.hits
    status, error, body = _through_proxy(
        port, "GET", target.format(loopback=loopback_server.server_address[1])
    )
    assert (status, error.split()[0]) == (403, "ERR_ACCESS_DENIED")
    assert b"internal-only secret" not in body and loopback_server.hits == hits


@pytest.mark.parametrize(
    "target", ["127.0.0.1:443", "169.254.169.254:443", "rebind.test:443", "198.51.100.7:22"]
)
def test_the_proxy_refuses_tunnels_inside_or_off_the_web_ports(squid_proxy: tuple[int, Path], target: str):
    status, error, _ = _through_proxy(squid_proxy[0], "CONNECT", target)
    assert (status, error.split()[0]) == (403, "ERR_ACCESS_DENIED")


def test_the_proxy_lets_public_destinations_through_on_the_web_ports(squid_proxy: tuple[int, Path]):
    """No internet here: a public address on port 80 is not refused by the rules (squid goes to
    it, whatever then answers or fails), the same address on another port is."""
    port, workdir = squid_proxy
    _status, error, _ = _through_proxy(port, "GET", "http://198.51.100.7/")
    assert not error.startswith("ERR_ACCESS_DENIED")
    status, error, _ = _through_proxy(port, "GET", "http://198.51.100.7:8080/")
    assert (status, error.split()[0]) == (403, "ERR_ACCESS_DENIED")
    (allowed,) = _logged(workdir, " http://198.51.100.7/ ")
    assert "TCP_DENIED" not in allowed and "HIER_DIRECT/198.51.100.7" in allowed
    (refused,) = _logged(workdir, " http://198.51.100.7:8080/ ")
    assert "TCP_DENIED/403" in refused


def _logged(workdir: Path, needle: str) -> list[str]:
    """The access log's lines holding ``needle``, once squid has written them (it buffers)."""
    deadline = time.monotonic() + 10
    while True:
        log = (workdir / "access.log").read_text() if (workdir / "access.log").exists() else ""
        lines = [line for line in log.splitlines() if needle in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)
