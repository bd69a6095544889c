import dataclasses
import datetime as dt
import functools
import json
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import avro.name
import avro.schema
import fastavro.schema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import (
    EVENT_CODEC,
    SCHEMA_DIR,
    AvroCodec,
    decode_held,
    decode_outcome,
    encode_held,
    encode_outcome,
    held_combo,
)
from streams.codec import (
    HEADER_LEN as HEADER,
)
from streams.core.classify import Cell
from streams.core.crimes import KEEP_SEEN, Held, event_digest
from streams.errors import DecodeError, EncodeError, InvariantError, StateError
from streams.model import OutcomeEvent
from streams.reference import DISPOSAL_CLASSES

EVENT = OutcomeEvent(
    event_id="e-1",
    force_id="durham",
    crime_ref="DUR/24/1",
    disposal="community-resolution",
    outcome_date=dt.date(2024, 5, 3),
    recorded_at=dt.datetime(2024, 5, 3, 14, 5, 6, 789000, tzinfo=dt.UTC),
    source_system="test",
    offence_code="8Q",
    outcome_number=8,
    outcome_text=None,
    domestic_abuse=True,
)


def test_round_trip() -> None:
    assert decode_outcome(encode_outcome(EVENT)) == EVENT


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) exactly as the Avro specification gives it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp


def test_single_object_framing() -> None:
    """C3 01, then the little-endian CRC-64-AVRO of the parsing canonical form, then the body.

    (Apache's Python `avro` package keeps logical types as objects in its canonical form,
    unlike the spec and the Java implementation, so its fingerprint is not the reference here.)
    """
    data = encode_outcome(EVENT)
    assert data[:2] == b"\xc3\x01"
    canonical = fastavro.schema.to_parsing_canonical_form(EVENT_CODEC.schema)
    assert '"logicalType"' not in canonical and '"doc"' not in canonical
    assert data[2:10] == crc64_avro(canonical.encode()).to_bytes(8, "little")


def _parse(name: str) -> avro.schema.RecordSchema:
    """Parse a schema file with Apache's `avro` package, the named types it uses known first."""
    names = avro.name.Names()
    avro.schema.make_avsc_object(
        json.loads((SCHEMA_DIR / "disposalwatch.DisposalClass.avsc").read_text()), names
    )
    schema = avro.schema.make_avsc_object(json.loads((SCHEMA_DIR / f"{name}.avsc").read_text()), names)
    assert isinstance(schema, avro.schema.RecordSchema)
    return schema


@pytest.mark.parametrize("name", ["disposalwatch.OutcomeEvent", "disposalwatch.Alert"])
def test_schemas_are_valid_for_the_reference_implementation(name: str) -> None:
    """The `avro` package (Apache's reference parser) accepts the schema files, docs included."""
    parsed = _parse(name)
    assert all(f.doc for f in parsed.fields), "every field is documented"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "undecodable"),
        (b"garbage that is not avro", "undecodable"),
        (b"\xc3\x01" + b"\x00" * 8 + b"abc", "unknown_schema"),
        (None, "undecodable"),  # truncated: filled in below
        (None, "undecodable"),  # trailing bytes
        (None, "undecodable"),  # corrupt enum index
    ],
)
def test_malformed_bytes_raise_decode_error(
    data: bytes | None, reason: str, request: pytest.FixtureRequest
) -> None:
    good = encode_outcome(EVENT)
    idx = request.node.callspec.indices["data"] if hasattr(request.node, "callspec") else 0
    if data is None:
        data = {3: good[:-5], 4: good + b"\x00\x01", 5: good[:10] + b"\x7f" * 30}[idx]
    with pytest.raises(DecodeError) as info:
        decode_outcome(data)
    assert info.value.reason == reason


