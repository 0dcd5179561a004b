# Optimizer kernels (included by _core.pyx); twin of rsft._reference.optim (read it first: it is
# the specification, with the operation order spelled out).
#
# Three layers, as in _core.pyx: per-element scalar updates (``noexcept nogil``, inlined), range
# loops over raw pointers (one fused pass over param, grad and state), and ``def`` entry points
# that cast the per-step scalars (Python floats computed by rsft.optim) to the array dtype once,
# then run the range loop on one thread or split it into ``n_threads`` contiguous blocks with
# prange. Every element is updated independently, so the split never changes the result.
# Built with -ffp-contract=off: no fused multiply-add, every + - * / sqrt rounds like numpy's.
cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf

# Runtime ISA dispatch of the range loops. The default build targets baseline x86-64 (SSE2: two
# doubles per instruction), where Adam is bound by its divisions and square roots. With GCC or
# clang on x86-64 glibc, each range loop is also compiled for AVX2 and AVX-512F
# (``target_clones``) and the best one for the running CPU is picked once at load time: portable
# wheels, no -march=native. Every clone computes the same bits: IEEE + - * / sqrt are exact,
# -ffp-contract=off still forbids FMA, and the clones differ only in vector width.
# The attribute goes on a prior declaration of each loop (its explicit C name below with
# Cython's fused-specialisation prefix: __pyx_fuse_0 = float, __pyx_fuse_1 = double); the
# prototypes must match the cdef signatures (a mismatch is a compile error) and the table
# rsft_optim_clones takes their addresses, so a renamed function fails at import, never silently.
cdef extern from *:
    """
    #if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute) \
        && !defined(RSFT_NO_CLONES)
    #if __has_attribute(target_clones)
    #define RSFT_OPTIM_CLONES 1
    #endif
    #endif
    #ifdef RSFT_OPTIM_CLONES
    #define RSFT_CLONED __attribute__((target_clones("avx512f", "avx2", "default")))
    #define RSFT_OPTIM_PROTOS(T, F) \
      static void F##rsft_sgd_range(T *, T const *, T *, Py_ssize_t, Py_ssize_t, T, T, T, T, \
                                    T, int, int) RSFT_CLONED; \
      static void F##rsft_adam_range(T *, T const *, T *, T *, T *, Py_ssize_t, Py_ssize_t, \
                                     T, T, T, T, T, T, T, T, T, T, int) RSFT_CLONED; \
      static void F##rsft_adam_plain_range(T *, T const *, T *, T *, Py_ssize_t, Py_ssize_t, \
                                           T, T, T, T, T, T, T) RSFT_CLONED; \
      static void F##rsft_rmsprop_range(T *, T const *, T *, T *, T *, Py_ssize_t, \
                                        Py_ssize_t, T, T, T, T, T, T, T, int) RSFT_CLONED;
    RSFT_OPTIM_PROTOS(float, __pyx_fuse_0)
    RSFT_OPTIM_PROTOS(double, __pyx_fuse_1)
    #define RSFT_OPTIM_TABLE(F) (void (*)(void))F##rsft_sgd_range, \
      (void (*)(void))F##rsft_adam_range, (void (*)(void))F##rsft_adam_plain_range, \
      (void (*)(void))F##rsft_rmsprop_range
    static void (*const rsft_optim_clones[])(void) = {
        RSFT_OPTIM_TABLE(__pyx_fuse_0), RSFT_OPTIM_TABLE(__pyx_fuse_1)};
    static int rsft_optim_n_cloned(void) {
        void (*const volatile *t)(void) = rsft_optim_clones;
        int i, n = 0;
        for (i = 0; i < 8; i++) n += t[i] != 0;
        return n;
    }
    #define RSFT_OPTIM_ISA "avx512f, avx2, default (chosen at load time)"
    #else
    static int rsft_optim_n_cloned(void) { return 0; }
    #define RSFT_OPTIM_ISA "build default only"
    #endif
    """
    int rsft_optim_n_cloned() noexcept nogil
    const char *RSFT_OPTIM_ISA

