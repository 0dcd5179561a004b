"""The numpy backend: pure-numpy kernels, the executable specification of ``rsft._core``.

One module per kernel file of the compiled core, with the matching name: ``sampler``
(``_kernels/sampler.pxi``), ``hat`` (the piecewise-exponential hat), ``optim``, ``losses``
and ``acceptors``. This package exposes every
kernel under the same name and signature as ``rsft._core`` (checked by
``tests/test_kernel_mirror.py``); when the two disagree, this one is right until proven
otherwise.
"""

from .._program import constants as _constants
from .sampler import (accept_test, chunk_length, draw_proposals, log_ratio, rejection_sample,
                      rejection_sample_blocks)
from .optim import adagrad_step, adam_step, lion_step, rmsprop_step, sgd_step
from .losses import (bce_with_logits_loss, categorical_inverse_cdf, exp_nonpositive_values,
                     log1p_unit_values, log_softmax, mse_loss, sigmoid, softmax,
                     softmax_xent_labels, softmax_xent_probs)
from .acceptors import (group_order, mark_duplicates, quantile_accept, rso_accept,
                        statistical_rs_accept, threshold_accept, topk_accept)
from .hat import hat_check_concave, hat_finish, hat_sample, hat_table
from . import acceptors, hat, losses, optim, sampler

#: every constant of rsft._program by its C name (the compiled core exports the same dict)
PROGRAM_CONSTANTS = _constants()

#: the kernel names both backends export (each submodule's ``__all__``)
KERNELS = tuple(sampler.__all__ + optim.__all__ + losses.__all__ + acceptors.__all__
                + hat.__all__)
