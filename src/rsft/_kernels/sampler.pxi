# Rejection-sampling kernels (included by _core.pyx after program.pxi, bitgen.pxi and
# signals.pxi); twin of rsft._reference.sampler, which is the specification (the program's
# formula is in rsft._program, the acceptance test and the draw order in the reference's
# docstring).
#
# Three layers: scalar helpers (one row evaluation, one acceptance test), the chunk layer
# (proposal fills and the sampling strategies, each one cdef function with one signature), and
# the thin ``def`` entry points.
from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport prange, threadid
from libc.math cimport log, log1p, exp, fabs, INFINITY, NAN
from libc.stdlib cimport malloc, calloc, realloc, free


# ---------------------------------------------------------------------------------------------
# Scalar helpers
# ---------------------------------------------------------------------------------------------

cdef inline bint in_support(double low, double high, double x) noexcept nogil:
    return (x >= low) & (x <= high)


cdef inline double polynomial_part(double center, double c0, double c1, double c2,
                                   double x) noexcept nogil:
    """``c0 + y*(c1 + y*c2)`` with ``y = x - center``: the polynomial part of a row (taken by
    value, so a scan can keep the coefficients in registers)."""
    cdef double y = x - center
    return c0 + y * (c1 + y * c2)


cdef inline double eval_row(const double *row, double x) noexcept nogil:
    """``g(x)`` of one program row: the one row evaluation of this backend."""
    cdef double g, d
    if not in_support(row[ROW_SUPPORT_LOW], row[ROW_SUPPORT_HIGH], x):
        return -INFINITY
    g = polynomial_part(row[ROW_CENTER], row[ROW_CONST], row[ROW_LIN_COEF], row[ROW_QUAD_COEF],
                        x)
    if row[ROW_QUADRATIC_ONLY] == 1.0:      # as the reference: the other terms are absent
        return g
    if row[ROW_ABS1_COEF] != 0.0:
        g = g + row[ROW_ABS1_COEF] * fabs(x - row[ROW_ABS1_AT])
    if row[ROW_ABS2_COEF] != 0.0:
        g = g + row[ROW_ABS2_COEF] * fabs(x - row[ROW_ABS2_AT])
    if row[ROW_TLOG1_COEF] != 0.0:
        d = x - row[ROW_TLOG1_AT]
        g = g + row[ROW_TLOG1_COEF] * log1p(d * d * row[ROW_TLOG1_K])
    if row[ROW_TLOG2_COEF] != 0.0:
        d = x - row[ROW_TLOG2_AT]
        g = g + row[ROW_TLOG2_COEF] * log1p(d * d * row[ROW_TLOG2_K])
    if row[ROW_LOG_X_COEF] != 0.0:
        g = g + row[ROW_LOG_X_COEF] * log(x)
    if row[ROW_LOG1M_X_COEF] != 0.0:
        g = g + row[ROW_LOG1M_X_COEF] * log1p(-x)
    return g


cdef inline double eval_program(const double *prog, Py_ssize_t n_rows, double x,
                                double *row_values) noexcept nogil:
    """Log-sum-exp over the rows (max-subtracted); one row needs no reduction."""
    cdef Py_ssize_t j
    cdef double m, s
    if n_rows == 1:
        return eval_row(prog, x)
    m = -INFINITY
    for j in range(n_rows):
        row_values[j] = eval_row(prog + j * ROW_LEN, x)
        if row_values[j] > m:
            m = row_values[j]
    if m == -INFINITY:
        return -INFINITY
    s = 0.0
    for j in range(n_rows):
        s = s + exp(row_values[j] - m)
    return m + log(s)


cdef enum:
    REJECT = 0
    ACCEPT = 1
    UNDECIDED = 2


cdef inline int squeeze_bounds(double g, double v, int *accepted, int *rejected) noexcept nogil:
    """The two exact polynomial squeezes of ``v <= exp(g)``, branch-free.

    With E = 1 + g^2/2 and O = g*(1 + g^2/6), E + O and E - O are the cubic Taylor polynomials
    of exp(g) and exp(-g), lower bounds of both for every real g: ``v <= E + O`` proves
    acceptance, ``v*(E - O) > 1`` proves rejection; neither (a few percent of proposals) needs
    the log."""
    cdef double g2 = g * g
    cdef double e = 1.0 + 0.5 * g2
    cdef double o = g * (1.0 + g2 * (1.0 / 6.0))
    accepted[0] = v <= e + o
    rejected[0] = v * (e - o) > 1.0


