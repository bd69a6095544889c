# The compiled event reader (streams/codec/_event_reader.c); see streams.codec.events.
from streams.model import OutcomeEvent

def read(data: bytes, start: int, /) -> OutcomeEvent | None: ...
def configure(
    cls: type, slot_descriptors: tuple[object, ...], disposal_classes: tuple[str, ...], /
) -> None: ...
