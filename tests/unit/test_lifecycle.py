import datetime as dt

from alerts.engine import Evaluation
from alerts.lifecycle import Holds, fingerprint, transitions
from alerts.rules import Rule

AT = dt.datetime(2025, 6, 30, tzinfo=dt.UTC)
RULE = Rule.model_validate(
    dict(
        id="r",
        description="d",
        severity="high",
        category=("stalking",),
        measure="count",
        window="7d",
        threshold=1,
    )
)


def ev(force: str, breached: bool, cleared: bool | None = None) -> Evaluation:
    cleared = not breached if cleared is None else cleared
    return Evaluation("r", force, "stalking", breached, cleared, 1.0, 1.0, 1, None, AT.date(), AT.date())


def rule(**kw: object) -> Rule:
    return RULE.model_copy(update=kw)


def test_fingerprint_is_stable_and_distinct() -> None:
    assert fingerprint("r", "kent", "stalking") == fingerprint("r", "kent", "stalking")
    assert (
        len(
            {
                fingerprint("r", "kent", "stalking"),
                fingerprint("r", "essex", "stalking"),
                fingerprint("r2", "kent", "stalking"),
                fingerprint("r", "kent", "sexual"),
            }
        )
        == 4
    )
    # the separator keeps ("ab", "c") and ("a", "bc") apart
    assert fingerprint("ab", "c", "x") != fingerprint("a", "bc", "x")


def test_only_changes_are_transitions() -> None:
    fa, fb, fc = (fingerprint("r", f, "stalking") for f in "abc")
    current = {fa: "firing", fb: "firing"}
    out = transitions(
        [ev("a", True), ev("b", False), ev("c", True), ev("d", False)],
        current,
        {"r": rule(keep_firing_for="0d")},
        day=AT.date(),
        at=AT,
    )
    assert [(t.fingerprint, t.state) for t in out] == [(fb, "resolved"), (fc, "firing")]
    record = out[1].record()
    assert record["state"] == "firing" and record["force_id"] == "c" and record["severity"] == "high"


def test_first_transition_of_an_alert_is_to_firing() -> None:
    assert transitions([ev("a", False)], {}, {"r": RULE}, day=AT.date(), at=AT) == []


def run(days: list[tuple[int, bool, bool]], r: Rule) -> list[tuple[int, str]]:
    """Evaluate one alert on the given evaluation days (day, breached, cleared); its transitions."""
    holds, state, out = Holds(), dict[str, str](), list[tuple[int, str]]()
    for day, breached, cleared in days:
        for t in transitions(
            [ev("a", breached, cleared)],
            state,
            {"r": r},
            day=AT.date() + dt.timedelta(days=day),
            at=AT,
            holds=holds,
        ):
            state[t.fingerprint] = t.state
            out.append((day, t.state))
    return out


def test_nothing_changes_between_the_firing_and_the_resolve_condition() -> None:
    r = rule(keep_firing_for="0d")
    assert run([(0, True, False), (1, False, False), (2, False, False), (3, False, True)], r) == [
        (0, "firing"),
        (3, "resolved"),
    ]


def test_pending_period_needs_the_evidence_to_hold_that_long() -> None:
    r = rule(pending="2d", keep_firing_for="0d")
    # breached on day 0 and 1, not on day 2: the pending clock restarts
    days = [
        (0, True, False),
        (1, True, False),
        (2, False, False),
        (3, True, False),
        (4, True, False),
        (5, True, False),
    ]
    assert run(days, r) == [(5, "firing")]


def test_keep_firing_for_holds_a_firing_alert_until_clear_that_long() -> None:
    r = rule(keep_firing_for="7d")
    days = [
        (0, True, False),
        (3, False, True),
        (6, True, False),
        (8, False, True),
        (14, False, True),
        (15, False, True),
    ]
    # cleared on day 3, breached again on day 6 (the hold restarts), cleared from day 8: resolves on 15
    assert run(days, r) == [(0, "firing"), (15, "resolved")]


def test_default_hold_times_per_measure() -> None:
    assert (RULE.pending_days, RULE.keep_firing_days) == (0, 7)
    assert rule(measure="case", window=None, threshold=None).keep_firing_days == 0
