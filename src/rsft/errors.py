"""Exceptions and warnings raised by rsft."""


class EnvelopeViolationError(ValueError):
    """A proposal had ``log p(x) - log q(x) - log M > 0``: ``M`` is not an envelope, so the
    accepted samples would not follow ``p``.

    Attributes: ``x`` (the proposal), ``log_ratio`` (``log p - log q - log M`` there, > 0) and
    ``suggested_log_M`` (a ``log_M`` that covers every proposal seen so far).
    """

    def __init__(self, x, log_ratio, log_M):
        self.x = float(x)
        self.log_ratio = float(log_ratio)
        self.log_M = float(log_M)
        self.suggested_log_M = float(log_M + log_ratio + 1e-9 * max(1.0, abs(log_M)))
        super().__init__(
            f"envelope violated at x = {self.x!r}: log p(x) - log q(x) - log M = "
            f"{self.log_ratio:.6g} > 0 with log M = {log_M:.6g}, so p(x) > M q(x) and the "
            f"samples would not follow the target. log_M >= {self.suggested_log_M:.10g} "
            "covers every proposal seen so far (that is no proof it covers all x); "
            "on_violation='warn' continues instead of raising")

    def __reduce__(self):               # pickle with the attributes, not only the message
        return (type(self), (self.x, self.log_ratio, self.log_M))


class EnvelopeViolationWarning(RuntimeWarning):
    """Warning counterpart of :class:`EnvelopeViolationError` (``on_violation="warn"``)."""


class ProposalBudgetExceeded(RuntimeError):
    """The proposal budget ``max_proposals`` ran out before ``n`` samples were accepted, or
    (``expected_proposals`` given, nothing drawn) the exact envelope already shows that the
    ``n`` samples need more proposals on average than the budget allows."""

    def __init__(self, n_proposed, n_accepted, n_requested, max_proposals,
                 expected_proposals=None):
        self.n_proposed = int(n_proposed)
        self.n_accepted = int(n_accepted)
        self.n_requested = int(n_requested)
        self.max_proposals = int(max_proposals)
        self.expected_proposals = (None if expected_proposals is None
                                   else float(expected_proposals))
        if self.expected_proposals is None:
            message = (f"proposal budget exhausted: {self.n_proposed} proposals examined "
                       f"(budget max_proposals={self.max_proposals}) gave {self.n_accepted} of "
                       f"the {self.n_requested} requested samples; raise max_proposals or "
                       "check the envelope (acceptance is about 1/M)")
        else:
            message = (f"proposal budget too small: {self.n_requested} samples need "
                       f"{self.expected_proposals:.4g} proposals on average (n times the "
                       f"exact envelope M), more than max_proposals={self.max_proposals}; "
                       "nothing was drawn. Use a proposal closer to the target (a smaller M) "
                       "or raise max_proposals")
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.n_proposed, self.n_accepted, self.n_requested,
                             self.max_proposals, self.expected_proposals))


class NoEnvelopeError(ValueError):
    """The (target, proposal) pair admits no finite envelope M."""


class NotLogConcaveError(ValueError):
    """The target of a :class:`rsft.LogConcaveSampler` is not log-concave (or not a density
    the method can bound): found at construction, where the chord slopes of ``log p``
    increase, or while sampling, where ``log p(x)`` rose above the hat or fell below the
    squeeze. The samples would not follow the target, so none are returned.

    Attributes: ``x`` (where it fails), ``log_p`` (the target's ``log p(x)``), ``bound`` (the
    value ``log p(x)`` crossed: the chord of the neighbouring points, the hat or the squeeze)
    and ``points`` (the construction points whose chords show it; empty while sampling).
    """

    def __init__(self, message, x, log_p, bound, points=()):
        self.x = float(x)
        self.log_p = float(log_p)
        self.bound = float(bound)
        self.points = tuple(float(p) for p in points)
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.args[0], self.x, self.log_p, self.bound, self.points))


class LargeLogMWarning(UserWarning):
    """A ``log_M`` given for a built-in pair is more than ``log 2`` above the exact one: the
    acceptance rate falls by the factor ``exp(log_M - exact)`` for nothing."""
