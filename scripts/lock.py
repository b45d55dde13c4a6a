#!/usr/bin/env python3
"""Write the hashed lock files from pyproject.toml's pins (run after editing a pin; commit all three).

    python3 scripts/lock.py                           # keep every other pin, re-resolve what changed
    python3 scripts/lock.py --upgrade-package idna    # move one transitive dependency to its newest
    python3 scripts/lock.py --upgrade                 # move every transitive dependency to its newest

Extra arguments go to ``uv pip compile``. It writes, resolved from PyPI for CPython 3.11+ on every
platform (``--universal``) with every published artifact's sha256 of each pinned version:

* ``requirements-dev.lock``: Lucy's dependencies with the ``dev`` and ``local`` extras
  (what ``python3 run.py`` installs);
* ``requirements.lock``: Lucy's runtime dependencies only (what the Dockerfile installs), constrained
  to the dev lock so the image runs exactly the versions the tests ran;
* ``requirements-bootstrap.lock``: the installer alone, uv at the ``dev`` extra's pin. ``run.py`` and
  the Dockerfile install it first with whatever pip the interpreter has (one wheel, ``--no-deps``),
  then let it sync the venv to a lock, so no pip's resolver ever reads the big locks.

Both also lock ``[build-system] requires`` (setuptools, wheel): Lucy itself is then installed with
``--no-deps --no-build-isolation``, so no install fetches anything that is not hash-checked.

The lock tool is uv, pinned in the ``dev`` extra (so ``.venv/bin/uv`` after ``python3 run.py test``);
a ``uv`` on PATH is used otherwise. Stdlib only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INDEX = "https://pypi.org/simple"
DEV_LOCK = "requirements-dev.lock"
RUNTIME_LOCK = "requirements.lock"
BOOTSTRAP_LOCK = "requirements-bootstrap.lock"
COMMAND = "python3 scripts/lock.py"
NOTE = (
    "# The complete set: install it as it is, resolving nothing (uv pip sync --require-hashes\n"
    "# --only-binary :all: {lock}, or pip install --no-deps --require-hashes ...; see run.py).\n"
    "# setuptools and wheel are pyproject.toml's [build-system] requires: Lucy itself is installed\n"
    "# with --no-deps --no-build-isolation, so its build fetches nothing unhashed either.\n"
)
BOOTSTRAP_NOTE = (
    "# The installer alone, installed first by any pip: pip install --require-hashes --no-deps\n"
    "# --only-binary :all: -r {lock}. It must match the dev extra's uv pin (run.py checks).\n"
)


def _uv() -> str:
    for candidate in (ROOT / ".venv" / "bin" / "uv", Path(sys.executable).parent / "uv"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("uv")
    if found:
        return found
    sys.exit(
        "scripts/lock.py: uv not found; run `python3 run.py test` once before editing pyproject.toml "
        "(it installs uv into .venv), or `pip install uv==<the dev extra's pin>`"
    )


def _compile(
    uv: str, output: str, sources: list[str], stdin: list[str], args: list[str], note: str = NOTE
) -> None:
    command = [
        uv,
        "pip",
        "compile",
        "--no-config",
        "--default-index",
        INDEX,
        "--universal",
        "--python-version",
        "3.11",
        "--generate-hashes",
        "--custom-compile-command",
        COMMAND,
        "--quiet",
        *sources,
        "-",  # stdin: [build-system] requires, or the bootstrap's one pin
        "-o",
        output,
        *args,
    ]
    subprocess.run(command, input="\n".join(stdin) + "\n", text=True, check=True, cwd=ROOT)
    path = ROOT / output
    text = path.read_text()
    # The runtime lock is constrained to the dev lock; that is not a reason a package is there.
    text = re.sub(rf"\n    #   -c {re.escape(DEV_LOCK)}(?=\n)", "", text)
    text = re.sub(r"\n    # via -c " + re.escape(DEV_LOCK) + r"(?=\n)", "", text)
    text = re.sub(r"\n    # via\n    #   ([^\n]+)(?=\n(?!    #   ))", r"\n    # via \1", text)
    header_end = text.index("\n", text.index(COMMAND)) + 1
    path.write_text(text[:header_end] + note.format(lock=output) + text[header_end:])


def main(args: list[str]) -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build_requires = list(pyproject["build-system"]["requires"])
    uv = _uv()
    dev = ["pyproject.toml"]
    _compile(uv, DEV_LOCK, dev, build_requires, ["--extra", "dev", "--extra", "local", *args])
    _compile(uv, RUNTIME_LOCK, dev, build_requires, ["-c", DEV_LOCK, *args])
    uv_pin = next(r for r in pyproject["project"]["optional-dependencies"]["dev"] if r.startswith("uv=="))
    _compile(uv, BOOTSTRAP_LOCK, [], [uv_pin], [], BOOTSTRAP_NOTE)
    print(
        f"scripts/lock.py: wrote {DEV_LOCK}, {RUNTIME_LOCK} and {BOOTSTRAP_LOCK}; "
        "commit them with pyproject.toml"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
