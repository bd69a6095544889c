"""The disposal event, as the worker sees it, and its JSON form for ingestion.

``OutcomeEvent`` is a frozen, slotted dataclass: it is built once per record on the hot path.
``OutcomeEventIn`` is the pydantic model of the project's own JSON form (one object a line in
``ingest jsonl`` files): it validates at the edge, then becomes an ``OutcomeEvent``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streams.reference import DISPOSAL_CLASSES, HOME_OFFICE_OUTCOMES

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class OutcomeEvent:
    """One outcome assigned to one crime. Field meanings: streams/schemas/disposalwatch.OutcomeEvent.avsc."""

    event_id: str
    force_id: str
    crime_ref: str
    disposal: str
    outcome_date: dt.date
    recorded_at: dt.datetime
    source_system: str
    offence_code: str | None = None
    crime_type: str | None = None
    outcome_number: int | None = None
    outcome_text: str | None = None
    domestic_abuse: bool | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def crime_key(self) -> str:
        """Identity of the crime: crime references are unique only within a force."""
        return f"{self.force_id}/{self.crime_ref}"

    def to_json_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome_date"] = self.outcome_date.isoformat()
        d["recorded_at"] = self.recorded_at.isoformat()
        return d


class OutcomeEventIn(BaseModel):
    """An event in the project's JSON form. ``disposal`` may be left out when
    ``outcome_number`` is given; it is then derived from the Home Office number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=200)
    force_id: str = Field(min_length=1)
    crime_ref: str = Field(min_length=1, max_length=200)
    offence_code: str | None = None
    crime_type: str | None = None
    outcome_number: int | None = Field(default=None, ge=1, le=23)
    disposal: str | None = None
    outcome_text: str | None = None
    outcome_date: dt.date
    recorded_at: dt.datetime
    domestic_abuse: bool | None = None
    source_system: str = Field(default="jsonl", min_length=1)
    schema_version: int = SCHEMA_VERSION

    @field_validator("recorded_at")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("recorded_at needs a UTC offset, e.g. 2024-05-01T10:00:00Z")
        return v.astimezone(dt.UTC)

    @field_validator("disposal")
    @classmethod
    def _known_disposal(cls, v: str | None) -> str | None:
        if v is not None and v not in DISPOSAL_CLASSES:
            raise ValueError(f"unknown disposal class {v!r}; one of {', '.join(DISPOSAL_CLASSES)}")
        return v

    @model_validator(mode="after")
    def _one_offence_and_a_disposal(self) -> OutcomeEventIn:
        if (self.offence_code is None) == (self.crime_type is None):
            raise ValueError("give exactly one of offence_code (Home Office) or crime_type (police.uk)")
        if self.disposal is None and self.outcome_number is None:
            raise ValueError("give disposal, outcome_number, or both")
        return self

    def to_event(self) -> OutcomeEvent:
        disposal = self.disposal
        if disposal is None:
            assert self.outcome_number is not None
            disposal = HOME_OFFICE_OUTCOMES[self.outcome_number]
        return OutcomeEvent(
            event_id=self.event_id,
            force_id=self.force_id,
            crime_ref=self.crime_ref,
            disposal=disposal,
            outcome_date=self.outcome_date,
            recorded_at=self.recorded_at,
            source_system=self.source_system,
            offence_code=self.offence_code,
            crime_type=self.crime_type,
            outcome_number=self.outcome_number,
            outcome_text=self.outcome_text,
            domestic_abuse=self.domestic_abuse,
            schema_version=self.schema_version,
        )
