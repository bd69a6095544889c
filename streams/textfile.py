"""Input files read as text, so that a byte that is not UTF-8 stops the run with one line naming
the file, the line and the encoding expected (``ConfigError``), not with a traceback from deep
inside a decoder: one line at a time (``TextLines``), or a CSV file in blocks of whole records
that other processes read (``csv_blocks``, ``read_block``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from streams.errors import ConfigError

BOM = "\ufeff"


class TextLines:
    """The lines of a UTF-8 file, split and kept as ``open(newline="")`` gives them (ends at
    ``\n``, ``\r`` or ``\r\n``, kept); a byte order mark at the start is dropped. Iterate it;
    ``line`` is the number of the line last decoded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = path.open("rb")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        self.line = 0
        self._parts: list[str] = []  # lines of the last chunk read, not yet returned (reversed)

    def __iter__(self) -> TextLines:
        return self

    def __next__(self) -> str:
        if self._parts:
            return self._parts.pop()
        raw = next(self._file)
        # lines end at \n, \r or \r\n, as open(newline="") reads them (the csv module needs that)
        parts = raw.splitlines(keepends=True) if b"\r" in raw else [raw]
        texts = [self._decode(part) for part in parts]
        texts.reverse()
        self._parts = texts
        return self._parts.pop()

    def _decode(self, raw: bytes) -> str:
        self.line += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{self.path}: line {self.line}: byte 0x{raw[exc.start]:02x} at column {exc.start + 1} "
                "is not UTF-8; the file must be UTF-8 (convert it, e.g. iconv -f latin1 -t utf-8)"
            ) from None
        if self.line == 1 and text.startswith(BOM):
            text = text[1:]
        return text

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TextLines:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- a CSV file in blocks of whole records --------------------------------------------------------
# The ingest's pool workers read a CSV file's blocks themselves; the process that hands them out
# finds where they start and end, and how many records come before each (for the row numbers of
# messages), with bytes operations only: it decodes nothing and splits no lines.

#: bytes of a block, about (it ends at the first record end after this many)
BLOCK_BYTES = 256 * 1024

#: a quoted field as the csv module reads one (its default dialect, not strict): a quote opens one
#: only at a field's start (the block's, or after a comma or a line end); inside, a doubled
#: quote is a quote; it runs to the next single quote, or to the end of the data if none closes
#: it. A quote anywhere else is a character of the field, and so is what follows a closing
#: quote up to the next comma or line end, quotes included.
_QUOTED = re.compile(rb'(?<![^,\r\n])"[^"]*(?:""[^"]*)*(?:"|\Z)')

#: after the data while its quoted fields are taken out: a quoted field left open takes it too
_END = b"\x00"


class Block(NamedTuple):
    """Bytes ``start`` to ``end`` of a file: whole CSV records, the first of which is record
    ``record`` (the header being 1)."""

    start: int
    end: int
    record: int


def _line_ends(data: bytes) -> int:
    """Line ends in ``data``, as ``TextLines`` and ``open(newline="")`` split lines: ``\n``,
    ``\r`` or ``\r\n``."""
    if b"\r" not in data:
        return data.count(b"\n")
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _records(data: bytes) -> tuple[int, bool]:
    """(records, whether the last is closed) of ``data``, which starts on a record boundary:
    the line ends outside quoted fields, and one more for a last record that has no line end
    or a quoted field left open."""
    if b'"' not in data:
        body, closed = data, True
    else:
        body = _QUOTED.sub(b"", data + _END)
        closed = body.endswith(_END)
        body = body[:-1] if closed else body
    ends = _line_ends(body)
    return ends + (1 if data and (not closed or body[-1:] not in (b"\n", b"\r")) else 0), closed


def csv_blocks(path: Path, size: int = BLOCK_BYTES) -> Iterator[Block]:
    """The file's records in blocks of about ``size`` bytes, the header (its first record) in a
    block of its own. A block ends at a line end outside quoted fields (as the csv module reads
    them: ``_QUOTED``), so a quoted field that spans lines stays in one block, and its records
    are numbered as the csv module counts them. The file is read whole (police.uk's are tens of
    megabytes at most). ``ConfigError`` if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    n = len(data)
    eol = b"\n" if data.find(b"\n") >= 0 else b"\r"  # a file of \r line ends only: cut at those
    pos, record, want = 0, 1, 0  # the header first: to its first record end
    while pos < n:
        cut = pos + max(0, want - 1)  # a block of `want` bytes may end at its last
        while True:
            at = data.find(eol, cut)
            end = n if at < 0 else at + 1
            block = data[pos:end]
            records, closed = _records(block)
            if at < 0 or closed:
                break
            cut = end
        yield Block(pos, end, record)
        pos, record, want = end, record + records, size


def read_block(path: Path, block: Block) -> str:
    """The text of ``block``. ``ConfigError`` as ``TextLines`` words it for the file's first byte
    that is not UTF-8, if the block has one."""
    with path.open("rb") as f:
        f.seek(block.start)
        raw = f.read(block.end - block.start)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        with TextLines(path) as lines:
            for _ in lines:  # raises at the file's first byte that is not UTF-8
                pass
        raise
    if block.start == 0 and text.startswith(BOM):
        text = text[1:]
    return text
