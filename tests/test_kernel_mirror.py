"""The two backends are mirror images: the same kernels, signatures, constants and files.

``rsft._core`` (Cython, ``_kernels/*.pxi``) and ``rsft._reference`` (numpy, one module per
kernel file) must export the same kernel names with the same parameters, and the compiled
constants of the log-ratio program must equal the one declaration in ``rsft._program``.
"""
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import rsft
from rsft import _core, _program, _reference
from rsft._program import Proposal, Row, Status

PACKAGE = Path(rsft.__file__).parent


def _public_callables(module):
    return {n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
            and not inspect.ismodule(getattr(module, n))}


def test_both_backends_export_exactly_the_kernels():
    kernels = set(_reference.KERNELS)
    assert len(kernels) == len(_reference.KERNELS)   # no name listed twice
    assert _public_callables(_core) == kernels
    assert _public_callables(_reference) == kernels


@pytest.mark.parametrize("name", _reference.KERNELS)
def test_same_signature(name):
    compiled = inspect.signature(getattr(_core, name))
    reference = inspect.signature(getattr(_reference, name))
    assert list(compiled.parameters) == list(reference.parameters)


def test_compiled_constants_equal_the_declaration():
    assert _core.PROGRAM_CONSTANTS == _program.constants()
    assert _reference.PROGRAM_CONSTANTS == _program.constants()
    # the declaration itself: contiguous codes from 0, one row field per column
    rows = sorted(v for k, v in _program.constants().items() if k.startswith("ROW_") and
                  k != "ROW_LEN")
    assert rows == list(range(_program.ROW_LEN))
    for prefix in ("PROPOSAL_", "STATUS_"):
        codes = sorted(v for k, v in _program.constants().items() if k.startswith(prefix))
        assert codes == list(range(len(codes)))


def test_generated_pxi_declares_every_constant():
    text = _program.pxi_source()
    for name, value in _program.constants().items():
        assert re.search(rf"^    {name} = {value}$", text, re.M), name


def test_kernel_files_mirror_reference_modules():
    compiled = {p.name.split(".")[0] for p in (PACKAGE / "_kernels").iterdir()
                if p.name.endswith((".pxi", ".pxi.tp"))}   # optim is a Tempita template
    reference = {p.stem for p in (PACKAGE / "_reference").glob("*.py")} - {"__init__"}
    # bitgen.pxi has no twin: the reference draws with the Generator's own methods; nor has
    # signals.pxi: Python runs the reference's signal handlers between its numpy calls
    assert compiled - {"bitgen", "signals"} == reference
    for name in reference:
        module = getattr(_reference, name)
        assert set(module.__all__) <= set(_reference.KERNELS)


def test_stub_lists_every_kernel_and_constant():
    stub = (PACKAGE / "_core.pyi").read_text()
    declared = set(re.findall(r"^def (\w+)\(", stub, re.M))
    assert declared == set(_reference.KERNELS)
    constants = set(re.findall(r"^([A-Z][A-Z0-9_]*): ", stub, re.M))
    public = {n for n in dir(_core) if not n.startswith("_")
              and not inspect.ismodule(getattr(_core, n))}
    assert constants == public - set(_reference.KERNELS)


@pytest.mark.parametrize("target, proposal, rng, expected", [
    (rsft.Normal(2, 1), rsft.Normal(0, 2), np.random.default_rng(0), "quadratic"),
    (rsft.Laplace(0, 1), rsft.StudentT(3, 0, 2), np.random.default_rng(0), "log_ratio"),
    (rsft.Mixture([rsft.Normal(-1, 1), rsft.Normal(1, 1)], [1, 1]), rsft.Normal(0, 3),
     np.random.default_rng(0), "log_ratio"),
    (rsft.Beta(2, 5), rsft.Uniform(0, 1), np.random.Generator(np.random.MT19937(0)), "product"),
])
def test_strategy_is_chosen_from_the_program(target, proposal, rng, expected):
    s = rsft.RejectionSampler(target, proposal)
    assert _core._chosen_strategy(rng, proposal._code, s._prog, False) == expected


def test_product_strategy_on_pcg64_draws_beside_the_scan():
    s = rsft.RejectionSampler(rsft.Beta(2, 5), rsft.Uniform(0, 1))
    name = _core._chosen_strategy(np.random.default_rng(0), Proposal.UNIFORM, s._prog, False)
    assert name == ("product_pcg64" if _core.PCG64_INLINE else "product")
    # a callable target is never product mode: the program is -log q - log M
    c = rsft.RejectionSampler(lambda x: 0.0 * x, rsft.Uniform(0, 1), log_M=0.0)
    assert _core._chosen_strategy(np.random.default_rng(0), Proposal.UNIFORM, c._prog,
                                  True) == "quadratic"


def test_named_constants_are_used_by_the_public_layer():
    assert rsft.Normal(0, 1)._code == Proposal.NORMAL
    assert rsft.StudentT(3)._code == Proposal.STUDENT_T
    assert Status.OK == 0 and Row.CENTER == 0


def test_stub_agrees_with_the_compiled_module(tmp_path):
    """``mypy.stubtest`` on the installed ``rsft._core`` against ``_core.pyi``: every name,
    signature and default of the stub is the extension's (run outside the source tree)."""
    import subprocess
    import sys
    allowlist = Path(__file__).parent / "stubtest_allowlist.txt"
    out = subprocess.run([sys.executable, "-m", "mypy.stubtest", "rsft._core", "--allowlist",
                          str(allowlist)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