def test_reader_resolves_an_older_writer_schema(tmp_path: Path) -> None:
    """A v2 reader (one field added, with a default) reads records a v1 writer wrote."""
    for f in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(f, tmp_path)
    (tmp_path / "history").mkdir()
    shutil.copy(
        SCHEMA_DIR / "disposalwatch.OutcomeEvent.avsc",
        tmp_path / "history" / "disposalwatch.OutcomeEvent.v1.avsc",
    )
    v1 = AvroCodec("disposalwatch.OutcomeEvent", schema_dir=SCHEMA_DIR)
    schema = json.loads((tmp_path / "disposalwatch.OutcomeEvent.avsc").read_text())
    schema["fields"].append(
        {"name": "victim_consulted", "type": ["null", "boolean"], "default": None, "doc": "v2"}
    )
    (tmp_path / "disposalwatch.OutcomeEvent.avsc").write_text(json.dumps(schema))
    v2 = AvroCodec("disposalwatch.OutcomeEvent", schema_dir=tmp_path)
    assert v2.fingerprint != v1.fingerprint
    record = v1.decode(encode_outcome(EVENT))
    old_bytes = v1.encode(record)
    assert v2.decode(old_bytes)["victim_consulted"] is None
    assert v2.decode(old_bytes)["crime_ref"] == "DUR/24/1"


HELD = Held(
    Cell("kent", "stalking", "caution", dt.date(2024, 1, 2), True),
    (event_digest("e1"), event_digest("e2")),
    42,
)


def test_held_state_round_trip() -> None:
    assert decode_held(encode_held(HELD, 3)) == (HELD, 3)
    no_da = Held(Cell("metropolitan", "rape", "charge", dt.date(2019, 12, 31), False), (), -1)
    assert decode_held(encode_held(no_da, 70_000)) == (no_da, 70_000)


@pytest.mark.parametrize("seen", [0, 1, 2, KEEP_SEEN])
def test_held_combo_reads_the_cell_as_decode_held_does(seen: int) -> None:
    for held in (HELD, Held(Cell("metropolitan", "rape", "charge", dt.date(2019, 12, 31), False), (), -1)):
        held = Held(held.cell, tuple(range(seen)), held.offset)
        c = held.cell
        want = ((c.force, c.category, c.disposal, c.domestic_abuse), c.day.toordinal())
        assert held_combo(encode_held(held, 5)) == want
    legacy = orjson.dumps(["kent", "stalking", "caution", HELD.cell.day.toordinal(), 1, [], 42, 3])
    assert held_combo(legacy) == (("kent", "stalking", "caution", True), HELD.cell.day.toordinal())


def test_held_state_is_compact() -> None:
    """Per-crime state is what national volume multiplies: one outcome packs into under 80 bytes
    and the object holding it is its own size (orjson >= 3.12 returns 4 KiB buffers)."""
    one = Held(HELD.cell, HELD.seen[:1], 123_456)
    data = encode_held(one, 7)
    assert len(data) < 80
    tracemalloc.start()
    try:
        kept = [encode_held(one, 7) for _ in range(1000)]
        per_value = tracemalloc.get_traced_memory()[0] / len(kept)
    finally:
        tracemalloc.stop()
    assert per_value < 200


def test_held_state_written_as_json_by_earlier_versions_still_decodes() -> None:
    legacy = orjson.dumps(
        [
            "kent",
            "stalking",
            "caution",
            HELD.cell.day.toordinal(),
            1,
            [d.to_bytes(8, "little").hex() for d in HELD.seen],
            42,
            3,
        ]
    )
    assert decode_held(legacy) == (HELD, 3)


@pytest.mark.parametrize("data", [b"", b"\x01\x00", b"\x09" + bytes(30), encode_held(HELD, 3)[:-9] + b"\xff"])
def test_unreadable_held_state_is_a_state_error(data: bytes) -> None:
    with pytest.raises(StateError, match="unreadable crime state"):
        decode_held(data)
    with pytest.raises(StateError, match="unreadable crime state"):
        held_combo(data)


