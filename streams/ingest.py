"""Ingestion: input files to encoded records, in worker processes, in input order.

The expensive part of an ingest is per row: parsing and validating a JSON line, or building the
event of a police.uk row, then Avro-encoding it. ``encoded`` cuts the rows into chunks, in input
order; a pool of worker processes (forked, so nothing but the chunk is shipped) turns each chunk
into (key, value) records and skipped rows; the main process yields the results in the order of
the chunks. So the records come out in exactly the order a single process would make them: the
events of one crime keep their order, on their one partition. At most ``2 * workers`` chunks are
in flight: memory stays bounded (by the largest police.uk file, which the main process reads
whole to find its blocks), and the progress bar follows the rows.

police.uk (``policeuk_encoded``): the main process only finds where each CSV's blocks of whole
records start and end (``streams.textfile.csv_blocks``: a line end outside a quoted field, as
the csv module reads one, ends a record, so a quoted field that spans lines stays in one block)
and how many records come before each, for the row numbers, with bytes operations only; the
workers read, decode, parse and write the blocks (``streams.policeuk.RowWriter``).
Street files first: each street block also returns the crime types its rows give, which the
main process merges in input order (the first street row of a crime wins, as in
``streams.policeuk.typed_rows``). Then outcomes files, in a pool forked after that map is
complete, so every worker has it without it being sent.

Errors, skips and summaries are those of ``streams.policeuk`` and ``streams.model``, unchanged.
"""

from __future__ import annotations

import io
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.codec import outcome_record
from streams.errors import InputError
from streams.policeuk import RowWriter, csv_records, open_csv, outcomes_crime_id, street_crime_type
from streams.textfile import Block, TextLines, csv_blocks, read_block

#: lines per chunk of a JSON-lines file sent to a worker (police.uk: ``textfile.BLOCK_BYTES``)
CHUNK = 2000

#: (key, value) of one record for the disposals topic
Record = tuple[bytes, bytes]


@dataclass
class Encoded:
    """What a worker made of one chunk: records, and the rows skipped (reason, message), in order."""

    rows: int
    records: list[Record] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: police.uk street blocks: (Crime ID, crime type) of the rows that give one, in order
    crime_types: list[tuple[str, str]] = field(default_factory=list)


# --- what a worker does to a chunk ------------------------------------------------------------


def jsonl_chunk(path: str, first_line: int, lines: list[str]) -> Encoded:
    """JSON lines (``first_line`` is the line number of the first) to records; bad lines skipped
    as ``invalid_json`` or ``invalid_event`` with the file, line, field and message."""
    from pydantic import ValidationError

    from streams.model import OutcomeEventIn

    out = Encoded(rows=0)
    for n, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        out.rows += 1
        try:
            out.records.append(outcome_record(OutcomeEventIn.model_validate_json(line).to_event()))
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = "invalid_json" if first["type"] == "json_invalid" else "invalid_event"
            where = ".".join(str(p) for p in first["loc"]) or "line"
            out.skipped.append((reason, f"{path}:{n}: {where}: {first['msg']}"))
    return out


#: police.uk: crime types by Crime ID from every street file, set in the main process before the
#: outcomes pool is forked (so inherited by its workers, never sent)
_crime_types: dict[str, str] = {}


#: police.uk: the row writer of the last kind and header seen, kept across this process's blocks
_writers: dict[tuple[str, tuple[str, ...]], RowWriter] = {}


def policeuk_chunk(kind: str, path: Path, header: list[str], block: Block) -> Encoded:
    """A block of whole CSV records of one police.uk file, read here, to records; skips as
    ``streams.policeuk`` makes them."""
    out = Encoded(rows=0)
    shape = (kind, tuple(header))
    writer = _writers.get(shape)
    if writer is None:
        _writers.clear()
        writer = _writers[shape] = RowWriter(kind, header)
    id_at = header.index("Crime ID")
    type_at = header.index("Crime type") if kind == "street" else -1
    write, records, skipped, crime_types = writer.record, out.records, out.skipped, out.crime_types
    lines = io.StringIO(read_block(path, block), newline="")
    for line, values in csv_records(lines, path, block.record):
        if type_at >= 0:
            known = street_crime_type(values, id_at, type_at)
            if known is not None:
                crime_types.append(known)
            crime_type = None
        else:
            crime_type = _crime_types.get(outcomes_crime_id(values, id_at))
        try:
            record = write(path, line, values, crime_type)
        except InputError as exc:
            skipped.append((exc.reason, str(exc)))
            continue
        if record is None:
            skipped.append(("no_crime_id_or_outcome", ""))
        else:
            records.append(record)
    out.rows = len(records) + len(skipped)
    return out


# --- the main process ---------------------------------------------------------------------------


def chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_workers() -> int:
    """One per core the process may use, at least one."""
    return max(1, len(os.sched_getaffinity(0)))


def encoded(
    tasks: Iterable[tuple[Callable[..., Encoded], tuple[Any, ...]]], workers: int
) -> Iterator[Encoded]:
    """``func(*args)`` of each task, in worker processes, yielded in the tasks' order (at most
    ``2 * workers`` in flight); in this process when ``workers`` is 1. The workers start on the
    first tasks at once, before the first result is asked for (while the caller connects)."""
    if workers <= 1:
        return (func(*args) for func, args in tasks)
    pool = multiprocessing.get_context("fork").Pool(workers)
    todo = iter(tasks)
    pending: deque[Any] = deque(pool.apply_async(f, a) for f, a in itertools.islice(todo, 2 * workers))

    def results() -> Iterator[Encoded]:
        with pool:  # terminates the workers however the iteration ends
            for func, args in todo:
                pending.append(pool.apply_async(func, args))
                yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()

    return results()


def jsonl_tasks(files: Iterable[Path]) -> Iterator[tuple[Callable[..., Encoded], tuple[Any, ...]]]:
    for path in files:
        with TextLines(path) as f:
            line = 1
            for lines in chunks(f):
                yield jsonl_chunk, (str(path), line, lines)
                line += len(lines)


def _headers(paths: Iterable[Path]) -> list[tuple[Path, str, list[str]]]:
    """(path, kind, header) of every file, checked before anything is read or sent."""
    out = []
    for path in paths:
        f, kind, header = open_csv(path)
        f.close()
        out.append((path, kind, header))
    return out


def _file_tasks(
    files: list[tuple[Path, str, list[str]]], kind: str
) -> Iterator[tuple[Callable[..., Encoded], tuple[Any, ...]]]:
    for path, of_kind, header in files:
        if of_kind != kind:
            continue
        blocks = csv_blocks(path)
        next(blocks)  # the header, read by _headers
        for block in blocks:
            yield policeuk_chunk, (kind, path, header, block)


def policeuk_encoded(paths: Iterable[Path], workers: int) -> Iterator[Encoded]:
    """Records of police.uk files: street files first, then outcomes files, each outcomes row
    with the crime type of the first street row of its Crime ID. Every header is checked when
    this is called (a bad file raises ``ConfigError`` before anything is sent)."""
    files = _headers(paths)
    _crime_types.clear()
    street = encoded(_file_tasks(files, "street"), workers)

    def run() -> Iterator[Encoded]:
        for chunk in street:
            for crime_id, crime_type in chunk.crime_types:
                _crime_types.setdefault(crime_id, crime_type)
            yield chunk
        yield from encoded(_file_tasks(files, "outcomes"), workers)
        _crime_types.clear()

    return run()