cdef inline int squeeze(double g, double v) noexcept nogil:
    """The squeezes' verdict as one code: ACCEPT, REJECT or UNDECIDED."""
    cdef int a, r
    squeeze_bounds(g, v, &a, &r)
    return a | (((a | r) ^ 1) << 1)


cdef inline int accept(double g, double u) noexcept nogil:
    """The acceptance test: ``v = 1 - u`` in (0, 1], accept iff ``v <= exp(g)``."""
    cdef double v = 1.0 - u
    cdef int a, r
    squeeze_bounds(g, v, &a, &r)
    if (a | r) == 0:
        a = log(v) <= g
    return a


cdef inline Py_ssize_t chunk_len(Py_ssize_t remaining, Py_ssize_t n_examined,
                                 Py_ssize_t n_accepted, double prior_rate, Py_ssize_t n_dry,
                                 Py_ssize_t budget_left) noexcept nogil:
    """See ``rsft._reference.sampler.chunk_length`` (the same arithmetic)."""
    cdef double rate, c
    cdef Py_ssize_t i, ci
    if n_accepted > 0:
        rate = <double>n_examined / <double>n_accepted
    else:
        rate = prior_rate
        for i in range(min(n_dry, 60)):
            rate = rate * 2.0
    c = <double>remaining * rate * 1.1 + <double>MIN_CHUNK
    if c > <double>MAX_CHUNK:
        c = <double>MAX_CHUNK
    ci = <Py_ssize_t>c
    if ci > budget_left:
        ci = budget_left
    return ci


# ---------------------------------------------------------------------------------------------
# Chunk layer: proposal fills and the sampling strategies
# ---------------------------------------------------------------------------------------------

cdef void fill_proposals(bitgen_t *bg, int fast, int family, const double *p, double *x,
                         Py_ssize_t c) noexcept nogil:
    """``c`` proposals of ``family`` (formulas in rsft._program.Proposal)."""
    cdef Py_ssize_t i
    cdef double p0 = p[0], p1 = p[1], p2 = p[2]
    if family == PROPOSAL_NORMAL:
        rsft_fill_normal(bg, fast, p0, p1, x, c)
    elif family == PROPOSAL_UNIFORM:
        rsft_fill_uniform(bg, fast, p0, p1, x, c)
    elif family == PROPOSAL_EXPONENTIAL:
        for i in range(c):
            x[i] = p0 * random_standard_exponential(bg)
    elif family == PROPOSAL_LAPLACE:
        for i in range(c):
            x[i] = p0 + p1 * random_laplace(bg, 0.0, 1.0)
    elif family == PROPOSAL_GAMMA:
        for i in range(c):
            x[i] = p1 * random_standard_gamma(bg, p0)
    else:
        for i in range(c):
            x[i] = p1 + p2 * random_standard_t(bg, p0)


cdef struct ScanState:         # what a call has seen so far (carried from chunk to chunk)
    Py_ssize_t n_acc            # accepted, written to out[:n_acc]
    Py_ssize_t n_exam           # examined proposals
    double max_g                # largest log-ratio seen (product mode: largest ratio)
    double x_max                # the proposal where it was seen
    int status                  # STATUS_OK, STATUS_VIOLATION or STATUS_BUDGET


cdef struct Chunk:             # everything a strategy reads for one chunk of `length` proposals
    const double *x             # the drawn proposals (unused by PRODUCT_PCG64, which draws)
    const double *u             # their uniforms
    const double *log_target    # a callable target's log-density at x, else NULL
    Py_ssize_t length
    const double *prog          # the program, n_rows rows of ROW_LEN
    Py_ssize_t n_rows
    double *row_values          # scratch of n_rows (log-sum-exp over mixture rows)
    double *g_buf               # scratch of length (QUADRATIC): the log-ratios
    unsigned char *decision_buf # scratch of length (QUADRATIC): ACCEPT / REJECT / UNDECIDED
    bint inside_support         # product mode: every proposal lies in the support
    bitgen_t *bitgen            # PRODUCT_PCG64 only: draws under the caller's lock
    const double *proposal_params
    Py_ssize_t n_wanted         # stop at this many acceptances
    bint stop_on_violation
    double violation_tol
    double *out


ctypedef void (*scan_fn)(Chunk *ch, ScanState *state) noexcept nogil
# A scan copies the Chunk fields it uses into locals first: the extension is built with
# -fno-strict-aliasing (Python's flags), so a store through ch.out inside a loop would otherwise
# force the compiler to reload every field of *ch, and the loop would not vectorise.


