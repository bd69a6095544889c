import datetime as dt

from alerts.engine import Evaluation
from alerts.lifecycle import fingerprint, transitions
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


def ev(force: str, firing: bool) -> Evaluation:
    return Evaluation("r", force, "stalking", firing, 1.0, 1.0, 1, None, AT.date(), AT.date())


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
        [ev("a", True), ev("b", False), ev("c", True), ev("d", False)], current, {"r": RULE}, at=AT
    )
    assert [(t.fingerprint, t.state) for t in out] == [(fb, "resolved"), (fc, "firing")]
    record = out[1].record()
    assert record["state"] == "firing" and record["force_id"] == "c" and record["severity"] == "high"


def test_first_transition_of_an_alert_is_to_firing() -> None:
    assert transitions([ev("a", False)], {}, {"r": RULE}, at=AT) == []
