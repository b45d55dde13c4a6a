#!/usr/bin/env python3
"""One entry point for a fresh machine with only Python 3.11+.

Creates ``.venv`` (first time), installs Lucy's dev and local extras from the hashed lock file
``requirements-dev.lock`` (again only when ``pyproject.toml`` or a lock changed), then runs what
you asked for:

    python3 run.py dev        # lucy dev: PostgreSQL + Temporal + UI + worker + ingress
    python3 run.py test       # ruff, mypy, then the whole pytest suite
    python3 run.py lucy ...   # any other lucy command, e.g. `python3 run.py lucy db check`

Everything comes from the package registries; nothing downloads a binary at run or test time.
The install never depends on which pip the interpreter bundles, nor on what PyPI publishes after
the lock was written:

1. the venv's own pip (whatever version) installs only ``requirements-bootstrap.lock``: the
   installer, uv, pinned with the sha256 of every wheel, ``--no-deps`` (nothing to resolve);
2. that uv then *syncs* the venv to ``requirements-dev.lock``: exactly the locked set, every
   artifact hash-checked, wheels only, no resolution (so no extra such as ``fonttools[woff]`` can
   reach for a newer release);
3. Lucy itself goes in editable with ``--no-deps --no-build-isolation`` (its build backend is in
   the lock too).

A lock that disagrees with pyproject.toml's pins stops here: re-lock with
``python3 scripts/lock.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".lucy-install-stamp"
DEV_LOCK = ROOT / "requirements-dev.lock"  # what run.py installs: runtime + dev + local extras
BOOTSTRAP_LOCK = ROOT / "requirements-bootstrap.lock"  # the installer (uv), installed first
RUNTIME_LOCK = ROOT / "requirements.lock"  # what the Dockerfile installs: runtime only
LOCK_COMMAND = "python3 scripts/lock.py"


def _say(message: str) -> None:
    print(f"run.py: {message}", file=sys.stderr, flush=True)


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_text: str) -> dict[str, str]:
    """``{normalized name: version}`` of every ``name==version`` entry of a lock file."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", lock_text, flags=re.MULTILINE)
    return {_name(name): version for name, version in found}


def lock_problems(pyproject_text: str, lock_text: str, extras: tuple[str, ...]) -> list[str]:
    """How a lock disagrees with pyproject.toml: a direct ``==`` pin (of the dependencies, the given
    extras, or ``[build-system] requires``) locked at another version, or a requirement not locked."""
    import tomllib  # here, not on top: Python < 3.11 must reach ensure_installed's message

    pyproject = tomllib.loads(pyproject_text)
    project = pyproject["project"]
    wanted = [*project["dependencies"], *pyproject["build-system"]["requires"]]
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    locked = locked_versions(lock_text)
    problems = []
    for requirement in wanted:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)", requirement)
        if match is None:
            problems.append(f"cannot read {requirement!r}")
            continue
        name, spec = _name(match[1]), match[2].strip()
        if name == _name(project["name"]):  # "lucy[local]": an extra of Lucy itself
            continue
        if name not in locked:
            problems.append(f"{name} is not locked")
        elif spec.startswith("==") and spec[2:].strip() != locked[name]:
            problems.append(f"pyproject.toml pins {name}{spec}, the lock has {name}=={locked[name]}")
    return problems


def bootstrap_problems(pyproject_text: str, bootstrap_text: str) -> list[str]:
    """How the bootstrap lock disagrees with the ``uv`` the ``dev`` extra pins (one tool, one version)."""
    import tomllib

    dev = tomllib.loads(pyproject_text)["project"]["optional-dependencies"]["dev"]
    pinned = dict(locked_versions("\n".join(dev)))
    locked = locked_versions(bootstrap_text)
    if set(locked) != {"uv"}:
        return [f"it must lock uv alone, it locks {sorted(locked) or 'nothing'}"]
    if pinned.get("uv") != locked["uv"]:
        return [f"the dev extra pins uv=={pinned.get('uv')}, the bootstrap lock has uv=={locked['uv']}"]
    return []


def check_locks() -> None:
    pyproject_text = (ROOT / "pyproject.toml").read_text()
    checks = [
        (lock, lambda text, extras=extras: lock_problems(pyproject_text, text, extras))
        for lock, extras in ((DEV_LOCK, ("dev", "local")), (RUNTIME_LOCK, ()))
    ]
    checks.append((BOOTSTRAP_LOCK, lambda text: bootstrap_problems(pyproject_text, text)))
    for lock, problems_of in checks:
        if not lock.exists():
            sys.exit(f"run.py: {lock.name} is missing; write it with `{LOCK_COMMAND}`")
        problems = problems_of(lock.read_text())
        if problems:
            sys.exit(
                f"run.py: {lock.name} is stale ({'; '.join(problems)}); "
                f"re-lock with `{LOCK_COMMAND}` and commit it with pyproject.toml"
            )