cdef void scan_log_ratio(Chunk *ch, ScanState *state) noexcept nogil:
    """LOG_RATIO: examine the chunk in order with the row evaluation and the acceptance test;
    stop at the n-th acceptance or a violation. The store is branch-free: ``out[n_acc]`` is
    written for every proposal (in bounds, since n_acc < n here) and n_acc advances by the 0/1
    decision."""
    cdef Py_ssize_t i, n_acc = state.n_acc, n = ch.n_wanted, c = ch.length, n_rows = ch.n_rows
    cdef double g, xi, max_g = state.max_g, x_max = state.x_max, tol = ch.violation_tol
    cdef const double *x = ch.x
    cdef const double *u = ch.u
    cdef const double *log_target = ch.log_target
    cdef const double *prog = ch.prog
    cdef double *row_values = ch.row_values
    cdef double *out = ch.out
    cdef bint stop_on_violation = ch.stop_on_violation
    for i in range(c):
        xi = x[i]
        g = eval_program(prog, n_rows, xi, row_values)
        if log_target != NULL:
            g = log_target[i] + g
        if g > max_g:
            max_g = g
            x_max = xi
            if stop_on_violation and g > tol:
                state.status = STATUS_VIOLATION
                state.n_exam += i + 1
                break
        out[n_acc] = xi
        n_acc += accept(g, u[i])
        if n_acc == n:
            state.n_exam += i + 1
            break
    else:
        state.n_exam += c
    state.n_acc = n_acc
    state.max_g = max_g
    state.x_max = x_max


cdef void decide_quadratic(Chunk *ch) noexcept nogil:
    """Pass 1 of QUADRATIC: the log-ratio and the squeeze decision of every proposal, as
    straight-line code that vectorises (the row's coefficients in registers)."""
    cdef const double *row = ch.prog
    cdef double center = row[ROW_CENTER], c0 = row[ROW_CONST]
    cdef double c1 = row[ROW_LIN_COEF], c2 = row[ROW_QUAD_COEF]
    cdef double low = row[ROW_SUPPORT_LOW], high = row[ROW_SUPPORT_HIGH]
    cdef const double *x = ch.x
    cdef const double *u = ch.u
    cdef const double *log_target = ch.log_target
    cdef double *g = ch.g_buf
    cdef unsigned char *decision = ch.decision_buf
    cdef double xi, gi
    cdef Py_ssize_t i
    for i in range(ch.length):
        xi = x[i]
        gi = polynomial_part(center, c0, c1, c2, xi)
        if log_target != NULL:
            gi = log_target[i] + gi
        if not in_support(low, high, xi):
            gi = -INFINITY
        g[i] = gi
        decision[i] = <unsigned char>squeeze(gi, 1.0 - u[i])


cdef bint compact_decided(Chunk *ch, ScanState *state) noexcept nogil:
    """Pass 2 of QUADRATIC: resolve UNDECIDED proposals with the log, compact the accepted ones
    (branch-free store), stop at the n-th acceptance, then track the maximum over the examined
    prefix. Returns False, with state untouched, when the prefix holds a violation to stop at."""
    cdef Py_ssize_t i, c = ch.length, end = ch.length, n_acc = state.n_acc, imax = -1
    cdef Py_ssize_t n = ch.n_wanted
    cdef const double *x = ch.x
    cdef const double *u = ch.u
    cdef const double *g = ch.g_buf
    cdef const unsigned char *decision = ch.decision_buf
    cdef double *out = ch.out
    cdef int a
    cdef double m = state.max_g
    for i in range(c):
        a = decision[i]
        if a == UNDECIDED:
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
        if ch.stop_on_violation and m > ch.violation_tol:
            return False
        state.max_g = m
        state.x_max = x[imax]
    state.n_acc = n_acc
    state.n_exam += end
    return True


cdef void scan_quadratic(Chunk *ch, ScanState *state) noexcept nogil:
    """QUADRATIC (one row with only the polynomial part, e.g. normal/normal or a callable target
    with a normal proposal): a derived specialisation of LOG_RATIO with the same formulas
    (polynomial_part, in_support, squeeze), run as two passes, decide then compact. A chunk
    holding a violation to stop at is rescanned by LOG_RATIO, which stops exactly there."""
    decide_quadratic(ch)
    if not compact_decided(ch, state):
        scan_log_ratio(ch, state)


cdef enum:
    PBLOCK = 256      # product mode: proposals per block of vectorisable power loops


