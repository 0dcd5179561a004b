"""``python -m rsft demo``: the command runs, exits 0, its checks hold, on both backends; the
JSON has the promised content; a failed check gives a non-zero exit code."""
import json
import os
import subprocess
import sys

import pytest

import rsft
from rsft import __main__ as cli
from rsft import _demos


def _run(*args):
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(rsft.__file__))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "rsft", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.parametrize("extra", [(), ("--backend", "numpy")])
def test_demo_json_runs_and_checks_pass(extra):
    p = _run("demo", "--json", *extra)
    assert p.returncode == 0, p.stderr + p.stdout[-2000:]
    report = json.loads(p.stdout)
    assert report["backend"] == ("numpy" if extra else rsft.get_backend())
    assert set(report["demos"]) == {"density", "regression", "moulding", "bandit", "verifier"}
    assert report["checks_passed"] is True
    for name, demo in report["demos"].items():
        assert demo["checks"] and all(v is True for v in demo["checks"].values()), name
    d = report["demos"]
    assert abs(d["density"]["sgd"]["x"] - 2.0) < 1.0
    assert d["density"]["article"]["M2_violation"]
    fits = d["regression"]["fits"]
    assert len(fits) == 3 and all(f["max_abs_error"] < 1e-3 for f in fits.values())
    assert abs(d["regression"]["lstsq"]["intercept"] - 3.5) < 0.3
    assert abs(d["regression"]["lstsq"]["slope"] - 2.0) < 0.3
    b = d["bandit"]
    srs = [v for k, v in b["variants"].items() if k.startswith("statistical RS")][0]
    assert abs(srs["expected_reward"] - b["exact_target"]["expected_reward"]) < 0.05
    v = d["verifier"]
    assert set(v["variants"]) == {"RSO (beta 0.5, k 2)", "TopK (k 2)",
                                  "Quantile (q 0.7 -> 0.9)", "matched random (RSO's budget)"}
    for name, run in v["variants"].items():      # initial accuracy, then one per round
        assert len(run["accuracy"]) == v["rounds"] + 1 and len(run["accepted"]) == v["rounds"]
    rso, rnd = v["variants"]["RSO (beta 0.5, k 2)"], v["variants"]["matched random (RSO's budget)"]
    assert rso["accuracy"][-1] > rnd["accuracy"][-1] + 0.08
    assert sum(run["failed"][0] for run in v["variants"].values()) > 0   # failed generations
    assert sum(run["duplicates"][0] for run in v["variants"].values()) > 0   # and duplicates
    t = v["tilted_target"]
    assert abs(t["mean_reward_kept"] - t["mean_reward_pi_star"]) <= 4 * t["se"]
    assert report["seconds"] < 60


def test_demo_text_report_and_seed():
    p = _run("demo", "--seed", "3", "--only", "density", "bandit")
    assert p.returncode == 0, p.stderr
    assert "seed 3" in p.stdout and "checks passed" in p.stdout and "FAIL" not in p.stdout
    assert "exact target" in p.stdout


def test_demo_plot_without_or_with_matplotlib(tmp_path):
    out = tmp_path / "new" / "figures"  # created if missing
    p = _run("demo", "--only", "regression", "--plot", str(out))
    assert p.returncode == 0, p.stderr
    assert out.is_dir()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in p.stdout
    else:
        assert (out / "demo2_regression.png").exists()


def test_failed_check_gives_nonzero_exit(monkeypatch, capsys):
    def failing(seed, backend):
        return {"checks": {"this check fails": False}}, ["a failing demo"]
    monkeypatch.setitem(_demos.DEMOS, "density", ("failing demo", failing))
    assert cli.main(["demo", "--only", "density"]) == 1
    assert "[FAIL] this check fails" in capsys.readouterr().out


def test_demo_bad_arguments():
    assert _run("demo", "--backend", "fortran").returncode == 2
    assert _run("demo", "--only", "nothing").returncode == 2
    assert _run().returncode == 2


