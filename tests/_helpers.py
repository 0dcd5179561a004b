"""Small helpers shared by the test modules."""
import numpy as np
from scipy import special


def same_state(a, b):
    """Bit-generator states compare equal (MT19937 keeps a numpy array in its state)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


class MixtureRef:
    """scipy-based reference for a finite mixture: sum_i w_i p_i(x), w normalised by sum."""

    def __init__(self, comps, weights):
        w = np.asarray(weights, dtype=float)
        self.w = w / w.sum()
        self.comps = comps

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore"):
            logw = np.log(self.w)
        terms = np.stack([lw + c.logpdf(x) for lw, c in zip(logw, self.comps)])
        with np.errstate(invalid="ignore", divide="ignore"):
            return special.logsumexp(terms, axis=0)

    def pdf(self, x):
        return sum(w * c.pdf(x) for w, c in zip(self.w, self.comps))

    def cdf(self, x):
        return sum(w * c.cdf(x) for w, c in zip(self.w, self.comps))

    def mean(self):
        return float(sum(w * c.mean() for w, c in zip(self.w, self.comps)))

    def var(self):
        m2 = sum(w * (c.var() + c.mean() ** 2) for w, c in zip(self.w, self.comps))
        return float(m2 - self.mean() ** 2)

    def support(self):
        los, his = zip(*(c.support() for c in self.comps))
        return float(min(los)), float(max(his))
