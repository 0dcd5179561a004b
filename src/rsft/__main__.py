"""Command line: ``python -m rsft {demo,info}`` (also the ``rsft`` console script)."""

import argparse
import json
import math
import platform
import sys

import numpy as np


def _info(args):
    import rsft
    from rsft import _backend
    core = _backend._modules.get("cython")
    info = {
        "rsft": rsft.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cython (build)": getattr(core, "CYTHON_VERSION", None),
        "backends available": list(rsft.available_backends()),
        "default backend": rsft.get_backend(),
        "RSFT_BACKEND": __import__("os").environ.get("RSFT_BACKEND"),
        "C flags": getattr(core, "CFLAGS", None),
        "inlined normal ziggurat": getattr(core, "INLINE_ZIGGURAT", None),
        "optimizer loop ISAs": getattr(core, "OPTIM_ISA", None),
    }
    if core is None:
        info["extension import error"] = str(_backend._IMPORT_ERROR)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}}  {v}")
    return 0


def _demo(args):
    import rsft
    from rsft import errors
    if args.backend is not None:
        rsft.set_backend(args.backend)
    report = {"backend": rsft.get_backend(), "seed": args.seed, "checks": {}}
    rng = np.random.default_rng(args.seed)
    n = 200_000
    target, proposal = rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 2.0)
    s = rsft.RejectionSampler(target, proposal)
    x, st = s.sample_with_stats(n, rng)
    exact = math.log(2.0) + 2.0 / 3.0
    se_mean = 1.0 / math.sqrt(n)
    p = 1.0 / math.exp(s.log_M)
    se_rate = math.sqrt(p * p * (1.0 - p) / n)   # n-th success of Bernoulli(p) trials
    report["sampling"] = {
        "target": repr(target), "proposal": repr(proposal), "log_M": s.log_M,
        "log_M_closed_form": exact, "acceptance_rate": st.acceptance_rate,
        "expected_acceptance": p, "sample_mean": float(x.mean()),
        "sample_std": float(x.std()), "n": n,
    }
    report["checks"]["log_M exact (|diff| < 1e-8)"] = abs(s.log_M - exact) < 1e-8
    report["checks"]["mean within 5 SE of 2"] = abs(x.mean() - 2.0) < 5 * se_mean
    report["checks"]["acceptance within 5 SE of 1/M"] = (
        abs(st.acceptance_rate - p) < 5 * se_rate)
    # the first article's envelope: N(0,1) proposal, M = 2
    try:
        rsft.RejectionSampler(target, rsft.Normal(0.0, 1.0))
        refused = False
    except ValueError as e:
        refused = True
        report["article_pair_refused"] = str(e)
    try:
        rsft.RejectionSampler(target, rsft.Normal(0.0, 1.0), log_M=math.log(2.0)).sample(
            1000, rng)
        caught = False
    except errors.EnvelopeViolationError as e:
        caught = True
        report["article_M2_violation"] = str(e)
    report["checks"]["article pair N(0,1) refused (no finite M)"] = refused
    report["checks"]["article M = 2 caught as an invalid envelope"] = caught
    ok = all(report["checks"].values())
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        sm = report["sampling"]
        print("rsft demo: rejection sampling, the first source article done right")
        print(f"  backend {report['backend']}, seed {args.seed}")
        print(f"  target {sm['target']}, proposal {sm['proposal']}")
        print(f"  log M = {sm['log_M']:.10f} (closed form log 2 + 2/3 = {exact:.10f})")
        print(f"  acceptance {sm['acceptance_rate']:.4f} (1/M = {p:.4f}), n = {n}")
        print(f"  sample mean {sm['sample_mean']:.4f}, std {sm['sample_std']:.4f} "
              "(target 2, 1)")
        print("  the article's pair N(2,1) / N(0,1):")
        print("    log_M=None ->", report.get("article_pair_refused", "NOT refused")[:110],
              "...")
        print("    M = 2      ->", report.get("article_M2_violation", "NOT caught")[:110],
              "...")
        print("checks:")
        for k, v in report["checks"].items():
            print(f"  [{'ok' if v else 'FAIL'}] {k}")
    return 0 if ok else 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="rsft", description="Rejection-sampling fine-tuning with a compiled core.")
    sub = parser.add_subparsers(dest="command", metavar="{demo,info}")
    p_demo = sub.add_parser("demo", help="run the worked problems and check their results")
    p_demo.add_argument("--backend", choices=["cython", "numpy"], default=None,
                        help="kernel backend (default: rsft.get_backend())")
    p_demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p_demo.add_argument("--json", action="store_true", help="print results as JSON")
    p_info = sub.add_parser("info", help="versions, backends and build flags")
    p_info.add_argument("--json", action="store_true", help="print as JSON")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"demo": _demo, "info": _info}[args.command](args)
    except (ValueError, TypeError) as e:
        print(f"rsft: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
