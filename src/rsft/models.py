"""Small models with closed-form gradients, and :func:`fit` (plain or mini-batch descent).

Every model is linear in the features: ``out = X @ W + b``. It has

* ``params``: the list of arrays an optimizer updates in place (C-contiguous, ``dtype``
  float64 by default or float32; initialised to zero). The model never rebinds them, so
  ``optimizer = SomeOptimizer(model.params)`` keeps working;
* ``predict(X)``: the model's prediction;
* ``loss_and_grad(X, y, loss, weights=None) -> (value, [grad per param])``: the loss applied to
  the linear output (the *logits* of the classifiers, the *mean* of the Gaussian policy) and its
  exact gradient, ``dL/dW = X.T @ G`` and ``dL/db = G.sum(axis=0)`` with ``G`` the loss gradient
  from the loss kernel. ``loss`` must reduce to a scalar (``reduction="mean"`` or ``"sum"``).

``X`` is cast to the model's dtype (a copy when it differs). ``backend`` (``"cython"`` or
``"numpy"``) picks the kernels of ``probs``/``log_prob``/``sample``/``predict``; the loss passed to
``loss_and_grad`` uses its own backend.
"""

import math

import numpy as np

from . import _backend, _validate

__all__ = ["LinearRegression", "LogisticRegression", "SoftmaxPolicy", "GaussianPolicy", "fit"]

_LOG_2PI = math.log(2.0 * math.pi)


def _as_actions(actions, n, k):
    a = np.asarray(actions)
    if a.dtype.kind not in "iu":
        raise TypeError(f"actions must be integers, got dtype {a.dtype}")
    if a.ndim not in (1, 2) or a.shape[0] != n:
        raise ValueError(f"actions must have shape ({n},) or ({n}, m), got {a.shape}")
    if a.size and (int(a.min()) < 0 or int(a.max()) >= k):
        raise ValueError(f"actions must be in [0, {k}), got values in [{int(a.min())}, "
                         f"{int(a.max())}]")
    return a.astype(np.int64, copy=False)


class _Linear:
    """``out = X @ W + b`` with ``W`` of shape (d,) or (d, m) and ``b`` of shape (1,) or (m,)."""

    def __init__(self, n_features, n_outputs, fit_intercept, dtype, backend):
        self.n_features = _validate.count(n_features, "n_features", minimum=1)
        self.dtype = _validate.float_dtype(dtype)
        self.backend = _validate.backend(backend)
        self.fit_intercept = bool(fit_intercept)
        self._vector = n_outputs is None
        wshape = (self.n_features,) if self._vector else (self.n_features, n_outputs)
        bshape = (1,) if self._vector else (n_outputs,)
        self.params = [_validate.new_array(wshape, self.dtype, f"parameters of shape {wshape}",
                                           fill=0)]
        if self.fit_intercept:
            self.params.append(np.zeros(bshape, self.dtype))

    @property
    def coef(self):
        """The weight array ``W`` (``params[0]``)."""
        return self.params[0]

    @property
    def intercept(self):
        """The bias array ``b`` (``params[1]``), or None without intercept."""
        return self.params[1] if self.fit_intercept else None

    def _check_X(self, X):
        arr = _validate.real_array(X, "X")
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}), got {arr.shape}")
        return _validate.cast_floats(arr, self.dtype, "X", f"the model's dtype is {self.dtype}; "
                                     "scale the features, or build it with dtype=float64")

    def _out(self, X):
        out = X @ self.params[0]
        if self.fit_intercept:
            out = out + (self.params[1][0] if self._vector else self.params[1])
        return out

    def decision_function(self, X):
        """The linear output ``X @ W + b`` (logits of the classifiers)."""
        return self._out(self._check_X(X))

    def loss_and_grad(self, X, y, loss, weights=None):
        """``(loss value, [dL/dW, dL/db])`` of ``loss`` on the linear output."""
        X = self._check_X(X)
        if not callable(getattr(loss, "value_and_grad", None)):
            raise TypeError(f"loss must be an rsft loss (with value_and_grad), got "
                            f"{type(loss).__name__}")
        if getattr(loss, "reduction", "mean") == "none":
            raise ValueError("loss_and_grad needs a scalar loss: use reduction='mean' or 'sum'")
        out = self._out(X)
        try:
            value, G = loss.value_and_grad(out, y, weights)
        except ValueError:
            if not np.isfinite(X).all():
                raise ValueError("X contains NaN or infinity") from None
            if not all(np.isfinite(p).all() for p in self.params):
                raise ValueError("model parameters contain NaN or infinity (diverged? "
                                 "lower the learning rate)") from None
            raise
        G = G.astype(self.dtype, copy=False)
        grads = [X.T @ G]
        if self.fit_intercept:
            grads.append(np.atleast_1d(G.sum(axis=0)).astype(self.dtype, copy=False))
        return value, grads

    def __repr__(self):
        return f"{type(self).__name__}(n_features={self.n_features}, dtype={self.dtype.name})"