def test_fast_reader_and_writer_do_as_fastavros_public_ones(tmp_path: Path) -> None:
    """The codec calls fastavro's reader without its per-call schema walk (streams/codec/events.py): it
    must give what ``fastavro.schemaless_reader`` gives, for the codec's own schema and for an
    older writer schema resolved to it. An upgrade of fastavro that breaks this fails here."""
    import io

    import fastavro

    for f in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(f, tmp_path)
    (tmp_path / "history").mkdir()
    shutil.copy(
        SCHEMA_DIR / "disposalwatch.OutcomeEvent.avsc",
        tmp_path / "history" / "disposalwatch.OutcomeEvent.v1.avsc",
    )
    schema = json.loads((tmp_path / "disposalwatch.OutcomeEvent.avsc").read_text())
    schema["fields"].append({"name": "victim_consulted", "type": ["null", "boolean"], "default": None})
    (tmp_path / "disposalwatch.OutcomeEvent.avsc").write_text(json.dumps(schema))
    v1 = AvroCodec("disposalwatch.OutcomeEvent", schema_dir=SCHEMA_DIR)
    v2 = AvroCodec("disposalwatch.OutcomeEvent", schema_dir=tmp_path)
    events = [
        EVENT,
        dataclasses.replace(EVENT, offence_code=None, crime_type="Drugs", domestic_abuse=None),
        dataclasses.replace(EVENT, outcome_number=None, outcome_text="Local resolution", schema_version=7),
    ]
    for ev in events:
        old = encode_outcome(ev)
        body = io.BytesIO(old[10:])
        assert v1.decode(old) == fastavro.schemaless_reader(body, v1.schema, None)
        body.seek(0)
        assert v2.decode(old) == fastavro.schemaless_reader(body, v1.schema, v2.schema)
        new = v2.encode({**v1.decode(old), "victim_consulted": True})
        assert v2.decode(new) == fastavro.schemaless_reader(io.BytesIO(new[10:]), v2.schema, None)
        # and the writer writes what fastavro's public writer writes
        public = io.BytesIO()
        fastavro.schemaless_writer(public, v1.schema, v1.decode(old))
        assert old[10:] == public.getvalue()


def _fastavro_bytes(event: OutcomeEvent) -> bytes:
    record = dataclasses.asdict(event)
    record["disposal"] = record["disposal"].replace("-", "_")
    return EVENT_CODEC.encode(record)


PLUS_5 = dt.timezone(dt.timedelta(hours=5))


@functools.cache
def _corpus() -> list[OutcomeEvent]:
    """Every field, each union branch, every disposal, dates either side of 1970, large and
    non-ASCII strings, and the events of the simulator and of the police.uk samples."""
    from streams.policeuk import Tally, events_from_files
    from streams.simulate import simulate

    samples = (
        Path(__file__).resolve().parents[3] / "shared" / "data" / "policeuk" / "city-of-london-2024-2025"
    )
    events = [*simulate(3000, seed=5), *events_from_files(sorted(samples.glob("*.csv")), Tally())]
    edge = [
        dataclasses.replace(EVENT, disposal=d, domestic_abuse=da, outcome_number=n, outcome_text=t)
        for d in ("charge", "caution", "pending", "other", "no-further-action", "community-resolution")
        for da in (None, True, False)
        for n, t in ((None, None), (0, ""), (23, "é" * 700), (-5, "x" * 5000))
    ]
    edge += [
        dataclasses.replace(
            EVENT,
            outcome_date=dt.date(1901, 1, 1),
            recorded_at=dt.datetime(1960, 2, 3, 4, 5, 6, 999999, tzinfo=dt.UTC),
            event_id="",
            crime_ref="🚓" * 300,
        ),
        dataclasses.replace(EVENT, recorded_at=dt.datetime(2024, 1, 1, 1, tzinfo=PLUS_5)),
        dataclasses.replace(EVENT, schema_version=2**40),
    ]
    return events + edge


def test_event_writer_writes_what_fastavro_writes() -> None:
    """``encode_outcome``'s own writer (streams/codec/events.py) against fastavro's, byte for byte."""
    from streams.codec import events as codec

    assert codec._FAST, "the schema changed: update or drop _fast_encode_outcome in streams/codec/events.py"
    for ev in _corpus():
        fast = codec._fast_encode_outcome(ev)
        assert fast is not None
        assert fast == _fastavro_bytes(ev), ev


def _fastavro_event(data: bytes) -> OutcomeEvent:
    record = EVENT_CODEC.decode(data)
    record["disposal"] = record["disposal"].replace("_", "-")
    return OutcomeEvent(**record)


