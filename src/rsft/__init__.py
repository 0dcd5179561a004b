"""rsft: rejection-sampling fine-tuning with a compiled core and a bit-identical numpy reference.

Quick tour::

    import rsft
    s = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2))   # exact log M
    x = s.sample(10_000, rng=0)                                        # same on both backends

Then losses (:mod:`rsft.losses`), optimizers (:mod:`rsft.optim`), models (:mod:`rsft.models`),
reward acceptors (:mod:`rsft.acceptors`) and the RSFT loop (:mod:`rsft.finetune`).
"""

from ._backend import available_backends, get_backend, set_backend
from .distributions import (Beta, Distribution, Exponential, Gamma, Laplace, Mixture, Normal,
                            StudentT, TruncatedNormal, Uniform)
from .errors import (EnvelopeViolationError, EnvelopeViolationWarning, LargeLogMWarning,
                     NoEnvelopeError, NotLogConcaveError, ProposalBudgetExceeded)
from .sampling import RejectionSampler, SamplingStats, find_log_M
from .logconcave import LogConcaveSampler, LogConcaveStats
from . import acceptors, finetune, losses, models, optim, schedules
from .optim import SGD, Adagrad, Adam, AdamW, Lion, RMSprop
from .schedules import (ConstantLR, CosineLR, InverseTimeLR, LinearWarmup, StepLR,
                        WarmupCosine)
from .acceptors import (AcceptResult, ApproximateTiltWarning, Quantile, RSO, StatisticalRS,
                        Threshold, TopK)
from .finetune import DensityTrainer, History, RSFTTrainer
from .losses import BCEWithLogits, MSE, SoftmaxCrossEntropy
from .models import (GaussianPolicy, LinearRegression, LogisticRegression, SoftmaxPolicy,
                     fit)

__version__ = "0.1.0"

__all__ = [
    "Beta", "Distribution", "Exponential", "Gamma", "Laplace", "Mixture", "Normal", "StudentT",
    "TruncatedNormal", "Uniform", "RejectionSampler", "SamplingStats", "LogConcaveSampler",
    "LogConcaveStats", "find_log_M", "EnvelopeViolationError", "EnvelopeViolationWarning",
    "NoEnvelopeError", "NotLogConcaveError", "LargeLogMWarning",
    "ProposalBudgetExceeded", "available_backends", "get_backend", "set_backend",
    "acceptors", "AcceptResult", "ApproximateTiltWarning", "Quantile", "RSO", "StatisticalRS",
    "Threshold", "TopK",
    "optim", "schedules", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Lion", "ConstantLR",
    "CosineLR", "InverseTimeLR", "StepLR", "LinearWarmup", "WarmupCosine", "losses", "models",
    "MSE", "BCEWithLogits", "SoftmaxCrossEntropy", "LinearRegression", "LogisticRegression",
    "SoftmaxPolicy", "GaussianPolicy", "fit", "finetune", "RSFTTrainer", "DensityTrainer",
    "History", "__version__",
]
