"""The log-ratio program: its row layout, term kinds, codes and constants, declared once.

A built-in (target, proposal) pair is compiled by :mod:`rsft._envelope` into a *program*: a
C-contiguous float64 array of shape ``(K, ROW_LEN)``, one row per target component (K = 1 except
for mixtures). Row ``k`` evaluates, with ``y = x - center``::

    g_k(x) = const + y*(lin_coef + y*quad_coef)
             + abs1_coef*|x - abs1_at| + abs2_coef*|x - abs2_at|
             + tlog1_coef*log1p(tlog1_k*(x - tlog1_at)**2) + (the same for tlog2)
             + log_x_coef*log(x) + log1m_x_coef*log1p(-x)      (zero coefficients are skipped)
    g_k(x) = -inf outside [support_low, support_high]

and ``g = g_0`` (K = 1) or ``g = m + log(sum_k exp(g_k - m))`` with ``m = max_k g_k``. ``g`` is
``log p(x) - log q(x) - log M``; ``log M`` and the mixture weights are folded into ``const``. For a
callable target the program holds only ``-log q(x) - log M`` and ``g = logp(x) + g_0(x)``.

Product mode (``product_mode = 1``, one row whose only terms are ``const`` and the two Beta logs,
with integer coefficients ``0 <= c <= MAX_POW``, e.g. Beta(2, 5) from a Uniform proposal): the
ratio itself, ``exp_const * x**log_x_coef * (1 - x)**log1m_x_coef`` with the powers by binary
exponentiation, is compared with ``1 - u``: no transcendental function per proposal. The mode
is decided once, when the row is built (:func:`set_product_mode`); both backends read the flag,
as the compiled core reads ``quadratic_only`` (set by :func:`pack`) to pick its quadratic scan.

Why a Python table: the numpy reference imports this module directly, and the compiled core
reads the same values through ``program.pxi``, which ``tools/generate.py`` (run by ``setup.py``)
writes from this module at build time (:func:`pxi_source`); ``tests/test_kernel_mirror.py`` checks the built module's
constants against these. (A ``.pxd`` read by the reference through the built module would make
the specification depend on the build.) This module imports nothing from rsft.

Each term kind also says here what it contributes to ``g'`` and to the tails, so that adding a
term kind touches this module and the two row evaluations (``_kernels/sampler.pxi``,
``_reference/sampler.py``), and :mod:`rsft._envelope` stays generic.
"""

import math
from dataclasses import dataclass, field

import numpy as np


class Row:
    """Columns of a program row (see the module docstring for the formula). Plain ints, not an
    enum: rows are indexed in the set-up of every sampler."""

    CENTER = 0          # expansion point of the polynomial part: y = x - CENTER
    CONST = 1           # constant term (log M and log w_k folded in)
    LIN_COEF = 2        # coefficient of y
    QUAD_COEF = 3       # coefficient of y**2
    ABS1_COEF = 4       # ABS1_COEF * |x - ABS1_AT|  (Laplace terms)
    ABS1_AT = 5
    ABS2_COEF = 6
    ABS2_AT = 7
    TLOG1_COEF = 8      # TLOG1_COEF * log1p(TLOG1_K * (x - TLOG1_AT)**2)  (Student t terms)
    TLOG1_AT = 9
    TLOG1_K = 10
    TLOG2_COEF = 11
    TLOG2_AT = 12
    TLOG2_K = 13
    LOG_X_COEF = 14     # LOG_X_COEF * log(x)        (Beta: a - 1)
    LOG1M_X_COEF = 15   # LOG1M_X_COEF * log1p(-x)   (Beta: b - 1)
    SUPPORT_LOW = 16    # g = -inf outside [SUPPORT_LOW, SUPPORT_HIGH]
    SUPPORT_HIGH = 17
    QUADRATIC_ONLY = 18  # 1.0: no term beyond the polynomial (set by pack)
    PRODUCT_MODE = 19   # 1.0: compare the ratio itself (see the module docstring)
    EXP_CONST = 20      # exp(CONST), product mode only


