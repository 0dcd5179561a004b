"""Reference (numpy) sampler kernels: the executable specification of ``_kernels/sampler.pxi``.

The program's row layout, codes and constants are declared in :mod:`rsft._program` (read its
docstring for the formula of a row). Kernels do arithmetic only (no validation, no defaults);
the public layer checks inputs first. Same Generator state and arguments => the same output
arrays, bit for bit, on both backends.

Acceptance test (identical on both backends): with ``u`` from ``Generator.random`` and
``v = 1 - u`` (exact, in (0, 1]), accept iff ``v <= exp(g)``. In log mode it is evaluated with
``E = 1 + g*g/2`` and ``O = g*(1 + g*g/6)``: ``E + O`` and ``E - O`` are the cubic Taylor
polynomials of ``exp(g)`` and ``exp(-g)``, lower bounds of both for every real ``g``::

    accept if v <= E + O
    reject if v * (E - O) > 1         (exp(-g) >= E - O)
    otherwise accept iff log(v) <= g  (a few percent of proposals)

In product mode the ratio ``r = exp(g)`` itself is computed and ``v <= r`` is the test.

Random stream: proposals are drawn in chunks; per chunk, first ``c`` proposal draws, then ``c``
uniforms. The chunk length depends only on counts (see :func:`chunk_length`), never on timing
or threads. The blocked stream (:func:`rejection_sample_blocks`) runs one such stream per block,
each from its own child Generator (derived in :mod:`rsft._blocks`).
"""

import math

import numpy as np

from .._program import MAX_CHUNK, MIN_CHUNK, TLOG_SLOTS, ABS_SLOTS, Proposal, Row, Status

__all__ = ["draw_proposals", "log_ratio", "accept_test", "chunk_length", "rejection_sample",
           "rejection_sample_blocks"]


def draw_proposals(rng, code, params, out):
    """Fill ``out`` with proposal draws of family ``code`` (see :class:`rsft._program.Proposal`
    for each family's formula and ``params``)."""
    c = out.shape[0]
    if code == Proposal.NORMAL:
        out[:] = params[0] + params[1] * rng.standard_normal(c)
    elif code == Proposal.UNIFORM:
        out[:] = params[0] + params[1] * rng.random(c)
    elif code == Proposal.EXPONENTIAL:
        out[:] = params[0] * rng.standard_exponential(c)
    elif code == Proposal.LAPLACE:
        out[:] = params[0] + params[1] * rng.laplace(0.0, 1.0, c)
    elif code == Proposal.GAMMA:
        out[:] = params[1] * rng.standard_gamma(params[0], c)
    else:
        out[:] = params[1] + params[2] * rng.standard_t(params[0], c)


def power(x, k):
    """``x**k`` for an integer ``0 <= k``, by binary exponentiation (the C kernel's order)."""
    result = np.ones_like(x)
    base = x
    k = int(k)
    while k:
        if k & 1:
            result = result * base
        k >>= 1
        if k:
            base = base * base
    return result


def in_support(row, x):
    return (x >= row[Row.SUPPORT_LOW]) & (x <= row[Row.SUPPORT_HIGH])


def product_ratio(row, x):
    """Product mode: the ratio ``exp(g)`` itself (0 outside the support)."""
    r = (row[Row.EXP_CONST] * power(x, row[Row.LOG_X_COEF])
         * power(1.0 - x, row[Row.LOG1M_X_COEF]))
    return np.where(in_support(row, x), r, 0.0)


