"""What the installed distribution ships: the license and its SPDX metadata, and no generated C
source beside the compiled module. Checked on the installed package, never a source tree."""
import importlib.metadata
from pathlib import Path

import pytest

import rsft

PKG = Path(rsft.__file__).parent


@pytest.fixture
def installed():
    assert PKG.parent.name in ("site-packages", "dist-packages"), (
        f"rsft is imported from {PKG}: run the tests on the installed wheel (make test)")
    return importlib.metadata.distribution("rsft")


def test_no_generated_c_source_next_to_the_module(installed):
    assert not (PKG / "_core.c").exists()
    assert not [f for f in installed.files if str(f).endswith(".c")]


def test_license_metadata(installed):
    assert installed.metadata["License-Expression"] == "BSD-3-Clause"
    licenses = [f for f in installed.files if f.name == "LICENSE"]
    assert len(licenses) == 1
    text = licenses[0].read_text()
    assert "BSD 3-Clause License" in text and "Copyright (c) 2026, the rsft developers" in text
