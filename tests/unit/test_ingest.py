"""Parallel ingestion makes exactly what the one-process reading makes: the same records in the
same order, the same skips naming the same rows."""

from pathlib import Path

import pytest

from streams.codec import outcome_record
from streams.errors import InputError
from streams.ingest import Encoded, encoded, jsonl_tasks, policeuk_encoded
from streams.policeuk import Tally, events_from_files
from streams.textfile import Block, csv_blocks, read_block

from .test_policeuk import NEW, OLD, OUTCOMES_HEADER, STREET_HEADER, write


def one_process(paths: list[Path]) -> tuple[list[tuple[bytes, bytes]], list[tuple[str, str]], int]:
    skipped: list[tuple[str, str]] = []

    def on_skip(exc: InputError) -> None:
        skipped.append((exc.reason, str(exc)))

    tally = Tally()
    records = [outcome_record(ev) for ev in events_from_files(paths, tally, on_skip)]
    return records, skipped, tally.rows


def parallel(paths: list[Path], workers: int) -> tuple[list[tuple[bytes, bytes]], list[tuple[str, str]], int]:
    chunks: list[Encoded] = list(policeuk_encoded(paths, workers))
    records = [r for c in chunks for r in c.records]
    skipped = [s for c in chunks for s in c.skipped if s[1]]  # rows without a message are not errors
    return records, skipped, sum(c.rows for c in chunks)


@pytest.mark.parametrize("workers", [1, 2])
def test_samples_give_the_records_of_one_process(workers: int) -> None:
    paths = sorted(OLD.glob("*.csv")) + sorted(NEW.glob("*.csv"))
    want_records, _, want_rows = one_process(paths)
    got_records, _, got_rows = parallel(paths, workers)
    assert got_rows == want_rows > 30_000
    assert got_records == want_records


@pytest.mark.parametrize("workers", [1, 2])
def test_quoted_newlines_and_bad_rows_keep_their_line_numbers(tmp_path: Path, workers: int) -> None:
    row = "c{i},2024-03,Kent Police,Kent Police,,,,,,Violence and sexual offences,Local resolution,\n"
    quoted = (
        'q{i},2024-03,Kent Police,Kent Police,,,"a street\nover ""two"" lines",,,Burglary,Local resolution,\n'
    )
    bad = "b{i},2024-13,Kent Police,Kent Police,,,,,,Burglary,Local resolution,\n"
    body = "".join((quoted if i % 7 == 0 else bad if i % 501 == 0 else row).format(i=i) for i in range(6000))
    street = write(tmp_path / "s.csv", STREET_HEADER + body + "\n")
    outcomes = write(
        tmp_path / "o.csv",
        OUTCOMES_HEADER
        + "".join(f"c{i},2024-05,Kent Police,Kent Police,,,,,,Suspect charged\n" for i in range(1, 5000)),
    )
    want = one_process([outcomes, street])
    got = parallel([outcomes, street], workers)
    assert got == want
    assert any(":503: Month" in msg for _, msg in got[1])  # record 503 (i=501), past quoted newlines


def test_csv_blocks_end_on_record_boundaries(tmp_path: Path) -> None:
    lines = ['a,"b\n', 'c",d\r\n', "e,f\r", 'g,"h ""i""",j\n', "\n", 'k,"l\r\nm"']
    path = tmp_path / "f.csv"
    path.write_bytes("".join(lines).encode())
    blocks = list(csv_blocks(path, size=1))
    # each block is whole records, numbered past the quoted line ends, lines counted with them;
    # the bare \r ends a line (as TextLines reads it) but is no place to cut a block
    assert [read_block(path, b) for b in blocks] == [
        "".join(lines[0:2]),
        "".join(lines[2:4]),
        lines[4],
        lines[5],
    ]
    assert [b.record for b in blocks] == [1, 2, 4, 5]
    assert blocks[-1].end == path.stat().st_size
    whole = list(csv_blocks(path, size=10_000))
    assert whole == [Block(0, len(lines[0]) + len(lines[1]), 1), Block(whole[0].end, path.stat().st_size, 2)]


def test_a_block_not_utf8_names_the_files_first_bad_line(tmp_path: Path) -> None:
    from streams.errors import ConfigError
    from streams.textfile import TextLines

    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbfh\n" + b"a,b\n" * 5000 + b"a,\xff\n" + b"a,b\n" * 10)
    blocks = list(csv_blocks(path, size=1000))
    assert read_block(path, blocks[0]) == "h\n"  # the byte order mark is dropped
    with pytest.raises(ConfigError) as got, TextLines(path) as lines:
        list(lines)
    with pytest.raises(ConfigError) as ours:
        for b in blocks:
            read_block(path, b)
    assert str(ours.value) == str(got.value)
    assert "line 5002: byte 0xff at column 3" in str(ours.value)


def test_jsonl_chunks_come_back_in_input_order(tmp_path: Path) -> None:
    import json

    from streams.simulate import simulate

    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps(ev.to_json_dict()) + "\n" for ev in simulate(5000, seed=3)))
    single = [r for c in encoded(jsonl_tasks([path]), 1) for r in c.records]
    two = [r for c in encoded(jsonl_tasks([path]), 2) for r in c.records]
    assert len(single) == 5000
    assert two == single


def test_topics_ready_only_when_every_topic_has_its_partitions() -> None:
    from streams.producer import topics_ready
    from streams.settings import load_settings

    s = load_settings(partitions=8, topic_prefix="t.")
    ready = {s.disposals_topic: 8, s.changelog_topic: 8, s.dlq_topic: 8, s.alerts_topic: 1}
    assert topics_ready(s, ready)
    assert not topics_ready(s, {**ready, s.changelog_topic: 4})  # ensure_topics names the mismatch
    assert not topics_ready(s, {k: v for k, v in ready.items() if k != s.alerts_topic})
