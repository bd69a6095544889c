"""Domain reference data, loaded once from the readable YAML files beside this module.

- ``forces.yaml``: the 45 police.uk forces (id, published name, size weight for the simulator)
- ``outcomes.yaml``: disposal classes; Home Office outcome numbers and police.uk outcome strings
- ``offences.yaml``: Home Office offence codes and police.uk crime types -> offence category
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import yaml


def _load(name: str) -> dict[str, Any]:
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    # libyaml's loader where PyYAML has it (6x faster: this is part of every command's start)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: dict[str, Any] = yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)
    return data


def slugify(text: str) -> str:
    """``'Violence and sexual offences'`` -> ``'violence-and-sexual-offences'``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


_forces = _load("forces.yaml")["forces"]
_outcomes = _load("outcomes.yaml")
_offences = _load("offences.yaml")

#: police.uk force id -> published force name
FORCE_NAMES: dict[str, str] = {fid: f["name"] for fid, f in _forces.items()}
#: published force name ("Reported by") -> police.uk force id
FORCE_IDS: dict[str, str] = {name: fid for fid, name in FORCE_NAMES.items()}
#: police.uk force id -> relative size (simulator weights)
FORCE_WEIGHTS: dict[str, float] = {fid: float(f["weight"]) for fid, f in _forces.items()}

#: every disposal class, in report order
DISPOSAL_CLASSES: tuple[str, ...] = (
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
OUT_OF_COURT: frozenset[str] = frozenset(_outcomes["out_of_court"])
#: Home Office outcome type -> disposal class
HOME_OFFICE_OUTCOMES: dict[int, str] = {int(k): v for k, v in _outcomes["home_office"].items()}
#: police.uk outcome string -> disposal class
POLICEUK_OUTCOMES: dict[str, str] = dict(_outcomes["policeuk"])

#: Home Office offence code -> offence category
OFFENCE_CATEGORIES: dict[str, str] = {
    str(code): category for category, codes in _offences["home_office_codes"].items() for code in codes
}
RAPE_CODES: frozenset[str] = frozenset(c for c, cat in OFFENCE_CATEGORIES.items() if cat == "rape")
#: police.uk crime type -> category slug
POLICEUK_CRIME_TYPES: dict[str, str] = {t: slugify(t) for t in _offences["policeuk_crime_types"]}
#: every offence category an event can have (what alert rules may name)
CATEGORIES: frozenset[str] = frozenset(
    {*OFFENCE_CATEGORIES.values(), "other", *POLICEUK_CRIME_TYPES.values()}
)

for _cls in (*HOME_OFFICE_OUTCOMES.values(), *POLICEUK_OUTCOMES.values(), *OUT_OF_COURT):
    if _cls not in DISPOSAL_CLASSES:  # a typo in outcomes.yaml must not pass silently
        raise ValueError(f"outcomes.yaml names an unknown disposal class {_cls!r}")