def _members(namespace):
    """The ``NAME = int`` members of a constants class, in declaration order."""
    return {k: v for k, v in vars(namespace).items() if k.isupper()}


ROW_LEN = len(_members(Row))
#: the |x - m| and Student-t log terms come in this many slots per row
ABS_SLOTS = ((Row.ABS1_COEF, Row.ABS1_AT), (Row.ABS2_COEF, Row.ABS2_AT))
TLOG_SLOTS = ((Row.TLOG1_COEF, Row.TLOG1_AT, Row.TLOG1_K),
              (Row.TLOG2_COEF, Row.TLOG2_AT, Row.TLOG2_K))
class Proposal:
    """Proposal families the kernels draw from; ``params`` is a float64 array ``(p0, p1, p2, p3)``.

    Each family's draw of ``c`` proposals is one Generator call (the stream contract)."""

    NORMAL = 0          # p0 + p1 * standard_normal(c)          (loc, scale)
    UNIFORM = 1         # p0 + p1 * random(c)                   (low, high - low)
    EXPONENTIAL = 2     # p0 * standard_exponential(c)          (scale)
    LAPLACE = 3         # p0 + p1 * laplace(0, 1, c)            (loc, scale)
    STUDENT_T = 4       # p1 + p2 * standard_t(p0, c)           (df, loc, scale)
    GAMMA = 5           # p1 * standard_gamma(p0, c)            (shape, scale)


class Piece:
    """Columns of one piece of a piecewise-exponential hat (``LogConcaveSampler``; built by
    :mod:`rsft._hat`, sampled by ``hat_sample``). On its piece, ``log hat(x) = HAT_AT +
    HAT_SLOPE*(x - ANCHOR)``; the anchor is the end where the hat is highest, so the piece
    extends ``LENGTH`` (``inf`` for an unbounded tail) from it in ``DIRECTION`` (+1 or -1) and
    the hat decays by a factor e every ``DECAY = 1/|HAT_SLOPE|`` (0 marks a flat piece, where
    the hat is constant).
    The squeeze is ``log hat(x) + GAP_AT + GAP_SLOPE*(x - ANCHOR)`` (``GAP_AT = -inf``: no
    squeeze). ``CUM_BEFORE`` and ``CUM`` are the hat's cumulative probability before and
    after the piece (``CUM`` of the last piece is 1.0 exactly); ``SHARE_SCALE`` is
    ``LENGTH / (CUM - CUM_BEFORE)`` on a flat piece (it turns the piece's share of a uniform
    into a position) and 0 on a sloped one."""

    ANCHOR = 0
    DIRECTION = 1
    LENGTH = 2
    DECAY = 3
    HAT_AT = 4
    HAT_SLOPE = 5
    GAP_AT = 6
    GAP_SLOPE = 7
    CUM_BEFORE = 8
    CUM = 9
    SHARE_SCALE = 10


PIECE_LEN = len(_members(Piece))


class Status:
    """How a rejection-sampling call ended."""

    OK = 0              # n samples accepted
    VIOLATION = 1       # stopped at a proposal above the envelope
    BUDGET = 2          # max_proposals ran out


#: chunk lengths lie in [MIN_CHUNK, MAX_CHUNK] (and within the budget); see chunk_length
MAX_CHUNK = 65536
MIN_CHUNK = 64
#: largest integer Beta exponent evaluated in product mode
MAX_POW = 64


