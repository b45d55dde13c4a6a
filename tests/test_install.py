"""[install] A fresh venv made with the oldest pip Lucy supports installs exactly the lock, even
when the index also offers a newer release of a locked package that another package asks for
through an extra (``weasyprint`` -> ``fonttools[woff]>=4.59.2`` was the case that broke set-up).

Hermetic: the index here is a directory of wheels this test builds, so no release on PyPI, next week
or ever, changes what it checks. Only the pinned, hash-checked bootstrap wheels come from PyPI: pip
22.3 (what Python 3.11.0 bundles, the oldest pip a supported interpreter ships) and the uv of
``requirements-bootstrap.lock``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Python 3.11.0's bundled pip: the oldest installer a fresh machine with a supported Python has.
OLDEST_PIP = (
    "pip==22.3 "
    "--hash=sha256:1daab4b8d3b97d1d763caeb01a4640a2250a0ea899e257b1e44b9eded91e15ab "
    "--hash=sha256:8182aec21dad6c0a49a2a3d121a87cd524b950e0b6092b181625f07ebdde7530\n"
)


def _run_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lucy_run_py_install", ROOT / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(directory: Path, name: str, version: str, metadata: list[str]) -> Path:
    """A minimal, valid pure-Python wheel (PEP 427) with the given extra METADATA lines."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *metadata, ""]
        ).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: lucy-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    wheel = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture(scope="module")
def universe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(index directory, lock). The lock pins probe-fonts 1.0; the index also has 1.1, newer, and
    probe-app asks for ``probe-fonts[woff]>=1.0``, as weasyprint asks for ``fonttools[woff]``."""
    index = tmp_path_factory.mktemp("index")
    extra = ["Provides-Extra: woff", 'Requires-Dist: probe-zip; extra == "woff"']
    locked = [
        build_wheel(index, "probe-app", "1.0", ["Requires-Dist: probe-fonts[woff]>=1.0"]),
        build_wheel(index, "probe-fonts", "1.0", extra),
        build_wheel(index, "probe-zip", "1.0", []),
    ]
    build_wheel(index, "probe-fonts", "1.1", extra)  # published "after the lock"
    lines = []
    for wheel in locked:
        name, version = wheel.name.split("-")[:2]
        lines.append(
            f"{name.replace('_', '-')}=={version} --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}"
        )
    lock = index.parent / "probe.lock"
    lock.write_text("\n".join(lines) + "\n")
    return index, lock


def _clean_env() -> dict[str, str]:
    """No pip or uv configuration from this machine: the index is only what the test names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV"))}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _oldest_pip_venv(directory: Path) -> Path:
    """A fresh venv whose pip is the oldest a supported interpreter bundles."""
    venv.EnvBuilder(with_pip=True).create(directory)
    python = directory / "bin" / "python"
    pins = directory / "oldest-pip.lock"
    pins.write_text(OLDEST_PIP)
    install = ["-m", "pip", "install", "-q", "--require-hashes", "--only-binary", ":all:", "--no-deps"]
    subprocess.run([str(python), *install, "-r", str(pins)], check=True, env=_clean_env())
    version = subprocess.run(
        [str(python), "-m", "pip", "--version"], check=True, capture_output=True, text=True
    ).stdout
    assert version.startswith("pip 22.3 "), version
    return python


def _installed(python: Path, name: str) -> str | None:
    probe = f"import importlib.metadata as m\ntry: print(m.version({name!r}))\nexcept m.PackageNotFoundError: print('-')"
    out = subprocess.run(
        [str(python), "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()
    return None if out == "-" else out


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="pip 22.3 predates Python 3.12")
def test_the_old_install_step_fails_on_an_extra_with_a_newer_release(universe, tmp_path: Path):
    """The control: the install step run.py had until [install] (the venv's pip reading the lock
    with --require-hashes) stops exactly as a fresh clone did, so this universe reproduces the bug."""
    index, lock = universe
    python = _oldest_pip_venv(tmp_path / "venv")
    old_step = ["-m", "pip", "install", "--require-hashes", "--only-binary", ":all:", "-r", str(lock)]
    result = subprocess.run(
        [str(python), *old_step, "--no-index", "--find-links", str(index)],
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    assert result.returncode != 0
    assert "must have their versions pinned with ==" in result.stderr
    assert "probe-fonts[woff]>=1.0" in result.stderr


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="pip 22.3 predates Python 3.12")
def test_run_py_installs_exactly_the_lock_with_the_oldest_pip(universe, tmp_path: Path, monkeypatch):
    """run.py's install path, from a venv with pip 22.3: the pinned uv goes in first, then the venv
    holds exactly the locked versions: probe-fonts 1.0 (not the newer 1.1) and the extra's probe-zip."""
    index, lock = universe
    python = _oldest_pip_venv(tmp_path / "venv")
    for key in [k for k in os.environ if k.startswith(("PIP_", "UV_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    _run_py().sync_lock(python, lock, ("--no-index", "--find-links", str(index)))
    assert _installed(python, "probe-app") == "1.0"
    assert _installed(python, "probe-fonts") == "1.0"
    assert _installed(python, "probe-zip") == "1.0"


def test_run_py_refuses_a_wheel_the_lock_has_no_hash_for(universe, tmp_path: Path, monkeypatch):
    """The sync checks hashes: a lock whose hash does not match the index's wheel installs nothing."""
    index, lock = universe
    tampered = tmp_path / "tampered.lock"
    tampered.write_text(
        re.sub(r"(probe-zip==1\.0 --hash=sha256:)[0-9a-f]{64}", r"\g<1>" + "0" * 64, lock.read_text())
    )
    assert tampered.read_text() != lock.read_text()
    venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(subprocess.CalledProcessError):
        _run_py().sync_lock(python, tampered, ("--no-index", "--find-links", str(index)))
    assert _installed(python, "probe-zip") is None