#: range loops compiled for several instruction sets (0 without target_clones support)
OPTIM_N_CLONED = rsft_optim_n_cloned()
#: instruction sets the optimizer loops were compiled for
OPTIM_ISA = RSFT_OPTIM_ISA.decode()


cdef inline floating f_sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating f_maximum(floating a, floating b) noexcept nogil:
    """np.maximum(a, b): the larger value, NaN if either is NaN."""
    if b > a or b != b:
        return b
    return a


cdef inline Py_ssize_t block_len(Py_ssize_t n, int n_threads) noexcept nogil:
    """Block length of an ``n_threads``-way split: ceil(n / n_threads) rounded up to 16
    elements, so every block but the last starts on a 64-byte boundary."""
    cdef Py_ssize_t b = (n + n_threads - 1) // n_threads
    return (b + 15) & ~(<Py_ssize_t>15)


# ---------------------------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------------------------

cdef inline void sgd_loop(floating *p, const floating *g, floating *buf, Py_ssize_t lo,
                          Py_ssize_t hi, floating lr, floating mom, floating omd, floating wd,
                          floating sign, bint nesterov, bint first,
                          bint use_mom) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, b
    for i in range(lo, hi):
        gi = sign * g[i]
        if wd != 0:
            gi = gi + wd * p[i]
        if use_mom:
            if first:
                b = gi
            else:
                b = mom * buf[i] + omd * gi
            buf[i] = b
            if nesterov:
                gi = gi + mom * b
            else:
                gi = b
        p[i] = p[i] - lr * gi


cdef void sgd_range "rsft_sgd_range"(floating *p, const floating *g, floating *buf,
                                     Py_ssize_t lo, Py_ssize_t hi, floating lr, floating mom,
                                     floating omd, floating wd, floating sign, bint nesterov,
                                     bint first) noexcept nogil:
    """sgd_loop with the momentum switch as a literal constant in each inlined copy."""
    if mom != 0:
        sgd_loop(p, g, buf, lo, hi, lr, mom, omd, wd, sign, nesterov, first, 1)
    else:
        sgd_loop(p, g, buf, lo, hi, lr, mom, omd, wd, sign, nesterov, first, 0)


def sgd_step(floating[::1] param, const floating[::1] grad, floating[::1] momentum_buffer,
             double lr, double momentum, double one_minus_dampening, double weight_decay,
             bint nesterov, bint maximize, bint first, int n_threads):
    """One SGD step in place (see ``rsft._reference.optim.sgd_step``)."""
    cdef Py_ssize_t n = param.shape[0], bl, lo, hi, k
    if n == 0:
        return
    cdef floating c_lr = <floating>lr, c_mom = <floating>momentum
    cdef floating c_omd = <floating>one_minus_dampening, c_wd = <floating>weight_decay
    cdef floating sign = -1 if maximize else 1
    cdef floating *p = &param[0]
    cdef const floating *g = &grad[0]
    cdef floating *buf = &momentum_buffer[0] if momentum_buffer.shape[0] else NULL
    if n_threads > 1:
        bl = block_len(n, n_threads)
        for k in prange(n_threads, schedule="static", nogil=True, num_threads=n_threads):
            lo = k * bl
            hi = min(lo + bl, n)
            if lo < hi:
                sgd_range(p, g, buf, lo, hi, c_lr, c_mom, c_omd, c_wd, sign, nesterov, first)
    else:
        with nogil:
            sgd_range(p, g, buf, 0, n, c_lr, c_mom, c_omd, c_wd, sign, nesterov, first)


# ---------------------------------------------------------------------------------------------
# Adam / AdamW
# ---------------------------------------------------------------------------------------------

cdef inline void adam_loop(floating *p, const floating *g, floating *m, floating *v,
                           floating *vmax, Py_ssize_t lo, Py_ssize_t hi, floating b1,
                           floating omb1, floating b2, floating omb2, floating step_size,
                           floating bc2_sqrt, floating eps, floating wd, floating decay,
                           floating sign, bint amsgrad) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, pi, mi, vi, denom
    for i in range(lo, hi):
        gi = sign * g[i]
        pi = p[i]
        if wd != 0:
            gi = gi + wd * pi
        if decay != 1:
            pi = pi * decay
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = f_maximum(vmax[i], vi)
            vmax[i] = vi
        denom = f_sqrt(vi) / bc2_sqrt + eps
        p[i] = pi - step_size * (mi / denom)


