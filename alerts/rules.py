"""Alert rules: the YAML file an analyst reads and edits (DW_RULES), validated into ``Rule``s.

A malformed file is refused with the file, the line and the reason (``RuleError``), so the
worker stops at boot rather than at the first message. See ``alerts/rules.yaml`` for the
format, commented.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts import strict_yaml
from alerts.errors import RuleError
from alerts.funnel import Method

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
_DAYS = re.compile(r"^([0-9]{1,4})d$")

#: days a firing alert stays firing after its condition cleared, unless the rule says otherwise
#: (case alerts: their window already keeps a breach for 28 days)
KEEP_FIRING_DAYS = {"count": 7, "rate": 7, "spike": 7, "peer": 7, "case": 0}


def nearest(name: str, known: Collection[str]) -> str:
    """ " (did you mean 'x'?)" for the closest known name, or nothing when none is close."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: the parameters each measure needs
_NEEDS: dict[str, tuple[str, ...]] = {
    "count": ("window", "threshold"),
    "rate": ("window", "threshold"),
    "spike": ("window", "threshold"),
    "peer": ("window", "z"),
    "case": (),
}


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

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
    #: peer rules: how the limits allow for forces differing by more than chance
    #: (``alerts.funnel``): none, multiplicative or additive; true means multiplicative
    overdispersion: Method = "none"
    #: rate and spike rules: the confidence the evidence needs (Wilson lower bound; Fisher test)
    confidence: float = Field(default=0.95, ge=0.5, lt=1)
    #: "<N>d": the condition must hold on evaluation days this far apart before the alert fires
    pending: str = Field(default="0d", alias="for")
    #: "<N>d": a firing alert resolves only once its resolve condition has held this long
    keep_firing_for: str | None = None
    #: count: the numerator below which a firing alert resolves (default: the threshold); rate:
    #: the share (default: the threshold); spike: the rise (default: half the threshold)
    resolve_below: float | None = Field(default=None, ge=0)
    #: peer: a firing alert resolves when the force is back under the limit at this z (default:
    #: 1.96, the 95% band, for rules that fire above it; half a standard deviation inside else)
    resolve_z: float | None = Field(default=None, ge=0)

    @field_validator("overdispersion", mode="before")
    @classmethod
    def _method(cls, v: object) -> object:
        if v is True:
            return "multiplicative"  # what true meant before there was a choice
        if v is False or v is None:
            return "none"
        return v

    @field_validator("disposals")
    @classmethod
    def _known_disposals(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for d in v:
            if d not in DISPOSAL_CLASSES:
                raise ValueError(
                    f"unknown disposal class {d!r}{nearest(d, DISPOSAL_CLASSES)}; "
                    f"one of {', '.join(DISPOSAL_CLASSES)}"
                )
        if not v:
            raise ValueError("disposals must not be empty")
        return v

    @field_validator("pending", "keep_firing_for")
    @classmethod
    def _days(cls, v: str | None) -> str | None:
        if v is not None and not _DAYS.match(v):
            raise ValueError(f"must be a number of days like 7d (0d: none), not {v!r}")
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None and not _WINDOW.match(v):
            raise ValueError(f"window must be a number of days like 28d, not {v!r}")
        return v

    @model_validator(mode="after")
    def _parameters_of_the_measure(self) -> Rule:
        """The measure's own parameters given, and no other measure's; then the resolve bands."""
        missing = [p for p in _NEEDS[self.measure] if getattr(self, p) is None]
        if missing:
            raise ValueError(f"a {self.measure} rule needs {' and '.join(missing)}")
        if self.measure == "rate" and self.threshold is not None and not 0 < self.threshold <= 1:
            raise ValueError("a rate threshold is a share between 0 and 1")
        if self.resolve_below is not None and self.measure not in ("count", "rate", "spike"):
            raise ValueError(f"resolve_below is for count, rate and spike rules, not {self.measure}")
        if self.resolve_z is not None and self.measure != "peer":
            raise ValueError("resolve_z is for peer rules")
        return self._resolve_bands()

    def _resolve_bands(self) -> Rule:
        """A band to resolve in must lie within the band to fire (or the alert would resolve
        while firing)."""
        if (
            self.resolve_below is not None
            and self.threshold is not None
            and self.resolve_below > self.threshold
        ):
            raise ValueError(
                "resolve_below must not be above the threshold (the alert would resolve while firing)"
            )
        if self.resolve_z is not None and self.z is not None and self.resolve_z > self.z:
            raise ValueError("resolve_z must not be above z")
        return self

    @property
    def window_days(self) -> int:
        return int((self.window or "28d")[:-1])

    @property
    def pending_days(self) -> int:
        return int(self.pending[:-1])

    @property
    def keep_firing_days(self) -> int:
        return int(self.keep_firing_for[:-1]) if self.keep_firing_for else KEEP_FIRING_DAYS[self.measure]

    @property
    def resolve_threshold(self) -> float:
        """count, rate, spike: the value below which a firing alert resolves."""
        if self.resolve_below is not None:
            return self.resolve_below
        threshold = self.threshold or 0.0
        return threshold / 2 if self.measure == "spike" else threshold

    @property
    def resolve_sd(self) -> float:
        """peer: the z of the band a firing alert must be back under to resolve."""
        if self.resolve_z is not None:
            return self.resolve_z
        z = self.z or 1.96
        return 1.96 if z > 1.96 else max(0.0, z - 0.5)


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


def load_rules(
    path: Path,
    *,
    known_forces: Collection[str] | None = None,
    known_categories: Collection[str] | None = None,
) -> list[Rule]:
    """Read and validate a rules file; ``RuleError`` gives the file, line and reason, and the
    nearest valid name for an unknown force or category."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        doc = strict_yaml.load(text)
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
        fields = field_lines[i] if i < len(field_lines) else {}
        rule = _rule(path, i, raw, line, fields)
        if rule.id in seen:
            raise RuleError(
                f"{path}:{line}: rule id {rule.id!r} is used twice (first on line {seen[rule.id]})"
            )
        seen[rule.id] = line
        if known_forces is not None and rule.forces != "all":
            _known(path, rule, "force id", rule.forces, known_forces, fields.get("forces", line))
        if known_categories is not None:
            _known(path, rule, "category", rule.category, known_categories, fields.get("category", line))
        rules.append(rule)
    return rules


def _rule(path: Path, i: int, raw: object, line: int, fields: dict[str, int]) -> Rule:
    """Rule #``i`` (on ``line``, its fields on ``fields``' lines) validated, or ``RuleError``
    naming the line of the field at fault."""
    if not isinstance(raw, dict):
        raise RuleError(f"{path}:{line}: rule #{i + 1} must be a mapping of fields")
    try:
        return Rule.model_validate(_tuples(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        where = f" field {field!r}" if field else ""
        raise RuleError(
            f"{path}:{fields.get(field, line)}: rule {raw.get('id', f'#{i + 1}')}{where}: {err['msg']}"
        ) from None


def _known(
    path: Path, rule: Rule, what: str, given: Collection[str], known: Collection[str], line: int
) -> None:
    """``RuleError`` at ``line`` for the first of ``given`` not in ``known``, with the nearest."""
    for name in given:
        if name not in known:
            raise RuleError(f"{path}:{line}: rule {rule.id}: unknown {what} {name!r}{nearest(name, known)}")


def rules_fingerprint(rules: Sequence[Rule]) -> str:
    """Identifies a set of rules: the workers that evaluate together must all hold the same."""
    doc = json.dumps([r.model_dump(mode="json") for r in rules], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _tuples(raw: dict[str, Any]) -> dict[str, Any]:
    """YAML lists -> tuples (the model is frozen); a single string stays a string."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
