"""Pure-numpy reference kernels: the executable specification of ``rsft._core``.

Every function here has a twin with the same name and signature in ``_core.pyx``. Kernels do
arithmetic only (no validation, no defaults); the public layer checks inputs first.
Same Generator state and arguments => the same output arrays, bit for bit, on both backends.

Log-ratio programs
------------------
A built-in (target, proposal) pair is compiled by :mod:`rsft._envelope` into a *program*: a
C-contiguous float64 array of shape ``(K, PROG_LEN)``, one row per target component (K = 1 except
for mixtures). Row ``k`` evaluates, with ``y = x - v``::

    g_k(x) = c0 + y*(c1 + y*c2)
             + ca1*|x - ma1| + ca2*|x - ma2|
             + ct1*log1p((x - mt1)*(x - mt1)*kt1) + ct2*log1p((x - mt2)*(x - mt2)*kt2)
             + cb1*log(x) + cb2*log1p(-x)           (terms with a zero coefficient are skipped)
    g_k(x) = -inf outside [lo, hi]

and ``g = g_0`` (K = 1) or ``g = m + log(sum_k exp(g_k - m))``, ``m = max_k g_k``. ``g`` is
``log p(x) - log q(x) - log M``; ``log M`` and the mixture weights are already folded into ``c0``.
For a callable target the program holds only ``-log q(x) - log M`` and ``g = logp(x) + g_0(x)``.

Product mode (``MODE = 1``, one row whose only terms are ``c0`` and Beta logs with integer
exponents ``0 <= cb <= 64``, e.g. a Beta(2, 5) target from a Uniform proposal): the ratio
itself, ``r = E0 * x**cb1 * (1 - x)**cb2`` with ``E0 = exp(c0)`` and the powers by binary
exponentiation (:func:`ipow`), is compared with ``v``: no transcendental function per proposal.

Acceptance test (identical on both backends): with ``u`` from ``Generator.random`` and
``v = 1 - u`` (exact, in (0, 1]), accept iff ``v <= exp(g)``. In log mode it is evaluated with
``E = 1 + g*g/2`` and ``O = g*(1 + g*g/6)``: ``E + O`` and ``E - O`` are the cubic Taylor
polynomials of ``exp(g)`` and ``exp(-g)``, lower bounds of both for every real ``g``::

    accept if v <= E + O
    reject if v * (E - O) > 1         (exp(-g) >= E - O)
    otherwise accept iff log(v) <= g  (a few percent of proposals)

Random stream
-------------
Proposals are drawn in chunks; per chunk, first ``c`` proposal draws, then ``c`` uniforms. The
chunk length depends only on counts (see :func:`chunk_length`), never on timing or threads.
"""

import math

import numpy as np

PROG_LEN = 20
(V, C0, C1, C2, CA1, MA1, CA2, MA2, CT1, MT1, KT1, CT2, MT2, KT2, CB1, CB2, LO, HI, MODE,
 E0) = range(PROG_LEN)
MAX_POW = 64

# Proposal family codes and their draw (each a single Generator method call per chunk):
NORMAL, UNIFORM, EXPONENTIAL, LAPLACE, STUDENT_T = range(5)

MAX_CHUNK = 65536
MIN_CHUNK = 64

OK, VIOLATION, BUDGET = 0, 1, 2


def draw_proposals(rng, code, params, out):
    """Fill ``out`` with proposal draws; ``params`` = (p0, p1, p2, p3).

    normal: p0 + p1*standard_normal; uniform: p0 + p1*random (p1 = high - low);
    exponential: p0*standard_exponential; laplace: p0 + p1*laplace(0, 1);
    student t: p1 + p2*standard_t(p0).
    """
    c = out.shape[0]
    if code == NORMAL:
        out[:] = params[0] + params[1] * rng.standard_normal(c)
    elif code == UNIFORM:
        out[:] = params[0] + params[1] * rng.random(c)
    elif code == EXPONENTIAL:
        out[:] = params[0] * rng.standard_exponential(c)
    elif code == LAPLACE:
        out[:] = params[0] + params[1] * rng.laplace(0.0, 1.0, c)
    else:
        out[:] = params[1] + params[2] * rng.standard_t(params[0], c)


def ipow(x, k):
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


def _ratio_row(row, x):
    """Product mode: ``exp(g)`` directly (0 outside the support)."""
    r = row[E0] * ipow(x, row[CB1]) * ipow(1.0 - x, row[CB2])
    inside = (x >= row[LO]) & (x <= row[HI])
    return np.where(inside, r, 0.0)


def _eval_row(row, x):
    y = x - row[V]
    g = row[C0] + y * (row[C1] + y * row[C2])
    if row[CA1] != 0.0:
        g = g + row[CA1] * np.abs(x - row[MA1])
    if row[CA2] != 0.0:
        g = g + row[CA2] * np.abs(x - row[MA2])
    with np.errstate(divide="ignore", invalid="ignore"):
        if row[CT1] != 0.0:
            d = x - row[MT1]
            g = g + row[CT1] * np.log1p(d * d * row[KT1])
        if row[CT2] != 0.0:
            d = x - row[MT2]
            g = g + row[CT2] * np.log1p(d * d * row[KT2])
        if row[CB1] != 0.0:
            g = g + row[CB1] * np.log(x)
        if row[CB2] != 0.0:
            g = g + row[CB2] * np.log1p(-x)
    inside = (x >= row[LO]) & (x <= row[HI])
    return np.where(inside, g, -np.inf)


def log_ratio(prog, x, out):
    """Evaluate the program ``prog`` (K, PROG_LEN) at ``x`` into ``out``."""
    k = prog.shape[0]
    if k == 1:
        out[:] = _eval_row(prog[0], x)
        return
    gs = np.stack([_eval_row(prog[j], x) for j in range(k)])
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
    g2 = g * g
    e = 1.0 + 0.5 * g2
    o = g * (1.0 + g2 * (1.0 / 6.0))
    with np.errstate(invalid="ignore"):
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
    product = logp is None and prog.shape[0] == 1 and prog[0, MODE] == 1.0
    n_acc = 0
    n_exam = 0
    n_drawn = 0
    n_dry = 0
    max_g = 0.0 if product else -np.inf
    x_max = np.nan
    status = OK
    while n_acc < n:
        c = chunk_length(n - n_acc, n_exam, n_acc, prior_rate, n_dry, max_proposals - n_drawn)
        if c <= 0:
            status = BUDGET
            break
        x = np.empty(c)
        draw_proposals(rng, code, params, x)
        u = rng.random(c)
        n_drawn += c
        if product:
            g = _ratio_row(prog[0], x)        # the ratio itself; "violation" is g > 1
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
            status = VIOLATION
            acc[end - 1] = False
        i = int(np.argmax(g[:end]))
        if g[i] > max_g:
            max_g = float(g[i])
            x_max = float(x[i])
        sel = x[:end][acc[:end]]
        out[n_acc:n_acc + sel.shape[0]] = sel
        n_acc += sel.shape[0]
        n_exam += end
        if status != OK:
            break
        if n_acc == 0:
            n_dry += 1
    if product:
        max_g = math.log(max_g) if max_g > 0.0 else -math.inf
    return n_exam, n_acc, max_g, x_max, status


# Fine-tuning kernels live in their own modules; re-exported so both backends expose one namespace.
from ._reference_optim import *  # noqa: E402,F401,F403
from ._reference_losses import *  # noqa: E402,F401,F403
from ._reference_acceptors import *  # noqa: E402,F401,F403