cdef void adam_range "rsft_adam_range"(floating *p, const floating *g, floating *m, floating *v,
                                       floating *vmax, Py_ssize_t lo, Py_ssize_t hi,
                                       floating b1, floating omb1, floating b2, floating omb2,
                                       floating step_size, floating bc2_sqrt, floating eps,
                                       floating wd, floating decay, floating sign,
                                       bint amsgrad) noexcept nogil:
    """adam_loop with ``amsgrad`` as a literal constant in each inlined copy (no conditional
    store in the vectorised loop)."""
    if amsgrad:
        adam_loop(p, g, m, v, vmax, lo, hi, b1, omb1, b2, omb2, step_size, bc2_sqrt, eps, wd,
                  decay, sign, 1)
    else:
        adam_loop(p, g, m, v, vmax, lo, hi, b1, omb1, b2, omb2, step_size, bc2_sqrt, eps, wd,
                  decay, sign, 0)


cdef void adam_plain_range "rsft_adam_plain_range"(floating *p, const floating *g, floating *m,
                                                   floating *v, Py_ssize_t lo, Py_ssize_t hi,
                                                   floating b1, floating omb1, floating b2,
                                                   floating omb2, floating step_size,
                                                   floating bc2_sqrt,
                                                   floating eps) noexcept nogil:
    """adam_range without the options (the common case), as straight-line code that the
    compiler vectorises; the same operations in the same order."""
    cdef Py_ssize_t i
    cdef floating gi, mi, vi
    for i in range(lo, hi):
        gi = g[i]
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - step_size * (mi / (f_sqrt(vi) / bc2_sqrt + eps))


def adam_step(floating[::1] param, const floating[::1] grad, floating[::1] exp_avg,
              floating[::1] exp_avg_sq, floating[::1] max_exp_avg_sq, double beta1,
              double one_minus_beta1, double beta2, double one_minus_beta2, double step_size,
              double bias_correction2_sqrt, double eps, double weight_decay, double decay,
              bint amsgrad, bint maximize, int n_threads):
    """One Adam / AdamW step in place (see ``rsft._reference.optim.adam_step``)."""
    cdef Py_ssize_t n = param.shape[0], bl, lo, hi, k
    if n == 0:
        return
    cdef floating b1 = <floating>beta1, omb1 = <floating>one_minus_beta1
    cdef floating b2 = <floating>beta2, omb2 = <floating>one_minus_beta2
    cdef floating ss = <floating>step_size, bc2s = <floating>bias_correction2_sqrt
    cdef floating c_eps = <floating>eps, c_wd = <floating>weight_decay
    cdef floating c_decay = <floating>decay
    cdef floating sign = -1 if maximize else 1
    cdef bint plain = not amsgrad and not maximize and c_wd == 0 and c_decay == 1
    cdef floating *p = &param[0]
    cdef const floating *g = &grad[0]
    cdef floating *m = &exp_avg[0]
    cdef floating *v = &exp_avg_sq[0]
    cdef floating *vmax = &max_exp_avg_sq[0] if max_exp_avg_sq.shape[0] else NULL
    if n_threads > 1:
        bl = block_len(n, n_threads)
        for k in prange(n_threads, schedule="static", nogil=True, num_threads=n_threads):
            lo = k * bl
            hi = min(lo + bl, n)
            if lo < hi:
                if plain:
                    adam_plain_range(p, g, m, v, lo, hi, b1, omb1, b2, omb2, ss, bc2s, c_eps)
                else:
                    adam_range(p, g, m, v, vmax, lo, hi, b1, omb1, b2, omb2, ss, bc2s, c_eps,
                               c_wd, c_decay, sign, amsgrad)
    else:
        with nogil:
            if plain:
                adam_plain_range(p, g, m, v, 0, n, b1, omb1, b2, omb2, ss, bc2s, c_eps)
            else:
                adam_range(p, g, m, v, vmax, 0, n, b1, omb1, b2, omb2, ss, bc2s, c_eps, c_wd,
                           c_decay, sign, amsgrad)


