"""Summarise the Dask benchmarks (test_bench_dask.py) of a pytest-benchmark JSON file.

    python report_dask.py ../.bench-dask.json

Prints the figures (no targets: a cluster's overhead depends on the machine and the network):
in-process blocked sampling on 1 and 2 threads against ``sample_array`` on a two-worker
LocalCluster, the overhead per chunk, and 16 trainings serial against ``map_trainings``.
Exit code 2 when the JSON cannot be read, else 0.
"""
from __future__ import annotations

import sys

from _report_common import load, print_figures, ratio


def main(argv):
    data = load(argv, __doc__, "report_dask.py")
    if data is None:
        return 2
    t, info = {}, {}
    for b in data["benchmarks"]:
        kind = b["extra_info"]["kind"]
        t[(b["group"], kind)] = b["stats"]["min"]
        info[(b["group"], kind)] = b["extra_info"]
    one = t.get(("dask-sample", "in_process_1t"))
    two = t.get(("dask-sample", "in_process_2t"))
    cluster = t.get(("dask-sample", "cluster_2_workers"))
    print("rsft.dask (two worker processes on 127.0.0.1, min over rounds):")
    for k, v in sorted(t.items()):
        print(f"  {k[0]:<15} {k[1]:<18} {v * 1e3:9.1f} ms")
    if cluster is not None and one is not None:
        chunks = info[("dask-sample", "cluster_2_workers")]["chunks"]
        per_chunk = (cluster - one / 2) / chunks
        print(f"  overhead per chunk (cluster - in-process 1 thread / 2) / {chunks}: "
              f"{per_chunk * 1e3:.2f} ms")
    print_figures([
        ("sample: in-process 1 thread / cluster", (ratio(one, cluster), None), "speed-up"),
        ("sample: in-process 1 thread / 2 threads", (ratio(one, two), None), "speed-up"),
        ("16 trainings: serial / cluster", (ratio(t.get(("dask-trainings", "serial")),
                                                  t.get(("dask-trainings", "cluster_2_workers"))),
                                            None), "speed-up"),
    ], 42)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
