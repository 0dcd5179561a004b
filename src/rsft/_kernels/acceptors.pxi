# Reward-acceptor kernels (included by _core.pyx after sampler.pxi); twin of
# rsft._reference.acceptors (read its docstring for the conventions, the draw order and the
# decision rules both follow).
#
# Uniforms: r.size doubles from next_double (exactly Generator.random) in C order, drawn in one
# block under the bit generator's lock before any decision; the decisions run without the GIL.
# Uses get_bitgen, pcg64_inline and fill_uniform (bitgen.pxi) and, for StatisticalRS, the
# sampler's accept() (sampler.pxi: same squeezes, same log fallback as the reference).

from libc.math cimport INFINITY


# ---------------------------------------------------------------------------------------------
# Scalar helpers
# ---------------------------------------------------------------------------------------------

cdef inline bint ranks_ahead(const double *r, const double *u, Py_ssize_t i,
                             Py_ssize_t j) noexcept nogil:
    """Candidate i ranks ahead of j under the key (r descending, u ascending, index)."""
    if r[i] != r[j]:
        return r[i] > r[j]
    if u[i] != u[j]:
        return u[i] < u[j]
    return i < j


cdef inline void heap_sift_down(const double *r, const double *u, Py_ssize_t *h,
                                Py_ssize_t size, Py_ssize_t pos) noexcept nogil:
    """Restore the heap below ``pos``; the root is the candidate ranked last of the heap."""
    cdef Py_ssize_t child, item = h[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and ranks_ahead(r, u, h[child], h[child + 1]):
            child += 1
        if not ranks_ahead(r, u, item, h[child]):
            break
        h[pos] = h[child]
        pos = child
    h[pos] = item


# ---------------------------------------------------------------------------------------------
# Row loops
# ---------------------------------------------------------------------------------------------

cdef void topk_row(const double *r, const double *u, Py_ssize_t n, Py_ssize_t k,
                   Py_ssize_t *h, unsigned char *out) noexcept nogil:
    """Mark the k best of n candidates (1 <= k <= n) by heap selection, O(n log k); a
    failed candidate (r = -inf) among them stays unmarked."""
    cdef Py_ssize_t i, pos
    for i in range(n):
        out[i] = 0
    if k >= n:
        for i in range(n):
            out[i] = r[i] > -INFINITY
        return
    for i in range(k):
        h[i] = i
    # heapify: the root becomes the worst of the first k
    pos = k // 2
    while pos > 0:
        pos -= 1
        heap_sift_down(r, u, h, k, pos)
    for i in range(k, n):
        if ranks_ahead(r, u, i, h[0]):
            h[0] = i
            heap_sift_down(r, u, h, k, 0)
    for i in range(k):
        out[h[i]] = r[h[i]] > -INFINITY


# ---------------------------------------------------------------------------------------------
# Entry points (same names and signatures as rsft._reference.acceptors)
# ---------------------------------------------------------------------------------------------

def threshold_accept(const double[:, ::1] r, double tau, bint strict, out):
    """``out = r > tau`` if ``strict`` else ``r >= tau``; draws nothing."""
    cdef unsigned char[:, ::1] o = out.view(np.uint8)
    cdef Py_ssize_t i, size = r.shape[0] * r.shape[1]
    cdef const double *rp
    cdef unsigned char *op
    if size == 0:
        return
    rp = &r[0, 0]
    op = &o[0, 0]
    with nogil:  # flat loops over the contiguous buffers (the compiler vectorises them)
        if strict:
            for i in range(size):
                op[i] = rp[i] > tau
        else:
            for i in range(size):
                op[i] = rp[i] >= tau


def topk_accept(rng, const double[:, ::1] r, Py_ssize_t k, out):
    """Accept the ``k`` best candidates of every row (see ``rsft._reference.topk_accept``)."""
    cdef unsigned char[:, ::1] o = out.view(np.uint8)
    cdef Py_ssize_t i, m = r.shape[0], n = r.shape[1], size = m * n
    bit_generator = rng.bit_generator
    cdef bitgen_t *bg = get_bitgen(bit_generator)
    cdef int fast = pcg64_inline(bit_generator)
    if size == 0:
        return
    cdef double[::1] u = np.empty(size)
    cdef Py_ssize_t[::1] h = np.empty(k, dtype=np.intp)
    with bit_generator.lock, nogil:
        fill_uniform(bg, fast, &u[0], size)
    with nogil:
        for i in range(m):
            topk_row(&r[i, 0], &u[i * n], n, k, &h[0], &o[i, 0])


def statistical_rs_accept(rng, const double[:, ::1] r, const double[::1] r_max, double beta,
                          out, double[:, ::1] log_prob):
    """Accept with probability ``exp((r - r_max[i]) / beta)`` (see
    ``rsft._reference.statistical_rs_accept``)."""
    cdef unsigned char[:, ::1] o = out.view(np.uint8)
    cdef Py_ssize_t i, j, m = r.shape[0], n = r.shape[1], size = m * n
    cdef double g, rm
    bit_generator = rng.bit_generator
    cdef bitgen_t *bg = get_bitgen(bit_generator)
    cdef int fast = pcg64_inline(bit_generator)
    if size == 0:
        return
    cdef double[::1] u = np.empty(size)
    with bit_generator.lock, nogil:
        fill_uniform(bg, fast, &u[0], size)
    with nogil:
        for i in range(m):
            rm = r_max[i]
            for j in range(n):
                g = (r[i, j] - rm) / beta
                log_prob[i, j] = g
                o[i, j] = accept(g, u[i * n + j])
