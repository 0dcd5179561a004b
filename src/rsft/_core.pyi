from typing import Callable, Optional

import numpy as np
import numpy.typing as npt

# Build information and the compiled values of rsft._program's constants.
CFLAGS: str
CYTHON_VERSION: str
INLINE_ZIGGURAT: bool
BUILD_DEBUG_CHECKS: bool
PCG64_INLINE: bool
PROGRAM_CONSTANTS: dict[str, int]

# Sampler kernels (_kernels/sampler.pxi).
def draw_proposals(rng: np.random.Generator, code: int, params: npt.NDArray[np.float64],
                   out: npt.NDArray[np.float64]) -> None: ...
def log_ratio(prog: npt.NDArray[np.float64], x: npt.NDArray[np.float64],
              out: npt.NDArray[np.float64]) -> None: ...
def accept_test(g: npt.NDArray[np.float64],
                u: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]: ...
def chunk_length(remaining: int, n_examined: int, n_accepted: int, prior_rate: float,
                 n_dry: int, budget_left: int) -> int: ...
def rejection_sample(
    rng: np.random.Generator, code: int, params: npt.NDArray[np.float64],
    prog: npt.NDArray[np.float64],
    logp: Optional[Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]],
    n: int, prior_rate: float, max_proposals: int, stop_on_violation: bool,
    violation_tol: float, out: npt.NDArray[np.float64],
) -> tuple[int, int, float, float, int]: ...
def rejection_sample_blocks(
    children: list[np.random.Generator], code: int, params: npt.NDArray[np.float64],
    prog: npt.NDArray[np.float64],
    logp: Optional[Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]],
    block_stops: npt.NDArray[np.intp], prior_rate: float, budgets: npt.NDArray[np.intp],
    stop_on_violation: bool, violation_tol: float, out: npt.NDArray[np.float64],
    n_threads: int,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64],
           npt.NDArray[np.float64], npt.NDArray[np.intp]]: ...

# The piecewise-exponential hat (_kernels/hat.pxi): LogConcaveSampler's construction
# arithmetic and sampling strategy.
_D = npt.NDArray[np.float64]

def hat_check_concave(xs: _D, ys: _D, slopes: _D, concavity_tol: float) -> int: ...
def hat_table(
    xs: _D, ys: _D, slopes: _D, lo: float, hi: float, flat_drop: float,
) -> tuple[_D, _D, _D, npt.NDArray[np.int64], _D, float, float, float]: ...
def hat_finish(table: _D, area: _D) -> tuple[_D, npt.NDArray[np.int64]]: ...
def hat_sample(
    rng: np.random.Generator, pieces: npt.NDArray[np.float64], guide: npt.NDArray[np.int64],
    logp: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
    n: int, prior_rate: float, max_proposals: int, stop_on_violation: bool,
    violation_tol: float, out: npt.NDArray[np.float64],
) -> tuple[int, int, int, float, float, float, int, int]: ...

# Loss kernels (_kernels/losses.pxi); float32 or float64 arrays of one dtype per call.
_F = npt.NDArray[np.floating]

def mse_loss(pred: _F, target: _F, weights: _F, grad_scale: float, loss_out: _F,
             grad_out: _F, n_threads: int) -> float: ...
def bce_with_logits_loss(pred: _F, target: _F, weights: _F, grad_scale: float, loss_out: _F,
                         grad_out: _F, n_threads: int) -> float: ...
def softmax_xent_labels(logits: _F, labels: npt.NDArray[np.int64], weights: _F,
                        grad_scale: float, loss_out: _F, grad_out: _F, n_threads: int) -> float: ...
def softmax_xent_probs(logits: _F, targets: _F, weights: _F, grad_scale: float, loss_out: _F,
                       grad_out: _F, n_threads: int) -> float: ...
def sigmoid(z: _F, out: _F) -> None: ...
def softmax(logits: _F, out: _F) -> None: ...
def log_softmax(logits: _F, out: _F) -> None: ...
def exp_nonpositive_values(x: _F, out: _F) -> None: ...
def log1p_unit_values(e: _F, out: _F) -> None: ...
def categorical_inverse_cdf(probs: _F, u: npt.NDArray[np.float64],
                            out: npt.NDArray[np.int64]) -> None: ...

# Reward-acceptor kernels (_kernels/acceptors.pxi): candidates in group order, group g being
# r[starts[g]:starts[g + 1]]; per-group outputs; each acceptor returns its bad-input count.
_I = npt.NDArray[np.int64]
_B = npt.NDArray[np.bool_]
def group_order(labels: _I) -> tuple[_I | None, _I, _I]: ...
def mark_duplicates(r: npt.NDArray[np.float64], keys: _I, starts: _I,
                    n_duplicates: _I) -> None: ...
def threshold_accept(rng: np.random.Generator, r: npt.NDArray[np.float64], starts: _I,
                     tau: float, strict: bool, min_per_group: int, out: _B, n_valid: _I,
                     n_accepted: _I, is_short: _B, is_topped_up: _B) -> int: ...
def quantile_accept(rng: np.random.Generator, r: npt.NDArray[np.float64], starts: _I,
                    q: float, min_per_group: int, out: _B, n_valid: _I, n_accepted: _I,
                    is_short: _B, is_topped_up: _B) -> int: ...
def topk_accept(rng: np.random.Generator, r: npt.NDArray[np.float64], starts: _I, k: _I,
                min_per_group: int, out: _B, n_valid: _I, n_accepted: _I, is_short: _B,
                is_topped_up: _B) -> int: ...
def statistical_rs_accept(rng: np.random.Generator, r: npt.NDArray[np.float64], starts: _I,
                          r_max: npt.NDArray[np.float64], use_group_max: bool, beta: float,
                          min_per_group: int, out: _B, n_valid: _I, n_accepted: _I,
                          is_short: _B, is_topped_up: _B) -> int: ...
def rso_accept(rng: np.random.Generator, r: npt.NDArray[np.float64], starts: _I, beta: float,
               k: int, min_per_group: int, out: _B, n_valid: _I, n_accepted: _I,
               is_short: _B, is_topped_up: _B) -> int: ...

# Optimizer kernels (_kernels/optim.pxi.tp): one in-place pass per (flattened) parameter array.
OPTIM_N_CLONED: int
OPTIM_ISA: str

def sgd_step(param: _F, grad: _F, momentum_buffer: _F, lr: float, momentum: float,
             one_minus_dampening: float, weight_decay: float, nesterov: bool, maximize: bool,
             first: bool, n_threads: int) -> None: ...
def adam_step(param: _F, grad: _F, exp_avg: _F, exp_avg_sq: _F, max_exp_avg_sq: _F,
              beta1: float, one_minus_beta1: float, beta2: float, one_minus_beta2: float,
              step_size: float, bias_correction2_sqrt: float, eps: float, weight_decay: float,
              decay: float, amsgrad: bool, maximize: bool, n_threads: int) -> None: ...
def rmsprop_step(param: _F, grad: _F, square_avg: _F, grad_avg: _F, momentum_buffer: _F,
                 lr: float, alpha: float, one_minus_alpha: float, eps: float,
                 weight_decay: float, momentum: float, centered: bool, maximize: bool,
                 n_threads: int) -> None: ...
def adagrad_step(param: _F, grad: _F, state_sum: _F, clr: float, eps: float,
                 weight_decay: float, maximize: bool, n_threads: int) -> None: ...
def lion_step(param: _F, grad: _F, exp_avg: _F, lr: float, beta1: float,
              one_minus_beta1: float, beta2: float, one_minus_beta2: float, decay: float,
              maximize: bool, n_threads: int) -> None: ...
