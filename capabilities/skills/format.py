"""The ``SKILL.md`` format (the Agent Skills convention): YAML front matter between ``---``
lines, then Markdown instructions. Parsed with ``yaml.safe_load``, checked with pydantic; a file
that does not fit is refused with the reason, in plain words (:class:`SkillRefused`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lucy.contracts.llm import ModelTier

MAX_BODY_CHARS = 20_000  # of the instructions: a skill is read into the model's context whole
MAX_FILE_CHARS = 24_000
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")  # ``exec``, ``mcp__github__create_issue``
_FENCE = re.compile(r"^---[ \t]*$", re.MULTILINE)


class SkillRefused(ValueError):
    """A SKILL.md Lucy will not take; the message says why, in plain words."""


class FrontMatter(BaseModel):
    """The front matter Lucy reads; other keys (``license``, ``metadata``...) are kept in the
    file and ignored, so skills written for other agents load unchanged."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
    description: str = Field(min_length=1, max_length=1024)
    allowed_tools: list[str] | None = Field(default=None, alias="allowed-tools")
    model_tier: ModelTier | None = Field(default=None, alias="model-tier")

    @field_validator("allowed_tools", mode="before")
    @classmethod
    def _tool_list(cls, value: Any) -> Any:
        """A list, or a comma- or space-separated string (as some agents write it)."""
        if isinstance(value, str):
            return [t for t in re.split(r"[,\s]+", value) if t]
        return value

    @field_validator("allowed_tools")
    @classmethod
    def _tool_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not TOOL_NAME.match(name):
                raise ValueError(f"{name[:80]!r} is not a tool name")
        return value


@dataclass(frozen=True)
class Skill:
    """One parsed SKILL.md."""

    name: str
    description: str
    body: str
    allowed_tools: tuple[str, ...] | None
    model_tier: str | None
    source: str


_WORDS = {
    "name": "`name` must be lowercase letters, digits and hyphens, at most 64 characters",
    "description": "`description` must be text of 1 to 1,024 characters",
    "allowed-tools": "`allowed-tools` must be a list of tool names",
    "model-tier": "`model-tier` must be one of " + ", ".join(t.value for t in ModelTier),
}


def parse_skill(text: str) -> Skill:
    """The skill in ``text``, or :class:`SkillRefused` saying what is wrong."""
    source = text.replace("\r\n", "\n").strip()
    if len(source) > MAX_FILE_CHARS:
        raise SkillRefused(f"The file is too long ({len(source):,} characters; at most {MAX_FILE_CHARS:,}).")
    fences = list(_FENCE.finditer(source))
    if not fences or fences[0].start() != 0 or len(fences) < 2:
        raise SkillRefused(
            "A SKILL.md starts with YAML front matter between two `---` lines (with `name` and "
            "`description`), then the instructions."
        )
    raw, body = source[fences[0].end() : fences[1].start()], source[fences[1].end() :].strip()
    meta = _load_yaml(raw)
    try:
        front = FrontMatter.model_validate(meta)
    except ValidationError as exc:
        raise SkillRefused(_plain(exc)) from None
    if not body:
        raise SkillRefused("The skill has no instructions after the front matter.")
    if len(body) > MAX_BODY_CHARS:
        raise SkillRefused(
            f"The instructions are too long ({len(body):,} characters; at most {MAX_BODY_CHARS:,})."
        )
    return Skill(
        name=front.name,
        description=front.description.strip(),
        body=body,
        allowed_tools=tuple(dict.fromkeys(front.allowed_tools)) if front.allowed_tools is not None else None,
        model_tier=front.model_tier.value if front.model_tier else None,
        source=source,
    )


def _load_yaml(raw: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "it could not be read"
        raise SkillRefused(f"The front matter is not valid YAML{where}: {problem}.") from None
    if not isinstance(meta, dict):
        raise SkillRefused("The front matter must be YAML keys and values (`name: ...`, `description: ...`).")
    return meta


def _plain(exc: ValidationError) -> str:
    """The first problem of a failed validation, in plain words."""
    reasons = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "missing":
            reasons.append(f"`{field}` is missing")
        else:
            reasons.append(_WORDS.get(field, f"`{field}` is not valid"))
    return "The front matter is not valid: " + "; ".join(dict.fromkeys(reasons)) + "."
