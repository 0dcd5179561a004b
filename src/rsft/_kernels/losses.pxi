# Loss kernels (included by _core.pyx); twin of rsft._reference.losses (read its docstring for
# the formulas, the conventions for empty arrays and the order of operations both follow).
#
# Arithmetic is done in double whatever the storage type; float32 inputs are widened on load
# and results rounded on store, exactly as the reference does with astype(float64).
# Sums over samples are accumulated left to right in double (the reference uses numpy's
# pairwise sum, so totals agree to rounding, not bit for bit).
from cython cimport floating
from libc.math cimport exp, log, log1p, fabs
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free


# ---------------------------------------------------------------------------------------------
# Scalar helpers
# ---------------------------------------------------------------------------------------------

cdef inline double bce_point(double z, double y, double *sig) noexcept nogil:
    """BCE with logits at one point: returns max(z, 0) - z*y + log1p(exp(-|z|)) and stores
    sigmoid(z) (1/(1+e) for z >= 0, e/(1+e) otherwise, e = exp(-|z|)) in sig[0]."""
    cdef double e = exp(-fabs(z))
    cdef double inv = 1.0 / (1.0 + e)
    cdef double zpos = z if z > 0.0 else 0.0
    sig[0] = inv if z >= 0.0 else e * inv
    return (zpos - z * y) + log1p(e)


cdef inline double row_shifted_exp(const floating *z, Py_ssize_t k, double *e,
                                   double *m_out) noexcept nogil:
    """e[j] = exp(z[j] - m) with m = max_j z[j]; returns sum_j e[j] (left to right)."""
    cdef Py_ssize_t j
    cdef double m = z[0], s = 0.0, v
    for j in range(1, k):
        v = z[j]
        if v > m:
            m = v
    for j in range(k):
        v = exp(<double>z[j] - m)
        e[j] = v
        s += v
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


cdef double mse_loop(const floating[:, ::1] pred, const floating[:, ::1] target,
                     const floating[::1] w, double grad_scale, floating[:, ::1] loss_out,
                     floating[:, ::1] grad_out) noexcept nogil:
    # Unweighted (or one column): one flat loop over the elements with four partial sums (the
    # summation order differs from numpy's pairwise sum anyway; this breaks the add latency
    # chain). Weighted with several columns: row by row.
    cdef Py_ssize_t n = pred.shape[0], k = pred.shape[1], i, j, e, size = n * k
    cdef bint has_w = w.shape[0] != 0
    cdef floating *lo = &loss_out[0, 0] if loss_out.shape[0] != 0 else NULL
    cdef floating *go = &grad_out[0, 0] if grad_out.shape[0] != 0 else NULL
    cdef const floating *p = &pred[0, 0]
    cdef const floating *t = &target[0, 0]
    cdef double c = 2.0 * grad_scale, wi, s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    if not has_w:
        e = 0
        while e + 4 <= size:
            s0 += mse_point(p, t, e, False, 1.0, c, lo, go)
            s1 += mse_point(p, t, e + 1, False, 1.0, c, lo, go)
            s2 += mse_point(p, t, e + 2, False, 1.0, c, lo, go)
            s3 += mse_point(p, t, e + 3, False, 1.0, c, lo, go)
            e += 4
        while e < size:
            s0 += mse_point(p, t, e, False, 1.0, c, lo, go)
            e += 1
    elif k == 1:
        e = 0
        while e + 4 <= size:
            wi = w[e]
            s0 += mse_point(p, t, e, True, wi, c * wi, lo, go)
            wi = w[e + 1]
            s1 += mse_point(p, t, e + 1, True, wi, c * wi, lo, go)
            wi = w[e + 2]
            s2 += mse_point(p, t, e + 2, True, wi, c * wi, lo, go)
            wi = w[e + 3]
            s3 += mse_point(p, t, e + 3, True, wi, c * wi, lo, go)
            e += 4
        while e < size:
            wi = w[e]
            s0 += mse_point(p, t, e, True, wi, c * wi, lo, go)
            e += 1
    else:
        for i in range(n):
            wi = w[i]
            for j in range(k):
                s0 += mse_point(p, t, i * k + j, True, wi, c * wi, lo, go)
    return (s0 + s1) + (s2 + s3)


cdef double bce_loop(const floating[:, ::1] pred, const floating[:, ::1] target,
                     const floating[::1] w, double grad_scale, floating[:, ::1] loss_out,
                     floating[:, ::1] grad_out) noexcept nogil:
    cdef Py_ssize_t n = pred.shape[0], k = pred.shape[1], i, j
    cdef bint has_w = w.shape[0] != 0
    cdef bint has_l = loss_out.shape[0] != 0
    cdef bint has_g = grad_out.shape[0] != 0
    cdef double ci = grad_scale, wi = 1.0, y, l, s, total = 0.0
    for i in range(n):
        if has_w:
            wi = w[i]
            ci = grad_scale * wi
        for j in range(k):
            y = target[i, j]
            l = bce_point(pred[i, j], y, &s)
            if has_w:
                l = wi * l
            total += l
            if has_l:
                loss_out[i, j] = <floating>l
            if has_g:
                grad_out[i, j] = <floating>(ci * (s - y))
    return total


