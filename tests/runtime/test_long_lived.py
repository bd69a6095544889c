"""The counting loop keeps the cyclic garbage collector off what survives a checkpoint, and
still frees cyclic garbage that was frozen, at its full collections."""

import gc
import weakref

from streams.runtime.loop import LongLived


class Node:
    pass


def test_frozen_cycles_are_freed_at_the_next_full_collection() -> None:
    was_enabled = gc.isenabled()
    gc.disable()  # nothing may collect the cycle before it is frozen
    try:
        node = Node()
        node.me = node  # type: ignore[attr-defined]
        ref = weakref.ref(node)
        del node
        long_lived = LongLived(every_s=3600)
        long_lived.after_checkpoint()
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert ref() is not None  # frozen: the collector does not see it
        long_lived.every_s = 0  # the full collection is due
        long_lived.after_checkpoint()
        assert ref() is None
        assert gc.get_freeze_count() > 0  # and what lives is frozen again
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
