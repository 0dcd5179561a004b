"""The ``Examples`` sections of the public modules' docstrings run as doctests."""
import doctest

import pytest

import rsft.acceptors
import rsft.finetune
import rsft.logconcave
import rsft.losses
import rsft.sampling

MODULES = [rsft.sampling, rsft.logconcave, rsft.losses, rsft.acceptors, rsft.finetune]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