class LinearRegression(_Linear):
    """``y = X @ w + b``: params ``[w (d,), b (1,)]`` (``[w]`` with ``fit_intercept=False``).

    Use with :class:`rsft.losses.MSE` for least squares (``predict`` returns ``X @ w + b``).
    """

    def __init__(self, n_features, fit_intercept=True, dtype=np.float64, backend=None):
        super().__init__(n_features, None, fit_intercept, dtype, backend)

    def predict(self, X):
        """``X @ w + b``, shape (n,)."""
        return self.decision_function(X)


class LogisticRegression(_Linear):
    """``P(y = 1 | x) = sigmoid(x @ w + b)``: params ``[w (d,), b (1,)]``.

    ``loss_and_grad`` applies the loss to the logits ``x @ w + b``: use
    :class:`rsft.losses.BCEWithLogits` for the (weighted) log-loss.
    """

    def __init__(self, n_features, dtype=np.float64, backend=None):
        super().__init__(n_features, None, True, dtype, backend)

    def predict_proba(self, X):
        """``P(y = 1 | x)`` per row, shape (n,) (stable sigmoid of the logits)."""
        z = np.ascontiguousarray(self.decision_function(X))
        out = np.empty_like(z)
        _backend.kernels(self.backend).sigmoid(z, out)
        return out

    def predict(self, X):
        """``P(y = 1 | x)`` per row (the same as :meth:`predict_proba`)."""
        return self.predict_proba(X)


class SoftmaxPolicy(_Linear):
    """``pi(a | x) = softmax(x @ W + b)_a`` over ``n_actions``: params ``[W (d, k), b (k,)]``.

    ``loss_and_grad`` applies the loss to the logits: use
    :class:`rsft.losses.SoftmaxCrossEntropy` with the chosen actions as labels (optionally
    weighted) for the policy's negative log-likelihood.
    """

    def __init__(self, n_features, n_actions, dtype=np.float64, backend=None):
        self.n_actions = _validate.count(n_actions, "n_actions", minimum=1)
        super().__init__(n_features, self.n_actions, True, dtype, backend)

    def probs(self, X):
        """Action probabilities, shape (n, n_actions)."""
        z = np.ascontiguousarray(self.decision_function(X))
        out = np.empty_like(z)
        _backend.kernels(self.backend).softmax(z, out)
        return out

    predict = probs

    def log_prob(self, X, actions):
        """``log pi(a | x)`` for actions of shape (n,) or (n, m); same shape as ``actions``."""
        z = np.ascontiguousarray(self.decision_function(X))
        a = _as_actions(actions, z.shape[0], self.n_actions)
        ls = np.empty_like(z)
        _backend.kernels(self.backend).log_softmax(z, ls)
        if a.ndim == 1:
            return ls[np.arange(z.shape[0]), a]
        return np.take_along_axis(ls, a, axis=1)

    def sample(self, X, n_per_row=1, rng=None, *, backend=None):
        """``n_per_row`` actions per row of ``X`` by inverse CDF: int64 array (n, n_per_row).

        Random stream: one ``rng.random((n, n_per_row))`` call (row-major). The probabilities are
        computed by the numpy reference softmax on both backends and the search is exact, so
        the draws are bit-identical across backends; the kernel of ``backend`` (default: the
        policy's own) does the search.
        """
        m = _validate.count(n_per_row, "n_per_row")
        gen = _validate.generator(rng)
        kern = _backend.kernels(backend, self.backend)
        z = np.ascontiguousarray(self.decision_function(X))
        if not np.all(np.isfinite(z)):
            raise ValueError("SoftmaxPolicy.sample: the logits X @ W + b are not all finite "
                             "(non-finite X or parameters); cannot sample actions")
        p = np.empty_like(z)
        _backend.kernels("numpy").softmax(z, p)   # numpy's exp on both: bit-identical draws
        out = _validate.new_array((z.shape[0], m), np.int64, f"n_per_row = {m} actions per row")
        u = gen.random((z.shape[0], m))
        kern.categorical_inverse_cdf(p, u, out)
        return out


