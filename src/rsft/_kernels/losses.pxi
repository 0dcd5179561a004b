# Loss kernels (included by _core.pyx); twin of rsft._reference.losses (read its docstring for
# the formulas, the conventions for empty arrays and the order of operations both follow).
#
# MSE and the softmax cross-entropy's sums and logarithms are done in double whatever the
# storage type (float32 inputs widened on load, results rounded on store, as the reference does
# with astype(float64)). BCE with logits is computed in the storage type (float32 in float32),
# and the exponentials of BCE and of the softmax losses are the branch-free polynomial
# ``exp_nonpositive`` below (and BCE's log1p the polynomial ``log1p_unit``), written with the
# same operations in the same order as the reference's numpy twins: same bits on both backends,
# and loops the compiler vectorises (no libm call per element).
#
# Totals are ordered by block, not by thread: the rows are cut into blocks of about
# LOSS_BLOCK_ELEMENTS elements (the layout depends only on the shape), each block's partial sum
# is accumulated in double in a fixed order, and the partial sums are added in block order. The
# blocks run on up to ``n_threads`` threads, so the value and the gradient are the same bits for
# every ``n_threads``. (The reference uses numpy's pairwise sum: totals agree to rounding.)
# Long loops check for Ctrl-C between blocks (of rows, for softmax, log-softmax and the
# categorical draws too) on signals.pxi's time budget.
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport log, fabs, fabsf
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy


# ---------------------------------------------------------------------------------------------
# Scalar helpers: exp on (-inf, 0] and log1p on [0, 1], branch-free (vectorisable)
# ---------------------------------------------------------------------------------------------
# Every ``a if cond else b`` below picks between values already computed (no arithmetic in a
# branch), so the compiler turns it into a vector select instead of refusing the loop.

