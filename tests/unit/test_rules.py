from pathlib import Path

import pytest

from alerts.errors import RuleError
from alerts.rules import DISPOSAL_CLASSES, OUT_OF_COURT, load_rules
from streams import reference
from streams.settings import DEFAULT_RULES


def test_default_rules_load() -> None:
    rules = load_rules(DEFAULT_RULES, known_forces=reference.FORCE_NAMES)
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
            ":6: rule ok: unknown force id gotham",
        ),
        ("rules:\n  - id: x\n    description: [unclosed\n", ":4: not valid YAML"),
        ("just: text\n", ":1: the top level must be a mapping with a 'rules:' list"),
        ("rules:\n  - just a string\n", ":2: rule #1 must be a mapping"),
    ],
)
def test_malformed_rules_name_file_line_and_reason(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(text)
    with pytest.raises(RuleError) as info:
        load_rules(f, known_forces=reference.FORCE_NAMES)
    assert str(info.value).startswith(str(f)), info.value
    assert message in str(info.value), info.value


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")
