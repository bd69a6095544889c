"""Input files read as text one line at a time, so that a byte that is not UTF-8 stops the run
with one line naming the file, the line and the encoding expected (``ConfigError``), not with a
traceback from deep inside a decoder."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from streams.errors import ConfigError

BOM = "\ufeff"


class TextLines:
    """The lines of a UTF-8 file (line endings kept, as ``open(newline="")`` keeps them; a byte
    order mark at the start is dropped). Iterate it; ``line`` is the number of the line last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = path.open("rb")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        self.line = 0

    def __iter__(self) -> TextLines:
        return self

    def __next__(self) -> str:
        raw = next(self._file)
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
