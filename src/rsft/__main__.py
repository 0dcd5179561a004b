"""Command line: ``python -m rsft {demo,info}`` and ``--version`` (also the ``rsft`` console
script)."""

import argparse
import json
import os
import platform
import sys
import tempfile

import numpy as np

from . import __version__


class CommandError(Exception):
    """A mistake the command reports in one line on stderr (exit status 2)."""


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
        "RSFT_BACKEND": os.environ.get("RSFT_BACKEND"),
        "C flags": getattr(core, "CFLAGS", None),
        "inlined normal ziggurat": getattr(core, "INLINE_ZIGGURAT", None),
        "inline PCG64 (RSFT_PCG64_FAST)": getattr(core, "PCG64_INLINE", None),
        "optimizer loop ISAs": getattr(core, "OPTIM_ISA", None),
        "OpenMP wait policy": _backend.OPENMP_WAIT_POLICY,
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


def _jsonable(obj):
    """numpy scalars and arrays in the report -> Python numbers and lists."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _plot_variants(axes, variants, curves):
    """One line per variant on each axis: ``curves[j](variant)`` is its curve on ``axes[j]``,
    its values after rounds 0, 1, 2, ... (0: before any update)."""
    for name, v in variants.items():
        for ax, curve in zip(axes, curves):
            ax.plot(curve(v), label=name.split(" (")[0])


def _reference_line(ax, y, label):
    """A dashed horizontal line at ``y`` (a target or a checked limit); returns it."""
    return ax.axhline(y, color="k", ls="--", lw=0.8, label=label)


def _figure_dir(path):
    """Create ``path`` if missing and check that a file can be written into it."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CommandError(f"--plot {path}: not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise CommandError(f"--plot {path}: cannot write figures there "
                           f"({e.strerror or e})") from None
    return path


