"""Loading the alert rules file (DW_RULES).

The rule models and the engine come with the alerting capability; until then the worker checks
at start that the file is readable YAML with a top-level ``rules:`` list of mappings that each
have an ``id``, so a broken file is refused at boot, not later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alerts.errors import RuleError


def load_rules(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise RuleError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{path}: the top level must be a mapping with a 'rules:' list")
    rules: list[dict[str, Any]] = doc["rules"]
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or "id" not in rule:
            raise RuleError(f"{path}: rule #{i + 1} must be a mapping with an 'id'")
    return rules
