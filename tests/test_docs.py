"""The documentation stays usable: a README a newcomer reads in minutes, every relative link and
anchor in README.md, CHANGELOG.md and docs/*.md resolving, and docs/design.md naming every
registered workflow, activity, search attribute and workflow patch (the public contracts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README_MAX_LINES = 400
CODE_DIRS = ("lucy", "workflows", "activities", "ingress", "app", "capabilities")

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def _documents() -> list[Path]:
    docs = sorted((ROOT / "docs").glob("*.md"))
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *docs]


def _prose(text: str) -> str:
    """The text without code blocks and code spans (a ``[a](b)`` inside code is no link)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(_prose(path.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{path.name}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{path.name}: {target} (no such heading)")
    return broken


def test_the_readme_is_short():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    assert path.exists(), path
    assert not broken_links(path)


def test_the_link_checker_sees_a_broken_link_and_a_missing_heading(tmp_path: Path):
    (tmp_path / "other.md").write_text("# Other\n\n## The `lucy dev` command\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](other.md#the-lucy-dev-command) [self](#page) `[code](nowhere.md)`\n"
        "[gone](missing.md) [bad anchor](other.md#nothing) [web](https://example.com/x)\n"
    )
    assert broken_links(page) == [
        "page.md: missing.md (no such file)",
        "page.md: other.md#nothing (no such heading)",
    ]


def _code() -> str:
    return "\n".join(
        p.read_text() for d in CODE_DIRS if (ROOT / d).is_dir() for p in sorted((ROOT / d).rglob("*.py"))
    )


def registered_names() -> set[str]:
    """Activity and workflow names, search attributes and patch ids as the code declares them."""
    code = _code()
    names = set(re.findall(r'activity\.defn\(name="([^"]+)"', code))
    names |= set(re.findall(r'_WORKFLOW_NAME = "([^"]+)"', code))
    names |= set(re.findall(r'SearchAttributeKey\.for_keyword\("([^"]+)"\)', code))
    names |= set(re.findall(r'^\w*PATCH\w* = "([^"]+)"', code, re.M))
    return names


def test_the_design_document_names_every_public_contract():
    names = registered_names()
    assert {"LucyTaskWorkflow", "llm.chat", "LucyWorkspace", "progress-plan"} <= names, names
    design = (ROOT / "docs" / "design.md").read_text()
    missing = sorted(n for n in names if f"`{n}`" not in design)
    assert not missing, f"docs/design.md does not name: {missing}"