cdef inline void ratio_block(const double *x, Py_ssize_t m, long k1, long k2, double e0,
                             double low, double high, bint inside, double *r) noexcept nogil:
    """r[i] = e0 * x**k1 * (1 - x)**k2 (0 outside the support) for i < m <= PBLOCK, the powers
    by binary exponentiation in the order of rsft._reference.sampler.power, one power step at a
    time over the whole block (loops that vectorise).
    ``inside``: every x[i] is known to lie in the support (the test is skipped)."""
    cdef double x_pow[PBLOCK]      # x**(2**j) and (1 - x)**(2**j), squared step by step
    cdef double y_pow[PBLOCK]
    cdef double ry[PBLOCK]         # the (1 - x) factor of the result
    cdef double v
    cdef Py_ssize_t i
    for i in range(m):
        x_pow[i] = x[i]
        y_pow[i] = 1.0 - x[i]
        r[i] = 1.0
        ry[i] = 1.0
    while k1 or k2:
        if k1 & 1:
            for i in range(m):
                r[i] = r[i] * x_pow[i]
        if k2 & 1:
            for i in range(m):
                ry[i] = ry[i] * y_pow[i]
        k1 >>= 1
        k2 >>= 1
        if k1:
            for i in range(m):
                x_pow[i] = x_pow[i] * x_pow[i]
        if k2:
            for i in range(m):
                y_pow[i] = y_pow[i] * y_pow[i]
    if inside:
        for i in range(m):
            r[i] = e0 * r[i] * ry[i]
    else:
        for i in range(m):
            v = e0 * r[i] * ry[i]
            r[i] = v if in_support(low, high, x[i]) else 0.0


cdef bint product_block(Chunk *ch, const double *x, const double *u, Py_ssize_t m,
                        ScanState *state) noexcept nogil:
    """Product mode over one block of m <= PBLOCK proposals: compare v with the ratio itself;
    state.max_g holds the largest ratio (its log is taken at the end of the call). Returns True
    when the scan stops inside the block (n reached, or a violation).

    A block that cannot reach n is first compacted branch-free, and redone one proposal at a
    time only if it holds a new largest ratio (rare once the maximum has settled)."""
    cdef const double *row = ch.prog
    cdef Py_ssize_t i, n_acc = state.n_acc, n = ch.n_wanted
    cdef double r, xi, max_g = state.max_g, x_max = state.x_max
    cdef double *out = ch.out
    cdef double ratios[PBLOCK]
    cdef int above = 1
    cdef bint stopped = False
    ratio_block(x, m, <long>row[ROW_LOG_X_COEF], <long>row[ROW_LOG1M_X_COEF],
                row[ROW_EXP_CONST], row[ROW_SUPPORT_LOW], row[ROW_SUPPORT_HIGH],
                ch.inside_support, ratios)
    if n_acc + m < n:
        above = 0
        for i in range(m):
            r = ratios[i]
            out[n_acc] = x[i]
            n_acc += (1.0 - u[i]) <= r
            above |= r > max_g
        if above:
            n_acc = state.n_acc
    if above:
        for i in range(m):
            r = ratios[i]
            xi = x[i]
            if r > max_g:
                max_g = r
                x_max = xi
                if ch.stop_on_violation and r > 1.0 + ch.violation_tol:
                    state.status = STATUS_VIOLATION
                    stopped = True
                    break
            out[n_acc] = xi
            n_acc += (1.0 - u[i]) <= r
            if n_acc == n:
                stopped = True
                break
    state.x_max = x_max
    state.n_exam += i + 1 if stopped else m
    state.n_acc = n_acc
    state.max_g = max_g
    return stopped


cdef void scan_product(Chunk *ch, ScanState *state) noexcept nogil:
    """PRODUCT: product mode over the drawn chunk, a block at a time."""
    cdef Py_ssize_t j = 0, m
    while j < ch.length:
        m = min(<Py_ssize_t>PBLOCK, ch.length - j)
        if product_block(ch, &ch.x[j], &ch.u[j], m, state):
            return
        j += m


cdef void scan_product_pcg64(Chunk *ch, ScanState *state) noexcept nogil:
    """PRODUCT_PCG64: product mode with a uniform proposal on an exact PCG64. The chunk's c
    proposals and c uniforms are drawn a block at a time beside the scan (two chains of one
    stream, see rsft_pcg_pair in draws.h), never stored whole; the generator ends after all 2c
    draws, as when they are drawn first. The caller holds the Generator's lock."""
    cdef rsft_pcg_pair pair
    cdef double x_block[PBLOCK]
    cdef double u_block[PBLOCK]
    cdef Py_ssize_t j = 0, m
    cdef const double *params = ch.proposal_params
    rsft_pcg_pair_open(&pair, ch.bitgen, ch.length)
    while j < ch.length:
        m = min(<Py_ssize_t>PBLOCK, ch.length - j)
        rsft_pcg_pair_next(&pair, params[0], params[1], x_block, u_block, m)
        if product_block(ch, x_block, u_block, m, state):
            break
        j += m
    rsft_pcg_pair_close(&pair, ch.bitgen)


