"""Small helpers shared by the test modules."""
import numpy as np


def same_state(a, b):
    """Bit-generator states compare equal (MT19937 keeps a numpy array in its state)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b