def _reader(name: str) -> Callable[[bytes], OutcomeEvent | None]:
    """One of the event readers ``decode_outcome`` tries before fastavro: the Python one, or
    the compiled one (``streams/codec/_event_reader.c``)."""
    from streams.codec import events as codec

    if name == "python":
        return codec._fast_decode_outcome
    read = codec._compiled
    assert read is not None, "the compiled event reader was not built (setup.py)"
    return lambda data: read(data, HEADER)


READERS = ["python", "compiled"]


def test_the_compiled_reader_is_built_and_used() -> None:
    """The development install (and so CI) builds the extension: the compiled reader is the one
    ``decode_outcome`` uses, and every test below holds it to fastavro."""
    from streams.codec import events as codec

    assert codec.EVENT_READER == "compiled"
    assert codec._read_event is codec._compiled


def test_the_compiled_reader_refuses_what_is_not_the_events_slots() -> None:
    from streams.codec import _event_reader
    from streams.codec import events as codec

    @dataclasses.dataclass
    class NoSlots:
        a: int

    with pytest.raises(TypeError, match="not a slot"):
        _event_reader.configure(OutcomeEvent, (NoSlots.__dict__["__init__"],) * 13, ())
    with pytest.raises(ValueError, match="13 slot descriptors"):
        _event_reader.configure(OutcomeEvent, (), ())
    assert codec._compiled is not None and codec._compiled(_fastavro_bytes(EVENT), HEADER) == EVENT


def test_the_compiled_reader_leaves_values_that_are_not_bytes_to_fastavro() -> None:
    """As the Python reader gives up (None) on what it does not expect, never raising."""
    from streams.codec import events as codec

    data = _fastavro_bytes(EVENT)
    assert codec._compiled is not None and codec._compiled(bytearray(data), HEADER) is None
    assert codec._compiled(data, -1) is None and codec._compiled(data, len(data) + 5) is None


def test_the_compiled_reader_keeps_no_reference_it_should_not() -> None:
    """Events read, and records given up on at every byte, leave no memory behind."""
    from streams.codec import events as codec

    read = codec._compiled
    assert read is not None
    good = [_fastavro_bytes(ev) for ev in _short_events()]
    damaged = [d[:at] + b"\xff" + d[at + 1 :] for d in good[:50] for at in range(HEADER, len(d))]
    cut = [d[:at] for d in good[:50] for at in range(HEADER, len(d))]

    def read_all() -> None:
        assert read is not None
        for data in good + damaged + cut:
            read(data, HEADER)

    read_all()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            read_all()
        grew = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grew < 10_000, f"{grew} bytes kept after {5 * len(good + damaged + cut)} reads"


@pytest.mark.parametrize("name", READERS)
def test_event_reader_reads_what_fastavro_reads(name: str) -> None:
    """``decode_outcome``'s own readers against fastavro's, on the writer's corpus: the same
    event, field for field (an instant comes back in UTC, as fastavro gives it)."""
    read = _reader(name)
    for ev in _corpus():
        data = _fastavro_bytes(ev)
        fast = read(data)
        if ev.schema_version >= 2**31:  # not an Avro int: fastavro reads it, unchecked
            assert fast is None and decode_outcome(data) == _fastavro_event(data)
            continue
        assert fast is not None, ev
        assert fast == _fastavro_event(data) and hash(fast) == hash(_fastavro_event(data))
        with pytest.raises(dataclasses.FrozenInstanceError):  # built slot by slot, frozen still
            fast.force_id = "x"  # type: ignore[misc]
        assert [type(v) for v in dataclasses.astuple(fast)] == [
            type(v) for v in dataclasses.astuple(_fastavro_event(data))
        ]


_texts = st.text(max_size=300)
_opt = st.none() | _texts