@dataclass
class Terms:
    """A log-density as the program's term kinds, before packing into a row::

        const + lin*x + sum a*(x - m)**2 + sum a*|x - m| + sum c*log1p(k*(x - m)**2)
        + log_x*log(x) + log1m_x*log1p(-x)   on [lo, hi]
    """

    const: float = 0.0
    lin: float = 0.0
    quad: list = field(default_factory=list)   # (a, m)
    abs: list = field(default_factory=list)    # (a, m)
    tlog: list = field(default_factory=list)   # (c, m, k)
    log_x: float = 0.0
    log1m_x: float = 0.0
    lo: float = -math.inf
    hi: float = math.inf
    center: float = 0.0                        # expansion point of the quadratic part

    def negated(self):
        return Terms(-self.const, -self.lin, [(-a, m) for a, m in self.quad],
                     [(-a, m) for a, m in self.abs], [(-c, m, k) for c, m, k in self.tlog],
                     -self.log_x, -self.log1m_x, self.lo, self.hi, self.center)

    def plus(self, other):
        """The terms of the sum of two log-densities, on ``self``'s support and center."""
        return Terms(self.const + other.const, self.lin + other.lin, self.quad + other.quad,
                     self.abs + other.abs, self.tlog + other.tlog,
                     self.log_x + other.log_x, self.log1m_x + other.log1m_x,
                     self.lo, self.hi, self.center)


def pack(terms):
    """One program row (a list of ROW_LEN Python floats) from :class:`Terms`."""
    if len(terms.abs) > len(ABS_SLOTS) or len(terms.tlog) > len(TLOG_SLOTS):
        raise ValueError("internal: at most two |x-m| and two Student-t terms per program")
    row = [0.0] * ROW_LEN
    v = terms.center
    c0, c1, c2 = terms.const + terms.lin * v, terms.lin, 0.0
    for a, m in terms.quad:     # a*(x - m)**2 = a*(y + d)**2 with d = v - m
        d = v - m
        c2 += a
        c1 += 2.0 * a * d
        c0 += a * d * d
    row[Row.CENTER], row[Row.CONST] = v, float(c0)
    row[Row.LIN_COEF], row[Row.QUAD_COEF] = float(c1), float(c2)
    for (coef, at), (a, m) in zip(ABS_SLOTS, terms.abs):
        row[coef], row[at] = a, m
    for (coef, at, kk), (c, m, k) in zip(TLOG_SLOTS, terms.tlog):
        row[coef], row[at], row[kk] = c, m, k
    row[Row.LOG_X_COEF], row[Row.LOG1M_X_COEF] = terms.log_x, terms.log1m_x
    row[Row.SUPPORT_LOW], row[Row.SUPPORT_HIGH] = terms.lo, terms.hi
    row[Row.QUADRATIC_ONLY] = float(not (terms.abs or terms.tlog or terms.log_x
                                         or terms.log1m_x))
    return row


def set_product_mode(row):
    """Switch a finished single row to product mode when it is ``const`` and integer Beta logs
    (the one place where product mode is decided)."""
    if row[Row.LIN_COEF] != 0.0 or row[Row.QUAD_COEF] != 0.0:
        return
    only_beta = all(row[c] == 0.0 for c in (Row.ABS1_COEF, Row.ABS2_COEF, Row.TLOG1_COEF,
                                             Row.TLOG2_COEF))
    ints = all(float(row[c]).is_integer() and 0.0 <= row[c] <= MAX_POW
               for c in (Row.LOG_X_COEF, Row.LOG1M_X_COEF))
    if only_beta and ints and row[Row.CONST] < 700.0:
        row[Row.PRODUCT_MODE] = 1.0
        row[Row.EXP_CONST] = math.exp(row[Row.CONST])


# ---------------------------------------------------------------------------------------------
# What each term kind contributes to the envelope analysis (rsft._envelope), in y = x - center
# ---------------------------------------------------------------------------------------------

