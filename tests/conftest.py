import os

import pytest

import rsft


def pytest_report_header(config):
    from rsft import _backend
    core = _backend._modules.get("cython")
    return (f"rsft {rsft.__version__} from {os.path.dirname(rsft.__file__)}; backends "
            f"{rsft.available_backends()}; C flags {getattr(core, 'CFLAGS', None)}")


def pytest_sessionstart(session):
    # `make test` (and so CI) sets RSFT_REQUIRE_CYTHON=1: never test only the numpy fallback.
    if os.environ.get("RSFT_REQUIRE_CYTHON") == "1" and "cython" not in rsft.available_backends():
        from rsft import _backend
        raise pytest.UsageError(
            f"the compiled extension rsft._core is missing ({_backend._IMPORT_ERROR}); "
            "refusing to test only the numpy fallback")


@pytest.fixture(params=["cython", "numpy"])
def backend(request):
    return request.param


def pytest_terminal_summary(terminalreporter):
    """Under `make fuzz` (RSFT_FUZZ_EXAMPLES set): how many inputs each public entry point got
    in test_properties.py."""
    import sys
    examples = os.environ.get("RSFT_FUZZ_EXAMPLES")
    module = sys.modules.get("test_properties")
    if not examples or module is None or not module.INPUTS:
        return
    terminalreporter.section(f"inputs per entry point and variant (RSFT_FUZZ_EXAMPLES={examples})")
    width = max(len(name) for name in module.INPUTS)
    for name, n in sorted(module.INPUTS.items()):
        terminalreporter.write_line(f"{name:<{width}}  {n:>8}")
    terminalreporter.write_line(f"{'total':<{width}}  {sum(module.INPUTS.values()):>8}")
