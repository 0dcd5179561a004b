# numpy bit generators from C (included by _core.pyx after program.pxi; used by sampler.pxi and
# acceptors.pxi).
#
# One job: turn a numpy Generator into draws that consume its stream exactly as the Generator's
# own methods do. ``get_bitgen`` takes the ``bitgen_t`` from the bit generator's capsule (the
# caller keeps a reference to the bit generator and holds its lock while the pointer is used);
# the fills are in draws.h. On an exact ``numpy.random.PCG64`` (numpy's default) the uniform and
# normal fills step the generator inline (``pcg64_inline``), after the import-time probe below
# has checked the layout and the streams against numpy.
from cpython.pycapsule cimport PyCapsule_IsValid, PyCapsule_GetPointer
from libc.stdint cimport uint64_t
from numpy.random cimport bitgen_t

import os

import numpy as np

cdef extern from "numpy/random/distributions.h":
    double random_standard_exponential(bitgen_t *bitgen_state) nogil
    double random_laplace(bitgen_t *bitgen_state, double loc, double scale) nogil
    double random_standard_t(bitgen_t *bitgen_state, double df) nogil
    double random_standard_gamma(bitgen_t *bitgen_state, double shape) nogil
    # (Generator.standard_exponential(c) is this fill: the same stream)
    void random_standard_exponential_fill(bitgen_t *bitgen_state, Py_ssize_t cnt,
                                          double *out) nogil

cdef extern from "draws.h":
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


cdef bitgen_t *get_bitgen(object bit_generator) except NULL:
    capsule = bit_generator.capsule
    if not PyCapsule_IsValid(capsule, "BitGenerator"):
        raise TypeError("rng.bit_generator does not expose a valid 'BitGenerator' capsule")
    return <bitgen_t *>PyCapsule_GetPointer(capsule, "BitGenerator")


cdef inline int pcg64_inline(object bit_generator):
    """1 when the fills may step ``bit_generator`` inline: an exact ``numpy.random.PCG64`` (a
    subclass may override anything) and a passed import-time probe."""
    return PCG64_INLINE_ON and type(bit_generator) is _PCG64


cdef inline void fill_uniform(bitgen_t *bg, int fast, double *u, Py_ssize_t c) noexcept nogil:
    """``c`` draws of ``Generator.random``."""
    rsft_fill_uniform(bg, fast, 0.0, 1.0, u, c)


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
cdef bint PCG64_INLINE_ON = False
PCG64_INLINE_ON = _probe_pcg64_fast()
#: True when fills step an exact numpy.random.PCG64 inline (RSFT_PCG64_FAST=0 turns it off)
PCG64_INLINE = bool(PCG64_INLINE_ON)