# The power of two 2**k from t = x*log2(e) + ROUND_MAGIC (k = t - ROUND_MAGIC, an integer held in
# the low bits of t's significand): the integer difference of t's bits and ROUND_MAGIC's bits is
# k (two's complement, unsigned arithmetic: no overflow), and (k + bias) shifted into the
# exponent field is 2**k, for k in [-bias + 1, 0]. Bit casts through memcpy (compiled to moves).
cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline double rsft_pow2_of_rounded_f64(double t) {
        uint64_t b; memcpy(&b, &t, sizeof b);
        b = (b - (uint64_t)0x4338000000000000ULL + 1023u) << 52;
        double r; memcpy(&r, &b, sizeof r); return r;
    }
    static inline float rsft_pow2_of_rounded_f32(float t) {
        uint32_t b; memcpy(&b, &t, sizeof b);
        b = (b - (uint32_t)0x4B400000u + 127u) << 23;
        float r; memcpy(&r, &b, sizeof r); return r;
    }
    """
    double rsft_pow2_of_rounded_f64(double t) noexcept nogil
    float rsft_pow2_of_rounded_f32(float t) noexcept nogil


cdef inline floating f_abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating exp_nonpositive(floating x) noexcept nogil:
    """exp(x) for x <= 0, in the storage type, without a libm call or a branch.

    Reduction: k = rint(x / ln 2) (adding and subtracting ROUND_MAGIC = 1.5 * 2**52, or
    1.5 * 2**23 in float32, rounds to the nearest integer in the current rounding mode), then
    r = (x - k*LN2_HI) - k*LN2_LO with |r| <= ln(2)/2 (LN2_HI has its low bits zero, so k*LN2_HI
    and x - k*LN2_HI are exact: Cody and Waite). exp(r) is its Taylor polynomial in Horner form,
    degree 13 in float64 (truncation r**14/14! < 4.2e-18 relative) and degree 7 in float32
    (r**8/8! < 5.3e-9, below 2**-24); the result is exp(r) * 2**k. Max error, measured against
    long double on 2e6 points per dtype: 1.17 ulp in float64 and in float32 (tests/test_losses.py
    asserts <= 1.5 ulp).
    Below EXP_MIN (-708.39 in float64, -87.33 in float32: about log of the smallest normal
    number; below it 2**k would leave the normal range) the result is 0: exp(x) is then below
    2.3e-308 (float64) or 1.2e-38 (float32), the absolute error there.
    NaN gives NaN; -inf gives 0."""
    cdef floating xc, t, k, r, p
    if floating is float:
        xc = <float>-87.33 if x < <float>-87.33 else x
        t = xc * <float>1.4426950408889634 + <float>12582912.0
        k = t - <float>12582912.0
        r = (xc - k * <float>0.693145751953125) - k * <float>1.4286068202862268e-06
        p = <float>(1.0 / 5040.0)
        p = <float>(1.0 / 720.0) + r * p
        p = <float>(1.0 / 120.0) + r * p
        p = <float>(1.0 / 24.0) + r * p
        p = <float>(1.0 / 6.0) + r * p
        p = <float>0.5 + r * p
        p = <float>1.0 + r * p
        p = <float>1.0 + r * p
        p = p * rsft_pow2_of_rounded_f32(t)
        return <float>0.0 if x < <float>-87.33 else p
    else:
        xc = -708.39 if x < -708.39 else x
        t = xc * 1.4426950408889634 + 6755399441055744.0
        k = t - 6755399441055744.0
        r = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
        p = 1.0 / 6227020800.0
        p = 1.0 / 479001600.0 + r * p
        p = 1.0 / 39916800.0 + r * p
        p = 1.0 / 3628800.0 + r * p
        p = 1.0 / 362880.0 + r * p
        p = 1.0 / 40320.0 + r * p
        p = 1.0 / 5040.0 + r * p
        p = 1.0 / 720.0 + r * p
        p = 1.0 / 120.0 + r * p
        p = 1.0 / 24.0 + r * p
        p = 1.0 / 6.0 + r * p
        p = 0.5 + r * p
        p = 1.0 + r * p
        p = 1.0 + r * p
        p = p * rsft_pow2_of_rounded_f64(t)
        return 0.0 if x < -708.39 else p


cdef inline floating log1p_unit(floating e) noexcept nogil:
    """log(1 + e) for e in [0, 1], in the storage type, without a libm call or a branch.

    u = 1 + e rounds; c = (e - (u - 1)) / u corrects for that rounding (e - (u - 1) is exact).
    With u in [1, 2]: u = 2**j * (1 + f), j = 1 if u > sqrt(2) else 0, so f in (-0.293, 0.415)
    (both choices of f are exact). log(1 + f) = f - hfsq + s*(hfsq + R) with hfsq = f*f/2,
    s = f/(2 + f) (|s| < 0.172, z = s*s < 0.0295) and R = sum_n 2 z**n / (2n + 1), the series of
    2 atanh(s) - 2s, summed to n = 10 in float64 (next term < 7e-19 relative) and n = 4 in
    float32 (< 2.2e-9). The result j*ln2 + log(1 + f) + c is added small terms first, leading f
    last (fdlibm's order). Max error, measured against long double on [0, 1] (2e6 points): 0.86 ulp
    in float64, 0.83 ulp in float32 (tests/test_losses.py asserts <= 1 ulp). NaN gives NaN."""
    cdef floating u, f, f_low, f_high, c, big_hi, big_lo, hfsq, s, z, R
    cdef bint big
    if floating is float:
        u = <float>1.0 + e
        c = (e - (u - <float>1.0)) / u
        big = u > <float>1.4142135623730951
        f_low = u - <float>1.0
        f_high = <float>0.5 * u - <float>1.0
        f = f_high if big else f_low
        big_hi = <float>0.693145751953125 if big else <float>0.0
        big_lo = <float>1.4286068202862268e-06 if big else <float>0.0
        hfsq = <float>0.5 * f * f
        s = f / (<float>2.0 + f)
        z = s * s
        R = <float>(2.0 / 9.0)
        R = <float>(2.0 / 7.0) + z * R
        R = <float>(2.0 / 5.0) + z * R
        R = <float>(2.0 / 3.0) + z * R
        R = z * R
    else:
        u = 1.0 + e
        c = (e - (u - 1.0)) / u
        big = u > 1.4142135623730951
        f_low = u - 1.0
        f_high = 0.5 * u - 1.0
        f = f_high if big else f_low
        big_hi = 6.93147180369123816490e-01 if big else 0.0
        big_lo = 1.90821492927058770002e-10 if big else 0.0
        hfsq = 0.5 * f * f
        s = f / (2.0 + f)
        z = s * s
        R = 2.0 / 21.0
        R = 2.0 / 19.0 + z * R
        R = 2.0 / 17.0 + z * R
        R = 2.0 / 15.0 + z * R
        R = 2.0 / 13.0 + z * R
        R = 2.0 / 11.0 + z * R
        R = 2.0 / 9.0 + z * R
        R = 2.0 / 7.0 + z * R
        R = 2.0 / 5.0 + z * R
        R = 2.0 / 3.0 + z * R
        R = z * R
    return big_hi - ((hfsq - (s * (hfsq + R) + (big_lo + c))) - f)


cdef inline floating sigmoid_from(floating z, floating e) noexcept nogil:
    """sigmoid(z) from e = exp(-|z|): 1/(1+e) for z >= 0, e * (1/(1+e)) otherwise."""
    cdef floating inv = <floating>1.0 / (<floating>1.0 + e)
    cdef floating e_inv = e * inv
    return inv if z >= 0 else e_inv


cdef inline double row_shifted_exp(const floating *z, Py_ssize_t k, double *e,
                                   double *m_out) noexcept nogil:
    """e[j] = exp(z[j] - m) with m = max_j z[j], the difference rounded to the storage type
    and exponentiated by exp_nonpositive; returns sum_j e[j] (left to right, double)."""
    cdef Py_ssize_t j
    cdef double m = z[0], s = 0.0, v
    for j in range(1, k):
        v = z[j]
        if v > m:
            m = v
    for j in range(k):
        e[j] = exp_nonpositive(<floating>(<double>z[j] - m))
    for j in range(k):
        s += e[j]
    m_out[0] = m
    return s


cdef inline Py_ssize_t bisect_right(const double *c, Py_ssize_t n, double v) noexcept nogil:
    """Number of c[j] <= v for j < n (c non-decreasing)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if v < c[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


# ---------------------------------------------------------------------------------------------
# Array loops
# ---------------------------------------------------------------------------------------------

cdef inline double mse_point(const floating *p, const floating *t, Py_ssize_t e, bint weighted,
                             double w, double c, floating *lo, floating *go) noexcept nogil:
    """Element e: stores l = d*d (times w if weighted) in lo and c*d in go when given;
    returns l."""
    cdef double d = <double>p[e] - <double>t[e]
    cdef double l = d * d
    if weighted:
        l = w * l
    if lo != NULL:
        lo[e] = <floating>l
    if go != NULL:
        go[e] = <floating>(c * d)
    return l


cdef enum:
    MSE_LANES = 8     # partial sums of the unweighted MSE loop (vector lanes, a fixed order)


cdef inline double mse_lanes(const floating *p, const floating *t, double c, floating *go,
                             Py_ssize_t e, Py_ssize_t end, bint store) noexcept nogil:
    """Unweighted MSE over elements [e, end) without per-element losses (``store``: write the
    gradient to ``go``): the element arithmetic of mse_point, the squares summed into
    MSE_LANES partial sums (element e + j into lane j), added pairwise at the end. Each group of
    MSE_LANES elements is loaded, then summed, then stored, in loops of fixed length: straight-line
    code the compiler vectorises (a store cannot alias a later load). The order of the sum is
    fixed by the block."""
    cdef double acc[MSE_LANES]
    cdef double d[MSE_LANES]
    cdef Py_ssize_t j, m
    for j in range(MSE_LANES):
        acc[j] = 0.0
    while e < end:
        m = min(<Py_ssize_t>MSE_LANES, end - e)
        if m == MSE_LANES:
            for j in range(MSE_LANES):
                d[j] = <double>p[e + j] - <double>t[e + j]
            for j in range(MSE_LANES):
                acc[j] += d[j] * d[j]
            if store:
                for j in range(MSE_LANES):
                    go[e + j] = <floating>(c * d[j])
        else:
            for j in range(m):
                d[j] = <double>p[e + j] - <double>t[e + j]
                acc[j] += d[j] * d[j]
                if store:
                    go[e + j] = <floating>(c * d[j])
        e += m
    return (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))


cdef double mse_rows(const floating[:, ::1] pred, const floating[:, ::1] target,
                     const floating[::1] w, double grad_scale, floating[:, ::1] loss_out,
                     floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows [r0, r1): the partial sum. Unweighted (or one column): one flat loop over the
    elements with four partial sums (breaks the add latency chain). Weighted with several
    columns: row by row."""
    cdef Py_ssize_t k = pred.shape[1], i, j, e = r0 * k, end = r1 * k
    cdef bint has_w = w.shape[0] != 0
    cdef floating *lo = &loss_out[0, 0] if loss_out.shape[0] != 0 else NULL
    cdef floating *go = &grad_out[0, 0] if grad_out.shape[0] != 0 else NULL
    cdef const floating *p = &pred[0, 0]
    cdef const floating *t = &target[0, 0]
    cdef double c = 2.0 * grad_scale, wi, s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    if not has_w and lo == NULL:     # the common case: value and gradient of the mean or sum
        if go != NULL:
            return mse_lanes(p, t, c, go, e, end, True)
        return mse_lanes(p, t, c, go, e, end, False)
    if not has_w:
        while e + 4 <= end:
            s0 += mse_point(p, t, e, False, 1.0, c, lo, go)
            s1 += mse_point(p, t, e + 1, False, 1.0, c, lo, go)
            s2 += mse_point(p, t, e + 2, False, 1.0, c, lo, go)
            s3 += mse_point(p, t, e + 3, False, 1.0, c, lo, go)
            e += 4
        while e < end:
            s0 += mse_point(p, t, e, False, 1.0, c, lo, go)
            e += 1
    elif k == 1:
        while e + 4 <= end:
            wi = w[e]
            s0 += mse_point(p, t, e, True, wi, c * wi, lo, go)
            wi = w[e + 1]
            s1 += mse_point(p, t, e + 1, True, wi, c * wi, lo, go)
            wi = w[e + 2]
            s2 += mse_point(p, t, e + 2, True, wi, c * wi, lo, go)
            wi = w[e + 3]
            s3 += mse_point(p, t, e + 3, True, wi, c * wi, lo, go)
            e += 4
        while e < end:
            wi = w[e]
            s0 += mse_point(p, t, e, True, wi, c * wi, lo, go)
            e += 1
    else:
        for i in range(r0, r1):
            wi = w[i]
            for j in range(k):
                s0 += mse_point(p, t, i * k + j, True, wi, c * wi, lo, go)
    return (s0 + s1) + (s2 + s3)


cdef enum:
    ELEMENT_CHUNK = 256   # elements per stack buffer of the BCE loop
    SUM_LANES = 8         # partial sums of the BCE total (element i of a chunk into lane i % 8)


cdef inline void bce_chunk(const floating *z, const floating *y, const floating *w,
                           const floating *c, Py_ssize_t m, floating *l,
                           floating *g) noexcept nogil:
    """Elements [0, m), in the storage type: e = exp(-|z|), the stable form
    l = w * ((max(z, 0) - z*y) + log1p(e)) (never exp of a positive number, never log of a
    rounded 1 - p), g = c * (sigmoid(z) - y). One straight loop over arrays: vectorised."""
    cdef Py_ssize_t i
    cdef floating zi, yi, e, zpos
    for i in range(m):
        zi = z[i]
        yi = y[i]
        e = exp_nonpositive(-f_abs(zi))
        zpos = zi if zi > 0 else <floating>0.0
        l[i] = w[i] * ((zpos - zi * yi) + log1p_unit(e))
        g[i] = c[i] * (sigmoid_from(zi, e) - yi)


# The BCE chunk loop, once per dtype under a C name of its own, so that (like the optimizer
# loops, see optim.pxi.tp) it is compiled for AVX2 and AVX-512F as well as the baseline and the
# best is chosen at load time (RSFT_CLONED, defined there). The clones compute the same bits:
# no FMA (-ffp-contract=off), IEEE + - * /, only the vector width differs.
cdef extern from *:
    """
    #ifdef RSFT_OPTIM_CLONES
    static void rsft_bce_chunk_float32(float const *, float const *, float const *,
                                       float const *, Py_ssize_t, float *, float *) RSFT_CLONED;
    static void rsft_bce_chunk_float64(double const *, double const *, double const *,
                                       double const *, Py_ssize_t, double *, double *)
        RSFT_CLONED;
    #endif
    """


cdef void bce_chunk_float32 "rsft_bce_chunk_float32"(
        const float *z, const float *y, const float *w, const float *c, Py_ssize_t m, float *l,
        float *g) noexcept nogil:
    bce_chunk(z, y, w, c, m, l, g)


cdef void bce_chunk_float64 "rsft_bce_chunk_float64"(
        const double *z, const double *y, const double *w, const double *c, Py_ssize_t m,
        double *l, double *g) noexcept nogil:
    bce_chunk(z, y, w, c, m, l, g)


cdef inline void add_to_lanes(double *acc, const floating *l, Py_ssize_t m) noexcept nogil:
    """acc[i % SUM_LANES] += l[i] for i < m, in order (fixed-length groups: vectorised)."""
    cdef Py_ssize_t i = 0, j
    while i + SUM_LANES <= m:
        for j in range(SUM_LANES):
            acc[j] += <double>l[i + j]
        i += SUM_LANES
    for j in range(m - i):
        acc[j] += <double>l[i + j]


cdef double bce_rows(const floating[:, ::1] pred, const floating[:, ::1] target,
                     const floating[::1] w, double grad_scale, floating[:, ::1] loss_out,
                     floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows [r0, r1) as one run of elements, ELEMENT_CHUNK at a time: each element's weight
    w_i (1 without weights) and gradient factor grad_scale * w_i (computed in double, rounded
    to the storage type) are laid out in buffers, then bce_chunk runs on the chunk. Returns the
    sum of the losses: SUM_LANES partial sums in double, added pairwise at the end."""
    cdef Py_ssize_t k = pred.shape[1], start = r0 * k, end = r1 * k, i, m
    cdef bint has_w = w.shape[0] != 0
    cdef floating *lo = &loss_out[0, 0] if loss_out.shape[0] != 0 else NULL
    cdef floating *go = &grad_out[0, 0] if grad_out.shape[0] != 0 else NULL
    cdef const floating *z = &pred[0, 0]
    cdef const floating *y = &target[0, 0]
    cdef floating wbuf[ELEMENT_CHUNK]
    cdef floating cbuf[ELEMENT_CHUNK]
    cdef floating lbuf[ELEMENT_CHUNK]
    cdef floating gbuf[ELEMENT_CHUNK]
    cdef double acc[SUM_LANES]
    cdef floating wi
    for i in range(SUM_LANES):
        acc[i] = 0.0
    if not has_w:
        for i in range(ELEMENT_CHUNK):
            wbuf[i] = 1
            cbuf[i] = <floating>grad_scale
    while start < end:
        m = min(<Py_ssize_t>ELEMENT_CHUNK, end - start)
        if has_w:
            for i in range(m):
                wi = w[(start + i) // k]
                wbuf[i] = wi
                cbuf[i] = <floating>(grad_scale * <double>wi)
        if floating is float:
            bce_chunk_float32(z + start, y + start, wbuf, cbuf, m, lbuf, gbuf)
        else:
            bce_chunk_float64(z + start, y + start, wbuf, cbuf, m, lbuf, gbuf)
        if lo != NULL:
            memcpy(lo + start, lbuf, m * sizeof(floating))
        if go != NULL:
            memcpy(go + start, gbuf, m * sizeof(floating))
        add_to_lanes(acc, lbuf, m)
        start += m
    return (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))


cdef double xent_labels_rows(const floating[:, ::1] z, const int64_t[::1] labels,
                             const floating[::1] w, double grad_scale, floating[::1] loss_out,
                             floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1,
                             double *e) noexcept nogil:
    cdef Py_ssize_t k = z.shape[1], i, j, y
    cdef bint has_w = w.shape[0] != 0
    cdef bint has_l = loss_out.shape[0] != 0
    cdef bint has_g = grad_out.shape[0] != 0
    cdef double ci = grad_scale, wi, m, s, inv, l, total = 0.0
    for i in range(r0, r1):
        s = row_shifted_exp(&z[i, 0], k, e, &m)
        y = labels[i]
        l = log(s) - (<double>z[i, y] - m)
        if has_w:
            wi = w[i]
            l = wi * l
            ci = grad_scale * wi
        total += l
        if has_l:
            loss_out[i] = <floating>l
        if has_g:
            inv = 1.0 / s
            for j in range(k):
                grad_out[i, j] = <floating>(ci * (e[j] * inv))
            grad_out[i, y] = <floating>(ci * (e[y] * inv - 1.0))
    return total


cdef double xent_probs_rows(const floating[:, ::1] z, const floating[:, ::1] t,
                            const floating[::1] w, double grad_scale, floating[::1] loss_out,
                            floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1,
                            double *e) noexcept nogil:
    cdef Py_ssize_t k = z.shape[1], i, j
    cdef bint has_w = w.shape[0] != 0
    cdef bint has_l = loss_out.shape[0] != 0
    cdef bint has_g = grad_out.shape[0] != 0
    cdef double ci = grad_scale, wi, m, s, ls, inv, tsum, tj, l, total = 0.0
    for i in range(r0, r1):
        s = row_shifted_exp(&z[i, 0], k, e, &m)
        ls = log(s)
        l = 0.0
        tsum = 0.0
        for j in range(k):
            tj = t[i, j]
            tsum += tj
            l += tj * (ls - (<double>z[i, j] - m))
        if has_w:
            wi = w[i]
            l = wi * l
            ci = grad_scale * wi
        total += l
        if has_l:
            loss_out[i] = <floating>l
        if has_g:
            inv = 1.0 / s
            for j in range(k):
                grad_out[i, j] = <floating>(ci * ((e[j] * inv) * tsum - <double>t[i, j]))
    return total


# ---------------------------------------------------------------------------------------------
# Blocks: the one driver of every loss (block layout, threads, the ordered total)
# ---------------------------------------------------------------------------------------------

cdef enum:
    LOSS_BLOCK_ELEMENTS = 16384    # elements per block of rows (at least one row per block)

cdef enum LossKind:
    MSE_LOSS = 0
    BCE_LOSS = 1
    XENT_LABELS = 2
    XENT_PROBS = 3


cdef inline double loss_rows(LossKind kind, const floating[:, ::1] a,
                             const floating[:, ::1] b, const int64_t[::1] labels,
                             const floating[::1] w, double grad_scale,
                             floating[::1] row_loss_out, floating[:, ::1] loss_out,
                             floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1,
                             double *e) noexcept nogil:
    """The partial sum of rows [r0, r1) of loss ``kind`` (``a``: predictions or logits; ``b``:
    targets or probabilities; ``e``: k doubles of scratch for the softmax losses)."""
    if kind == MSE_LOSS:
        return mse_rows(a, b, w, grad_scale, loss_out, grad_out, r0, r1)
    if kind == BCE_LOSS:
        return bce_rows(a, b, w, grad_scale, loss_out, grad_out, r0, r1)
    if kind == XENT_LABELS:
        return xent_labels_rows(a, labels, w, grad_scale, row_loss_out, grad_out, r0, r1, e)
    return xent_probs_rows(a, b, w, grad_scale, row_loss_out, grad_out, r0, r1, e)


cdef double blocked_loss(LossKind kind, const floating[:, ::1] a, const floating[:, ::1] b,
                         const int64_t[::1] labels, const floating[::1] w, double grad_scale,
                         floating[::1] row_loss_out, floating[:, ::1] loss_out,
                         floating[:, ::1] grad_out, int n_threads) except? -1.0:
    """Run loss ``kind`` block by block on up to ``n_threads`` threads; the total is the sum of
    the blocks' partial sums in block order (the same bits for every ``n_threads``). Between
    blocks the calling thread checks for Ctrl-C (signals.pxi): an interrupted call stops at the
    next block and raises the handler's exception (the outputs then partly written)."""
    cdef Py_ssize_t n = a.shape[0], k = a.shape[1], blk, r0
    cdef Py_ssize_t rows = max(1, <Py_ssize_t>LOSS_BLOCK_ELEMENTS // max(k, 1))
    cdef Py_ssize_t n_blocks = (n + rows - 1) // rows
    cdef int n_teams = <int>max(1, min(<Py_ssize_t>n_threads, n_blocks))
    cdef double total = 0.0
    cdef double *partial = <double *>malloc(max(n_blocks, 1) * sizeof(double))
    cdef double *scratch = <double *>malloc(max(k, 1) * n_teams * sizeof(double))
    cdef CallWatch watch
    open_watch(&watch)
    if partial == NULL or scratch == NULL:
        free(partial)
        free(scratch)
        raise MemoryError()
    try:
        if n_teams == 1:
            with nogil:
                for blk in range(n_blocks):
                    if stop_here(&watch, True):
                        break
                    partial[blk] = loss_rows(kind, a, b, labels, w, grad_scale, row_loss_out,
                                             loss_out, grad_out, blk * rows,
                                             min(n, (blk + 1) * rows), scratch)
        else:
            for blk in prange(n_blocks, schedule="dynamic", chunksize=1, nogil=True,
                              num_threads=n_teams):
                if not stop_here(&watch, threadid() == 0):
                    r0 = blk * rows
                    partial[blk] = loss_rows(kind, a, b, labels, w, grad_scale, row_loss_out,
                                             loss_out, grad_out, r0, min(n, r0 + rows),
                                             scratch + threadid() * max(k, 1))
        raise_interruption(&watch)
        for blk in range(n_blocks):
            total += partial[blk]
    finally:
        free(partial)
        free(scratch)
    return total


#: stand-ins for the arguments a loss does not use (length 0, never read)
_NO_LABELS = np.empty(0, dtype=np.int64)
_NO_ROW_LOSSES = {"float32": np.empty(0, np.float32), "float64": np.empty(0, np.float64)}


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------

def mse_loss(const floating[:, ::1] pred, const floating[:, ::1] target,
             const floating[::1] weights, double grad_scale, floating[:, ::1] loss_out,
             floating[:, ::1] grad_out, int n_threads):
    """Weighted squared error, total and gradient in one pass (see the reference)."""
    cdef floating[::1] no_row_losses = _NO_ROW_LOSSES[
        "float32" if floating is float else "float64"]
    cdef const int64_t[::1] no_labels = _NO_LABELS
    return blocked_loss(MSE_LOSS, pred, target, no_labels, weights, grad_scale,
                        no_row_losses, loss_out, grad_out, n_threads)


def bce_with_logits_loss(const floating[:, ::1] pred, const floating[:, ::1] target,
                         const floating[::1] weights, double grad_scale,
                         floating[:, ::1] loss_out, floating[:, ::1] grad_out, int n_threads):
    """Weighted binary cross-entropy with logits, total and gradient in one pass."""
    cdef floating[::1] no_row_losses = _NO_ROW_LOSSES[
        "float32" if floating is float else "float64"]
    cdef const int64_t[::1] no_labels = _NO_LABELS
    return blocked_loss(BCE_LOSS, pred, target, no_labels, weights, grad_scale,
                        no_row_losses, loss_out, grad_out, n_threads)


def softmax_xent_labels(const floating[:, ::1] logits, const int64_t[::1] labels,
                        const floating[::1] weights, double grad_scale, floating[::1] loss_out,
                        floating[:, ::1] grad_out, int n_threads):
    """Softmax cross-entropy with integer labels, total and gradient in one pass."""
    return blocked_loss(XENT_LABELS, logits, logits, labels, weights, grad_scale, loss_out,
                        grad_out[:0], grad_out, n_threads)


def softmax_xent_probs(const floating[:, ::1] logits, const floating[:, ::1] targets,
                       const floating[::1] weights, double grad_scale, floating[::1] loss_out,
                       floating[:, ::1] grad_out, int n_threads):
    """Softmax cross-entropy with probability targets, total and gradient in one pass."""
    cdef const int64_t[::1] no_labels = _NO_LABELS
    return blocked_loss(XENT_PROBS, logits, targets, no_labels, weights, grad_scale,
                        loss_out, grad_out[:0], grad_out, n_threads)


def sigmoid(const floating[::1] z, floating[::1] out):
    """Logistic function in the storage type, as in the BCE kernel (sigmoid_from)."""
    cdef Py_ssize_t i, b, n = z.shape[0], size = LOSS_BLOCK_ELEMENTS
    cdef CallWatch watch
    open_watch(&watch)
    with nogil:
        for b in range((n + size - 1) // size):    # a signal check between blocks
            if stop_here(&watch, True):
                break
            for i in range(b * size, min(b * size + size, n)):
                out[i] = sigmoid_from(z[i], exp_nonpositive(-f_abs(z[i])))
    raise_interruption(&watch)


def exp_nonpositive_values(const floating[::1] x, floating[::1] out):
    """exp(x) for x <= 0 element-wise, the loss kernels' polynomial (a test hook)."""
    cdef Py_ssize_t i, n = x.shape[0]
    with nogil:
        for i in range(n):
            out[i] = exp_nonpositive(x[i])


def log1p_unit_values(const floating[::1] e, floating[::1] out):
    """log(1 + e) for e in [0, 1] element-wise, the BCE kernel's polynomial (a test hook)."""
    cdef Py_ssize_t i, n = e.shape[0]
    with nogil:
        for i in range(n):
            out[i] = log1p_unit(e[i])


def softmax(const floating[:, ::1] logits, floating[:, ::1] out):
    """Row-wise softmax probabilities: e_j * (1/s), e_j = exp(z_j - max z), s = sum e_j."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i, j
    cdef double m, inv
    cdef double *e = <double *>malloc(max(k, 1) * sizeof(double))
    cdef Py_ssize_t rows = max(1, <Py_ssize_t>LOSS_BLOCK_ELEMENTS // max(k, 1))  # per check
    cdef CallWatch watch
    open_watch(&watch)
    if e == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                if i % rows == 0 and stop_here(&watch, True):
                    break
                inv = 1.0 / row_shifted_exp(&logits[i, 0], k, e, &m)
                for j in range(k):
                    out[i, j] = <floating>(e[j] * inv)
    finally:
        free(e)
    raise_interruption(&watch)


def log_softmax(const floating[:, ::1] logits, floating[:, ::1] out):
    """Row-wise log-softmax: (z_j - max z) - log(s)."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i, j
    cdef double m, ls
    cdef double *e = <double *>malloc(max(k, 1) * sizeof(double))
    cdef Py_ssize_t rows = max(1, <Py_ssize_t>LOSS_BLOCK_ELEMENTS // max(k, 1))  # per check
    cdef CallWatch watch
    open_watch(&watch)
    if e == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                if i % rows == 0 and stop_here(&watch, True):
                    break
                ls = log(row_shifted_exp(&logits[i, 0], k, e, &m))
                for j in range(k):
                    out[i, j] = <floating>((<double>logits[i, j] - m) - ls)
    finally:
        free(e)
    raise_interruption(&watch)


def categorical_inverse_cdf(const floating[:, ::1] probs, const double[:, ::1] u,
                            int64_t[:, ::1] out):
    """Inverse-CDF draws: out[i, r] = #{j < k-1 : c_ij <= u[i, r] * c_i,k-1}, with c_i the
    running (left-to-right, double) sum of row i of ``probs``."""
    cdef Py_ssize_t n = probs.shape[0], k = probs.shape[1], m = u.shape[1], i, j, r
    cdef double acc
    cdef double *c = <double *>malloc(max(k, 1) * sizeof(double))
    cdef Py_ssize_t rows = max(1, <Py_ssize_t>LOSS_BLOCK_ELEMENTS // max(k, 1))  # per check
    cdef CallWatch watch
    open_watch(&watch)
    if c == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                if i % rows == 0 and stop_here(&watch, True):
                    break
                acc = 0.0
                for j in range(k):
                    acc = acc + <double>probs[i, j]
                    c[j] = acc
                for r in range(m):
                    out[i, r] = bisect_right(c, k - 1, u[i, r] * acc)
    finally:
        free(c)
    raise_interruption(&watch)