def derivative_parts(row, abs_signs):
    """``g'(x)`` on an interval without kinks as ``sum_i num_i(y) / den_i(y)``: a list of
    ``(num, den)`` polynomial coefficient arrays (low to high) in ``y = x - center``, with
    ``abs_signs[j]`` the sign of ``x - at`` of |.| slot ``j`` on the interval."""
    v = row[Row.CENTER]
    lin = row[Row.LIN_COEF] + sum(row[coef] * s for (coef, _), s in zip(ABS_SLOTS, abs_signs))
    parts = [(np.array([lin, 2.0 * row[Row.QUAD_COEF]]), np.array([1.0]))]
    for coef, at, kk in TLOG_SLOTS:     # d/dx c*log1p(k*(x-m)^2) = 2kc(x-m) / (1 + k(x-m)^2)
        c, m, k = row[coef], row[at], row[kk]
        if c != 0.0:
            d0 = v - m
            parts.append((np.array([2.0 * k * c * d0, 2.0 * k * c]),
                          np.array([1.0 + k * d0 * d0, 2.0 * k * d0, k])))
    if row[Row.LOG_X_COEF] != 0.0:      # a / x
        parts.append((np.array([row[Row.LOG_X_COEF]]), np.array([v, 1.0])))
    if row[Row.LOG1M_X_COEF] != 0.0:    # -b / (1 - x)
        parts.append((np.array([-row[Row.LOG1M_X_COEF]]), np.array([1.0 - v, -1.0])))
    return parts


def kinks(row):
    """Points where ``g`` is not differentiable (the |x - at| terms), sorted."""
    return sorted({row[at] for coef, at in ABS_SLOTS if row[coef] != 0.0})


def tail(row, side):
    """``g`` as ``x -> side*inf``: ``("inf", growth)`` when it diverges to +inf, ``("value",
    limit)`` when it tends to a finite limit, None when it tends to -inf."""
    c2 = row[Row.QUAD_COEF]
    if c2 != 0.0:
        return ("inf", f"{c2:.6g}*x^2") if c2 > 0 else None
    lin = row[Row.LIN_COEF] + sum(row[coef] * side for coef, _ in ABS_SLOTS)
    if lin != 0.0:
        return ("inf", f"{lin:.6g}*x") if lin * side > 0 else None
    # Student-t terms grow like 2c*log|x|, a Gamma's log term like a*log(x) (only towards +inf:
    # log(x) is defined on x >= 0)
    t = 2.0 * sum(row[coef] for coef, _, _ in TLOG_SLOTS)
    if side > 0:
        t += row[Row.LOG_X_COEF]
    if t != 0.0:
        return ("inf", f"{t:.6g}*log|x|") if t > 0 else None
    limit = row[Row.CONST]
    for coef, at in ABS_SLOTS:          # a*|x - m| - lin part = a*side*(center - m)
        limit += row[coef] * side * (row[Row.CENTER] - row[at])
    for coef, _, kk in TLOG_SLOTS:      # c*log1p(k y^2) - 2c log|y| -> c*log(k)
        if row[coef] != 0.0:
            limit += row[coef] * math.log(row[kk])
    return ("value", limit)


def constants():
    """Every declared constant by its C name (what the built module must agree with)."""
    out = {}
    for prefix, namespace in (("ROW", Row), ("PROPOSAL", Proposal), ("STATUS", Status),
                              ("PIECE", Piece)):
        out.update({f"{prefix}_{k}": v for k, v in _members(namespace).items()})
    out.update(ROW_LEN=ROW_LEN, PIECE_LEN=PIECE_LEN, MAX_CHUNK=MAX_CHUNK, MIN_CHUNK=MIN_CHUNK,
               MAX_POW=MAX_POW)
    return out


def pxi_source():
    """The Cython declarations of :func:`constants` (``program.pxi``, see tools/generate.py)."""
    lines = ["# Generated at build time from rsft/_program.py by tools/generate.py. Do not edit.",
             "cdef enum:"]
    lines += [f"    {name} = {value}" for name, value in constants().items()]
    lines += ["", "#: the compiled values of every constant of rsft._program (checked by tests)",
              "PROGRAM_CONSTANTS = {"]
    lines += [f"    {name!r}: {name}," for name in constants()]
    lines += ["}", ""]
    return "\n".join(lines)
