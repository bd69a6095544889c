"""Two workers in one consumer group share the partitions; either answers for all of them."""

from streams.simulate import simulate

from .conftest import Deployment, expected_counts, reference_category


def test_two_workers_each_answer_for_all_partitions(deployment: Deployment) -> None:
    events = list(simulate(8000, seed=41))
    deployment.produce(events)
    a = deployment.start_worker("a")
    b = deployment.start_worker("b")
    deployment.wait()
    expected = expected_counts(events, reference_category)
    for _ in range(60):  # until the group has settled with both members owning partitions
        ha, hb = a.get("/healthz"), b.get("/healthz")
        if ha["status"] == hb["status"] == "ok" and ha["partitions"] and hb["partitions"]:
            break
        import time

        time.sleep(1)
    assert set(ha["partitions"]).isdisjoint(hb["partitions"])
    assert sorted(ha["partitions"] + hb["partitions"]) == list(range(deployment.settings.partitions))
    for w in (a, b):
        data = w.get("/api/counts?group_by=force&window=all")
        assert data["workers"] == 2
        assert deployment.counts(w) == expected
