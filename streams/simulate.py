"""Synthetic disposal events for all 45 forces.

Plausibility, against shared/reference/home-office.json:
- volume per force proportional to its size weight (forces.yaml);
- offence mix: violence and harassment dominate the high-risk categories, stalking a few per
  cent, sexual offences about 4%, knives and child cruelty around 1%;
- outcome mix: most crimes end with no further action, about 7% charged, out-of-court
  disposals about 7% in all (community resolution about 3%, the BBC's "about 3% of outcomes"),
  less for sexual offences and almost none for rape; a domestic-abuse flag on a third of
  violence;
- forces differ: each force has its own out-of-court propensity (log-normal, sd 0.3), so peer
  comparison has something to find;
- a crime often gets a ``pending`` outcome first and its final outcome up to four months
  later, and one in ten is corrected again later, exercising latest-outcome-wins.

Deterministic for a given seed. Pure: yields ``OutcomeEvent`` values, sends nothing.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from streams.model import OutcomeEvent
from streams.reference import FORCE_WEIGHTS, HOME_OFFICE_OUTCOMES, RAPE_CODES


@dataclass(frozen=True)
class Offence:
    share: float
    codes: tuple[str, ...]
    domestic_abuse: float  # share flagged domestic abuse
    oocd: float  # multiplier on the out-of-court shares


OFFENCES: dict[str, Offence] = {
    "other-violence": Offence(0.30, ("8N", "105A", "5A", "104", "105B"), 0.35, 1.0),
    "harassment": Offence(0.10, ("8L", "8M", "8R"), 0.30, 1.1),
    "stalking": Offence(0.03, ("8Q",), 0.40, 1.2),
    "controlling-coercive": Offence(0.01, ("8U",), 1.0, 0.5),
    "sexual": Offence(0.04, ("17A", "20A", "20B", "22A", "88A", "88E", "19C", "19D", "71"), 0.20, 0.35),
    "knife": Offence(0.015, ("10D", "90"), 0.02, 0.6),
    "weapons": Offence(0.005, ("10C",), 0.02, 0.8),
    "child-cruelty": Offence(0.01, ("11A",), 0.50, 0.7),
    # codes outside offences.yaml (burglary, theft, damage, drugs): counted under `other`
    "other": Offence(0.49, ("28E", "39", "46", "49", "58A", "92D"), 0.05, 1.0),
}

# Final-outcome mix (Home Office outcome number -> weight), before per-offence adjustment.
OOCD_OUTCOMES = {2: 0.5, 3: 2.0, 6: 0.6, 7: 0.8, 8: 3.0}
OTHER_OUTCOMES = {1: 7.0, 22: 0.5, 20: 2.0, 10: 8.0, 14: 22.0, 15: 8.0, 16: 14.0, 18: 27.0, 21: 4.0}


def _weights(offence: Offence, force_propensity: float, rape: bool) -> tuple[list[int], list[float]]:
    factor = 0.02 if rape else offence.oocd * force_propensity
    table = {n: w * factor for n, w in OOCD_OUTCOMES.items()}
    table.update(OTHER_OUTCOMES)
    return list(table), list(table.values())


#: mean events per crime: the outcome, 40% first recorded as under investigation, 10% corrected
EVENTS_PER_CRIME = 1.5
#: how far before its outcome a crime's first event can lie (under investigation), and after
#: it its correction
BEFORE_DAYS, AFTER_DAYS = 120, 60


def simulate(
    events: int, *, seed: int = 1, end: dt.date | None = None, days: int = 365, ordered: bool = False
) -> Iterator[OutcomeEvent]:
    """Yield ``events`` synthetic events with outcome dates in the ``days`` days up to ``end``:
    crimes in random order, or, ``ordered``, every event in date order, as a feed or a backfill
    arrives (crimes at an even rate per day; memory holds about six months of events)."""
    rng = random.Random(seed)
    end = end or dt.datetime.now(dt.UTC).date()
    first = end - dt.timedelta(days=days - 1)
    crimes = _Crimes(rng, seed, first, end)
    if ordered:
        yield from _in_date_order(crimes, events, first, end, days)
        return
    produced = 0
    while True:
        for ev in crimes.one(lambda: end - dt.timedelta(days=rng.randrange(days))):
            if produced >= events:
                return
            yield ev
            produced += 1


def _in_date_order(
    crimes: _Crimes, events: int, first: dt.date, end: dt.date, days: int
) -> Iterator[OutcomeEvent]:
    """Crimes by outcome day, at an even rate per day; an event is let out once no crime still
    to come can have an earlier one (the earliest lies BEFORE_DAYS before its outcome)."""
    waiting: list[tuple[dt.date, int, OutcomeEvent]] = []
    per_day = events / EVENTS_PER_CRIME / days
    made = produced = 0  # events made (waiting or out), and let out
    day = first
    while produced < events:
        due = round(per_day * ((day - first).days + 1))  # crimes by the end of ``day``
        # on the last day, crimes until there are events enough
        while made < events and (crimes.crime < due or day >= end):
            outcome_day = day
            for ev in crimes.one(lambda: outcome_day):  # noqa: B023 (called at once)
                heapq.heappush(waiting, (ev.outcome_date, made, ev))
                made += 1
        last = made >= events or day >= end
        horizon = dt.date.max if last else day - dt.timedelta(days=BEFORE_DAYS)
        while waiting and waiting[0][0] < horizon and produced < events:
            yield heapq.heappop(waiting)[2]
            produced += 1
        if last:
            return
        day += dt.timedelta(days=1)


class _Crimes:
    """The simulator's crimes: one at a time, each as its events."""

    def __init__(self, rng: random.Random, seed: int, first: dt.date, end: dt.date) -> None:
        self.rng, self.seed, self.first, self.end = rng, seed, first, end
        self.forces = list(FORCE_WEIGHTS)
        self.force_w = [FORCE_WEIGHTS[f] for f in self.forces]
        self.propensity = {f: math.exp(rng.gauss(0.0, 0.3)) for f in self.forces}
        self.cats = list(OFFENCES)
        self.cat_w = [OFFENCES[c].share for c in self.cats]
        #: crimes made so far
        self.crime = 0

    def one(self, day_of: Callable[[], dt.date]) -> list[OutcomeEvent]:
        """The events of the next crime, whose outcome is on the day ``day_of`` gives (asked
        after the crime's other draws, so that a seed gives the crimes it always gave)."""
        rng = self.rng
        self.crime += 1
        force = rng.choices(self.forces, self.force_w)[0]
        offence = OFFENCES[rng.choices(self.cats, self.cat_w)[0]]
        code = rng.choice(offence.codes)
        da = rng.random() < offence.domestic_abuse
        ref = f"SIM{self.seed}-{self.crime:09d}"
        numbers, weights = _weights(offence, self.propensity[force], code in RAPE_CODES)
        day = day_of()
        plan: list[tuple[int | None, dt.date]] = []
        if rng.random() < 0.4:  # first recorded as under investigation
            plan.append((None, day - dt.timedelta(days=rng.randrange(1, BEFORE_DAYS))))
        plan.append((rng.choices(numbers, weights)[0], day))
        if rng.random() < 0.1:  # corrected later
            later = min(self.end, day + dt.timedelta(days=rng.randrange(1, AFTER_DAYS)))
            plan.append((rng.choices(numbers, weights)[0], later))
        return [
            self._event(k, force, ref, code, da, number, max(when, self.first))
            for k, (number, when) in enumerate(plan)
        ]

    def _event(
        self, k: int, force: str, ref: str, code: str, da: bool, number: int | None, day: dt.date
    ) -> OutcomeEvent:
        recorded = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(
            minutes=self.rng.randrange(8 * 60, 20 * 60)
        )
        return OutcomeEvent(
            event_id=f"sim-{self.seed}-{self.crime}-{k}",
            force_id=force,
            crime_ref=ref,
            disposal="pending" if number is None else HOME_OFFICE_OUTCOMES[number],
            outcome_date=day,
            recorded_at=recorded,
            source_system="simulator",
            offence_code=code,
            outcome_number=number,
            domestic_abuse=da,
        )


