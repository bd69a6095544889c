"""Replication of the topics the project creates: from the cluster's size unless set."""

import time

import pytest

from streams.errors import ConfigError
from streams.producer import replication_of
from streams.settings import load_settings


@pytest.mark.parametrize(
    ("env", "brokers", "expected"),
    [
        ({}, 1, (1, 1)),
        ({}, 2, (2, 1)),
        ({}, 3, (3, 2)),
        ({}, 5, (3, 2)),  # at most three copies unless asked
        ({"replication_factor": 5}, 5, (5, 4)),
        ({"replication_factor": 3, "min_insync_replicas": 3}, 3, (3, 3)),
        ({"replication_factor": 1}, 3, (1, 1)),
    ],
)
def test_replication_follows_the_cluster_unless_set(
    env: dict[str, int], brokers: int, expected: tuple[int, int]
) -> None:
    assert replication_of(load_settings(**env), brokers) == expected


@pytest.mark.parametrize(
    ("env", "brokers", "named"),
    [
        ({"replication_factor": 3}, 1, "DW_REPLICATION_FACTOR=3, but the cluster at DW_KAFKA has 1 broker"),
        ({"replication_factor": 2, "min_insync_replicas": 3}, 3, "DW_MIN_INSYNC_REPLICAS=3"),
    ],
)
def test_impossible_replication_is_named(env: dict[str, int], brokers: int, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        replication_of(load_settings(**env), brokers)


def test_topics_are_created_again_while_a_new_cluster_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster that has just started may name a controller the answering broker does not know
    yet: the creation is asked again with a new client, and other errors are not retried."""
    from kafka.errors import TopicAuthorizationFailedError, UnknownBrokerIdError

    from streams import producer

    class Client:
        def __init__(self, failures: list[Exception]) -> None:
            self.failures, self.closed, self.created = failures, False, 0

        def create_topics(self, new: list[object], timeout_ms: int) -> None:
            if self.failures:
                raise self.failures.pop(0)
            self.created += 1

        def close(self) -> None:
            self.closed = True

    made: list[Client] = []

    def fresh(settings: object) -> Client:
        made.append(Client([]))
        return made[-1]

    monkeypatch.setattr(producer, "admin", fresh)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    first = Client([UnknownBrokerIdError(2)])
    got = producer._create_topics(None, first, ["t"])  # type: ignore[arg-type]
    assert first.closed and got is made[0] and made[0].created == 1
    with pytest.raises(TopicAuthorizationFailedError):
        producer._create_topics(None, Client([TopicAuthorizationFailedError()]), ["t"])  # type: ignore[arg-type]
