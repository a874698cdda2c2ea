from __future__ import annotations

import numpy as np

from calibench.runtime.spill import SpillList


def test_batches_past_the_budget_go_to_disk_and_come_back_equal() -> None:
    rng = np.random.default_rng(0)
    batches: list[list[np.ndarray]] = [
        [rng.normal(size=(4, 100)).astype(np.float32), np.arange(3)] for _ in range(5)
    ]
    store = SpillList(budget=2 * batches[0][0].nbytes + 100)
    for batch in batches:
        store.append(batch)
    assert store.spilled and len(store) == 5
    assert store.held <= store.budget  # type: ignore[operator]
    for got, want in zip(store, batches, strict=True):
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
    folder = store._folder
    assert folder is not None and folder.exists()
    del store
    assert not folder.exists()  # removed with the list


def test_without_a_budget_everything_stays_in_memory() -> None:
    store = SpillList(budget=None)
    store.append([np.zeros(10)])
    assert not store.spilled and store[0][0].shape == (10,)
