from pathlib import Path

import pytest

from alerts.errors import RuleError
from alerts.rules import DISPOSAL_CLASSES, OUT_OF_COURT, load_rules
from streams import reference
from streams.resources import DEFAULT_RULES


def test_default_rules_load() -> None:
    rules = load_rules(
        DEFAULT_RULES, known_forces=reference.FORCE_NAMES, known_categories=reference.CATEGORIES
    )
    assert {r.measure for r in rules} == {"count", "rate", "spike", "peer", "case"}
    stalking = next(r for r in rules if r.id == "stalking-cr-rate")
    assert stalking.window_days == 91 and stalking.threshold == 0.05 and stalking.min_volume == 30
    assert stalking.disposals == ("community-resolution",)
    assert next(r for r in rules if r.id == "sexual-oocd-count").disposals == OUT_OF_COURT


def test_disposal_classes_agree_with_streams() -> None:
    assert DISPOSAL_CLASSES == reference.DISPOSAL_CLASSES
    assert set(OUT_OF_COURT) == reference.OUT_OF_COURT


GOOD = """\
rules:
  - id: ok
    description: fine
    severity: high
    category: [stalking]
    measure: rate
    window: 91d
    threshold: 0.05
    min_volume: 30
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("    threshold: 0.05\n", ""), ":2: rule ok: Value error, a rate rule needs threshold"),
        (
            GOOD.replace("[stalking]", "[stalking]\n    disposals: [banished]"),
            ":6: rule ok field 'disposals'",
        ),
        (GOOD.replace("91d", "3 months"), ":7: rule ok field 'window': Value error, window must be"),
        (
            GOOD.replace("threshold: 0.05", "threshold: 5"),
            ":2: rule ok: Value error, a rate threshold is a share",
        ),
        (GOOD.replace("severity: high", "severity: urgent"), ":4: rule ok field 'severity'"),
        (GOOD.replace("measure: rate", "measure: vibes"), ":6: rule ok field 'measure'"),
        (GOOD + "    colour: red\n", ":10: rule ok field 'colour': Extra inputs are not permitted"),
        (GOOD + GOOD[len("rules:\n") :], ":10: rule id 'ok' is used twice (first on line 2)"),
        (
            GOOD.replace("    category: [stalking]\n", "    category: [stalking]\n    forces: [gotham]\n"),
            ":6: rule ok: unknown force id 'gotham'",
        ),
        (
            GOOD.replace("    category: [stalking]\n", "    category: [stalking]\n    forces: [kentt]\n"),
            ":6: rule ok: unknown force id 'kentt' (did you mean 'kent'?)",
        ),
        (
            GOOD.replace("[stalking]", "[stalkin]"),
            ":5: rule ok: unknown category 'stalkin' (did you mean 'stalking'?)",
        ),
        (
            GOOD.replace("[stalking]", "[stalking]\n    disposals: [community-resolutions]"),
            ":6: rule ok field 'disposals': Value error, unknown disposal class 'community-resolutions' "
            "(did you mean 'community-resolution'?)",
        ),
        (GOOD + "    for: soon\n", ":10: rule ok field 'for': Value error, must be a number of days like 7d"),
        (GOOD + "    keep_firing_for: 7\n", ":10: rule ok field 'keep_firing_for'"),
        (
            GOOD + "    resolve_below: 0.5\n",
            ":2: rule ok: Value error, resolve_below must not be above the threshold",
        ),
        (GOOD + "    resolve_z: 1\n", ":2: rule ok: Value error, resolve_z is for peer rules"),
        ("rules:\n  - id: x\n    description: [unclosed\n", ":4: not valid YAML"),
        ("just: text\n", ":1: the top level must be a mapping with a 'rules:' list"),
        (GOOD + "rules: again\n", ":10: not valid YAML: 'rules' is given twice in one mapping"),
        (
            GOOD.replace("    severity: high\n", "    severity: high\n    severity: low\n"),
            ":5: not valid YAML: 'severity' is given twice",
        ),
        ("rules:\n  - just a string\n", ":2: rule #1 must be a mapping"),
    ],
)
def test_malformed_rules_name_file_line_and_reason(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(text)
    with pytest.raises(RuleError) as info:
        load_rules(f, known_forces=reference.FORCE_NAMES, known_categories=reference.CATEGORIES)
    assert str(info.value).startswith(str(f)), info.value
    assert message in str(info.value), info.value


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


def test_hold_times_and_resolve_bands_have_defaults_per_measure(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(
        GOOD
        + "  - {id: peer, description: d, severity: low, category: [stalking], measure: peer,\n"
        + "     window: 91d, z: 3.09}\n"
        + "  - {id: spike, description: d, severity: low, category: [stalking], measure: spike,\n"
        + "     window: 91d, threshold: 0.5, for: 14d, keep_firing_for: 28d}\n"
    )
    ok, peer, spike = load_rules(f)
    assert (ok.pending_days, ok.keep_firing_days, ok.resolve_threshold) == (0, 7, 0.05)
    assert (peer.resolve_sd, peer.keep_firing_days) == (1.96, 7)
    assert (spike.pending_days, spike.keep_firing_days, spike.resolve_threshold) == (14, 28, 0.25)
