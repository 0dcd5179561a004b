"""Blocked streams: the one place where work is cut into blocks and each block gets its stream.

A blocked computation cuts its work into fixed-size blocks (accepted samples for a sampler;
later, contexts for the reward acceptors and chunks for ``rsft.dask``), draws block ``b`` from
its own child Generator and concatenates the results in block order. Results then depend on the
seed and the block size, never on the thread count, the scheduler or the number of workers.

Child streams (the contract, identical on both backends)::

    children = rng.spawn(n_blocks)      # block b draws from children[b]

``Generator.spawn`` spawns ``n_blocks`` children of the bit generator's ``SeedSequence``
(``rng.bit_generator.seed_seq.spawn(n_blocks)``), each seeding a new bit generator of the same
type. It does not draw from ``rng``: the caller's Generator keeps its state, but its seed
sequence counts the children spawned so far, so a second call with the same Generator gets new
children (a seed given as an int gives a fresh Generator each call, hence the same children).
A bit generator without a spawnable ``SeedSequence`` (e.g. a third-party bit generator seeded
another way) gets ``SeedSequence(rng.integers(0, 2**64, size=4, dtype=np.uint64))`` instead,
which advances ``rng`` by those four draws, and that sequence spawns the children.
"""

import numpy as np

__all__ = ["DEFAULT_BLOCK_SIZE", "PARALLEL_MIN_ELEMENTS", "block_bounds", "child_generators",
           "run_in_threads"]

#: the default block length (of accepted samples, for a sampler)
DEFAULT_BLOCK_SIZE = 65536

#: an element-wise pass (optimizer step, loss) over fewer elements than this runs on one thread
#: whatever ``n_threads`` says: it takes well under a millisecond, less than waking a second
#: thread can cost when another process occupies that thread's core (the pass then waits for
#: it). Results never depend on it.
PARALLEL_MIN_ELEMENTS = 1 << 18


def block_bounds(n, block_size):
    """``[(start, stop), ...]`` of the blocks of ``range(n)``: ``ceil(n / block_size)`` blocks of
    ``block_size`` items, the last one shorter (no block for ``n == 0``)."""
    return [(start, min(start + block_size, n)) for start in range(0, n, block_size)]


def child_generators(rng, n_blocks):
    """The ``n_blocks`` child Generators of ``rng``, block ``b`` drawing from the ``b``-th (see the
    module docstring for the derivation)."""
    try:
        return rng.spawn(n_blocks)
    except TypeError:
        # seed_seq is not a SeedSequence (numpy raises TypeError "...not spawnable")
        seed = np.random.SeedSequence(rng.integers(0, 2**64, size=4, dtype=np.uint64))
        bit_generator = type(rng.bit_generator)
        return [np.random.Generator(bit_generator(child)) for child in seed.spawn(n_blocks)]


def run_in_threads(run_block, n_blocks, n_threads):
    """``[run_block(b) for b in range(n_blocks)]``, the blocks spread over up to ``n_threads``
    Python threads (worth it when ``run_block`` releases the GIL for its work, as the compiled
    kernels do). Results come back in block order; the first exception in block order is
    raised after every block has finished. An exception in the calling thread while it waits
    (KeyboardInterrupt for Ctrl-C) drops the blocks not started and is raised at once; the
    blocks already running finish in the background."""
    if n_threads <= 1 or n_blocks <= 1:
        return [run_block(b) for b in range(n_blocks)]
    from concurrent.futures import ThreadPoolExecutor, wait
    pool = ThreadPoolExecutor(max_workers=min(n_threads, n_blocks),
                              thread_name_prefix="rsft-block")
    try:
        futures = [pool.submit(run_block, b) for b in range(n_blocks)]
        wait(futures)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [f.result() for f in futures]
