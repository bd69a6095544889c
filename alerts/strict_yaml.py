"""YAML for every configuration file the project reads (rules, tokens, webhooks): PyYAML's safe
loader, except that a key given twice in one mapping is an error naming its line.

PyYAML itself keeps the last of a repeated key without a word, so a stray ``rules:`` line would
replace every rule above it, and a token or receiver given twice would lose one silently.
"""

from __future__ import annotations

from typing import Any

import yaml


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""


def _mapping_once(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"{key!r} is given twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_once)


def load(text: str, *, quote: bool = True) -> Any:
    """The document in ``text``; raises ``yaml.YAMLError`` (a repeated key included) with its
    line and column. PyYAML's message also quotes the line at fault: ``quote=False`` leaves it
    out, for files that hold secrets (webhook secrets), which no error may echo."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as exc:
        if not quote:
            for mark in (exc.context_mark, exc.problem_mark):
                if mark is not None:
                    mark.buffer = None  # the quoted line: only line and column remain
        raise
