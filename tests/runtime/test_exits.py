"""One mapping of errors to exit codes, for the counting loop and both rebalance callbacks."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.errors import StorageError
from streams.runtime import loop
from streams.runtime.exits import ExitCode
from streams.runtime.outbox import ProduceFailed


class Left(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (StorageError("disk full"), ExitCode.STORAGE),
        (ProduceFailed("not acknowledged"), ExitCode.STALLED),
        # a Kafka error is a reason to restart wherever it arrives, a revocation included (it was 70)
        (KafkaConnectionError("broker away"), ExitCode.STALLED),
        (KeyError("x"), ExitCode.BUG),
    ],
)
@pytest.mark.parametrize("doing", ["in the counting loop", "while partitions were revoked"])
def test_each_error_leaves_with_its_code(
    monkeypatch: pytest.MonkeyPatch, exc: Exception, code: ExitCode, doing: str
) -> None:
    def leave(got: ExitCode, message: str, *, exc_info: bool = False) -> None:
        raise Left(got, message)

    monkeypatch.setattr(loop, "leave", leave)
    with pytest.raises(Left) as info:
        loop.leave_on(exc, doing)
    assert info.value.args[0] == code
    assert doing in info.value.args[1] or code == ExitCode.STORAGE