class GaussianPolicy(_Linear):
    """``a | x ~ Normal(x @ W + b, sigma^2 I)`` with fixed ``sigma``: params ``[W (d, m), b (m,)]``.

    ``sigma`` is a positive float or an array of shape ``(n_outputs,)``. ``loss_and_grad``
    applies the loss to the mean: with :class:`rsft.losses.MSE` and ``reduction="sum"``, the
    value divided by ``2 sigma^2`` (scalar sigma) is the negative log-likelihood up to a constant.
    """

    def __init__(self, n_features, n_outputs, sigma, dtype=np.float64, backend=None):
        self.n_outputs = _validate.count(n_outputs, "n_outputs", minimum=1)
        super().__init__(n_features, self.n_outputs, True, dtype, backend)
        s = np.asarray(sigma, dtype=np.float64)
        if s.ndim not in (0, 1) or (s.ndim == 1 and s.shape != (self.n_outputs,)):
            raise ValueError(f"sigma must be a float or have shape ({self.n_outputs},), got "
                             f"shape {s.shape}")
        if not (np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError(f"sigma must be positive and finite, got {sigma!r}")
        self.sigma = np.broadcast_to(s, (self.n_outputs,)).astype(self.dtype)

    def mean(self, X):
        """The mean action ``X @ W + b``, shape (n, n_outputs)."""
        return self.decision_function(X)

    predict = mean

    def sample(self, X, n_per_row=1, rng=None, *, backend=None):
        """Actions, shape (n, n_per_row, n_outputs): ``mean + sigma * rng.standard_normal``.

        Random stream: one ``rng.standard_normal((n, n_per_row, n_outputs))`` call. No kernel
        is involved; ``backend`` is checked and otherwise unused (the same signature as
        :meth:`SoftmaxPolicy.sample`).
        """
        _validate.backend(backend)
        m = _validate.count(n_per_row, "n_per_row")
        gen = _validate.generator(rng)
        mu = self.mean(X)
        eps = _validate.new_array((mu.shape[0], m, self.n_outputs), np.float64,
                                  f"n_per_row = {m} actions per row")
        gen.standard_normal(out=eps)        # the same draws as standard_normal(shape)
        eps = eps.astype(self.dtype, copy=False)
        return mu[:, None, :] + self.sigma * eps

    def log_prob(self, X, actions):
        """Log-density of actions of shape (n, n_outputs) -> (n,) or (n, m, n_outputs) -> (n, m)."""
        mu = self.mean(X)
        a = _validate.real_array(actions, "actions").astype(self.dtype, copy=False)
        if a.shape == mu.shape:
            r = (a - mu) / self.sigma
        elif a.ndim == 3 and a.shape[0] == mu.shape[0] and a.shape[2] == self.n_outputs:
            r = (a - mu[:, None, :]) / self.sigma
        else:
            raise ValueError(f"actions must have shape {mu.shape} or ({mu.shape[0]}, m, "
                             f"{self.n_outputs}), got {a.shape}")
        const = np.sum(np.log(self.sigma.astype(np.float64))) + 0.5 * self.n_outputs * _LOG_2PI
        return (-0.5 * np.sum(r * r, axis=-1) - const).astype(self.dtype, copy=False)


def fit(model, X, y, loss, optimizer, epochs, batch_size=None, rng=None, weights=None):
    """Gradient descent: ``epochs`` passes of ``optimizer.step(model.loss_and_grad(...)[1])``.

    Parameters
    ----------
    model : a model of :mod:`rsft.models` (anything with ``loss_and_grad``)
    X, y : the training data (``len(X) == len(y)``); ``weights`` optional per-sample weights
    loss : an rsft loss with ``reduction="mean"`` or ``"sum"``
    optimizer : anything with ``step(grads)`` that updates ``model.params`` in place
        (e.g. ``rsft.optim.SGD(model.params, lr=0.1)``)
    epochs : int >= 0
    batch_size : None (full batch: one step per epoch) or a positive int: each epoch visits the
        samples in the order of ``rng.permutation(n)``, in batches of ``batch_size`` (the last
        one may be smaller), one step per batch
    rng : seed or Generator for the permutations (see :func:`rsft._validate.generator`); it
        draws exactly one ``permutation(n)`` per epoch and is unused for full batches

    Returns
    -------
    history : float64 ndarray of shape (epochs,)
        Per epoch, the loss values returned by ``loss_and_grad`` before each step, combined:
        for ``reduction="sum"`` their sum, for ``"mean"`` their batch-size-weighted mean (for a
        full batch: the loss at the parameters the epoch started from).
    """
    epochs = _validate.count(epochs, "epochs")
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must have a step(grads) method, got "
                        f"{type(optimizer).__name__}")
    if not callable(getattr(model, "loss_and_grad", None)):
        raise TypeError(f"model must have a loss_and_grad method, got {type(model).__name__}")
    if getattr(model, "params", None) is not None:
        _validate.optimizer_owns(optimizer, model.params)
    reduction = getattr(loss, "reduction", "mean")
    if reduction == "none":
        raise ValueError("fit needs a scalar loss: use reduction='mean' or 'sum'")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 1 or y.ndim < 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of rows, got shapes {X.shape} and "
                         f"{y.shape}")
    n = X.shape[0]
    if n == 0:
        raise ValueError("fit needs at least one sample")
    if weights is not None:
        weights = np.asarray(weights)
        if weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {weights.shape}")
    batch_size = _validate.batch_size(batch_size)
    history = _validate.new_array(epochs, np.float64, f"the loss history of epochs = {epochs}")
    if batch_size is None:
        for e in range(epochs):
            value, grads = model.loss_and_grad(X, y, loss, weights)
            optimizer.step(grads)
            history[e] = value
        return history
    gen = _validate.generator(rng)
    for e in range(epochs):
        order = gen.permutation(n)
        acc = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            value, grads = model.loss_and_grad(
                X[idx], y[idx], loss, None if weights is None else weights[idx])
            optimizer.step(grads)
            acc += value if reduction == "sum" else value * idx.shape[0]
        history[e] = acc if reduction == "sum" else acc / n
    return history
