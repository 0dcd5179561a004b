"""Extension list only; metadata lives in pyproject.toml.

Default C flags are portable and exact: ``-O3 -fno-math-errno -ffp-contract=off``.
``-ffp-contract=off`` forbids fused multiply-adds, so the compiled kernels round exactly
like numpy's element-wise ufuncs and both backends stay bit-identical.
Set ``RSFT_NATIVE=1`` to opt in to ``-march=native`` (not for wheels you ship).
"""
import os
from pathlib import Path

import Cython
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

cflags = ["-O3", "-fno-math-errno", "-ffp-contract=off"]
if os.environ.get("RSFT_NATIVE") == "1":  # opt-in only
    cflags.append("-march=native")

npy_random_lib = str(Path(np.get_include()).parents[1] / "random" / "lib")

ext = Extension(
    "rsft._core",
    sources=["src/rsft/_core.pyx"],
    include_dirs=[np.get_include()],
    library_dirs=[npy_random_lib],
    libraries=["npyrandom", "m"],
    extra_compile_args=cflags,
    define_macros=[
        ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
        ("RSFT_CFLAGS", '"' + " ".join(cflags) + '"'),
        ("RSFT_CYTHON_VERSION", '"' + Cython.__version__ + '"'),
    ],
)

setup(
    ext_modules=cythonize(
        [ext],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
