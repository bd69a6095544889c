# The compiled event reader (streams/_event_reader.c); see streams.codec.
from streams.model import OutcomeEvent

def read(data: bytes, start: int, /) -> OutcomeEvent | None: ...
def configure(
    cls: type, slot_descriptors: tuple[object, ...], disposal_classes: tuple[str, ...], /
) -> None: ...
