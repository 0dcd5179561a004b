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
        self.suggested_log_M = float(log_M + log_ratio + 1e-9 * max(1.0, abs(log_M)))
        super().__init__(
            f"envelope violated at x = {self.x!r}: log p(x) - log q(x) - log M = "
            f"{self.log_ratio:.6g} > 0 with log M = {log_M:.6g}, so p(x) > M q(x) and the "
            f"samples would not follow the target. log_M >= {self.suggested_log_M:.10g} "
            "covers every proposal seen so far (that is no proof it covers all x); "
            "on_violation='warn' continues instead of raising")


class EnvelopeViolationWarning(RuntimeWarning):
    """Warning counterpart of :class:`EnvelopeViolationError` (``on_violation="warn"``)."""


class ProposalBudgetExceeded(RuntimeError):
    """The proposal budget ``max_proposals`` ran out before ``n`` samples were accepted."""

    def __init__(self, n_proposed, n_accepted, n_requested, max_proposals):
        self.n_proposed = int(n_proposed)
        self.n_accepted = int(n_accepted)
        self.n_requested = int(n_requested)
        self.max_proposals = int(max_proposals)
        super().__init__(
            f"proposal budget exhausted: {self.n_proposed} proposals examined (budget "
            f"max_proposals={self.max_proposals}) gave {self.n_accepted} of the "
            f"{self.n_requested} requested samples; raise max_proposals or check the "
            "envelope (acceptance is about 1/M)")


class NoEnvelopeError(ValueError):
    """The (target, proposal) pair admits no finite envelope M."""
