# Ctrl-C in GIL-free loops (included by _core.pyx before the kernel files that use it): the one
# home of the signal check every long compiled loop makes (sampler, optimizers, losses).
#
# Python runs signal handlers only in the main thread and only when it holds the GIL, so a
# loop that has released the GIL must take it back now and then to let Ctrl-C through. Taking
# it can cost up to the interpreter's switch interval (5 ms) when another Python thread is
# busy, so the loop polls on a time budget: between chunks of work it reads a monotonic clock
# (some 20 ns), and only when SIGNAL_CHECK_SECONDS have passed does it take the GIL and run the
# handlers. A handler that raises (KeyboardInterrupt for Ctrl-C) sets ``interrupted``: the loop
# stops at its next chunk, and the exception is raised once the GIL-free part has ended
# (raise_interruption). On threads (prange), only the calling thread polls (it is the one
# signals are delivered to, and the one whose Python thread state ``with gil`` restores); the
# other threads read ``interrupted`` and skip what is left.
#
# No twin in rsft._reference: there, Python itself runs the handlers between numpy calls, and
# the reference cuts long passes into blocks so that those calls stay short.
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.ref cimport PyObject

cdef extern from "Python.h":
    # PyErr_CheckSignals as plain C: it runs the handlers and leaves their exception set; the
    # loop keeps it aside (fetch) and raises it (restore) once the GIL-free loop has ended (and
    # any lock it held is released)
    int run_signal_handlers "PyErr_CheckSignals"() noexcept
    void fetch_exception "PyErr_Fetch"(PyObject **, PyObject **, PyObject **) noexcept
    void restore_exception "PyErr_Restore"(PyObject *, PyObject *, PyObject *) noexcept

cdef extern from *:
    """
    #include <time.h>
    static double rsft_monotonic_seconds(void) {
    #if defined(CLOCK_MONOTONIC)
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    #else
        return (double)clock() / CLOCKS_PER_SEC;
    #endif
    }
    """
    double monotonic_seconds "rsft_monotonic_seconds"() noexcept nogil

#: seconds of GIL-free loop between two signal checks. A check takes the GIL, which can cost up
#: to the interpreter's switch interval (5 ms) when another Python thread is busy, so loops
#: check on a time budget rather than after every chunk (a sampler's chunk takes about 0.7 ms,
#: an optimizer's piece some 10 us): at most ~5% slower beside a busy thread, and Ctrl-C still
#: answers within ~0.1 s.
cdef double SIGNAL_CHECK_SECONDS = 0.1


cdef struct CallWatch:         # shared by every stream (and thread) of one call
    double next_signal_check    # monotonic time of the next signal check
    bint interrupted            # a signal handler raised: every thread stops at its next chunk
    PyObject *exc_type          # the exception it raised, kept aside (owned references)
    PyObject *exc_value
    PyObject *exc_traceback
    Py_ssize_t first_failed     # the blocked sampler's lowest-known failing block (else unused)


cdef void open_watch(CallWatch *watch) noexcept nogil:
    watch.next_signal_check = monotonic_seconds() + SIGNAL_CHECK_SECONDS
    watch.interrupted = False
    watch.exc_type = watch.exc_value = watch.exc_traceback = NULL
    watch.first_failed = PY_SSIZE_T_MAX


cdef bint poll_signals(CallWatch *watch) noexcept nogil:
    """Run Python's signal handlers when the time budget is spent (taking the GIL for it);
    True once a handler raised. Only the calling thread polls: signals are handled there."""
    cdef double now
    if watch.interrupted:
        return True
    now = monotonic_seconds()
    if now >= watch.next_signal_check:
        watch.next_signal_check = now + SIGNAL_CHECK_SECONDS
        with gil:
            if run_signal_handlers() != 0:
                fetch_exception(&watch.exc_type, &watch.exc_value, &watch.exc_traceback)
                watch.interrupted = True
    return watch.interrupted


cdef inline bint stop_here(CallWatch *watch, bint polls) noexcept nogil:
    """Between two chunks of a loop on threads: True when the call was interrupted. ``polls``:
    this is the calling thread (threadid() == 0), which alone runs the handlers; the other
    threads only read the flag."""
    if polls:
        return poll_signals(watch)
    return watch.interrupted


cdef int raise_interruption(CallWatch *watch) except -1:
    """Raise the exception a signal handler raised during the call (KeyboardInterrupt for
    Ctrl-C), if any."""
    if watch.interrupted:
        watch.interrupted = False
        restore_exception(watch.exc_type, watch.exc_value, watch.exc_traceback)
        return -1
    return 0


def _set_signal_check_seconds(double seconds):
    """Test hook (not a kernel): set the time budget between two signal checks, returning the
    previous one. tests/test_hardening.py sets 0 (a check between every two pieces) so that a
    test can interrupt a pass over a moderate array, and restores the budget after."""
    global SIGNAL_CHECK_SECONDS
    previous = SIGNAL_CHECK_SECONDS
    SIGNAL_CHECK_SECONDS = seconds
    return previous
