"""Ctrl-C latency of the long kernels (issue 13, item 9): SIGALRM -> the handler's exception.

    python signals.py          (``make bench`` runs it after scale.py)

A SIGALRM handler raising KeyboardInterrupt stands for Ctrl-C. For each case the call runs in a
loop (so the signal may land anywhere in a call, or between calls) and the timer fires after
each of DELAYS seconds in turn; the latency is the time from the timer's firing to the
exception leaving the loop. Printed: the largest and the median over the delays, in ms.

Sizes are the issue's times RSFT_SIGNAL_SCALE (default 0.2; 1 is the issue's: Adam float32 on
N = 5e8 needs 8 GB): Adam float32 N = 5e8, softmax cross-entropy 3e7 x 10 float64, TopK and
StatisticalRS on 2e8 rewards (rows of 8, and 1-D with ``groups=``), on both backends (the
numpy backend's acceptors run on blocks of 2**16 candidates; before, their lexsort over all
candidates could not be interrupted: TopK on 5e7 rewards took 146 s, one latency 134 s).

Exit status 1 when a case's largest latency is 0.5 s or more (appended to RSFT_BENCH_MISSED);
the kernels check every 0.1 s (compiled) or between blocks of ~1 ms (numpy), so 0.5 s leaves
room for a busy machine.
"""
from __future__ import annotations

import gc
import os
import signal
import sys
import time

import numpy as np

import rsft
from _report_common import MISSED_FILE

SCALE = float(os.environ.get("RSFT_SIGNAL_SCALE", "0.2"))
DELAYS = (0.05, 0.2, 0.45, 0.7)
LIMIT = 0.5


def latency(fn, delay):
    """Seconds from the timer firing ``delay`` s after the start to KeyboardInterrupt leaving
    a loop of ``fn()`` (None if 50 calls finished first)."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, delay)
        try:
            for _ in range(50):
                fn()
        except KeyboardInterrupt:
            return time.perf_counter() - (start + delay)
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cases():
    """(name, backend, set-up returning the call) of every case."""
    n_adam, n_ce, n_rewards = int(5e8 * SCALE), int(3e7 * SCALE), int(2e8 * SCALE) // 8 * 8

    def adam(backend, n_threads):
        def setup():
            p = np.zeros(n_adam, np.float32)
            g = np.ones(n_adam, np.float32)
            opt = rsft.Adam([p], lr=1e-3, backend=backend, n_threads=n_threads)
            return lambda: opt.step([g])
        return setup

    def ce(backend):
        def setup():
            z = np.random.default_rng(0).standard_normal((n_ce, 10))
            y = np.random.default_rng(1).integers(0, 10, n_ce)
            loss = rsft.SoftmaxCrossEntropy(backend=backend)
            return lambda: loss.value_and_grad(z, y)
        return setup

    def acceptor(make, backend, grouped):
        def setup():
            r = np.random.default_rng(0).standard_normal(n_rewards)
            acc = make(backend)
            if grouped:
                groups = np.arange(n_rewards) // 8
                return lambda: acc.accept(r, rng=0, groups=groups)
            return lambda: acc.accept(r.reshape(-1, 8), rng=0)
        return setup

    out = [(f"Adam float32 N={n_adam:.0e}, 1 thread", "cython", adam("cython", 1)),
           (f"Adam float32 N={n_adam:.0e}, 2 threads", "cython", adam("cython", 2)),
           (f"Adam float32 N={n_adam:.0e}", "numpy", adam("numpy", 1)),
           (f"softmax CE {n_ce:.0e} x 10", "cython", ce("cython")),
           (f"softmax CE {n_ce:.0e} x 10", "numpy", ce("numpy"))]
    for name, make in [("TopK(1)", lambda b: rsft.TopK(1, backend=b)),
                       ("StatisticalRS", lambda b: rsft.StatisticalRS(0.5, 10.0, backend=b))]:
        for grouped in (False, True):
            for backend in ("cython", "numpy"):
                layout = "groups=" if grouped else "rows of 8"
                out.append((f"{name} {n_rewards:.0e} rewards, {layout}", backend,
                            acceptor(make, backend, grouped)))
    return out


def main():
    print("=" * 100)
    print(f"Ctrl-C latency (SIGALRM -> KeyboardInterrupt), sizes x {SCALE} of issue 13's; "
          f"timer after {', '.join(f'{d:g}' for d in DELAYS)} s; ms")
    print(f"  {'case':<48} {'backend':<8} {'one call':>9} {'max':>8} {'median':>8}")
    missed = []
    for name, backend, setup in cases():
        fn = setup()
        t = time.perf_counter()
        fn()                            # warm-up (first touch of the outputs)
        call = time.perf_counter() - t
        got = [latency(fn, d) for d in DELAYS]
        got = [x for x in got if x is not None]
        worst, median = max(got), float(np.median(got))
        print(f"  {name:<48} {backend:<8} {call * 1e3:9.0f} {worst * 1e3:8.1f} "
              f"{median * 1e3:8.1f}", flush=True)
        if worst >= LIMIT:
            missed.append(f"Ctrl-C latency {name} {backend} < {LIMIT} s "
                          f"(max = {worst:.2f} s)")
        del fn
        gc.collect()
    for m in missed:
        print(f"  [NOT MET] {m}")
    print(f"  {'every case' if not missed else 'not every case'} answered within {LIMIT} s")
    print("=" * 100)
    if missed and MISSED_FILE:
        with open(MISSED_FILE, "a") as f:
            f.writelines(m + "\n" for m in missed)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