def eval_row_on_support(row, x):
    """``g(x)`` of one program row at points ``x`` of its support (an array, or a Python float:
    the same IEEE operations either way). :func:`eval_row` adds the support test; this is the
    one evaluation of a row's terms on this backend, and ``rsft._envelope`` uses it too."""
    y = x - row[Row.CENTER]
    g = row[Row.CONST] + y * (row[Row.LIN_COEF] + y * row[Row.QUAD_COEF])
    if row[Row.QUADRATIC_ONLY]:
        return g
    with np.errstate(divide="ignore", invalid="ignore"):
        for coef, at in ABS_SLOTS:
            if row[coef] != 0.0:
                g = g + row[coef] * np.abs(x - row[at])
        for coef, at, k in TLOG_SLOTS:
            if row[coef] != 0.0:
                d = x - row[at]
                g = g + row[coef] * np.log1p(d * d * row[k])
        if row[Row.LOG_X_COEF] != 0.0:
            g = g + row[Row.LOG_X_COEF] * np.log(x)
        if row[Row.LOG1M_X_COEF] != 0.0:
            g = g + row[Row.LOG1M_X_COEF] * np.log1p(-x)
    return g


def eval_row(row, x):
    """``g(x)`` of one program row at the points ``x`` (float64 array); ``-inf`` outside the
    support."""
    return np.where(in_support(row, x), eval_row_on_support(row, x), -np.inf)


def log_ratio(prog, x, out):
    """Evaluate the program ``prog`` (K, ROW_LEN) at ``x`` into ``out`` (max-subtracted
    log-sum-exp over the rows; one row needs no reduction)."""
    k = prog.shape[0]
    if k == 1:
        out[:] = eval_row(prog[0], x)
        return
    gs = np.stack([eval_row(prog[j], x) for j in range(k)])
    m = gs[0].copy()
    for j in range(1, k):
        m = np.maximum(m, gs[j])
    s = np.zeros_like(m)
    finite = m > -np.inf
    safe_m = np.where(finite, m, 0.0)
    for j in range(k):
        s = s + np.exp(gs[j] - safe_m)
    with np.errstate(divide="ignore"):
        out[:] = np.where(finite, safe_m + np.log(s), -np.inf)


def accept_test(g, u):
    """Vectorised acceptance decisions for log-ratios ``g`` and uniforms ``u`` in [0, 1)."""
    v = 1.0 - u
    # |g| > 1e154 overflows g2 to inf: then e + o is inf (g > 0: accept) or NaN and e - o is inf
    # (g < 0: reject), the decisions the C kernel makes
    with np.errstate(over="ignore", invalid="ignore"):
        g2 = g * g
        e = 1.0 + 0.5 * g2
        o = g * (1.0 + g2 * (1.0 / 6.0))
        acc = v <= e + o
        rej = v * (e - o) > 1.0
    mid = ~(acc | rej)
    if mid.any():
        acc[mid] = np.log(v[mid]) <= g[mid]
    return acc


def chunk_length(remaining, n_examined, n_accepted, prior_rate, n_dry, budget_left):
    """Number of proposals in the next chunk (identical arithmetic in C).

    The expected proposals per acceptance are estimated by ``n_examined / n_accepted`` once
    something was accepted, else by ``prior_rate * 2**n_dry`` (``n_dry``: chunks so far without
    an acceptance); the chunk covers 1.1 times the remaining need plus ``MIN_CHUNK``, capped by
    ``MAX_CHUNK`` and the budget.
    """
    if n_accepted > 0:
        rate = n_examined / n_accepted
    else:
        rate = prior_rate
        for _ in range(min(n_dry, 60)):
            rate = rate * 2.0
    c = remaining * rate * 1.1 + MIN_CHUNK
    if c > MAX_CHUNK:
        c = MAX_CHUNK
    c = int(c)
    if c > budget_left:
        c = budget_left
    return c