cdef enum Strategy:
    LOG_RATIO = 0           # any program: row evaluation + acceptance test, one pass
    QUADRATIC = 1           # one polynomial-only row: two passes, decide then compact
    PRODUCT = 2             # product mode (integer Beta powers, no transcendental function)
    PRODUCT_PCG64 = 3       # product mode drawing beside the scan on an exact PCG64
    N_STRATEGIES = 4        # (the count: the two tables below have this many entries)

#: the scan of each strategy, indexed by Strategy (Cython refuses a list of another length)
cdef scan_fn[N_STRATEGIES] STRATEGY_SCAN = [scan_log_ratio, scan_quadratic, scan_product,
                                            scan_product_pcg64]
_STRATEGY_NAMES = ("log_ratio", "quadratic", "product", "product_pcg64")
assert len(_STRATEGY_NAMES) == N_STRATEGIES


cdef Strategy choose_strategy(const double *prog, Py_ssize_t n_rows, int family,
                              bint callable_target, int pcg64_fast) noexcept nogil:
    """How a call scans its chunks, decided once per call from flags the program carries.

    A callable target is not a strategy of its own: its log-density, computed by the ``def``
    between the draws and the scan, enters LOG_RATIO or QUADRATIC as ``Chunk.log_target``
    (the program is then ``-log q - log M``)."""
    if n_rows == 1 and not callable_target and prog[ROW_PRODUCT_MODE] == 1.0:
        if family == PROPOSAL_UNIFORM and pcg64_fast:
            return PRODUCT_PCG64
        return PRODUCT
    if n_rows == 1 and prog[ROW_QUADRATIC_ONLY] == 1.0:
        return QUADRATIC
    return LOG_RATIO


# ---------------------------------------------------------------------------------------------
# The chunk loop: buffers, signal checks on a time budget (signals.pxi), one stream,
# blocks of streams
# ---------------------------------------------------------------------------------------------

cdef struct StreamBuffers:     # one thread's chunk arrays, grown (realloc) to the longest chunk
    double *x
    double *u
    double *g                   # QUADRATIC only
    unsigned char *decisions    # QUADRATIC only
    double *row_values          # n_rows
    Py_ssize_t capacity
    bint decide_first
    bint out_of_memory


cdef bint reserve(StreamBuffers *buf, Chunk *ch, Py_ssize_t c) noexcept nogil:
    """Point ``ch`` at arrays of at least ``c`` elements (grown without the GIL); False, with
    ``buf.out_of_memory`` set, when the memory is not there (also when open_buffers could not
    allocate ``row_values``, which the scans read)."""
    cdef void *p
    if buf.row_values == NULL:
        buf.out_of_memory = True
        return False
    if c > buf.capacity:
        p = realloc(buf.x, c * sizeof(double))
        if p != NULL:
            buf.x = <double *>p
            p = realloc(buf.u, c * sizeof(double))
        if p != NULL:
            buf.u = <double *>p
        if p != NULL and buf.decide_first:
            p = realloc(buf.g, c * sizeof(double))
            if p != NULL:
                buf.g = <double *>p
                p = realloc(buf.decisions, c)
            if p != NULL:
                buf.decisions = <unsigned char *>p
        if p == NULL:
            buf.out_of_memory = True
            return False
        buf.capacity = c
    ch.x, ch.u, ch.row_values = buf.x, buf.u, buf.row_values
    ch.g_buf, ch.decision_buf = buf.g, buf.decisions
    return True


cdef void open_buffers(StreamBuffers *buf, Py_ssize_t n_rows, bint decide_first) noexcept nogil:
    buf.x = buf.u = buf.g = NULL
    buf.decisions = NULL
    buf.capacity = 0
    buf.decide_first = decide_first
    buf.row_values = <double *>malloc(n_rows * sizeof(double))
    buf.out_of_memory = buf.row_values == NULL


cdef void close_buffers(StreamBuffers *buf) noexcept nogil:
    free(buf.x)
    free(buf.u)
    free(buf.g)
    free(buf.decisions)
    free(buf.row_values)


cdef struct StreamPlan:        # what a call decided once, read by each of its streams
    Chunk proto                 # the per-call fields of every Chunk (prog, params, options)
    int code                    # proposal family
    scan_fn scan
    bint product
    bint draws_first            # False for PRODUCT_PCG64, which draws beside its scan
    double prior_rate


