"""Alert rules: the YAML file an analyst reads and edits (DW_RULES), validated into ``Rule``s.

A malformed file is refused with the file, the line and the reason (``RuleError``), so the
worker stops at boot rather than at the first message. See ``alerts/rules.yaml`` for the
format, commented.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.errors import RuleError

#: disposal classes (the same closed set as streams.reference.DISPOSAL_CLASSES; a test keeps them equal)
DISPOSAL_CLASSES = (
    "charge",
    "caution",
    "penalty-notice",
    "drugs-warning",
    "community-resolution",
    "diversion",
    "no-further-action",
    "other",
    "pending",
)
OUT_OF_COURT = ("caution", "penalty-notice", "drugs-warning", "community-resolution")

Measure = Literal["count", "rate", "spike", "peer", "case"]
Severity = Literal["low", "medium", "high", "critical"]
_WINDOW = re.compile(r"^([1-9][0-9]{0,3})d$")


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    description: str = Field(min_length=1)
    severity: Severity
    category: tuple[str, ...] = Field(min_length=1)
    forces: Literal["all"] | tuple[str, ...] = "all"
    domestic_abuse: bool | None = None
    disposals: tuple[str, ...] = OUT_OF_COURT
    measure: Measure
    #: "<N>d"; case rules: how long a breach keeps the alert firing (default 28d)
    window: str | None = None
    threshold: float | None = None
    min_volume: int = Field(default=0, ge=0)
    #: peer rules: 1.96 (95%) or 3.09 (99.8%) standard deviations
    z: float | None = Field(default=None, gt=0)
    overdispersion: bool = False

    @field_validator("disposals")
    @classmethod
    def _known_disposals(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in v if d not in DISPOSAL_CLASSES]
        if bad:
            raise ValueError(f"unknown disposal class {', '.join(bad)}; one of {', '.join(DISPOSAL_CLASSES)}")
        if not v:
            raise ValueError("disposals must not be empty")
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None and not _WINDOW.match(v):
            raise ValueError(f"window must be a number of days like 28d, not {v!r}")
        return v

    @model_validator(mode="after")
    def _parameters_of_the_measure(self) -> Rule:
        need: dict[str, tuple[str, ...]] = {
            "count": ("window", "threshold"),
            "rate": ("window", "threshold"),
            "spike": ("window", "threshold"),
            "peer": ("window", "z"),
            "case": (),
        }
        missing = [p for p in need[self.measure] if getattr(self, p) is None]
        if missing:
            raise ValueError(f"a {self.measure} rule needs {' and '.join(missing)}")
        if self.measure == "rate" and self.threshold is not None and not 0 < self.threshold <= 1:
            raise ValueError("a rate threshold is a share between 0 and 1")
        return self

    @property
    def window_days(self) -> int:
        return int((self.window or "28d")[:-1])


def _lines(text: str) -> tuple[list[int], list[dict[str, int]]]:
    """Line (1-based) of each rule, and of each field within it, from the YAML node tree."""
    root = yaml.compose(text)
    rule_lines: list[int] = []
    field_lines: list[dict[str, int]] = []
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "rules" and isinstance(value, yaml.SequenceNode):
                for item in value.value:
                    rule_lines.append(item.start_mark.line + 1)
                    fields = {}
                    if isinstance(item, yaml.MappingNode):
                        fields = {k.value: v.start_mark.line + 1 for k, v in item.value}
                    field_lines.append(fields)
    return rule_lines, field_lines


def load_rules(path: Path, *, known_forces: Collection[str] | None = None) -> list[Rule]:
    """Read and validate a rules file; ``RuleError`` gives the file, line and reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        doc = yaml.safe_load(text)
        rule_lines, field_lines = _lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise RuleError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{path}:1: the top level must be a mapping with a 'rules:' list")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(doc["rules"]):
        line = rule_lines[i] if i < len(rule_lines) else 1
        if not isinstance(raw, dict):
            raise RuleError(f"{path}:{line}: rule #{i + 1} must be a mapping of fields")
        try:
            rule = Rule.model_validate(_tuples(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else ""
            at = field_lines[i].get(field, line) if i < len(field_lines) else line
            name = raw.get("id", f"#{i + 1}")
            where = f" field {field!r}" if field else ""
            raise RuleError(f"{path}:{at}: rule {name}{where}: {err['msg']}") from None
        if rule.id in seen:
            raise RuleError(
                f"{path}:{line}: rule id {rule.id!r} is used twice (first on line {seen[rule.id]})"
            )
        seen[rule.id] = line
        if known_forces is not None and rule.forces != "all":
            bad = [f for f in rule.forces if f not in known_forces]
            if bad:
                at = field_lines[i].get("forces", line)
                raise RuleError(f"{path}:{at}: rule {rule.id}: unknown force id {', '.join(bad)}")
        rules.append(rule)
    return rules


def rules_fingerprint(rules: Sequence[Rule]) -> str:
    """Identifies a set of rules: the workers that evaluate together must all hold the same."""
    doc = json.dumps([r.model_dump(mode="json") for r in rules], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _tuples(raw: dict[str, Any]) -> dict[str, Any]:
    """YAML lists -> tuples (the model is frozen); a single string stays a string."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
