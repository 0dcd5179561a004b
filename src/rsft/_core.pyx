# cython: language_level=3, cdivision=True
# (boundscheck, wraparound and initializedcheck are set by setup.py: off, or on in the debug
# build, RSFT_CYTHON_DEBUG=1)
"""The compiled backend: the twin of ``rsft._reference``, kernel file for kernel file.

Each file under ``_kernels/`` mirrors the reference module of the same name and is written in
three layers: scalar ``noexcept nogil`` helpers, loops over raw buffers, and thin ``def`` entry
points with the reference's names and signatures. ``program.pxi`` is generated at build time
from ``rsft/_program.py``; ``bitgen.pxi`` turns a numpy Generator into draws.
"""
import numpy as np

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
    #ifndef RSFT_CYTHON_DEBUG
    #define RSFT_CYTHON_DEBUG 0
    #endif
    """
    const char *RSFT_CFLAGS
    int RSFT_INLINE_ZIGGURAT
    const char *RSFT_CYTHON_VERSION
    int RSFT_CYTHON_DEBUG

#: the C flags, Cython version and ziggurat source of this build (``rsft info`` prints them)
CFLAGS = RSFT_CFLAGS.decode()
CYTHON_VERSION = RSFT_CYTHON_VERSION.decode()
#: True when the normal ziggurat is inlined with numpy's tables (see _kernels/draws.h)
INLINE_ZIGGURAT = bool(RSFT_INLINE_ZIGGURAT)
#: True in the debug build (RSFT_CYTHON_DEBUG=1: Cython's bounds and wraparound checks on)
BUILD_DEBUG_CHECKS = bool(RSFT_CYTHON_DEBUG)

include "program.pxi"
include "_kernels/bitgen.pxi"
include "_kernels/signals.pxi"
include "_kernels/sampler.pxi"
include "_kernels/hat.pxi"
include "optim.pxi"
include "_kernels/losses.pxi"
include "_kernels/acceptors.pxi"


def _memory_floor(double[::1] p, const double[::1] g, double[::1] m, double[::1] v):
    """Benchmark floor, not a kernel (bench/test_bench_optim.py): the memory traffic of one Adam
    step on float64 arrays (read p, g, m, v; write p, m, v) with one addition per array."""
    cdef Py_ssize_t i, n = p.shape[0]
    with nogil:
        for i in range(n):
            m[i] = m[i] + g[i]
            v[i] = v[i] + g[i]
            p[i] = p[i] + g[i]