_events = st.builds(
    OutcomeEvent,
    event_id=_texts,
    force_id=_texts,
    crime_ref=_texts,
    disposal=st.sampled_from(sorted(DISPOSAL_CLASSES)),
    outcome_date=st.dates(),
    recorded_at=st.datetimes(
        min_value=dt.datetime(1, 1, 2),  # noqa: DTZ001
        max_value=dt.datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.just(dt.UTC),
    ).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
    source_system=_texts,
    offence_code=_opt,
    crime_type=_opt,
    outcome_number=st.none() | st.integers(-(2**31), 2**31 - 1),
    outcome_text=_opt,
    domestic_abuse=st.none() | st.booleans(),
    schema_version=st.integers(-(2**31), 2**31 - 1),
)


@settings(max_examples=300, deadline=None)
@given(_events)
def test_event_reader_reads_generated_events_as_fastavro_does(event: OutcomeEvent) -> None:
    data = _fastavro_bytes(event)
    for name in READERS:
        assert _reader(name)(data) == _fastavro_event(data) == event, name


@settings(max_examples=200, deadline=None)
@given(_events, _texts, _texts)
def test_an_events_frame_writes_it_with_any_event_id_and_crime_ref(
    event: OutcomeEvent, event_id: str, crime_ref: str
) -> None:
    """The frame police.uk rows are written into (streams.policeuk.RowWriter) writes what
    fastavro writes, whatever the two strings put in it."""
    from streams.codec import outcome_frame

    other = dataclasses.replace(event, event_id=event_id, crime_ref=crime_ref)
    assert outcome_frame(event).value(event_id, crime_ref) == _fastavro_bytes(other)


@functools.cache
def _short_events() -> list[OutcomeEvent]:
    """Events of the corpus short enough that a damaged byte lands on every field often."""
    return [ev for ev in _corpus() if len(_fastavro_bytes(ev)) < 100][:300]


def _same_as_fastavro(damaged: bytes) -> None:
    fast = [_reader(name)(damaged) for name in READERS]
    try:
        slow = _fastavro_event(damaged)
    except (DecodeError, TypeError, ValueError, AttributeError):
        assert fast == [None] * len(READERS), damaged
        with pytest.raises(DecodeError):
            decode_outcome(damaged)
        return
    assert all(f is None or f == slow for f in fast), damaged


def test_every_byte_of_an_event_changed_or_cut_reads_as_fastavro_reads_it() -> None:
    """Every byte of events with each union branch, set to values that matter to a varint, a
    union, an enum or a boolean, and every length cut: see the next test."""
    events = [EVENT, dataclasses.replace(EVENT, domestic_abuse=None, offence_code=None, outcome_number=None)]
    for ev in events:
        good = _fastavro_bytes(ev)
        for at in range(HEADER, len(good)):
            _same_as_fastavro(good[:at])
            for value in (0, 1, 2, 3, 5, 0x7F, 0x80, 0xFF):
                _same_as_fastavro(good[:at] + bytes([value]) + good[at + 1 :])


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_damaged_event_bytes_read_as_fastavro_reads_them_or_are_a_decode_error(data: st.DataObject) -> None:
    """Bytes of the current schema, cut short, lengthened or with bytes changed: the own reader
    either reads what fastavro reads or leaves the record to fastavro, which reads it or gives
    the error; never a different event."""

    good = bytearray(_fastavro_bytes(data.draw(st.sampled_from(_short_events()))))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(HEADER, len(good)))
        action = data.draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set" and at < len(good):
            good[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del good[at:]
        else:
            good[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    _same_as_fastavro(bytes(good))


def test_values_of_other_types_go_through_fastavro() -> None:
    from streams.codec import events as codec

    naive = dataclasses.replace(EVENT, recorded_at=dt.datetime(2024, 5, 3, 14, 5))  # noqa: DTZ001
    assert codec._fast_encode_outcome(naive) is None
    assert encode_outcome(naive) == _fastavro_bytes(naive)
    assert codec._fast_encode_outcome(dataclasses.replace(EVENT, domestic_abuse=1)) is None  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        encode_outcome(dataclasses.replace(EVENT, disposal="settled-quietly"))


def test_the_event_reader_refuses_at_import_an_event_with_fields_it_does_not_set() -> None:
    from streams.codec import events as codec

    with pytest.raises(InvariantError, match="the reader sets"):
        codec._slot_setters(OutcomeEvent, ("event_id", "force_id"))