def bootstrap_installer(python: Path) -> Path:
    """Install the pinned uv into the venv of ``python`` with whatever pip that venv has: one
    hash-checked wheel, ``--no-deps``, so even an old pip has nothing to resolve. Returns uv's path."""
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    hashed = ["--require-hashes", "--only-binary", ":all:", "--no-deps", "-r", str(BOOTSTRAP_LOCK)]
    subprocess.run([*pip, *hashed], check=True, cwd=ROOT)
    return python.parent / "uv"


def sync_lock(python: Path, lock: Path, index_args: tuple[str, ...] = ()) -> None:
    """Make the venv of ``python`` hold exactly ``lock``: uv installs the listed versions, checks each
    artifact's sha256, takes wheels only and resolves nothing (and removes what the lock does not
    list). ``index_args`` (for example ``--no-index --find-links DIR``) choose where wheels come from."""
    uv = bootstrap_installer(python)
    hashed = ["--require-hashes", "--only-binary", ":all:", *index_args, str(lock)]
    subprocess.run([str(uv), "pip", "sync", "-q", "--python", str(python), *hashed], check=True, cwd=ROOT)


def ensure_installed() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may be started by an older python3
        sys.exit("run.py: Lucy needs Python 3.11 or newer")
    check_locks()
    if not (BIN / "python").exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", BOOTSTRAP_LOCK, DEV_LOCK):
        wanted.update(hashlib.sha256(path.read_bytes()).digest())
    if STAMP.exists() and STAMP.read_text() == wanted.hexdigest() and (BIN / "lucy").exists():
        return
    _say(
        f"installing Lucy and its dependencies from {DEV_LOCK.name}, hash-checked "
        "(first run, or pyproject.toml or a lock changed)"
    )
    sync_lock(BIN / "python", DEV_LOCK)
    editable = ["--no-deps", "--no-build-isolation", "-e", str(ROOT)]
    subprocess.run(
        [str(BIN / "uv"), "pip", "install", "-q", "--python", str(BIN / "python"), *editable],
        check=True,
        cwd=ROOT,
    )
    STAMP.write_text(wanted.hexdigest())


def run(args: list[str]) -> int:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.call(args, cwd=ROOT, env=env)


def ensure_debian_tool(commands: tuple[str, ...], package: str, purpose: str) -> None:
    """A test drives a program from Debian (any of ``commands``, in ``package``): install it from
    the distribution's packages when it is missing and this user may (root with apt-get), saying
    so; otherwise say how, and ``purpose`` is skipped by its test."""
    import shutil

    command = commands[0]

    def found() -> bool:
        return any(shutil.which(c) or shutil.which(c, path="/usr/sbin:/sbin") for c in commands)

    if found():
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        _say(f"{command} is missing: installing it from Debian's packages (apt-get install {package})")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        apt = ["apt-get", "-q", "-y", "--no-install-recommends"]
        if subprocess.call([*apt, "install", package], env=env) != 0:
            subprocess.call(["apt-get", "-q", "update"], env=env)
            subprocess.call([*apt, "install", package], env=env)
        if found():
            return
    _say(f"{command} is missing, so {purpose} is skipped: `sudo apt-get install {package}`")


def test(extra: list[str]) -> int:
    # The console's browser test drives Chromium (LUCY_REQUIRE_BROWSER=1 makes it fail instead
    # of skipping); tests/test_egress_proxy.py runs squid with docker/egress-proxy/squid.conf.
    ensure_debian_tool(("chromium", "chromium-browser"), "chromium", "the console's browser test")
    ensure_debian_tool(("squid",), "squid", "the egress proxy's test")
    # tests/kernel/db/test_pgbouncer_store.py and tests/app/test_pgbouncer_task.py run the store
    # and a task through PgBouncer in transaction pooling mode (docs/postgres.md).
    ensure_debian_tool(("pgbouncer",), "pgbouncer", "the PgBouncer tests")
    steps = [
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "mypy")],
    ]
    if not extra:  # a plain `test` runs the linters too; `test -k x` goes straight to pytest
        for step in steps:
            _say(" ".join([Path(step[0]).name, *step[1:]]))
            code = run(step)
            if code:
                return code
    return run([str(BIN / "pytest"), *extra])


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    ensure_installed()
    command, rest = argv[0], argv[1:]
    if command == "test":
        return test(rest)
    if command == "dev":
        return run([str(BIN / "lucy"), "dev", *rest])
    if command == "lucy":
        return run([str(BIN / "lucy"), *rest])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
