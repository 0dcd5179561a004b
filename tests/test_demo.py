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
    assert set(report["demos"]) == {"density", "regression", "moulding", "bandit"}
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
    assert report["seconds"] < 60


def test_demo_text_report_and_seed():
    p = _run("demo", "--seed", "3", "--only", "density", "bandit")
    assert p.returncode == 0, p.stderr
    assert "seed 3" in p.stdout and "checks passed" in p.stdout and "FAIL" not in p.stdout
    assert "exact target" in p.stdout


def test_demo_plot_without_or_with_matplotlib(tmp_path):
    p = _run("demo", "--only", "regression", "--plot", str(tmp_path))
    assert p.returncode == 0, p.stderr
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in p.stdout
    else:
        assert (tmp_path / "demo2_regression.png").exists()


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