#: the demo's story (``story``): (force, Home Office code, outcome number, crimes, first and last
#: day back from the end)
STORY = (
    # Durham settles almost half of its recent stalking cases by community resolution (8), up
    # from almost none the quarter before; the rest are charged (1) or dropped (14)
    ("durham", "8Q", 8, 22, 1, 90),
    ("durham", "8Q", 1, 10, 1, 90),
    ("durham", "8Q", 14, 16, 1, 90),
    ("durham", "8Q", 8, 1, 92, 181),
    ("durham", "8Q", 1, 14, 92, 181),
    ("durham", "8Q", 14, 25, 92, 181),
    # South Yorkshire settles a third of its harassment out of court over the year: cautions (3)
    # and community resolutions (8), against charges (1) and no further action (16)
    ("south-yorkshire", "8L", 3, 30, 1, 360),
    ("south-yorkshire", "8L", 8, 25, 1, 360),
    ("south-yorkshire", "8L", 1, 35, 1, 360),
    ("south-yorkshire", "8L", 16, 70, 1, 360),
)


def story(end: dt.date | None = None) -> list[OutcomeEvent]:
    """The demo's scenario, on top of the simulator's steady national feed: two forces that
    settle high-risk crimes out of court far more than the others, as the FOI answers behind
    this project found (``make run`` sends it; README, "What the demo shows"). One event per crime,
    spread evenly over its days; deterministic."""
    end = end or dt.datetime.now(dt.UTC).date()
    out = []
    for force, code, number, crimes, first, last in STORY:
        for i in range(crimes):
            day = end - dt.timedelta(days=first + (i * (last - first)) // max(1, crimes - 1))
            ref = f"STORY-{force}-{code}-{number}-{first}-{i}"
            out.append(
                OutcomeEvent(
                    event_id=f"story-{ref}",
                    force_id=force,
                    crime_ref=ref,
                    disposal=HOME_OFFICE_OUTCOMES[number],
                    outcome_date=day,
                    recorded_at=dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC),
                    source_system="simulator-story",
                    offence_code=code,
                    outcome_number=number,
                    domestic_abuse=False,
                )
            )
    return out