def rejection_sample(rng, code, params, prog, logp, n, prior_rate, max_proposals,
                     stop_on_violation, violation_tol, out):
    """Rejection sampling into ``out[:n]``.

    ``logp`` is None for a built-in target (``prog`` is the whole log-ratio) or a callable
    returning a float64 array of log-densities for a chunk (``prog`` is ``-log q - log M``).
    A proposal with ``g > violation_tol`` (product mode: ratio ``> 1 + violation_tol``) is a
    violation; with ``stop_on_violation`` the scan stops there (the proposal is not accepted).
    Returns ``(n_proposed, n_accepted, max_log_ratio, x_at_max, status)``; ``n_proposed`` counts
    proposals examined up to the n-th acceptance (or up to the violation / budget end).
    """
    product = logp is None and prog.shape[0] == 1 and prog[0, Row.PRODUCT_MODE] == 1.0
    n_acc = 0
    n_exam = 0
    n_drawn = 0
    n_dry = 0
    max_g = 0.0 if product else -np.inf
    x_max = np.nan
    status = Status.OK
    while n_acc < n:
        c = chunk_length(n - n_acc, n_exam, n_acc, prior_rate, n_dry, max_proposals - n_drawn)
        if c <= 0:
            status = Status.BUDGET
            break
        x = np.empty(c)
        draw_proposals(rng, code, params, x)
        u = rng.random(c)
        n_drawn += c
        if product:
            g = product_ratio(prog[0], x)        # the ratio itself; "violation" is g > 1
            acc = 1.0 - u <= g
            bound = 1.0 + violation_tol
        else:
            g = np.empty(c)
            log_ratio(prog, x, g)
            if logp is not None:
                g = logp(x) + g
            acc = accept_test(g, u)
            bound = violation_tol
        end = c  # examined length of this chunk
        viol = np.flatnonzero(g > bound) if stop_on_violation else np.empty(0, np.intp)
        cum = np.cumsum(acc)
        full = np.flatnonzero(cum >= n - n_acc)
        if full.size:
            end = int(full[0]) + 1
        if viol.size and viol[0] < end:
            end = int(viol[0]) + 1
            status = Status.VIOLATION
            acc[end - 1] = False
        i = int(np.argmax(g[:end]))
        if g[i] > max_g:
            max_g = float(g[i])
            x_max = float(x[i])
        sel = x[:end][acc[:end]]
        out[n_acc:n_acc + sel.shape[0]] = sel
        n_acc += sel.shape[0]
        n_exam += end
        if status != Status.OK:
            break
        if n_acc == 0:
            n_dry += 1
    if product:
        max_g = math.log(max_g) if max_g > 0.0 else -math.inf
    return n_exam, n_acc, max_g, x_max, int(status)


def rejection_sample_blocks(children, code, params, prog, logp, block_stops, prior_rate, budgets,
                            stop_on_violation, violation_tol, out, n_threads):
    """The blocked stream: block ``b`` is :func:`rejection_sample` of ``children[b]`` into
    ``out[block_stops[b-1]:block_stops[b]]`` (from 0 for the first block) with the budget
    ``budgets[b]``, the blocks one after another (``n_threads`` only says how many threads the
    compiled core may use; the result does not depend on it).

    Returns ``(n_proposed, n_accepted, max_log_ratio, x_at_max, status)``, one array each,
    indexed by block. The blocks up to the first that does not end with ``Status.OK`` are
    complete; later blocks may not have run (their entries are then 0, 0, -inf, nan, OK).
    """
    n_blocks = block_stops.shape[0]
    n_exam = np.zeros(n_blocks, dtype=np.intp)
    n_acc = np.zeros(n_blocks, dtype=np.intp)
    max_g = np.full(n_blocks, -np.inf)
    x_max = np.full(n_blocks, np.nan)
    status = np.zeros(n_blocks, dtype=np.intp)
    results = (n_exam, n_acc, max_g, x_max, status)
    start = 0
    for b in range(n_blocks):
        stop = int(block_stops[b])
        row = rejection_sample(children[b], code, params, prog, logp, stop - start, prior_rate,
                               int(budgets[b]), stop_on_violation, violation_tol, out[start:stop])
        for column, value in zip(results, row):
            column[b] = value
        if status[b] != Status.OK:
            break
        start = stop
    return results
