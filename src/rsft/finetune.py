"""The RSFT loop: propose, accept by rejection sampling, fine-tune on what was kept, repeat.

Two trainers share one :class:`History` and one ``fit(rounds, rng, callback, progress)``:

* :class:`DensityTrainer`, density-target RSFT: each round draws exact samples of a target
  density ``p`` with a :class:`rsft.RejectionSampler` and takes an optimizer step on the
  Monte Carlo estimate of ``E_{x~p} L(theta, x)``. This is the first source article done
  right: the samples come from ``p`` (a valid envelope), and the update uses the parameter,
  e.g. ``x <- x - lr * 2 (x - s)`` for ``L = (x - s)^2``, which converges to ``E_p[s]``.
* :class:`RSFTTrainer`, reward RSFT (RAFT, ReST, RFT, RSO): each round a policy (the current
  one or a frozen reference) proposes candidates for every context, a reward acceptor
  (:class:`rsft.Threshold`, :class:`rsft.TopK`, :class:`rsft.StatisticalRS`) keeps some, and
  the policy is fine-tuned by maximum likelihood on the kept ones (softmax cross-entropy for
  a :class:`rsft.SoftmaxPolicy`, MSE for a :class:`rsft.GaussianPolicy`).

They are two classes, not one with modes, because they share no inputs: a density target has
no policy, candidates, reward or acceptor, and a reward problem has no target density.
"""

import inspect
import math

import numpy as np

from . import _tilt, _validate
from .acceptors import Acceptor
from .losses import MSE, SoftmaxCrossEntropy
from .models import GaussianPolicy, SoftmaxPolicy, fit as _fit_model
from .optim import Adam, Optimizer
from .sampling import RejectionSampler

__all__ = ["History", "DensityTrainer", "RSFTTrainer"]


# ---------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------

class History:
    """Per-round records of a trainer: one list per column, one entry per round.

    Columns of :class:`RSFTTrainer`:

    ``round`` (int, 0-based, continues across ``fit`` calls), ``proposals`` (candidates
    proposed), ``accepted`` (candidates kept), ``acceptance_rate`` (``accepted / proposals``),
    ``skipped`` (True when nothing was accepted and the update was skipped), ``loss`` (the
    per-epoch training losses of the round's fine-tuning, as returned by
    :func:`rsft.models.fit`, averaged over the epochs), ``reward`` (mean
    reward of the proposals), ``accepted_reward`` (mean reward of the kept candidates),
    ``kl`` (exact mean KL divergence ``KL(pi || pi_ref)`` over the contexts, after the
    round's update) and, for a discrete policy, ``expected_reward`` (exact
    ``mean_x sum_a pi(a|x) r(x, a)`` after the update).

    Columns of :class:`DensityTrainer`: ``round``, ``proposals``, ``accepted``,
    ``acceptance_rate``, ``loss`` (the objective on the round's samples, before the step).

    Means over an empty set (``loss`` and ``accepted_reward`` of a skipped round) are recorded
    as 0.0, never NaN; ``skipped`` (or ``accepted == 0``) tells them apart.

    ``history["loss"]`` is a float64 (int64, bool) array of a column; ``history.records()`` the
    rows as dicts; ``history.as_dict()`` the columns as lists (JSON-ready); ``len(history)``
    the number of rounds. :attr:`initial` holds the exact metrics before the first round (for
    :class:`RSFTTrainer`).
    """

    def __init__(self, columns):
        self._columns = {c: [] for c in columns}
        self.initial = {}

    @property
    def columns(self):
        """Column names, in order."""
        return list(self._columns)

    def append(self, record):
        """Add one round (a dict with exactly the history's columns)."""
        if set(record) != set(self._columns):
            raise ValueError(f"record has keys {sorted(record)}, expected "
                             f"{sorted(self._columns)}")
        for k, v in record.items():
            self._columns[k].append(v)

    def __len__(self):
        return len(self._columns["round"])

    def __contains__(self, key):
        return key in self._columns

    def __getitem__(self, key):
        if key not in self._columns:
            raise KeyError(f"no column {key!r}; columns are {self.columns}")
        return np.asarray(self._columns[key])

    def records(self):
        """The rounds as a list of dicts."""
        return [dict(zip(self._columns, row)) for row in zip(*self._columns.values())]

    def as_dict(self):
        """The columns as plain Python lists (JSON-serialisable), plus ``initial``."""
        out = {k: [v.item() if isinstance(v, np.generic) else v for v in vals]
               for k, vals in self._columns.items()}
        out["initial"] = dict(self.initial)
        return out

    def __repr__(self):
        return f"History({len(self)} rounds, columns={self.columns})"