cdef void open_state(ScanState *state, bint product) noexcept nogil:
    state.n_acc = 0
    state.n_exam = 0
    state.max_g = 0.0 if product else -INFINITY
    state.x_max = NAN
    state.status = STATUS_OK


cdef void close_state(ScanState *state, bint product) noexcept nogil:
    """Product mode tracked the largest ratio: report its log."""
    if product:
        state.max_g = log(state.max_g) if state.max_g > 0.0 else -INFINITY


cdef void run_stream(const StreamPlan *plan, bitgen_t *bg, int fast, double *out,
                     Py_ssize_t n, Py_ssize_t max_proposals, StreamBuffers *buf,
                     CallWatch *watch, bint polls_signals, Py_ssize_t block,
                     ScanState *state) noexcept nogil:
    """The whole chunk loop of one stream of a built-in target into ``out[:n]``, without the
    GIL (the caller holds the Generator's lock, or owns the generator). It stops early when
    the memory runs out, a signal handler raised, or a block before this one failed."""
    cdef Chunk ch = plan.proto
    cdef Py_ssize_t c, n_drawn = 0, n_dry = 0
    ch.bitgen = bg
    ch.n_wanted = n
    ch.out = out
    open_state(state, plan.product)
    while state.n_acc < n:
        c = chunk_len(n - state.n_acc, state.n_exam, state.n_acc, plan.prior_rate, n_dry,
                      max_proposals - n_drawn)
        if c <= 0:
            state.status = STATUS_BUDGET
            break
        ch.length = c
        if plan.draws_first:
            if not reserve(buf, &ch, c):
                break
            fill_proposals(bg, fast, plan.code, ch.proposal_params, <double *>ch.x, c)
            fill_uniform(bg, fast, <double *>ch.u, c)
        plan.scan(&ch, state)
        n_drawn += c
        if state.status != STATUS_OK:
            break
        if state.n_acc == 0:
            n_dry += 1
        if stop_here(watch, polls_signals):
            break
        if block > watch.first_failed:
            break
    close_state(state, plan.product)


cdef StreamPlan plan_call(int code, const double[::1] params, const double[:, ::1] prog,
                          bint callable_target, int fast, double prior_rate,
                          bint stop_on_violation, double violation_tol):
    """Choose the strategy and fill the per-call fields of every chunk."""
    cdef StreamPlan plan
    cdef Py_ssize_t n_rows = prog.shape[0]
    cdef Strategy strategy = choose_strategy(&prog[0, 0], n_rows, code, callable_target, fast)
    plan.code = code
    plan.scan = STRATEGY_SCAN[<int>strategy]
    plan.product = strategy == PRODUCT or strategy == PRODUCT_PCG64
    plan.draws_first = strategy != PRODUCT_PCG64
    plan.prior_rate = prior_rate
    plan.proto.log_target = NULL
    plan.proto.prog = &prog[0, 0]
    plan.proto.n_rows = n_rows
    plan.proto.proposal_params = &params[0]
    # product mode with a uniform proposal inside the support: x = p0 + p1*u, u in [0, 1), and
    # rounding is monotone, so p0 <= x <= fl(p0 + p1) and the support test can be skipped
    plan.proto.inside_support = (plan.product and code == PROPOSAL_UNIFORM
                                 and params[0] >= prog[0, ROW_SUPPORT_LOW]
                                 and params[0] + params[1] <= prog[0, ROW_SUPPORT_HIGH])
    plan.proto.stop_on_violation = stop_on_violation
    plan.proto.violation_tol = violation_tol
    return plan


def _chosen_strategy(rng, int code, const double[:, ::1] prog, bint callable_target):
    """Test hook: the name of the strategy ``rejection_sample`` would use."""
    return _STRATEGY_NAMES[<int>choose_strategy(&prog[0, 0], prog.shape[0], code, callable_target,
                                                pcg64_inline(rng.bit_generator))]


# ---------------------------------------------------------------------------------------------
# Entry points (same names and signatures as rsft._reference.sampler)
# ---------------------------------------------------------------------------------------------

def draw_proposals(rng, int code, const double[::1] params, double[::1] out):
    """Fill ``out`` with proposal draws (see ``rsft._reference.sampler.draw_proposals``)."""
    bit_generator = rng.bit_generator
    cdef bitgen_t *bg = get_bitgen(bit_generator)
    cdef int fast = pcg64_inline(bit_generator)
    cdef Py_ssize_t c = out.shape[0]
    if c == 0:
        return
    with bit_generator.lock, nogil:
        fill_proposals(bg, fast, code, &params[0], &out[0], c)