# ---------------------------------------------------------------------------------------------
# RMSprop
# ---------------------------------------------------------------------------------------------

cdef inline void rmsprop_loop(floating *p, const floating *g, floating *sq, floating *ga,
                              floating *buf, Py_ssize_t lo, Py_ssize_t hi, floating lr,
                              floating alpha, floating oma, floating eps, floating wd,
                              floating mom, floating sign, bint centered,
                              bint use_mom) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, vi, ai, avg, b
    for i in range(lo, hi):
        gi = sign * g[i]
        if wd != 0:
            gi = gi + wd * p[i]
        vi = alpha * sq[i] + oma * (gi * gi)
        sq[i] = vi
        if centered:
            ai = alpha * ga[i] + oma * gi
            ga[i] = ai
            avg = f_sqrt(vi - ai * ai) + eps
        else:
            avg = f_sqrt(vi) + eps
        if use_mom:
            b = mom * buf[i] + gi / avg
            buf[i] = b
            p[i] = p[i] - lr * b
        else:
            p[i] = p[i] - lr * (gi / avg)


cdef void rmsprop_range "rsft_rmsprop_range"(floating *p, const floating *g, floating *sq,
                                             floating *ga, floating *buf, Py_ssize_t lo,
                                             Py_ssize_t hi, floating lr, floating alpha,
                                             floating oma, floating eps, floating wd,
                                             floating mom, floating sign,
                                             bint centered) noexcept nogil:
    """One loop per (centered, momentum) pair: the flags are literal constants in each inlined
    copy, so every copy is straight-line code without conditional stores (vectorisable)."""
    if centered:
        if mom != 0:
            rmsprop_loop(p, g, sq, ga, buf, lo, hi, lr, alpha, oma, eps, wd, mom, sign, 1, 1)
        else:
            rmsprop_loop(p, g, sq, ga, buf, lo, hi, lr, alpha, oma, eps, wd, mom, sign, 1, 0)
    else:
        if mom != 0:
            rmsprop_loop(p, g, sq, ga, buf, lo, hi, lr, alpha, oma, eps, wd, mom, sign, 0, 1)
        else:
            rmsprop_loop(p, g, sq, ga, buf, lo, hi, lr, alpha, oma, eps, wd, mom, sign, 0, 0)


def rmsprop_step(floating[::1] param, const floating[::1] grad, floating[::1] square_avg,
                 floating[::1] grad_avg, floating[::1] momentum_buffer, double lr, double alpha,
                 double one_minus_alpha, double eps, double weight_decay, double momentum,
                 bint centered, bint maximize, int n_threads):
    """One RMSprop step in place (see ``rsft._reference.optim.rmsprop_step``)."""
    cdef Py_ssize_t n = param.shape[0], bl, lo, hi, k
    if n == 0:
        return
    cdef floating c_lr = <floating>lr, c_alpha = <floating>alpha
    cdef floating oma = <floating>one_minus_alpha, c_eps = <floating>eps
    cdef floating c_wd = <floating>weight_decay, c_mom = <floating>momentum
    cdef floating sign = -1 if maximize else 1
    cdef floating *p = &param[0]
    cdef const floating *g = &grad[0]
    cdef floating *sq = &square_avg[0]
    cdef floating *ga = &grad_avg[0] if grad_avg.shape[0] else NULL
    cdef floating *buf = &momentum_buffer[0] if momentum_buffer.shape[0] else NULL
    if n_threads > 1:
        bl = block_len(n, n_threads)
        for k in prange(n_threads, schedule="static", nogil=True, num_threads=n_threads):
            lo = k * bl
            hi = min(lo + bl, n)
            if lo < hi:
                rmsprop_range(p, g, sq, ga, buf, lo, hi, c_lr, c_alpha, oma, c_eps, c_wd, c_mom,
                              sign, centered)
    else:
        with nogil:
            rmsprop_range(p, g, sq, ga, buf, 0, n, c_lr, c_alpha, oma, c_eps, c_wd, c_mom, sign,
                          centered)