cdef double xent_labels_loop(const floating[:, ::1] z, const int64_t[::1] labels,
                             const floating[::1] w, double grad_scale, floating[::1] loss_out,
                             floating[:, ::1] grad_out, double *e) noexcept nogil:
    cdef Py_ssize_t n = z.shape[0], k = z.shape[1], i, j, y
    cdef bint has_w = w.shape[0] != 0
    cdef bint has_l = loss_out.shape[0] != 0
    cdef bint has_g = grad_out.shape[0] != 0
    cdef double ci = grad_scale, wi, m, s, inv, l, total = 0.0
    for i in range(n):
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


cdef double xent_probs_loop(const floating[:, ::1] z, const floating[:, ::1] t,
                            const floating[::1] w, double grad_scale, floating[::1] loss_out,
                            floating[:, ::1] grad_out, double *e) noexcept nogil:
    cdef Py_ssize_t n = z.shape[0], k = z.shape[1], i, j
    cdef bint has_w = w.shape[0] != 0
    cdef bint has_l = loss_out.shape[0] != 0
    cdef bint has_g = grad_out.shape[0] != 0
    cdef double ci = grad_scale, wi, m, s, ls, inv, tsum, tj, l, total = 0.0
    for i in range(n):
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
# Entry points
# ---------------------------------------------------------------------------------------------

def mse_loss(const floating[:, ::1] pred, const floating[:, ::1] target,
             const floating[::1] weights, double grad_scale, floating[:, ::1] loss_out,
             floating[:, ::1] grad_out):
    """Weighted squared error, total and gradient in one pass (see the reference)."""
    cdef double total
    with nogil:
        total = mse_loop(pred, target, weights, grad_scale, loss_out, grad_out)
    return total


def bce_with_logits_loss(const floating[:, ::1] pred, const floating[:, ::1] target,
                         const floating[::1] weights, double grad_scale,
                         floating[:, ::1] loss_out, floating[:, ::1] grad_out):
    """Weighted binary cross-entropy with logits, total and gradient in one pass."""
    cdef double total
    with nogil:
        total = bce_loop(pred, target, weights, grad_scale, loss_out, grad_out)
    return total


def softmax_xent_labels(const floating[:, ::1] logits, const int64_t[::1] labels,
                        const floating[::1] weights, double grad_scale, floating[::1] loss_out,
                        floating[:, ::1] grad_out):
    """Softmax cross-entropy with integer labels, total and gradient in one pass."""
    cdef Py_ssize_t k = logits.shape[1]
    cdef double total
    cdef double *e = <double *>malloc(max(k, 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    try:
        with nogil:
            total = xent_labels_loop(logits, labels, weights, grad_scale, loss_out, grad_out, e)
    finally:
        free(e)
    return total


def softmax_xent_probs(const floating[:, ::1] logits, const floating[:, ::1] targets,
                       const floating[::1] weights, double grad_scale, floating[::1] loss_out,
                       floating[:, ::1] grad_out):
    """Softmax cross-entropy with probability targets, total and gradient in one pass."""
    cdef Py_ssize_t k = logits.shape[1]
    cdef double total
    cdef double *e = <double *>malloc(max(k, 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    try:
        with nogil:
            total = xent_probs_loop(logits, targets, weights, grad_scale, loss_out, grad_out, e)
    finally:
        free(e)
    return total


def sigmoid(const floating[::1] z, floating[::1] out):
    """Logistic function, piecewise as in ``bce_point``."""
    cdef Py_ssize_t i, n = z.shape[0]
    cdef double s
    with nogil:
        for i in range(n):
            bce_point(z[i], 0.0, &s)
            out[i] = <floating>s


def softmax(const floating[:, ::1] logits, floating[:, ::1] out):
    """Row-wise softmax probabilities: e_j * (1/s), e_j = exp(z_j - max z), s = sum e_j."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i, j
    cdef double m, inv
    cdef double *e = <double *>malloc(max(k, 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                inv = 1.0 / row_shifted_exp(&logits[i, 0], k, e, &m)
                for j in range(k):
                    out[i, j] = <floating>(e[j] * inv)
    finally:
        free(e)


def log_softmax(const floating[:, ::1] logits, floating[:, ::1] out):
    """Row-wise log-softmax: (z_j - max z) - log(s)."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i, j
    cdef double m, ls
    cdef double *e = <double *>malloc(max(k, 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                ls = log(row_shifted_exp(&logits[i, 0], k, e, &m))
                for j in range(k):
                    out[i, j] = <floating>((<double>logits[i, j] - m) - ls)
    finally:
        free(e)


def categorical_inverse_cdf(const floating[:, ::1] probs, const double[:, ::1] u,
                            int64_t[:, ::1] out):
    """Inverse-CDF draws: out[i, r] = #{j < k-1 : c_ij <= u[i, r] * c_i,k-1}, with c_i the
    running (left-to-right, double) sum of row i of ``probs``."""
    cdef Py_ssize_t n = probs.shape[0], k = probs.shape[1], m = u.shape[1], i, j, r
    cdef double acc
    cdef double *c = <double *>malloc(max(k, 1) * sizeof(double))
    if c == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                acc = 0.0
                for j in range(k):
                    acc = acc + <double>probs[i, j]
                    c[j] = acc
                for r in range(m):
                    out[i, r] = bisect_right(c, k - 1, u[i, r] * acc)
    finally:
        free(c)
