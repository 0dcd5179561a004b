"""Summarise the optimizer benchmarks (test_bench_optim.py) of a pytest-benchmark JSON file.

    python report_optim.py ../.bench_optim.json

Prints, per optimizer and dtype, the time of one step at each N (min over rounds) for rsft's
cython backend on 1 and 2 threads, rsft's numpy backend, torch.optim on 1 and 2 threads and
(Adam float64) the memory floor, with ratios measured in the same run, then the targets and
whether each is met, then the figures reported without a target.
Speed is asserted here: the exit code is 1 when a measured target is missed, 2 when the JSON
file cannot be read, else 0.
"""
from __future__ import annotations

import sys

from _report_common import (check_targets, finish, fmt_ratio, fmt_seconds, load,
                            print_figures, ratio)

KINDS = ["rsft_cython_1t", "rsft_cython_2t", "rsft_numpy", "torch_1t", "torch_2t",
         "memory_floor"]
LABELS = ["cython 1t", "cython 2t", "numpy", "torch 1t", "torch 2t", "mem floor"]




def main(argv):
    data = load(argv, __doc__, "report_optim.py")
    if data is None:
        return 2

    table = {}   # (optimizer, dtype) -> {n: {kind: (min, median)}}
    bad = []
    torch_version = None
    for b in data.get("benchmarks", []):
        ei = b.get("extra_info") or {}
        if ei.get("kind") not in KINDS or "optimizer" not in ei:
            continue
        st = b.get("stats") or {}
        row = table.setdefault((ei["optimizer"], ei["dtype"]), {}).setdefault(ei["n"], {})
        row[ei["kind"]] = (st.get("min"), st.get("median"))
        torch_version = ei.get("torch", torch_version)
        if ei.get("check_ok") is False:
            bad.append(b.get("name"))

    mi = data.get("machine_info") or {}
    cpu = (mi.get("cpu") or {}).get("brand_raw") or mi.get("processor") or "?"
    print("=" * 118)
    print("rsft optimizer benchmark report: one step(grad) on one array of N parameters")
    print(f"  cpu: {cpu}   run: {data.get('datetime', '?')}   torch: {torch_version}")
    print("  times are min over rounds; numpy/cy1 = rsft numpy time / cython 1-thread time "
          "(> 1: cython faster); torch rows use fused=True except RMSprop (no fused kernel)")
    for (opt, dtype) in sorted(table):
        rows = table[(opt, dtype)]
        print()
        print(f"{opt} {dtype}")
        hdr = (f"  {'N':>9} " + " ".join(f"{lab:>10}" for lab in LABELS)
               + f" {'numpy/cy1':>10} {'torch1/cy1':>10} {'cy1/cy2':>8} {'torch2/cy2':>10}")
        print(hdr)
        print("  " + "-" * (len(hdr) - 2))
        for n in sorted(rows):
            r = {k: rows[n].get(k, (None, None))[0] for k in KINDS}
            print(f"  {n:>9.0e} " + " ".join(f"{fmt_seconds(r[k]):>10}" for k in KINDS)
                  + f" {fmt_ratio(ratio(r['rsft_numpy'], r['rsft_cython_1t'])):>10}"
                  + f" {fmt_ratio(ratio(r['torch_1t'], r['rsft_cython_1t'])):>10}"
                  + f" {fmt_ratio(ratio(r['rsft_cython_1t'], r['rsft_cython_2t'])):>8}"
                  + f" {fmt_ratio(ratio(r['torch_2t'], r['rsft_cython_2t'])):>10}")

    print()
    print("Targets (Adam float64; min times, median in brackets), anchored to what does not move:")

    def both(n, a, b):
        x, y = table.get(("Adam", "float64"), {}).get(n, {}).get(a), \
            table.get(("Adam", "float64"), {}).get(n, {}).get(b)
        if x is None or y is None:
            return None, None
        return ratio(x[0], y[0]), ratio(x[1], y[1])

    status = check_targets([
        ("N=1e7: cython 1 thread >= 0.85 of the memory floor",
         both(10 ** 7, "memory_floor", "rsft_cython_1t"), lambda v: v >= 0.85, "floor/cython"),
        ("N=1e6: cython 1 thread >= 1.0x torch fused 1 thread",
         both(10 ** 6, "torch_1t", "rsft_cython_1t"), lambda v: v >= 1.0, "torch/cython"),
    ], 52)
    print("Figures (no target: they move with numpy's time or with the other core's load)")
    print_figures([
        ("N=1e6: cython 1 thread vs rsft numpy", both(10 ** 6, "rsft_numpy", "rsft_cython_1t"),
         "numpy/cython"),
        ("N=1e6: cython 1 thread vs the memory floor",
         both(10 ** 6, "memory_floor", "rsft_cython_1t"), "floor/cython"),
        ("N=1e6: cython 2 threads vs 1 thread", both(10 ** 6, "rsft_cython_1t", "rsft_cython_2t"),
         "cy1/cy2"),
    ], 52)
    # speed is asserted here: exit status 1 when a target was measured and missed
    return finish(status, bad, 118)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