# ---------------------------------------------------------------------------------------------
# Shared loop
# ---------------------------------------------------------------------------------------------

def _progress_bar(progress, total, desc):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: no bar, no error
        return None
    return tqdm(total=total, desc=desc, leave=False)


class _Trainer:
    _columns = ()

    def __init__(self, check_finite=True):
        self.history = History(self._columns)
        self.round = 0
        self.check_finite = _validate.flag(check_finite, "check_finite")

    def _round(self, gen, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def _trained_params(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _require_finite(self, arrays, t, what):
        """With ``check_finite``: a ValueError naming the round when an array of ``arrays``
        holds NaN or an infinity (``what`` says which arrays)."""
        if not self.check_finite:
            return
        for i, a in enumerate(arrays):
            if not np.all(np.isfinite(a)):
                raise ValueError(
                    f"round {t}: {what}[{i}] is not finite (NaN or inf); training stopped. "
                    "Check the objective / reward, lower the learning rate, or pass "
                    "check_finite=False to the trainer to skip this check")

    def fit(self, rounds, rng=None, callback=None, progress=False):
        """Run ``rounds`` rounds; append them to :attr:`history` and return it.

        Parameters
        ----------
        rounds : int
            Number of rounds (``>= 0``). Round indices continue across calls.
        rng : None, int, SeedSequence, BitGenerator or Generator, optional
            Randomness of the whole run, normalised like ``numpy.random.default_rng`` (a
            Generator advances). The draws of each round are listed in the class notes.
        callback : callable, optional
            ``callback(trainer, record)`` after every round, with ``record`` the round's row
            (a dict). Returning True stops training after that round.
        progress : bool, default False
            Show a tqdm progress bar when tqdm is installed (silently none otherwise).

        Returns
        -------
        History
            :attr:`history` (all rounds so far).
        """
        rounds = _validate.count(rounds, "rounds")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        gen = _validate.generator(rng)
        bar = _progress_bar(progress, rounds, type(self).__name__)
        try:
            for _ in range(rounds):
                record = self._round(gen, self.round)
                self._require_finite(self._trained_params(), self.round, "params")
                self.history.append(record)
                self.round += 1
                if bar is not None:
                    bar.update(1)
                if callback is not None and callback(self, record) is True:
                    break
        finally:
            if bar is not None:
                bar.close()
        return self.history


def _check_optimizer(optimizer, params):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an rsft.optim optimizer (e.g. rsft.optim.Adam("
                        f"params, lr=0.05)), got {type(optimizer).__name__}")
    _validate.optimizer_owns(optimizer, params)
    return optimizer


# ---------------------------------------------------------------------------------------------
# Density-target RSFT
# ---------------------------------------------------------------------------------------------

class DensityTrainer(_Trainer):
    """Stochastic optimisation of ``E_{x~p} L(theta, x)`` on exact samples of a target ``p``.

    Every round draws ``batch_size`` samples of the target with the rejection sampler, then
    takes one optimizer step on ``objective(params, samples)``.

    Parameters
    ----------
    sampler : RejectionSampler
        Draws the samples of ``p`` (its envelope is exact or checked, see
        :class:`rsft.RejectionSampler`).
    params : ndarray or list of ndarray
        Parameters, updated in place by ``optimizer``.
    objective : callable
        ``objective(params, x) -> (value, grads)``: the Monte Carlo loss on the samples ``x``
        (a float64 array of shape ``(batch_size,)``) and its gradient, one array per
        parameter (same shapes and dtypes as ``params``).
    optimizer : rsft.optim.Optimizer
        Built over ``params`` (the same array objects).
    batch_size : int, default 1
        Samples per round (per step), ``>= 1``.
    check_finite : bool, default True
        Refuse (``ValueError`` naming the round) non-finite gradients before the step, which
        then leaves the parameters as they were, and non-finite parameters after it.

    Notes
    -----
    Draw order: round ``t`` calls ``sampler.sample_with_stats(batch_size, rng)`` once and
    nothing else, so the run consumes the stream exactly as consecutive sampler calls do (and
    is bit-identical on both backends, given an objective that is).

    Examples
    --------
    SGD on ``E(x - s)^2`` with ``s ~ N(2, 1)``, the first source article done right: batches
    of 100 exact samples and ``lr_t = 0.5 / (1 + t)`` make ``x`` the running mean of the
    samples, which converges to ``E[s] = 2``:

    >>> import numpy as np
    >>> import rsft
    >>> sampler = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2))
    >>> x = np.zeros(1)
    >>> def objective(params, s):               # mean of (x - s)^2 and its gradient
    ...     d = params[0][0] - s
    ...     return float(np.mean(d * d)), [np.array([2.0 * np.mean(d)])]
    >>> opt = rsft.SGD([x], lr=rsft.InverseTimeLR(0.5, 1.0))
    >>> history = DensityTrainer(sampler, [x], objective, opt, batch_size=100).fit(100, rng=0)
    >>> round(float(x[0]), 1), int(history["accepted"].sum())
    (2.0, 10000)
    >>> round(float(history["acceptance_rate"].mean()), 2)      # 1/M = 0.2567
    0.26
    """

    _columns = ("round", "proposals", "accepted", "acceptance_rate", "loss")

    def __init__(self, sampler, params, objective, optimizer, batch_size=1, *,
                 check_finite=True):
        super().__init__(check_finite)
        if not isinstance(sampler, RejectionSampler):
            raise TypeError(f"sampler must be an rsft.RejectionSampler, got "
                            f"{type(sampler).__name__}")
        if not callable(objective):
            raise TypeError("objective must be a callable objective(params, x) -> "
                            "(value, grads)")
        params = _validate.array_list(params, "params")
        self.params = params
        self.optimizer = _check_optimizer(optimizer, params)
        self.sampler = sampler
        self.objective = objective
        self.batch_size = _validate.count(batch_size, "batch_size", minimum=1)

    def _round(self, gen, t):
        x, st = self.sampler.sample_with_stats(self.batch_size, gen)
        out = self.objective(self.params, x)
        try:
            value, grads = out
        except (TypeError, ValueError):
            raise TypeError("objective must return (value, grads)") from None
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"objective returned {value} in round {t}")
        if isinstance(grads, np.ndarray):
            grads = [grads]
        self._require_finite(grads, t, "the objective's gradient")
        self.optimizer.step(grads)
        return {"round": t, "proposals": st.n_proposed, "accepted": st.n_accepted,
                "acceptance_rate": st.acceptance_rate, "loss": value}

    def _trained_params(self):
        return self.params


# ---------------------------------------------------------------------------------------------
# Reward RSFT
# ---------------------------------------------------------------------------------------------

def _backend_kwarg(method, backend):
    """``{"backend": backend}`` when there is one to pass and ``method`` takes it, else ``{}``:
    a policy or acceptor written without a ``backend=`` keyword keeps working."""
    if backend is None:
        return {}
    try:
        takes = "backend" in inspect.signature(method).parameters
    except (TypeError, ValueError):     # no signature to read (e.g. a builtin)
        takes = False
    return {"backend": backend} if takes else {}


class RSFTTrainer(_Trainer):
    """Rejection-sampling fine-tuning of a policy on its own accepted candidates.

    Round ``t``: the proposal policy draws ``n_candidates`` actions for each context, the
    reward scores them, the acceptor keeps some, and the policy is fitted by maximum
    likelihood to the kept (context, action) pairs: ``epochs`` passes of
    :func:`rsft.models.fit` with ``optimizer``. RAFT / RFT are ``TopK`` or ``Threshold`` with
    ``proposal="current"``; ReST's improve step is a rising ``Threshold`` schedule;
    RSO is ``StatisticalRS`` with ``proposal="reference"``, whose kept candidates are exact
    samples of ``pi*(a|x) ∝ pi_ref(a|x) exp(r(x, a) / beta)`` (see :meth:`tilted_target`).

    Parameters
    ----------
    policy : SoftmaxPolicy or GaussianPolicy
        The policy being fine-tuned (its ``params`` are updated in place).
    reward : callable
        ``reward(X, actions, rng) -> ndarray (n_contexts, n_candidates)`` of finite rewards,
        with ``actions`` of shape ``(n_contexts, n_candidates)`` (integers, softmax policy) or
        ``(n_contexts, n_candidates, n_outputs)`` (Gaussian policy). ``rng`` is the run's
        Generator (a noisy reward may draw from it; a deterministic one ignores it).
    acceptor : rsft.acceptors.Acceptor
        ``Threshold``, ``TopK``, ``StatisticalRS`` (or a subclass of ``Acceptor``).
    contexts : array_like, shape (n_contexts, n_features)
        The fixed set of contexts (prompts) proposed for in every round.
    n_candidates : int, default 8
        Candidates per context per round.
    proposal : {"current", "reference"}, default "current"
        Which policy proposes: the one being trained (iterated RAFT / ReST) or the frozen
        reference (RSO, and a single-step RFT).
    refit : {"current", "base"}, default "current"
        Fine-tune from the current parameters (keeping the optimizer's state), or restart each
        round from the base parameters (the policy's at construction) with a fresh optimizer
        state (ReST's "fine-tune from the base model").
    optimizer : rsft.optim.Optimizer, optional
        Built over ``policy.params``; default ``rsft.optim.Adam(policy.params, lr=0.05)``.
    epochs : int, default 10
        Passes over each round's accepted set.
    batch_size : int, optional
        Mini-batch size of those passes; None (default) means full batch (one step per epoch).
    reference : same type as ``policy``, optional
        The frozen reference policy ``pi_ref`` (proposals with ``proposal="reference"``, and
        the KL column). Default: a copy of ``policy`` as given (its base parameters).
    reward_table : callable or array_like, optional
        Softmax policy only: the expected reward of every action,
        ``reward_table(X) -> (n_contexts, n_actions)`` or that array, for the exact
        ``expected_reward`` column. Default: ``reward(X, all actions, rng)`` evaluated once
        with a private ``numpy.random.default_rng(0)`` (exact for a deterministic reward;
        pass the table for a noisy one). Never consumes the run's stream.
    backend : {"cython", "numpy"}, optional
        The kernels of the run: passed with every call the trainer makes to the policy's and
        the reference's ``sample`` and, when the acceptor has no backend of its own, to its
        ``accept``; the loss and the default optimizer are built with it. None: each object
        uses its own backend (else the process default). Both backends give the same
        history for the same seed up to rounding: the loss kernels sum in different orders
        (last-bit differences), tested to agree to 1e-12 over whole runs.
    check_finite : bool, default True
        Refuse (``ValueError`` naming the round) a round that left the policy's parameters
        non-finite.

    Notes
    -----
    What the trainer does with the objects it is given (it sets no attribute on any of them,
    ``backend`` included, and copies none of them except as listed):

    * ``policy`` is trained in place: the optimizer updates the arrays of ``policy.params``
      (the very arrays, never rebound), and ``refit="base"`` writes the starting values back
      into them before each round's fine-tuning. :attr:`base_params` holds copies of those
      starting values.
    * ``optimizer`` is used in place (it steps ``policy.params``); ``refit="base"`` reloads
      its state at construction into it before each round's fine-tuning.
    * ``reference`` is used in place and only read (``sample`` and ``decision_function``);
      the default is a new policy, a copy of ``policy`` at construction (with the
      trainer's ``backend`` if given).
    * ``acceptor``'s ``accept`` is called once per round (the acceptor itself may keep state:
      ``StatisticalRS(r_max=None)`` remembers that it has warned).
    * ``reward`` and ``reward_table`` are called; ``contexts`` and ``reward_table`` arrays are
      read (and converted, a copy when their dtype or layout differs), never written.

    Draw order of round ``t`` (the stream contract; identical on both backends):

    1. proposals: ``SoftmaxPolicy.sample`` (one ``rng.random((n_contexts, n_candidates))``)
       or ``GaussianPolicy.sample`` (one ``rng.standard_normal((n_contexts, n_candidates,
       n_outputs))``) of the proposal policy;
    2. whatever ``reward(X, actions, rng)`` draws (nothing for a deterministic reward);
    3. the acceptor's draws (``TopK`` and ``StatisticalRS``: ``rng.random`` of the rewards'
       shape; ``Threshold`` and ``Quantile``: none; ``RSO``: one block per pass), called with
       ``round=t``;
    4. fine-tuning: none for full batches; with ``batch_size``, one ``rng.permutation`` of the
       accepted set per epoch (:func:`rsft.models.fit`). A round with nothing accepted
       skips this step (and draws nothing in it).

    The kept candidates are gathered in row-major order (context, then candidate).

    Examples
    --------
    Best-of-4 (RAFT) on a contextual bandit: 50 contexts, 3 actions, a linear reward.

    >>> import numpy as np
    >>> import rsft
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> W = np.array([[1.0, -1.0, 0.5], [0.0, 1.0, -1.0]])  # reward of action a: (X @ W)[:, a]
    >>> def reward(X, actions, rng):
    ...     return np.take_along_axis(X @ W, actions, axis=1)
    >>> policy = rsft.SoftmaxPolicy(n_features=2, n_actions=3)
    >>> trainer = rsft.RSFTTrainer(policy, reward, rsft.TopK(1), X, n_candidates=4)
    >>> history = trainer.fit(rounds=5, rng=0)
    >>> history["acceptance_rate"]                # one of 4 candidates per context
    array([0.25, 0.25, 0.25, 0.25, 0.25])
    >>> round(history.initial["expected_reward"], 3)       # exact E[r] of the uniform start
    -0.002
    >>> history["expected_reward"].round(3)                # exact E[r] after each round
    array([0.501, 0.772, 0.876, 0.932, 0.964])
    >>> round(float(np.mean((X @ W).max(axis=1))), 3)      # the best possible E[r]
    1.085
    >>> round(trainer.tilted_target(beta=1.0)["expected_reward"], 3)  # RSO's target, beta 1
    0.762
    """

    def __init__(self, policy, reward, acceptor, contexts, *, n_candidates=8,
                 proposal="current", refit="current", optimizer=None, epochs=10,
                 batch_size=None, reference=None, reward_table=None, backend=None,
                 check_finite=True):
        super().__init__(check_finite)
        if not isinstance(policy, (SoftmaxPolicy, GaussianPolicy)):
            raise TypeError(f"policy must be an rsft SoftmaxPolicy or GaussianPolicy, got "
                            f"{type(policy).__name__}")
        if not callable(reward):
            raise TypeError("reward must be a callable reward(X, actions, rng) -> (n_contexts, "
                            "n_candidates) array")
        if not isinstance(acceptor, Acceptor):
            raise TypeError(f"acceptor must be an rsft acceptor (Threshold, Quantile, TopK, "
                            f"StatisticalRS, RSO), got {type(acceptor).__name__}")
        if proposal not in ("current", "reference"):
            raise ValueError(f"proposal must be 'current' or 'reference', got {proposal!r}")
        if refit not in ("current", "base"):
            raise ValueError(f"refit must be 'current' or 'base', got {refit!r}")
        self.backend = _validate.backend(backend)
        self.discrete = isinstance(policy, SoftmaxPolicy)
        X = _validate.real_array(contexts, "contexts")
        if X.ndim != 2 or X.shape[1] != policy.n_features:
            raise ValueError(f"contexts must have shape (n_contexts, {policy.n_features}), "
                             f"got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("contexts is empty: give at least one context")
        if not np.isfinite(X).all():
            raise ValueError("contexts contain NaN or infinity")
        self.contexts = np.ascontiguousarray(X, dtype=policy.dtype)
        self.n_candidates = _validate.count(n_candidates, "n_candidates", minimum=1)
        self.epochs = _validate.count(epochs, "epochs")
        self.batch_size = _validate.batch_size(batch_size)
        self.policy = policy
        self.base_params = [p.copy() for p in policy.params]
        if reference is None:
            reference = self._copy_policy(policy, policy.backend if backend is None else backend)
        elif type(reference) is not type(policy) or any(
                a.shape != b.shape for a, b in zip(reference.params, policy.params)):
            raise ValueError("reference must be a policy of the same type and shapes as policy")
        elif any(np.shares_memory(a, b) for a in reference.params for b in policy.params):
            raise ValueError("reference shares parameter arrays with policy, so it would not "
                             "stay frozen; pass a copy (or omit reference: a frozen copy of "
                             "the starting policy is the default)")
        elif isinstance(policy, GaussianPolicy) and not np.array_equal(reference.sigma,
                                                                      policy.sigma):
            raise ValueError("reference must have the policy's sigma")
        self.reference = reference
        self.reward = reward
        self.acceptor = acceptor
        self.proposal = proposal
        self.refit = refit
        if optimizer is None:
            optimizer = Adam(policy.params, lr=0.05, backend=backend)
        self.optimizer = _check_optimizer(optimizer, policy.params)
        self._opt_initial = optimizer.state_dict()
        if self.discrete:
            self.loss = SoftmaxCrossEntropy(reduction="mean", backend=backend)
        else:
            self.loss = MSE(reduction="mean", backend=backend)
        self._table = self._reward_table(reward_table) if self.discrete else None
        cols = ["round", "proposals", "accepted", "acceptance_rate", "skipped", "loss",
                "reward", "accepted_reward", "kl"]
        if self.discrete:
            cols.append("expected_reward")
        self._columns = tuple(cols)
        self.history = History(self._columns)
        self.history.initial = self.metrics()

    @staticmethod
    def _copy_policy(policy, backend):
        if isinstance(policy, SoftmaxPolicy):
            ref = SoftmaxPolicy(policy.n_features, policy.n_actions, dtype=policy.dtype,
                                backend=backend)
        else:
            ref = GaussianPolicy(policy.n_features, policy.n_outputs, policy.sigma,
                                 dtype=policy.dtype, backend=backend)
        for a, b in zip(ref.params, policy.params):
            a[...] = b
        return ref

    def _reward_table(self, table):
        n, k = self.contexts.shape[0], self.policy.n_actions
        if table is None:
            acts = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k)).copy()
            t = self.reward(self.contexts, acts, np.random.default_rng(0))
            what = "reward(X, all actions, rng)"
        elif callable(table):
            t = table(self.contexts)
            what = "reward_table(X)"
        else:
            t = table
            what = "reward_table"
        t = np.asarray(t, dtype=np.float64)
        if t.shape != (n, k):
            raise ValueError(f"{what} must have shape (n_contexts, n_actions) = {(n, k)}, got "
                             f"{t.shape}")
        if not np.isfinite(t).all():
            raise ValueError(f"{what} must be finite")
        return t

    # -- exact metrics ----------------------------------------------------------------------
    def _trained_params(self):
        return self.policy.params

    def metrics(self):
        """Exact metrics of the current policy over the contexts.

        Returns
        -------
        dict
            ``kl``: mean over contexts of ``KL(pi(.|x) || pi_ref(.|x))`` (softmax: the sum over
            the actions; Gaussian with fixed ``sigma``: ``sum_j (mu_j - mu_ref_j)^2 / (2
            sigma_j^2)``); for a softmax policy also ``expected_reward``,
            ``mean_x sum_a pi(a|x) r(x, a)`` with the reward table. Computed with numpy only
            (the same bits on both backends; the formulas are in :mod:`rsft._tilt`).
        """
        X = self.contexts
        if self.discrete:
            lp = _tilt.log_softmax(self.policy.decision_function(X))
            lq = _tilt.log_softmax(self.reference.decision_function(X))
            # a KL of identical policies can round to -1e-17; it is 0
            return {"kl": max(_tilt.softmax_kl(lp, lq), 0.0),
                    "expected_reward": _tilt.expected_reward(np.exp(lp), self._table)}
        return {"kl": _tilt.gaussian_kl(self.policy.mean(X), self.reference.mean(X),
                                        self.policy.sigma)}

    def tilted_target(self, beta):
        """The exact statistical-RS target ``pi* ∝ pi_ref exp(r / beta)`` (softmax only).

        The optimum of ``E_pi[r] - beta KL(pi || pi_ref)`` per context, in closed form over
        the finite action set, with the max-subtracted log-sum-exp.

        Parameters
        ----------
        beta : float
            Temperature, ``> 0``.

        Returns
        -------
        dict
            ``probs`` (n_contexts, n_actions), ``expected_reward`` and ``kl``
            (``KL(pi* || pi_ref)`` averaged over the contexts).
        """
        if not self.discrete:
            raise TypeError("tilted_target needs a discrete (softmax) policy")
        beta = _validate.real(beta, "beta", lo=0.0, lo_open=True, scalar_arrays=True)
        lq = _tilt.log_softmax(self.reference.decision_function(self.contexts))
        lp = _tilt.tilted_log_probs(lq, self._table, beta)
        p = np.exp(lp)
        return {"probs": p, "expected_reward": _tilt.expected_reward(p, self._table),
                "kl": _tilt.softmax_kl(lp, lq)}

    # -- one round --------------------------------------------------------------------------
    def _round(self, gen, t):
        X = self.contexts
        n, m = X.shape[0], self.n_candidates
        proposer = self.policy if self.proposal == "current" else self.reference
        actions = proposer.sample(X, m, gen, **_backend_kwarg(proposer.sample, self.backend))
        r = np.asarray(self.reward(X, actions, gen))
        if r.shape != (n, m):
            raise ValueError(f"reward must return shape (n_contexts, n_candidates) = {(n, m)}, "
                             f"got {r.shape}")
        res = self._accept(r, gen, t)
        mask = res.mask
        n_acc = int(np.count_nonzero(mask))
        r = np.asarray(r, dtype=np.float64)
        loss = 0.0
        if n_acc:
            rows = np.nonzero(mask)[0]
            Xa = X[rows]
            ya = actions[mask]
            if self.refit == "base":
                for p, b in zip(self.policy.params, self.base_params):
                    p[...] = b
                self.optimizer.load_state_dict(self._opt_initial)
            if self.epochs:
                h = _fit_model(self.policy, Xa, ya, self.loss, self.optimizer, self.epochs,
                               batch_size=self.batch_size, rng=gen)
                loss = float(np.mean(h))
        record = {"round": t, "proposals": n * m, "accepted": n_acc,
                  "acceptance_rate": n_acc / (n * m), "skipped": n_acc == 0, "loss": loss,
                  "reward": float(np.mean(r)),
                  "accepted_reward": float(np.mean(r[mask])) if n_acc else 0.0}
        record.update(self.metrics())
        return record

    def _accept(self, r, gen, t):
        """The acceptor's decision; the trainer's backend only stands in for none of its own."""
        if getattr(self.acceptor, "backend", None) is not None:
            return self.acceptor.accept(r, gen, round=t)
        return self.acceptor.accept(r, gen, round=t,
                                    **_backend_kwarg(self.acceptor.accept, self.backend))

    def __repr__(self):
        return (f"RSFTTrainer(policy={self.policy!r}, acceptor={self.acceptor!r}, "
                f"proposal={self.proposal!r}, refit={self.refit!r}, "
                f"n_candidates={self.n_candidates})")
