"""rsft on a Dask cluster: the same blocked work as one process, spread over Dask tasks.

Install with ``pip install 'rsft[dask]'``. rsft grows no cluster of its own: these functions
build Dask graphs, and whichever scheduler is active runs them (the synchronous or threaded
scheduler, or a ``distributed.Client`` connected to any cluster).

Every function here follows the blocked-stream contract of :mod:`rsft._blocks`: the work is cut
into blocks, block ``b`` draws from ``child_generators(rng, n_blocks)[b]`` (``rng.spawn``), and
the results are put back in block order. So a result depends on the seed and the block layout,
never on the scheduler, the number of workers or the order in which tasks ran, and it equals
what one process computes with the same blocks:

* :func:`sample_array` ``(sampler, n, chunks, rng).compute()`` equals
  ``sampler.sample(n, rng, n_threads=1, block_size=chunks)``;
* :func:`accept` on rewards chunked by rows equals the acceptor's in-process blocked
  acceptance with the same row blocks;
* :func:`map_trainings` ``(make_trainer, grid, rounds, rng)`` equals
  ``[make_trainer(g).fit(rounds, rng=c) for g, c in zip(grid, rng.spawn(len(grid)))]``.

The children are spawned when the function is called (the caller's Generator then counts them,
as an in-process call would), not when the graph runs; each task draws from its own copy of its
child, so computing a result again (or a reduction of it) gives the same numbers. What is sent
to the workers travels by pickle: samplers, acceptors, and the functions given here must pickle,
so a lambda or a function defined inside another function is refused with a ``TypeError``
saying so.
"""

import copy
import pickle

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - the test extra installs dask
    raise ImportError("rsft.dask needs dask: pip install 'rsft[dask]'") from exc

import numpy as np

from . import _blocks, _validate

__all__ = ["sample_array", "accept", "map_trainings"]

#: the most tasks sample_array builds (a graph that large is a typo, e.g. n = 2**62 in chunks
#: of 16, whose list of blocks alone would fill the memory)
MAX_TASKS = 2 ** 24


def _require_picklable(obj, name):
    """Refuse, with a clear message, what cannot travel to a Dask worker."""
    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise TypeError(
            f"{name} must pickle to be sent to Dask workers, and it does not ({exc}). A "
            "lambda or a function defined inside another function cannot be pickled: use a "
            "function defined at module level (or an instance of a module-level class with "
            "__call__)") from None


def _own_copy(rng):
    """A task's own copy of its child Generator: the graph keeps the child's state, so every
    compute of the graph (the threaded and synchronous schedulers share its objects) draws the
    same numbers."""
    return copy.deepcopy(rng)


def _sample_block(sampler, size, rng):
    return sampler.sample(size, _own_copy(rng))


