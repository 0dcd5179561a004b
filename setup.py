"""Extension list only; metadata lives in pyproject.toml, code generation in tools/generate.py.

Default C flags are portable and exact: ``-O3 -fno-math-errno -fno-trapping-math
-ffp-contract=off``. ``-ffp-contract=off`` forbids fused multiply-adds, so the compiled kernels
round exactly like numpy's element-wise ufuncs and both backends stay bit-identical.
``-fno-trapping-math`` only declares that no code here reads or traps on floating-point exception
flags (none does): it changes no result, and it lets GCC turn a select on an ordered comparison
(``x < lo ? lo : x``) into a vector blend, without which the loss kernels' branch-free exp and
log1p loops are not vectorised.
Set ``RSFT_NATIVE=1`` to opt in to ``-march=native`` (not for wheels you ship), and
``RSFT_OPENMP=0`` to build without OpenMP (the kernels then run on one thread, same results).
``RSFT_CYTHON_DEBUG=1`` builds with Cython's bounds, wraparound and initialisation checks on
(``make test-debug`` runs the parity tests on that build).
"""
import os
import sys
from pathlib import Path

import Cython
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

sys.path.insert(0, str(Path(__file__).parent / "tools"))
from generate import NPY_RANDOM_LIB, generate  # noqa: E402

cflags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
if os.environ.get("RSFT_NATIVE") == "1":  # opt-in only
    cflags.append("-march=native")  # opt-in only (RSFT_NATIVE=1), never the default
openmp = ["-fopenmp"] if os.environ.get("RSFT_OPENMP", "1") == "1" else []
debug_checks = os.environ.get("RSFT_CYTHON_DEBUG") == "1"

# The wheel ships the compiled module, not Cython's C file (exclude-package-data in
# pyproject.toml); a copy an older build left in build/lib* would still be packed: drop it.
for stale in Path("build").glob("lib*/rsft/_core.c"):
    stale.unlink()

generated = Path("build") / "rsft_generated"
have_zig = generate("src/rsft", generated)

ext = Extension(
    "rsft._core",
    sources=["src/rsft/_core.pyx"],
    include_dirs=[np.get_include(), "src/rsft/_kernels", str(generated)],
    library_dirs=[str(NPY_RANDOM_LIB)],
    depends=[str(p) for p in Path("src/rsft/_kernels").iterdir()] + ["src/rsft/_program.py"],
    libraries=["npyrandom", "m"],
    extra_compile_args=cflags + openmp,
    extra_link_args=openmp,
    define_macros=[
        ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
        ("RSFT_CFLAGS", '"' + " ".join(cflags + openmp) + '"'),
        ("RSFT_CYTHON_VERSION", '"' + Cython.__version__ + '"'),
        ("RSFT_INLINE_ZIGGURAT", "1" if have_zig else "0"),
        ("RSFT_CYTHON_DEBUG", "1" if debug_checks else "0"),
    ],
)

setup(
    ext_modules=cythonize(
        [ext],
        include_path=[str(generated)],
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug_checks,
            "wraparound": debug_checks,
            "cdivision": True,
            "initializedcheck": debug_checks,
        },
        force=debug_checks,     # a debug build never reuses a C file generated without checks
    )
)