def _plot(report, outdir):
    """Write one PNG per demo into ``outdir``; return the paths (or raise ImportError)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    demos = report["demos"]

    def save(fig, name):
        path = os.path.join(outdir, name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    if "density" in demos:
        r = demos["density"]
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
        ax[0].plot([r["sgd"]["x0"]] + r["sgd"]["path"], label="SGD, lr 0.1, batch 1")
        _reference_line(ax[0], 2.0, "E[s] = 2")
        ax[0].set(xlabel="step", ylabel="x", title="SGD on E(x - s)^2, s ~ N(2, 1)")
        ax[0].legend()
        ax[1].plot(r["running_mean"]["acceptance_per_round"], ".", ms=3)
        _reference_line(ax[1], r["expected_acceptance"], "1/M")
        ax[1].set(xlabel="round", ylabel="acceptance", title="acceptance per batch of 100")
        ax[1].legend()
        save(fig, "demo1_density.png")
    if "regression" in demos:
        r = demos["regression"]
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for name, f in r["fits"].items():
            ax.plot(f["loss_curve_epochs"], f["loss_curve"],
                    label=f"{name.split(' (')[0]} ({f['epochs']} epochs)")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="MSE (training loss)",
               title="y = 2x + 3 + U(0,1): loss per epoch")
        ax.legend()
        save(fig, "demo2_regression.png")
    if "moulding" in demos:
        r = demos["moulding"]
        fig, ax = plt.subplots(1, 3, figsize=(12, 3.6))
        _plot_variants(ax, r["variants"], [
            lambda v, key=key: [r["initial"][key]] + [q[key] for q in v["per_round"]]
            for key in ("yield", "cpk", "cycle_time")])
        limits = [_reference_line(ax[0], 0.95, "checked: >= 0.95"),
                  _reference_line(ax[1], 1.0, "checked: >= 1.0"),
                  _reference_line(ax[2], r["initial"]["cycle_time"], "checked: <= initial")]
        for a, t, y in zip(ax, ("production yield", "Cpk", "cycle time"),
                           ("fraction of parts in spec", "Cpk", "seconds per cycle")):
            a.set(xlabel="round (0: initial recipe)", ylabel=y, title=t)
        ax[0].legend(fontsize=8)                   # the variants once, then each limit
        for a, line in zip(ax[1:], limits[1:]):
            a.legend(handles=[line], fontsize=8)
        save(fig, "demo3_moulding.png")
    if "bandit" in demos:
        r = demos["bandit"]
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
        _plot_variants(ax, r["variants"], [
            lambda v, key=key: [v["history"]["initial"][key]] + v["history"][key]
            for key in ("expected_reward", "kl")])
        if "exact_target" in r:
            _reference_line(ax[0], r["exact_target"]["expected_reward"], "statistical-RS target")
            _reference_line(ax[1], r["exact_target"]["kl"], "statistical-RS target")
        ax[0].set(xlabel="round (0: initial policy)", ylabel="E[r]",
                  title="exact expected reward")
        ax[1].set(xlabel="round (0: initial policy)", ylabel="KL",
                  title="exact KL(pi || pi_ref)")
        ax[0].legend(fontsize=8)
        save(fig, "demo4_bandit.png")
    if "verifier" in demos:
        r = demos["verifier"]
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
        _plot_variants(ax, r["variants"], [lambda v: v["accuracy"],
                                            lambda v: v["mean_reward_accepted"]])
        ax[0].set(xlabel="round (0: initial generator)", ylabel="accuracy",
                  title="exact-answer accuracy")
        ax[1].set(xlabel="round", ylabel="mean reward", title="reward of the kept answers")
        ax[0].legend(fontsize=8)
        save(fig, "demo5_verifier.png")
    return paths


def _demo(args):
    import time
    import rsft
    from rsft import _demos
    if args.backend is not None:
        rsft.set_backend(args.backend)
    backend = rsft.get_backend()
    if args.plot is not None:  # before the work: a directory we cannot write stops us now
        _figure_dir(args.plot)
    t0 = time.perf_counter()
    out = _demos.run_all(args.seed, backend, only=args.only)
    seconds = time.perf_counter() - t0
    report = {"backend": backend, "seed": args.seed, "seconds": seconds,
              "checks_passed": out["checks_passed"], "demos": out["demos"]}
    plot_msg = None
    if args.plot is not None:
        try:
            report["plots"] = _plot(report, args.plot)
        except ImportError:
            plot_msg = ("--plot: matplotlib is not installed, no figures written "
                        "(pip install matplotlib)")
            report["plots"] = []
            report["plot_error"] = plot_msg
        except OSError as e:  # e.g. the directory went away or the disk is full
            raise CommandError(f"--plot {args.plot}: cannot write figures there "
                               f"({e.strerror or e})") from None
    if args.json:
        print(json.dumps(report, indent=1, default=_jsonable))
        if plot_msg:
            print(f"rsft: {plot_msg}", file=sys.stderr)
    else:
        print(f"rsft demo  (backend {backend}, seed {args.seed})")
        for key, res in out["demos"].items():
            print()
            print(f"{res['title']}  [{res['seconds']:.2f} s]")
            for line in out["lines"][key]:
                print(f"  {line}")
            for k, v in res["checks"].items():
                print(f"  [{'ok' if v else 'FAIL'}] {k}")
        print()
        if plot_msg:
            print(plot_msg)
        elif args.plot is not None:
            print("figures:", ", ".join(report["plots"]))
        n_fail = sum(not v for r in out["demos"].values() for v in r["checks"].values())
        n_all = sum(len(r["checks"]) for r in out["demos"].values())
        print(f"{n_all - n_fail}/{n_all} checks passed in {seconds:.1f} s"
              + ("" if not n_fail else f"; {n_fail} FAILED"))
    return 0 if out["checks_passed"] else 1


def _seed(text):
    """``--seed``: a non-negative integer (numpy refuses negative seeds)."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return seed


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="rsft", description="Rejection-sampling fine-tuning with a compiled core.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{demo,info}")
    p_demo = sub.add_parser(
        "demo", help="run the five worked problems and check their results",
        description="Runs the five worked problems (rejection sampling + SGD, linear "
                    "regression, injection-moulding quality control, contextual bandit, a "
                    "generator and a verifier), prints what each reached and checks it; exits 1 "
                    "when a check fails.")
    p_demo.add_argument("--backend", choices=["cython", "numpy"], default=None,
                        help="kernel backend (default: rsft.get_backend())")
    p_demo.add_argument("--seed", type=_seed, default=0,
                        help="random seed, a non-negative integer (default 0)")
    p_demo.add_argument("--json", action="store_true", help="print results as JSON")
    p_demo.add_argument("--plot", metavar="DIR", default=None,
                        help="write PNG figures into DIR (needs matplotlib)")
    p_demo.add_argument("--only", nargs="+", metavar="NAME",
                        choices=["density", "regression", "moulding", "bandit",
                                 "verifier"],
                        help="run only these demos (density regression moulding bandit "
                             "verifier)")
    p_info = sub.add_parser("info", help="versions, backends and build flags")
    p_info.add_argument("--json", action="store_true", help="print as JSON")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"demo": _demo, "info": _info}[args.command](args)
    except (ValueError, TypeError, CommandError) as e:
        print(f"rsft: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `rsft info | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
