"""Input files read as text one line at a time, so that a byte that is not UTF-8 stops the run
with one line naming the file, the line and the encoding expected (``ConfigError``), not with a
traceback from deep inside a decoder."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

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