def sample_array(sampler, n, chunks, rng=None):
    """``n`` samples of ``sampler`` as a Dask array of chunks of ``chunks`` samples.

    Parameters
    ----------
    sampler : RejectionSampler
        Any rsft sampler (it travels to the workers by pickle).
    n : int
        Number of samples (``>= 0``).
    chunks : int
        Samples per chunk (``>= 1``; the last chunk shorter): the block size of the blocked
        stream.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness, normalised like ``numpy.random.default_rng``; its children are spawned now.

    Returns
    -------
    dask.array.Array
        float64, shape ``(n,)``. Chunk ``b`` is ``sampler.sample(len_b, children[b])``, so
        ``sample_array(s, n, c, seed).compute()`` equals
        ``s.sample(n, rng=seed, n_threads=1, block_size=c)`` bit for bit.
    """
    n = _validate.count(n)
    chunks = _validate.count(chunks, "chunks", minimum=1)
    rng = _validate.generator(rng)
    if not callable(getattr(sampler, "sample", None)):
        raise TypeError(f"sampler must be an rsft sampler with a sample(n, rng) method; got "
                        f"{type(sampler).__name__}")
    _require_picklable(sampler, "sampler")
    if -(-n // chunks) > MAX_TASKS:
        raise ValueError(f"n = {n} samples in chunks of {chunks} would make {-(-n // chunks)} "
                         f"tasks, more than {MAX_TASKS} (2**24): use larger chunks")
    bounds = _blocks.block_bounds(n, chunks)
    if not bounds:
        return da.zeros((0,), dtype=np.float64, chunks=(chunks,))
    refuse_hopeless = getattr(sampler, "_refuse_hopeless_blocks", None)
    if refuse_hopeless is not None:     # a hopeless budget fails now, as in one process
        refuse_hopeless(bounds)
    children = _blocks.child_generators(rng, len(bounds))
    sampler_node = dask.delayed(sampler, pure=True)
    blocks = [da.from_delayed(dask.delayed(_sample_block, pure=False)(sampler_node, stop - start,
                                                                      child),
                              shape=(stop - start,), dtype=np.float64)
              for (start, stop), child in zip(bounds, children)]
    return da.concatenate(blocks)


def _accept_block(acceptor, rewards, rng, round, groups, keys, where):
    try:
        return acceptor.accept(rewards, _own_copy(rng), round, groups=groups, keys=keys).mask
    except ValueError as exc:
        # positions in the message are the block's own: say which block it is
        raise ValueError(f"{where}: {exc}") from None


def _label_span(labels):
    """``(number of distinct labels, lowest, highest)`` of one partition's group labels."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return 0, 0, -1
    return int(np.unique(labels).size), int(labels.min()), int(labels.max())


def _blocks_of_groups(groups):
    """The number of groups of each partition of grouped rewards, after checking that the
    partitions are the blocked stream's blocks: each holds whole groups, the partitions are in
    ascending label order, and each but the last holds the same number of groups."""
    spans = dask.compute(*[dask.delayed(_label_span)(groups.blocks[b])
                           for b in range(groups.numblocks[0])])
    size = spans[0][0]
    for b, (n, lo, hi) in enumerate(spans):
        if b and lo <= spans[b - 1][2]:
            raise ValueError(
                f"grouped rewards must be partitioned by group, partitions in ascending label "
                f"order (partition {b} holds label {lo}, not above partition {b - 1}'s highest "
                f"label {spans[b - 1][2]}): sort the candidates by label and cut between groups")
        if (n != size and b < len(spans) - 1) or n > size or n == 0:
            raise ValueError(
                f"grouped rewards must be partitioned into partitions of the same number of "
                f"groups (the last one fewer), as the blocked stream's blocks are; partition "
                f"{b} holds {n} groups, partition 0 holds {size}")
    return [n for n, _, _ in spans]


def accept(acceptor, rewards, rng=None, round=0, *, groups=None, keys=None):
    """The mask of ``acceptor`` on Dask rewards, one task per block of groups.

    Parameters
    ----------
    acceptor : Acceptor
        Any rsft reward acceptor (it travels to the workers by pickle: a schedule given as a
        lambda does not; use a module-level function).
    rewards : dask.array.Array
        Rectangular ``(n_contexts, n_candidates)``, chunked by rows: every row chunk but the
        last has the same length ``c`` (the columns are brought into one chunk). Or 1-D with
        ``groups=``, partitioned by group: each partition holds whole groups, the partitions
        in ascending label order, each but the last with the same number ``c`` of groups.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness; its children are spawned now, one per block.
    round : int, default 0
        Training round (for a schedule).
    groups : dask.array.Array of int, optional
        The group label of every candidate of 1-D rewards (chunked like them).
    keys : dask.array.Array or array_like of int, optional
        Deduplication keys of the rewards' shape (chunked like the rewards).

    Returns
    -------
    dask.array.Array of bool
        The mask, chunked like the rewards' rows (or partitions). It equals
        ``acceptor.accept(rewards, rng, round, groups=groups, keys=keys, block_size=c).mask``
        on the computed arrays: chunk ``b`` is block ``b`` of the acceptor's blocked stream.
        For grouped rewards the labels are read once (a first, small Dask pass) to check the
        partitioning.

    Raises
    ------
    ValueError
        As ``acceptor.accept`` would, with one difference: an error found in the data (a NaN
        reward, a reward above ``r_max``) is raised by the block that found it, named in the
        message with positions counted within that block, and when several blocks hold bad
        data, which of them is reported depends on the order the scheduler ran them in.
    """
    if not callable(getattr(acceptor, "accept", None)):
        raise TypeError(f"acceptor must be an rsft acceptor (Threshold, Quantile, TopK, "
                        f"StatisticalRS, RSO); got {type(acceptor).__name__}")
    if not isinstance(rewards, da.Array):
        raise TypeError(f"rewards must be a dask.array.Array chunked by rows (or by groups); "
                        f"got {type(rewards).__name__} (in one process, call acceptor.accept)")
    round = _validate.count(round, "round")
    if groups is None:
        if rewards.ndim != 2:
            raise ValueError(f"rewards must be 2-D (n_contexts, n_candidates), or 1-D with "
                             f"groups=; got {rewards.ndim}-D shape {rewards.shape}")
        rows = rewards.chunks[0]
        if any(c != rows[0] for c in rows[:-1]) or (len(rows) > 1 and rows[-1] > rows[0]):
            raise ValueError(f"rewards must be chunked by rows into chunks of one length (the "
                             f"last one shorter), as the blocked stream's blocks are; got row "
                             f"chunks {rows} (rechunk with rewards.rechunk(({rows[0]}, -1)))")
        rewards = rewards.rechunk((rows, -1))
    else:
        if rewards.ndim != 1:
            raise ValueError(f"with groups=, rewards must be 1-D (one reward per candidate), "
                             f"got {rewards.ndim}-D shape {rewards.shape}")
        groups = da.asarray(groups)
        if groups.shape != rewards.shape:
            raise ValueError(f"groups must have the rewards' shape {rewards.shape}, got shape "
                             f"{groups.shape}")
        groups = groups.rechunk(rewards.chunks)
    if keys is not None:
        keys = da.asarray(keys)
        if keys.shape != rewards.shape:
            raise ValueError(f"keys must have the rewards' shape {rewards.shape}, got shape "
                             f"{keys.shape}")
        keys = keys.rechunk(rewards.chunks)
    rng = _validate.generator(rng)
    _require_picklable(acceptor, "acceptor")
    for_groups = getattr(acceptor, "_for_groups", None)
    if groups is None:
        # what the acceptor refuses for any rows (k above the candidates per row, a bad
        # schedule value) is refused now, as in one process, even with no rows to run
        none = acceptor if for_groups is None else for_groups(0, 0, rewards.shape[0], True)
        none.accept(np.empty((0, rewards.shape[1])), np.random.default_rng(0), round)
    n_blocks = rewards.numblocks[0] if rewards.shape[0] else 0
    if groups is None:
        group_counts = rewards.chunks[0]
    else:
        group_counts = _blocks_of_groups(groups) if n_blocks else []
    # block b gets the acceptor of its own groups (per-group parameters such as
    # StatisticalRS's r_max sliced), as the in-process blocked acceptance gives it
    firsts = np.r_[0, np.cumsum(group_counts, dtype=np.int64)]
    parts_of_acceptor = [acceptor] * n_blocks if for_groups is None else [
        for_groups(int(firsts[b]), int(firsts[b + 1]), int(firsts[-1]), groups is None)
        for b in range(n_blocks)]
    children = _blocks.child_generators(rng, n_blocks) if n_blocks else []
    blocks = []
    for b, child in enumerate(children):
        index = (b,) if rewards.ndim == 1 else (b, 0)
        block = rewards.blocks[index]
        parts = [None if a is None else a.blocks[index] for a in (groups, keys)]
        acceptor_node = dask.delayed(parts_of_acceptor[b], pure=True)
        where = (f"block {b} (groups {firsts[b]} to {firsts[b + 1] - 1}, positions within the "
                 "block)")
        blocks.append(da.from_delayed(
            dask.delayed(_accept_block, pure=False)(acceptor_node, block, child, round, *parts,
                                                    where),
            shape=block.shape, dtype=np.bool_))
    if not blocks:
        return da.zeros(rewards.shape, dtype=np.bool_)
    return da.concatenate(blocks, axis=0)


def _train(make_trainer, setting, rounds, rng):
    trainer = make_trainer(setting)
    if not callable(getattr(trainer, "fit", None)):
        raise TypeError(f"make_trainer(setting) must return an rsft trainer (RSFTTrainer or "
                        f"DensityTrainer); for setting {setting!r} it returned "
                        f"{type(trainer).__name__}")
    return trainer.fit(rounds, rng=rng)


def map_trainings(make_trainer, grid, rounds, rng=None, *, scheduler=None):
    """Run one RSFT training per setting of ``grid`` as Dask tasks; return their histories.

    Parameters
    ----------
    make_trainer : callable
        ``make_trainer(setting) -> trainer`` (a :class:`rsft.RSFTTrainer` or
        :class:`rsft.DensityTrainer`), called on the worker. It must pickle: a module-level
        function.
    grid : iterable
        The settings (e.g. ``[(beta, seed), ...]``); each must pickle.
    rounds : int
        Rounds of each training (``trainer.fit(rounds, ...)``).
    rng : None, int, SeedSequence, BitGenerator or Generator
        Training ``i`` draws from ``child_generators(rng, len(grid))[i]`` (``rng.spawn``).
    scheduler : str, optional
        Passed to ``dask.compute`` (``"sync"``, ``"threads"``, ``"processes"``); by default the
        active one (a ``distributed.Client`` when one is connected).

    Returns
    -------
    list of History
        In grid order, equal to
        ``[make_trainer(g).fit(rounds, rng=c) for g, c in zip(grid, children)]``.
    """
    if not callable(make_trainer):
        raise TypeError(f"make_trainer must be callable (setting -> trainer); got "
                        f"{type(make_trainer).__name__}")
    _require_picklable(make_trainer, "make_trainer")
    try:
        grid = list(grid)
    except TypeError:
        raise TypeError(f"grid must be an iterable of settings; got {type(grid).__name__}") \
            from None
    _require_picklable(grid, "grid")
    rounds = _validate.count(rounds, "rounds", minimum=1)
    rng = _validate.generator(rng)
    if not grid:
        return []
    children = _blocks.child_generators(rng, len(grid))
    tasks = [dask.delayed(_train, pure=False)(make_trainer, setting, rounds, child)
             for setting, child in zip(grid, children)]
    return list(dask.compute(*tasks, scheduler=scheduler))