def log_ratio(const double[:, ::1] prog, const double[::1] x, double[::1] out):
    """Evaluate a log-ratio program at ``x`` into ``out``."""
    cdef Py_ssize_t i, n = x.shape[0], k = prog.shape[0]
    cdef double[::1] row_values = np.empty(k)
    with nogil:
        for i in range(n):
            out[i] = eval_program(&prog[0, 0], k, x[i], &row_values[0])


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
    """Length of the next chunk (see ``rsft._reference.sampler.chunk_length``)."""
    return chunk_len(remaining, n_examined, n_accepted, prior_rate, n_dry, budget_left)


def rejection_sample(rng, int code, const double[::1] params, const double[:, ::1] prog, logp,
                     Py_ssize_t n, double prior_rate, Py_ssize_t max_proposals,
                     bint stop_on_violation, double violation_tol, double[::1] out):
    """Rejection sampling into ``out[:n]`` (see ``rsft._reference.sampler.rejection_sample``).

    A built-in target runs the whole chunk loop (draws and scans) in one span without the GIL
    and under the Generator's lock, taking the GIL back only for a signal check on a time
    budget (SIGNAL_CHECK_SECONDS). A callable target is called once per chunk, with the GIL
    and without the lock (so it may use the same Generator), between the draws and the scan.
    """
    bit_generator = rng.bit_generator
    lock = bit_generator.lock
    cdef bitgen_t *bg = get_bitgen(bit_generator)
    cdef int fast = pcg64_inline(bit_generator)
    cdef bint callable_target = logp is not None
    cdef StreamPlan plan = plan_call(code, params, prog, callable_target, fast, prior_rate,
                                     stop_on_violation, violation_tol)
    cdef StreamBuffers buf
    cdef CallWatch watch
    cdef ScanState state
    cdef Chunk ch = plan.proto
    cdef const double[::1] log_target
    cdef Py_ssize_t c, n_drawn = 0, n_dry = 0
    open_buffers(&buf, prog.shape[0], plan.scan == scan_quadratic)
    open_watch(&watch)
    try:
        if not callable_target:
            with lock, nogil:
                run_stream(&plan, bg, fast, &out[0], n, max_proposals, &buf, &watch, True, 0,
                           &state)
        else:
            ch.bitgen = bg
            ch.n_wanted = n
            ch.out = &out[0]
            open_state(&state, plan.product)
            while state.n_acc < n and not buf.out_of_memory:
                c = chunk_len(n - state.n_acc, state.n_exam, state.n_acc, prior_rate, n_dry,
                              max_proposals - n_drawn)
                if c <= 0:
                    state.status = STATUS_BUDGET
                    break
                ch.length = c
                if not reserve(&buf, &ch, c):
                    break
                with lock, nogil:
                    fill_proposals(bg, fast, code, ch.proposal_params, <double *>ch.x, c)
                    fill_uniform(bg, fast, <double *>ch.u, c)
                # the callable may keep its argument: a copy, never the scratch buffer
                log_target = logp(np.asarray(<double[:c]>buf.x).copy())
                ch.log_target = &log_target[0]
                with nogil:
                    plan.scan(&ch, &state)
                n_drawn += c
                PyErr_CheckSignals()
                if state.status != STATUS_OK:
                    break
                if state.n_acc == 0:
                    n_dry += 1
            close_state(&state, plan.product)
    finally:
        close_buffers(&buf)
    if buf.out_of_memory:
        raise MemoryError("rejection_sample: no memory for the chunk buffers")
    raise_interruption(&watch)
    return state.n_exam, state.n_acc, state.max_g, state.x_max, state.status


cdef void run_block(const StreamPlan *plan, bitgen_t **bitgens, const int *fast,
                    double *out, const Py_ssize_t *stops, const Py_ssize_t *budgets,
                    Py_ssize_t b, StreamBuffers *buf, CallWatch *watch, bint polls_signals,
                    ScanState *states) noexcept nogil:
    """Block ``b`` of a blocked call: its stream into ``out[stops[b-1]:stops[b]]``; a block
    after a known failure is skipped (its state says nothing was examined)."""
    cdef Py_ssize_t start = stops[b - 1] if b > 0 else 0
    if b > watch.first_failed or watch.interrupted:
        open_state(&states[b], plan.product)
        close_state(&states[b], plan.product)
        return
    run_stream(plan, bitgens[b], fast[b], out + start, stops[b] - start, budgets[b], buf,
               watch, polls_signals, b, &states[b])
    if states[b].status != STATUS_OK and b < watch.first_failed:
        watch.first_failed = b   # a racy minimum is enough: it always holds a failing block


