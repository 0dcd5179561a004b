# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Compiled kernels of rsft: the twin of ``rsft._reference`` (read its docstring first).

Three layers: scalar ``noexcept nogil`` helpers, chunk loops over raw buffers, and thin ``def``
entry points that unpack arguments and call them. Random numbers come from the Generator's
``bitgen_t`` (taken from its capsule; the loop holds a reference to the bit generator and its lock
while the pointer is used) through numpy's own C distributions, so the stream is consumed exactly
as ``Generator.standard_normal`` / ``random`` / ``standard_exponential`` / ``laplace`` /
``standard_t`` consume it. On an exact ``numpy.random.PCG64`` (numpy's default) the uniform and
normal fills step the generator inline, and product mode draws beside its scan (see
``_draws.h``); ``PCG64_INLINE`` says whether the import-time probe enabled that path.
"""
from cpython.pycapsule cimport PyCapsule_IsValid, PyCapsule_GetPointer
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport log, log1p, exp, fabs, INFINITY, NAN
from libc.stdint cimport uint64_t
from numpy.random cimport bitgen_t

import os

import numpy as np

cdef extern from "numpy/random/distributions.h":
    double random_standard_exponential(bitgen_t *bitgen_state) nogil
    double random_laplace(bitgen_t *bitgen_state, double loc, double scale) nogil
    double random_standard_t(bitgen_t *bitgen_state, double df) nogil

cdef extern from "_draws.h":
    int RSFT_HAVE_PCG_FAST
    void rsft_pcg_words(bitgen_t *bg, uint64_t *w) nogil
    void rsft_fill_uniform(bitgen_t *bg, int fast, double loc, double scale, double *x,
                           Py_ssize_t n) nogil
    void rsft_fill_normal(bitgen_t *bg, int fast, double loc, double scale, double *x,
                          Py_ssize_t n) nogil
    ctypedef struct rsft_pcg_pair:
        pass
    void rsft_pcg_pair_open(rsft_pcg_pair *q, bitgen_t *bg, Py_ssize_t n) nogil
    void rsft_pcg_pair_close(rsft_pcg_pair *q, bitgen_t *bg) nogil
    void rsft_pcg_pair_next(rsft_pcg_pair *q, double loc, double scale, double *x, double *u,
                            Py_ssize_t m) nogil

cdef extern from *:
    """
    #ifndef RSFT_INLINE_ZIGGURAT
    #define RSFT_INLINE_ZIGGURAT 0
    #endif
    #ifndef RSFT_CFLAGS
    #define RSFT_CFLAGS "unknown"
    #endif
    #ifndef RSFT_CYTHON_VERSION
    #define RSFT_CYTHON_VERSION "unknown"
    #endif
    """
    const char *RSFT_CFLAGS
    int RSFT_INLINE_ZIGGURAT
    const char *RSFT_CYTHON_VERSION

# Program layout (see rsft._reference).
cdef enum:
    V = 0
    C0 = 1
    C1 = 2
    C2 = 3
    CA1 = 4
    MA1 = 5
    CA2 = 6
    MA2 = 7
    CT1 = 8
    MT1 = 9
    KT1 = 10
    CT2 = 11
    MT2 = 12
    KT2 = 13
    CB1 = 14
    CB2 = 15
    LO = 16
    HI = 17
    MODE = 18
    E0 = 19
    PROG_LEN_ = 20

cdef enum:
    NORMAL_ = 0
    UNIFORM_ = 1
    EXPONENTIAL_ = 2
    LAPLACE_ = 3
    STUDENT_T_ = 4

cdef enum:
    OK_ = 0
    VIOLATION_ = 1
    BUDGET_ = 2

PROG_LEN = PROG_LEN_
MAX_CHUNK = 65536
MIN_CHUNK = 64
NORMAL, UNIFORM, EXPONENTIAL, LAPLACE, STUDENT_T = range(5)
OK, VIOLATION, BUDGET = 0, 1, 2

cdef Py_ssize_t C_MAX_CHUNK = 65536
cdef double C_MIN_CHUNK = 64.0

CFLAGS = RSFT_CFLAGS.decode()
CYTHON_VERSION = RSFT_CYTHON_VERSION.decode()
#: True when the normal ziggurat is inlined with numpy's tables (see _draws.h)
INLINE_ZIGGURAT = bool(RSFT_INLINE_ZIGGURAT)


# ---------------------------------------------------------------------------------------------
# Scalar helpers
# ---------------------------------------------------------------------------------------------

cdef inline double eval_row(const double *r, double x) noexcept nogil:
    cdef double y, g, d
    if not (x >= r[LO] and x <= r[HI]):
        return -INFINITY
    y = x - r[V]
    g = r[C0] + y * (r[C1] + y * r[C2])
    if r[CA1] != 0.0:
        g = g + r[CA1] * fabs(x - r[MA1])
    if r[CA2] != 0.0:
        g = g + r[CA2] * fabs(x - r[MA2])
    if r[CT1] != 0.0:
        d = x - r[MT1]
        g = g + r[CT1] * log1p(d * d * r[KT1])
    if r[CT2] != 0.0:
        d = x - r[MT2]
        g = g + r[CT2] * log1p(d * d * r[KT2])
    if r[CB1] != 0.0:
        g = g + r[CB1] * log(x)
    if r[CB2] != 0.0:
        g = g + r[CB2] * log1p(-x)
    return g


cdef inline double eval_prog(const double *p, Py_ssize_t k, double x,
                             double *scratch) noexcept nogil:
    """Log-sum-exp over the k rows (max-subtracted); one row needs no reduction."""
    cdef Py_ssize_t j
    cdef double m, s
    if k == 1:
        return eval_row(p, x)
    m = -INFINITY
    for j in range(k):
        scratch[j] = eval_row(p + j * PROG_LEN_, x)
        if scratch[j] > m:
            m = scratch[j]
    if m == -INFINITY:
        return -INFINITY
    s = 0.0
    for j in range(k):
        s = s + exp(scratch[j] - m)
    return m + log(s)


cdef inline int accept(double g, double u) noexcept nogil:
    """v = 1 - u in (0, 1]; accept iff v <= exp(g): two exact polynomial squeezes, then log.

    With E = 1 + g^2/2 and O = g*(1 + g^2/6), E + O and E - O are the cubic Taylor polynomials
    of exp(g) and exp(-g), lower bounds of both for every real g. Branch-free except for the
    rare (a few percent) case that needs the log.
    """
    cdef double v = 1.0 - u
    cdef double g2 = g * g
    cdef double e = 1.0 + 0.5 * g2
    cdef double o = g * (1.0 + g2 * (1.0 / 6.0))
    cdef int a = v <= e + o
    cdef int r = v * (e - o) > 1.0
    if (a | r) == 0:
        a = log(v) <= g
    return a


cdef inline Py_ssize_t chunk_len(Py_ssize_t remaining, Py_ssize_t n_examined,
                                 Py_ssize_t n_accepted, double prior_rate, Py_ssize_t n_dry,
                                 Py_ssize_t budget_left) noexcept nogil:
    cdef double rate, c
    cdef Py_ssize_t i, ci
    if n_accepted > 0:
        rate = <double>n_examined / <double>n_accepted
    else:
        rate = prior_rate
        for i in range(min(n_dry, 60)):
            rate = rate * 2.0
    c = <double>remaining * rate * 1.1 + C_MIN_CHUNK
    if c > C_MAX_CHUNK:
        c = C_MAX_CHUNK
    ci = <Py_ssize_t>c
    if ci > budget_left:
        ci = budget_left
    return ci


# ---------------------------------------------------------------------------------------------
# Chunk loops
# ---------------------------------------------------------------------------------------------

cdef void fill_proposals(bitgen_t *bg, int fast, int code, const double *p, double *x,
                         Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i
    cdef double p0 = p[0], p1 = p[1], p2 = p[2]
    if code == NORMAL_:
        rsft_fill_normal(bg, fast, p0, p1, x, c)
    elif code == UNIFORM_:
        rsft_fill_uniform(bg, fast, p0, p1, x, c)
    elif code == EXPONENTIAL_:
        for i in range(c):
            x[i] = p0 * random_standard_exponential(bg)
    elif code == LAPLACE_:
        for i in range(c):
            x[i] = p0 + p1 * random_laplace(bg, 0.0, 1.0)
    else:
        for i in range(c):
            x[i] = p1 + p2 * random_standard_t(bg, p0)


cdef inline void fill_uniform(bitgen_t *bg, int fast, double *u, Py_ssize_t c) noexcept nogil:
    rsft_fill_uniform(bg, fast, 0.0, 1.0, u, c)


cdef struct ScanState:
    Py_ssize_t n_acc
    Py_ssize_t n_exam
    double max_g
    double x_max
    int status


cdef inline bint is_quadratic(const double *r) noexcept nogil:
    return (r[CA1] == 0.0 and r[CA2] == 0.0 and r[CT1] == 0.0 and r[CT2] == 0.0
            and r[CB1] == 0.0 and r[CB2] == 0.0)


cdef void scan(const double *x, const double *u, const double *lp, Py_ssize_t c,
               const double *prog, Py_ssize_t k, double *scratch, Py_ssize_t n,
               bint stop_on_violation, double tol, double *out, ScanState *st) noexcept nogil:
    """Examine one chunk in order (log mode); stop at the n-th acceptance or a violation.

    The store is branch-free: ``out[n_acc]`` is written for every proposal (in bounds, since
    n_acc < n here) and n_acc advances by the 0/1 decision. (Single quadratic rows take the
    two-pass path, decide_quadratic + scan_decided, and come here only to stop exactly at a
    violation.)
    """
    cdef Py_ssize_t i, n_acc = st.n_acc
    cdef double g, xi, max_g = st.max_g, x_max = st.x_max
    for i in range(c):
        xi = x[i]
        g = eval_prog(prog, k, xi, scratch)
        if lp != NULL:
            g = lp[i] + g
        if g > max_g:
            max_g = g
            x_max = xi
            if stop_on_violation and g > tol:
                st.status = VIOLATION_
                st.n_exam += i + 1
                break
        out[n_acc] = xi
        n_acc += accept(g, u[i])
        if n_acc == n:
            st.n_exam += i + 1
            break
    else:
        st.n_exam += c
    st.n_acc = n_acc
    st.max_g = max_g
    st.x_max = x_max


cdef void decide_quadratic(const double *x, const double *u, const double *lp, Py_ssize_t c,
                           const double *row, double *g, unsigned char *dec) noexcept nogil:
    """Pass 1 of the fast path for one quadratic row: g and the squeeze decision per proposal
    (1 accept, 0 reject, 2 undecided: needs the log). Straight-line code with the same
    formulas as eval_row and accept()."""
    cdef Py_ssize_t i
    cdef double v0 = row[V], c0 = row[C0], c1 = row[C1], c2 = row[C2]
    cdef double lo = row[LO], hi = row[HI]
    cdef double xi, y, gi, v, g2, e, o
    cdef int a, r
    for i in range(c):
        xi = x[i]
        y = xi - v0
        gi = c0 + y * (c1 + y * c2)
        if lp != NULL:
            gi = lp[i] + gi
        if not ((xi >= lo) & (xi <= hi)):
            gi = -INFINITY
        g[i] = gi
        v = 1.0 - u[i]
        g2 = gi * gi
        e = 1.0 + 0.5 * g2
        o = gi * (1.0 + g2 * (1.0 / 6.0))
        a = v <= e + o
        r = v * (e - o) > 1.0
        dec[i] = <unsigned char>(a | (((a | r) ^ 1) << 1))


cdef bint scan_decided(const double *x, const double *u, const double *g,
                       const unsigned char *dec, Py_ssize_t c, Py_ssize_t n,
                       bint stop_on_violation, double tol, double *out,
                       ScanState *st) noexcept nogil:
    """Pass 2: resolve undecided proposals with the log, compact the accepted ones (branch-free
    store), stop at the n-th acceptance, then track the maximum over the examined prefix.
    Returns False, with st untouched, when the prefix holds a violation to stop at: the caller
    then rescans the chunk with the exact scalar loop."""
    cdef Py_ssize_t i, end = c, n_acc = st.n_acc, imax = -1
    cdef int a
    cdef double m = st.max_g
    for i in range(c):
        a = dec[i]
        if a == 2:
            a = log(1.0 - u[i]) <= g[i]
        out[n_acc] = x[i]
        n_acc += a
        if n_acc == n:
            end = i + 1
            break
    for i in range(end):
        if g[i] > m:
            m = g[i]
            imax = i
    if imax >= 0:
        if stop_on_violation and m > tol:
            return False
        st.max_g = m
        st.x_max = x[imax]
    st.n_acc = n_acc
    st.n_exam += end
    return True


cdef enum:
    PBLOCK = 256      # product mode: proposals per block of vectorisable power loops


cdef inline void ratio_block(const double *x, Py_ssize_t m, long k1, long k2, double e0,
                             double lo, double hi, bint inside, double *r) noexcept nogil:
    """r[i] = E0 * x**k1 * (1 - x)**k2 (0 outside [lo, hi]) for i < m <= PBLOCK, the powers by
    binary exponentiation in the order of rsft._reference.ipow, but one power step at a time
    over the whole block (loops that vectorise).
    ``inside``: every x[i] is known to lie in [lo, hi] (the support test is skipped)."""
    cdef double bx[PBLOCK]
    cdef double by[PBLOCK]
    cdef double ry[PBLOCK]
    cdef double v
    cdef Py_ssize_t i
    for i in range(m):
        bx[i] = x[i]
        by[i] = 1.0 - x[i]
        r[i] = 1.0
        ry[i] = 1.0
    while k1 or k2:
        if k1 & 1:
            for i in range(m):
                r[i] = r[i] * bx[i]
        if k2 & 1:
            for i in range(m):
                ry[i] = ry[i] * by[i]
        k1 >>= 1
        k2 >>= 1
        if k1:
            for i in range(m):
                bx[i] = bx[i] * bx[i]
        if k2:
            for i in range(m):
                by[i] = by[i] * by[i]
    if inside:
        for i in range(m):
            r[i] = e0 * r[i] * ry[i]
    else:
        for i in range(m):
            v = e0 * r[i] * ry[i]
            r[i] = v if (x[i] >= lo) & (x[i] <= hi) else 0.0


cdef bint product_block(const double *x, const double *u, Py_ssize_t m, const double *row,
                        bint inside, Py_ssize_t n, bint stop_on_violation, double tol,
                        double *out, ScanState *st) noexcept nogil:
    """Product mode (see rsft._reference) over one block of m <= PBLOCK proposals: compare v
    with the ratio itself; st.max_g holds the largest ratio (its log is taken at the end).
    Returns True when the scan stops inside the block (n reached, or a violation).

    A block that cannot reach n is first compacted branch-free, and redone one proposal at a
    time only if it holds a new largest ratio (rare once the maximum has settled)."""
    cdef Py_ssize_t i, n_acc = st.n_acc
    cdef double r, xi, max_g = st.max_g
    cdef double rb[PBLOCK]
    cdef int above = 1
    cdef bint stopped = False
    ratio_block(x, m, <long>row[CB1], <long>row[CB2], row[E0], row[LO], row[HI], inside, rb)
    if n_acc + m < n:
        above = 0
        for i in range(m):
            r = rb[i]
            out[n_acc] = x[i]
            n_acc += (1.0 - u[i]) <= r
            above |= r > max_g
        if above:
            n_acc = st.n_acc
    if above:
        for i in range(m):
            r = rb[i]
            xi = x[i]
            if r > max_g:
                max_g = r
                st.x_max = xi
                if stop_on_violation and r > 1.0 + tol:
                    st.status = VIOLATION_
                    stopped = True
                    break
            out[n_acc] = xi
            n_acc += (1.0 - u[i]) <= r
            if n_acc == n:
                stopped = True
                break
    st.n_exam += i + 1 if stopped else m
    st.n_acc = n_acc
    st.max_g = max_g
    return stopped


cdef void scan_product(const double *x, const double *u, Py_ssize_t c, const double *row,
                       bint inside, Py_ssize_t n, bint stop_on_violation, double tol,
                       double *out, ScanState *st) noexcept nogil:
    """Product mode over a chunk of drawn proposals x and uniforms u, a block at a time."""
    cdef Py_ssize_t j = 0, m
    while j < c:
        m = min(<Py_ssize_t>PBLOCK, c - j)
        if product_block(&x[j], &u[j], m, row, inside, n, stop_on_violation, tol, out, st):
            return
        j += m


cdef void draw_scan_product(bitgen_t *bg, const double *par, Py_ssize_t c, const double *row,
                            bint inside, Py_ssize_t n, bint stop_on_violation, double tol,
                            double *out, ScanState *st) noexcept nogil:
    """Product mode with a uniform proposal on an exact PCG64: the chunk's c proposals and c
    uniforms are drawn a block at a time beside the scan (two chains of one stream, see
    rsft_pcg_pair), never stored whole; the generator ends after all 2c draws, as when drawn
    first. The caller holds the Generator's lock."""
    cdef rsft_pcg_pair q
    cdef double xb[PBLOCK]
    cdef double ub[PBLOCK]
    cdef Py_ssize_t j = 0, m
    rsft_pcg_pair_open(&q, bg, c)
    while j < c:
        m = min(<Py_ssize_t>PBLOCK, c - j)
        rsft_pcg_pair_next(&q, par[0], par[1], xb, ub, m)
        if product_block(xb, ub, m, row, inside, n, stop_on_violation, tol, out, st):
            break
        j += m
    rsft_pcg_pair_close(&q, bg)


cdef bitgen_t *get_bitgen(object bit_generator) except NULL:
    capsule = bit_generator.capsule
    if not PyCapsule_IsValid(capsule, "BitGenerator"):
        raise TypeError("rng.bit_generator does not expose a valid 'BitGenerator' capsule")
    return <bitgen_t *>PyCapsule_GetPointer(capsule, "BitGenerator")


cdef inline int pcg_fast(object bit_generator):
    """1 when the fills may step ``bit_generator`` inline (see _draws.h): an exact
    ``numpy.random.PCG64`` (a subclass may override anything) and a passed import-time probe."""
    return PCG64_FAST and type(bit_generator) is _PCG64


def _probe_pcg64_fast():
    """Whether the inline PCG64 path reproduces numpy: the state read through the assumed layout
    equals ``PCG64.state``, and fast fills equal ``Generator.random`` / ``standard_normal`` and
    leave the same state. Set ``RSFT_PCG64_FAST=0`` to turn the path off."""
    cdef uint64_t w[4]
    cdef bitgen_t *bg
    cdef double[::1] x
    if not RSFT_HAVE_PCG_FAST or os.environ.get("RSFT_PCG64_FAST", "1") == "0":
        return False
    # the layout below (a pointer to {state, inc} first) is numpy's from 1.17 through 2.x; a
    # future major version is not probed, since a changed layout could not be read safely
    if np.lib.NumpyVersion(np.__version__) >= "3.0.0":
        return False
    fast, ref = _PCG64(20261122), np.random.Generator(_PCG64(20261122))
    bg = get_bitgen(fast)
    st = fast.state["state"]
    rsft_pcg_words(bg, w)
    if ((<object>w[0] << 64) | w[1]) != st["state"] or ((<object>w[2] << 64) | w[3]) != st["inc"]:
        return False
    x = np.empty(4096)
    rsft_fill_uniform(bg, 1, 0.0, 1.0, &x[0], 4096)
    if not np.array_equal(x, ref.random(4096)) or fast.state != ref.bit_generator.state:
        return False
    rsft_fill_normal(bg, 1, 0.0, 1.0, &x[0], 4096)
    return bool(np.array_equal(x, ref.standard_normal(4096))
                and fast.state == ref.bit_generator.state)


_PCG64 = np.random.PCG64
cdef bint PCG64_FAST = False
PCG64_FAST = _probe_pcg64_fast()
#: True when fills step an exact numpy.random.PCG64 inline (RSFT_PCG64_FAST=0 turns it off)
PCG64_INLINE = bool(PCG64_FAST)


# ---------------------------------------------------------------------------------------------
# Entry points (same names and signatures as rsft._reference)
# ---------------------------------------------------------------------------------------------

def draw_proposals(rng, int code, const double[::1] params, double[::1] out):
    """Fill ``out`` with proposal draws (see ``rsft._reference.draw_proposals``)."""
    bit_generator = rng.bit_generator
    cdef bitgen_t *bg = get_bitgen(bit_generator)
    cdef int fast = pcg_fast(bit_generator)
    cdef Py_ssize_t c = out.shape[0]
    if c == 0:
        return
    with bit_generator.lock, nogil:
        fill_proposals(bg, fast, code, &params[0], &out[0], c)


def log_ratio(const double[:, ::1] prog, const double[::1] x, double[::1] out):
    """Evaluate a log-ratio program at ``x`` into ``out``."""
    cdef Py_ssize_t i, n = x.shape[0], k = prog.shape[0]
    cdef double[::1] scratch = np.empty(k)
    with nogil:
        for i in range(n):
            out[i] = eval_prog(&prog[0, 0], k, x[i], &scratch[0])


def accept_test(const double[::1] g, const double[::1] u):
    """Acceptance decisions (bool array) for log-ratios ``g`` and uniforms ``u``."""
    cdef Py_ssize_t i, n = g.shape[0]
    res = np.empty(n, dtype=np.bool_)
    cdef unsigned char[::1] r = res.view(np.uint8)
    with nogil:
        for i in range(n):
            r[i] = accept(g[i], u[i])
    return res


def chunk_length(Py_ssize_t remaining, Py_ssize_t n_examined, Py_ssize_t n_accepted,
                 double prior_rate, Py_ssize_t n_dry, Py_ssize_t budget_left):
    """Length of the next chunk (see ``rsft._reference.chunk_length``)."""
    return chunk_len(remaining, n_examined, n_accepted, prior_rate, n_dry, budget_left)


def rejection_sample(rng, int code, const double[::1] params, const double[:, ::1] prog, logp,
                     Py_ssize_t n, double prior_rate, Py_ssize_t max_proposals,
                     bint stop_on_violation, double violation_tol, double[::1] out):
    """Rejection sampling into ``out[:n]`` (see ``rsft._reference.rejection_sample``).

    Built-in targets run the whole chunk (draws and accept loop) without the GIL; a callable
    target is called once per chunk, with the GIL, between the draws and the accept loop, and
    without the Generator's lock held (so the callable may use the same Generator).
    """
    bit_generator = rng.bit_generator
    lock = bit_generator.lock
    cdef bitgen_t *bg = get_bitgen(bit_generator)
    cdef int fast = pcg_fast(bit_generator)
    cdef Py_ssize_t k = prog.shape[0], c, cap = 0, n_drawn = 0, n_dry = 0
    cdef double[::1] scratch = np.empty(k)
    cdef double[::1] xb
    cdef double[::1] ub
    cdef const double[::1] lpv
    cdef ScanState st
    cdef const double *pp = &prog[0, 0]
    cdef const double *par = &params[0]
    cdef bint product = logp is None and k == 1 and prog[0, MODE] == 1.0
    cdef bint quad = k == 1 and is_quadratic(pp)
    # product mode with a uniform proposal inside the support: x = p0 + p1*u, u in [0, 1), and
    # rounding is monotone, so p0 <= x <= fl(p0 + p1) and the support test can be skipped
    cdef bint inside = (product and code == UNIFORM_ and par[0] >= prog[0, LO]
                        and par[0] + par[1] <= prog[0, HI])
    # product mode on an exact PCG64: draws made block by block beside the scan
    cdef bint fused = product and code == UNIFORM_ and fast
    cdef bint done
    cdef const double *lptr
    cdef double[::1] gb
    cdef unsigned char[::1] db
    st.n_acc = 0
    st.n_exam = 0
    st.max_g = 0.0 if product else -INFINITY
    st.x_max = NAN
    st.status = OK_
    xarr = None
    while st.n_acc < n:
        c = chunk_len(n - st.n_acc, st.n_exam, st.n_acc, prior_rate, n_dry,
                      max_proposals - n_drawn)
        if c <= 0:
            st.status = BUDGET_
            break
        if fused:
            with lock, nogil:
                draw_scan_product(bg, par, c, pp, inside, n, stop_on_violation, violation_tol,
                                  &out[0], &st)
        else:
            if c > cap:
                cap = c
                xarr = np.empty(cap)
                xb = xarr
                ub = np.empty(cap)
                if quad and not product:   # scratch of the two-pass quadratic loop
                    gb = np.empty(cap)
                    db = np.empty(cap, dtype=np.uint8)
            with lock, nogil:
                fill_proposals(bg, fast, code, par, &xb[0], c)
                fill_uniform(bg, fast, &ub[0], c)
            if product:
                with nogil:
                    scan_product(&xb[0], &ub[0], c, pp, inside, n, stop_on_violation,
                                 violation_tol, &out[0], &st)
            else:
                lptr = NULL
                if logp is not None:
                    lpv = logp(xarr[:c].copy())  # the callable may keep it: never a scratch view
                    lptr = &lpv[0]
                with nogil:
                    if quad:
                        decide_quadratic(&xb[0], &ub[0], lptr, c, pp, &gb[0], &db[0])
                        done = scan_decided(&xb[0], &ub[0], &gb[0], &db[0], c, n,
                                            stop_on_violation, violation_tol, &out[0], &st)
                    else:
                        done = False
                    if not done:
                        scan(&xb[0], &ub[0], lptr, c, pp, k, &scratch[0], n, stop_on_violation,
                             violation_tol, &out[0], &st)
        n_drawn += c
        PyErr_CheckSignals()
        if st.status != OK_:
            break
        if st.n_acc == 0:
            n_dry += 1
    if product:
        st.max_g = log(st.max_g) if st.max_g > 0.0 else -INFINITY
    return st.n_exam, st.n_acc, st.max_g, st.x_max, st.status


# ---------------------------------------------------------------------------------------------
# Fine-tuning kernels (losses, optimizers), kept in their own files for readability
# ---------------------------------------------------------------------------------------------

include "_optim_kernels.pxi"
include "_loss_kernels.pxi"
include "_acceptor_kernels.pxi"