def test_version():
    p = _run("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"rsft {rsft.__version__}", p.stderr
    script = os.path.join(os.path.dirname(sys.executable), "rsft")
    if os.path.exists(script):  # the console script of the installed package
        p = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stdout.strip() == f"rsft {rsft.__version__}"


@pytest.mark.parametrize("seed", ["-1", "1.5", "x"])
def test_bad_seed_is_an_argparse_error(seed):
    p = _run("demo", "--seed", seed)
    assert p.returncode == 2
    assert "argument --seed: must be a non-negative integer" in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_plot_without_matplotlib_says_so(tmp_path):
    """matplotlib hidden (as when it is not installed): the demo runs, says so, exits 0."""
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from rsft.__main__ import main\n"
            f"sys.exit(main(['demo', '--only', 'density', '--plot', {str(tmp_path)!r}]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "--plot: matplotlib is not installed, no figures written" in p.stdout
    assert "Traceback" not in p.stderr and list(tmp_path.iterdir()) == []


def _one_line_error(p, path):
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.startswith(f"rsft: error: --plot {path}: ") and p.stderr.count("\n") == 1
    assert "Traceback" not in p.stderr
    assert p.stdout == ""  # refused before any demo ran


def test_unwritable_plot_dir_is_a_one_line_error(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("not a directory")
    for path in [f / "figures", f]:
        for json_flag in [(), ("--json",)]:
            p = _run("demo", "--only", "density", *json_flag, "--plot", str(path))
            _one_line_error(p, path)
    assert f.read_text() == "not a directory"


def test_read_only_plot_dir(tmp_path):
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        p = _run("demo", "--only", "density", "--plot", str(ro))
        if os.access(ro, os.W_OK):  # e.g. running as root: the directory is writable to us
            assert p.returncode == 0, p.stderr
        else:
            _one_line_error(p, ro)
            assert "Permission denied" in p.stderr
    finally:
        ro.chmod(0o700)


def test_long_messages_are_wrapped_not_cut():
    report = json.loads(_run("demo", "--only", "density", "--json").stdout)
    article = report["demos"]["density"]["article"]
    text = _run("demo", "--only", "density").stdout
    flat = " ".join(text.split())
    lines = text.splitlines()
    for label, msg in [("without log_M:", article["no_finite_M"]),
                       ("with M = 2:", article["M2_violation"])]:
        assert len(msg) > 200
        assert " ".join(msg.split()) in flat, label
        start = next(i for i, line in enumerate(lines) if line.strip().startswith(label))
        block = [lines[start]]
        for line in lines[start + 1:]:
            if not line.startswith(" " * 19):
                break
            block.append(line)
        assert len(block) >= 3 and all(len(line) <= 100 for line in block), block
        assert " ".join(" ".join(block).split()).endswith(" ".join(msg.split()[-3:]))


def test_plot_data_in_the_report():
    """What the figures are drawn from: real epoch numbers, the initial points."""
    report = json.loads(_run("demo", "--json", "--only", "density", "regression").stdout)
    d = report["demos"]
    assert d["density"]["sgd"]["x0"] == 0.0 and len(d["density"]["sgd"]["path"]) == 100
    for name, f in d["regression"]["fits"].items():
        at = f["loss_curve_epochs"]
        assert len(at) == len(f["loss_curve"]) > 50, name
        assert at[0] == 0 and at[-1] == f["epochs"] - 1 and at == sorted(set(at)), name
        assert f["loss_curve"][-1] == f["final_loss"]
    assert sorted(f["epochs"] for f in d["regression"]["fits"].values()) == [400, 500, 2000]


def test_plots_are_readable(monkeypatch, tmp_path):
    """The figures' axes: the regression curves on their own epochs, the moulding limits as
    reference lines with y labels, the bandit curves from the initial policy (round 0)."""
    from matplotlib.figure import Figure     # matplotlib is in the test extra
    figures = {}

    def keep(fig, path, **kwargs):
        figures[os.path.basename(path)] = fig
        open(path, "wb").close()
    monkeypatch.setattr(Figure, "savefig", keep)
    out = _demos.run_all(0, rsft.get_backend(), only=["regression", "moulding", "bandit"])
    report = {"demos": out["demos"]}
    cli._plot(report, str(tmp_path))
    assert set(figures) == {"demo2_regression.png", "demo3_moulding.png", "demo4_bandit.png"}

    (ax,) = figures["demo2_regression.png"].axes
    ends = sorted(int(line.get_xdata()[-1]) for line in ax.get_lines())
    assert ends == [399, 499, 1999]
    assert "epoch" in ax.get_xlabel() and "subsampled" not in ax.get_xlabel()

    axes = figures["demo3_moulding.png"].axes
    assert all(a.get_ylabel() for a in axes)

    def flat_lines(a):
        return {float(line.get_ydata()[0]) for line in a.get_lines()
                if len(set(line.get_ydata())) == 1}

    assert 0.95 in flat_lines(axes[0]) and 1.0 in flat_lines(axes[1])
    initial = out["demos"]["moulding"]["initial"]
    assert initial["cycle_time"] in flat_lines(axes[2])
    for a, key in zip(axes, ["yield", "cpk", "cycle_time"]):
        curves = [line for line in a.get_lines() if len(line.get_xdata()) > 2]
        assert curves and all(line.get_ydata()[0] == initial[key] for line in curves)

    b = out["demos"]["bandit"]
    e_ax, kl_ax = figures["demo4_bandit.png"].axes
    for a, key in [(e_ax, "expected_reward"), (kl_ax, "kl")]:
        curves = [line for line in a.get_lines() if len(line.get_xdata()) > 2]
        assert len(curves) == len(b["variants"])
        for line, v in zip(curves, b["variants"].values()):
            h = v["history"]
            assert line.get_xdata()[0] == 0 and line.get_ydata()[0] == h["initial"][key]
            assert len(line.get_ydata()) == v["rounds"] + 1
            assert list(line.get_ydata()[1:]) == h[key]