def rejection_sample_blocks(children, int code, const double[::1] params,
                            const double[:, ::1] prog, logp, const Py_ssize_t[::1] block_stops,
                            double prior_rate, const Py_ssize_t[::1] budgets,
                            bint stop_on_violation, double violation_tol, double[::1] out,
                            int n_threads):
    """The blocked stream (see ``rsft._reference.sampler.rejection_sample_blocks``).

    A built-in target runs the blocks on up to ``n_threads`` threads (OpenMP, dynamic schedule,
    one block at a time, the GIL released), each thread with its own chunk buffers; the
    children are private to the call, so their locks are not taken. A callable target needs
    the GIL for every chunk: its blocks run one after another. Which thread runs a block never
    changes what the block draws, so the result does not depend on ``n_threads``.
    """
    cdef Py_ssize_t n_blocks = block_stops.shape[0], b, start, n_teams
    n_exam = np.zeros(n_blocks, dtype=np.intp)
    n_acc = np.zeros(n_blocks, dtype=np.intp)
    max_g = np.full(n_blocks, -np.inf)
    x_max = np.full(n_blocks, np.nan)
    status = np.zeros(n_blocks, dtype=np.intp)
    results = (n_exam, n_acc, max_g, x_max, status)
    cdef StreamPlan plan
    cdef CallWatch watch
    cdef ScanState *states = NULL
    cdef StreamBuffers *buffers = NULL
    cdef bitgen_t **bitgens = NULL
    cdef int *fast = NULL
    if logp is not None:
        for b in range(n_blocks):
            start = block_stops[b - 1] if b > 0 else 0
            row = rejection_sample(children[b], code, params, prog, logp, block_stops[b] - start,
                                   prior_rate, budgets[b], stop_on_violation, violation_tol,
                                   out[start:block_stops[b]])
            for column, value in zip(results, row):
                column[b] = value
            if status[b] != STATUS_OK:
                break
        return results
    if n_blocks == 0:
        return results
    bit_generators = [child.bit_generator for child in children]  # alive while pointers live
    n_teams = max(1, min(n_threads, n_blocks))
    plan = plan_call(code, params, prog, False, pcg64_inline(bit_generators[0]), prior_rate,
                     stop_on_violation, violation_tol)
    open_watch(&watch)
    try:
        states = <ScanState *>calloc(n_blocks, sizeof(ScanState))
        bitgens = <bitgen_t **>calloc(n_blocks, sizeof(bitgen_t *))
        fast = <int *>calloc(n_blocks, sizeof(int))
        buffers = <StreamBuffers *>calloc(n_teams, sizeof(StreamBuffers))
        if states == NULL or bitgens == NULL or fast == NULL or buffers == NULL:
            raise MemoryError("rejection_sample_blocks: no memory for the block table")
        for b in range(n_blocks):
            bitgens[b] = get_bitgen(bit_generators[b])
            fast[b] = pcg64_inline(bit_generators[b])
            # the strategy (inline PCG64 or not) was chosen for the first child's type
            if type(bit_generators[b]) is not type(bit_generators[0]):
                raise TypeError("rejection_sample_blocks: the children must share one bit "
                                "generator type")
        for b in range(n_teams):
            open_buffers(&buffers[b], prog.shape[0], plan.scan == scan_quadratic)
        if n_teams == 1:
            with nogil:
                for b in range(n_blocks):
                    run_block(&plan, bitgens, fast, &out[0], &block_stops[0], &budgets[0], b,
                              &buffers[0], &watch, True, states)
        else:
            for b in prange(n_blocks, nogil=True, schedule="dynamic", chunksize=1,
                            num_threads=n_teams):
                run_block(&plan, bitgens, fast, &out[0], &block_stops[0], &budgets[0], b,
                          &buffers[threadid()], &watch, threadid() == 0, states)
        for b in range(n_teams):
            if buffers[b].out_of_memory:
                raise MemoryError("rejection_sample_blocks: no memory for the chunk buffers")
        raise_interruption(&watch)
        for b in range(n_blocks):
            n_exam[b] = states[b].n_exam
            n_acc[b] = states[b].n_acc
            max_g[b] = states[b].max_g
            x_max[b] = states[b].x_max
            status[b] = states[b].status
    finally:
        if buffers != NULL:
            for b in range(n_teams):
                close_buffers(&buffers[b])
        free(buffers)
        free(states)
        free(bitgens)
        free(fast)
    return results
