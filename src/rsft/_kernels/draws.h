/*
 * The draws of the hot loops: uniform and standard-normal fills that consume a numpy bit
 * generator exactly as numpy.random.Generator.random / standard_normal do.
 *
 * Two sources of 64-bit words, chosen per call by the caller:
 *
 *  - generic: bitgen_t's next_uint64 / next_double function pointers (any bit generator);
 *  - PCG64 fast path: numpy's default bit generator, PCG64 (128-bit LCG t -> a t + inc with
 *    a = 2549297995355413924 * 2^64 + 4865540595714422341, XSL-RR output), stepped inline on
 *    a local copy of its state, which is written back when the fill ends: no indirect call per
 *    word, the state in registers. Uniform fills advance four interleaved chains
 *    (t_{k+4} = a^4 t_k + c_4), and product mode draws a chunk's proposals and uniforms side by
 *    side from the two points of the stream where they start (rsft_pcg_pair): the same states
 *    in the same order, so the same numbers and the same final state. The caller enables the
 *    path only for an exact numpy.random.PCG64, after rsft._core's import-time probe has
 *    checked on a fresh PCG64 that the state read through this layout equals PCG64.state and
 *    that fast fills equal Generator.random / standard_normal and end in the same state.
 *
 * Normal draws: numpy's ziggurat (256 layers, 52-bit mantissa, 8-bit index, one sign bit per
 * 64-bit draw; Marsaglia & Tsang's tail and wedge tests) with numpy's own layer tables, which
 * setup.py reads bit for bit from the libnpyrandom static library this extension links against
 * (rsft_zig_tables.h). Where that is not possible (a non-ELF platform) RSFT_HAVE_ZIG_TABLES is
 * 0 and numpy's non-inlined random_standard_normal is called, on the generic source only.
 * The test-suite checks every stream against the Generator's own methods.
 */
#ifndef RSFT_DRAWS_H
#define RSFT_DRAWS_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stddef.h>
#include "numpy/random/bitgen.h"
#include "numpy/random/distributions.h"
#include "rsft_zig_tables.h"

#if defined(__GNUC__) || defined(__clang__)
#define RSFT_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define RSFT_ALWAYS_INLINE static inline
#endif

/* ------------------------------------------------------------------------------------------ */
/* PCG64 fast path                                                                             */
/* ------------------------------------------------------------------------------------------ */

#if defined(__SIZEOF_INT128__)
#define RSFT_HAVE_PCG_FAST 1
typedef unsigned __int128 rsft_u128;
#define RSFT_PCG_MULT (((rsft_u128)2549297995355413924ULL << 64) | 4865540595714422341ULL)
#define RSFT_PCG_LANES 4         /* interleaved LCG chains in rsft_fill_uniform */

/* numpy's pcg64_random_t (native 128-bit build) and the pcg64_state that bitgen_t.state
 * points to. The import-time probe verifies this layout before the fast path is used. */
typedef struct { rsft_u128 state; rsft_u128 inc; } rsft_pcg;
typedef struct { rsft_pcg *pcg_state; int has_uint32; uint32_t uinteger; } rsft_pcg64_state;

static inline rsft_pcg *rsft_pcg_of(bitgen_t *bg)
{
    return ((rsft_pcg64_state *)bg->state)->pcg_state;
}

/* PCG64's output function (XSL-RR) of a state. */
RSFT_ALWAYS_INLINE uint64_t rsft_pcg_out(rsft_u128 s)
{
    uint64_t v = (uint64_t)(s >> 64) ^ (uint64_t)s;
    unsigned rot = (unsigned)(s >> 122);
    return (v >> rot) | (v << ((64u - rot) & 63u));
}

/* k steps of the LCG as one affine map, t -> (*mult) t + (*add) (binary powering). */
static inline void rsft_pcg_jump(rsft_u128 inc, uint64_t k, rsft_u128 *mult, rsft_u128 *add)
{
    rsft_u128 am = 1, ap = 0, cm = RSFT_PCG_MULT, cp = inc;
    while (k) {
        if (k & 1) {
            am = am * cm;
            ap = ap * cm + cp;
        }
        cp = (cm + 1) * cp;
        cm = cm * cm;
        k >>= 1;
    }
    *mult = am;
    *add = ap;
}

/* A local copy of the generator's state, stepped one output at a time. */
typedef struct { rsft_u128 t; rsft_u128 inc; } rsft_pcg_loc;

RSFT_ALWAYS_INLINE uint64_t rsft_pcg_next(rsft_pcg_loc *g)
{
    g->t = g->t * RSFT_PCG_MULT + g->inc;
    return rsft_pcg_out(g->t);
}

/* The raw state words (state hi, lo, inc hi, lo): used only by the probe. */
static inline void rsft_pcg_words(bitgen_t *bg, uint64_t *w)
{
    rsft_pcg *p = rsft_pcg_of(bg);
    w[0] = (uint64_t)(p->state >> 64);
    w[1] = (uint64_t)p->state;
    w[2] = (uint64_t)(p->inc >> 64);
    w[3] = (uint64_t)p->inc;
}
#else
#define RSFT_HAVE_PCG_FAST 0
typedef struct { int unused; } rsft_pcg_loc;
static inline void rsft_pcg_words(bitgen_t *bg, uint64_t *w)
{
    (void)bg;
    w[0] = w[1] = w[2] = w[3] = 0;
}
#endif

/* numpy's next_double of a 64-bit word: the top 53 bits times 2^-53 (both steps exact; the
 * signed conversion is one instruction). */
RSFT_ALWAYS_INLINE double rsft_word_double(uint64_t w)
{
    return (double)(int64_t)(w >> 11) * (1.0 / 9007199254740992.0);
}

/* One word / one double from the local PCG64 copy g, or from bg when g is NULL. Every caller
 * passes NULL or the address of a local, so after inlining the test folds away and the state
 * stays in registers. (A single chain is right here: the ziggurat's own work hides the LCG's
 * latency, which interleaved chains and a word buffer only made slower.) */
RSFT_ALWAYS_INLINE uint64_t rsft_next64(bitgen_t *bg, rsft_pcg_loc *g)
{
#if RSFT_HAVE_PCG_FAST
    if (g != NULL) {
        return rsft_pcg_next(g);
    }
#endif
    return bg->next_uint64(bg->state);
}

RSFT_ALWAYS_INLINE double rsft_next_double(bitgen_t *bg, rsft_pcg_loc *g)
{
#if RSFT_HAVE_PCG_FAST
    if (g != NULL) {
        return rsft_word_double(rsft_pcg_next(g));
    }
#endif
    return bg->next_double(bg->state);
}

/* ------------------------------------------------------------------------------------------ */
/* Standard normal                                                                             */
/* ------------------------------------------------------------------------------------------ */

#if RSFT_HAVE_ZIG_TABLES

/* Marsaglia's r for 256 layers, and 1/r (the double nearest both). */
static const double rsft_zig_r = 3.6541528853610088;
static const double rsft_zig_inv_r = 0.27366123732975828;

RSFT_ALWAYS_INLINE double rsft_zig_normal(bitgen_t *bg, rsft_pcg_loc *p)
{
    uint64_t r, rabs, bits;
    int idx;
    double x, xx, yy;
    for (;;) {
        r = rsft_next64(bg, p);
        idx = (int)(r & 0xff);
        r >>= 8;
        rabs = (r >> 1) & 0x000fffffffffffffULL;
        /* rabs < 2^52: the signed conversion is exact and one instruction */
        x = (double)(int64_t)rabs * rsft_wi_double[idx];
        /* x = -x when the sign bit is set, without a (50% mispredicted) branch */
        memcpy(&bits, &x, sizeof bits);
        bits ^= (r & 0x1) << 63;
        memcpy(&x, &bits, sizeof x);
        if (rabs < rsft_ki_double[idx]) {
            return x;                      /* about 99.3% of draws */
        }
        if (idx == 0) {                    /* the tail beyond r */
            for (;;) {
                xx = -rsft_zig_inv_r * log1p(-rsft_next_double(bg, p));
                yy = -log1p(-rsft_next_double(bg, p));
                if (yy + yy > xx * xx) {
                    return ((rabs >> 8) & 0x1) ? -(rsft_zig_r + xx) : rsft_zig_r + xx;
                }
            }
        }
        else if (((rsft_fi_double[idx - 1] - rsft_fi_double[idx]) * rsft_next_double(bg, p)
                  + rsft_fi_double[idx]) < exp(-0.5 * x * x)) {
            return x;                      /* the wedge */
        }
    }
}

static inline double rsft_standard_normal(bitgen_t *bg)
{
    return rsft_zig_normal(bg, NULL);
}

#else

static inline double rsft_standard_normal(bitgen_t *bg)
{
    return random_standard_normal(bg);
}

#endif

/* ------------------------------------------------------------------------------------------ */
/* Fills (the caller holds the bit generator's lock)                                          */
/* ------------------------------------------------------------------------------------------ */

#if RSFT_HAVE_PCG_FAST
/* x[i] = loc + scale * U_i for the n outputs that follow state *t; *t ends on the state of the
 * last one. One LCG step is a 128-bit multiply-add whose latency bounds a single chain, so the
 * states are advanced as RSFT_PCG_LANES interleaved chains (t_{k+L} = a^L t_k + c_L): the
 * same states, so the same numbers. */
static void rsft_pcg_uniform(rsft_u128 *t, rsft_u128 inc, double loc, double scale, double *x,
                             ptrdiff_t n)
{
    rsft_u128 s[RSFT_PCG_LANES], aL, cL, u = *t;
    ptrdiff_t i;
    int l;
    if (n <= 0) {
        return;
    }
    rsft_pcg_jump(inc, RSFT_PCG_LANES, &aL, &cL);
    for (l = 0; l < RSFT_PCG_LANES; l++) {
        u = u * RSFT_PCG_MULT + inc;
        s[l] = u;                          /* the state of output l */
    }
    /* whole rounds while a tail of 1..L outputs remains, so the tail ends on the last state */
    for (i = 0; i + RSFT_PCG_LANES < n; i += RSFT_PCG_LANES) {
        for (l = 0; l < RSFT_PCG_LANES; l++) {
            x[i + l] = loc + scale * rsft_word_double(rsft_pcg_out(s[l]));
            s[l] = s[l] * aL + cL;
        }
    }
    u = s[0];                              /* the state of output i */
    for (;;) {
        x[i] = loc + scale * rsft_word_double(rsft_pcg_out(u));
        if (++i == n) {
            break;
        }
        u = u * RSFT_PCG_MULT + inc;
    }
    *t = u;
}
#endif

/* x[i] = loc + scale * U[0, 1), i < n: exactly loc + scale * Generator.random(n) (and exactly
 * Generator.random(n) for loc = 0, scale = 1, as 0 + 1 * u == u for every u in [0, 1)). */
static void rsft_fill_uniform(bitgen_t *bg, int fast, double loc, double scale, double *x,
                              ptrdiff_t n)
{
    ptrdiff_t i;
#if RSFT_HAVE_PCG_FAST
    if (fast) {
        rsft_pcg *p = rsft_pcg_of(bg);
        rsft_pcg_uniform(&p->state, p->inc, loc, scale, x, n);
        return;
    }
#endif
    (void)fast;
    for (i = 0; i < n; i++) {
        x[i] = loc + scale * bg->next_double(bg->state);
    }
}

#if RSFT_HAVE_PCG_FAST
/* Two uniform streams of one chunk, drawn a block at a time: the n proposals' uniforms follow
 * the state t0 and the n acceptance uniforms follow t0 advanced by n (the stream order is
 * "n proposals, then n uniforms"), so both can be produced side by side. */
typedef struct { rsft_u128 tx, tu, t_end, inc; } rsft_pcg_pair;

static inline void rsft_pcg_pair_open(rsft_pcg_pair *q, bitgen_t *bg, ptrdiff_t n)
{
    rsft_pcg *p = rsft_pcg_of(bg);
    rsft_u128 m, c;
    q->inc = p->inc;
    q->tx = p->state;
    rsft_pcg_jump(p->inc, (uint64_t)n, &m, &c);
    q->tu = m * p->state + c;
    q->t_end = m * q->tu + c;              /* after all 2n draws, however many were used */
}

/* the next m proposals x[i] = loc + scale * U and their m acceptance uniforms u[i] */
static inline void rsft_pcg_pair_next(rsft_pcg_pair *q, double loc, double scale, double *x,
                                      double *u, ptrdiff_t m)
{
    rsft_pcg_uniform(&q->tx, q->inc, loc, scale, x, m);
    rsft_pcg_uniform(&q->tu, q->inc, 0.0, 1.0, u, m);
}

static inline void rsft_pcg_pair_close(rsft_pcg_pair *q, bitgen_t *bg)
{
    rsft_pcg_of(bg)->state = q->t_end;
}
#else
typedef struct { int unused; } rsft_pcg_pair;
/* never called: the caller draws beside the scan (PRODUCT_PCG64) only when RSFT_HAVE_PCG_FAST */
static inline void rsft_pcg_pair_open(rsft_pcg_pair *q, bitgen_t *bg, ptrdiff_t n) {}
static inline void rsft_pcg_pair_next(rsft_pcg_pair *q, double loc, double scale, double *x,
                                      double *u, ptrdiff_t m) {}
static inline void rsft_pcg_pair_close(rsft_pcg_pair *q, bitgen_t *bg) {}
#endif

/* x[i] = loc + scale * N(0, 1): exactly loc + scale * Generator.standard_normal(n). */
static void rsft_fill_normal(bitgen_t *bg, int fast, double loc, double scale, double *x,
                             ptrdiff_t n)
{
    ptrdiff_t i;
#if RSFT_HAVE_PCG_FAST && RSFT_HAVE_ZIG_TABLES
    if (fast) {
        rsft_pcg *p = rsft_pcg_of(bg);
        rsft_pcg_loc g = {p->state, p->inc};
        for (i = 0; i < n; i++) {
            x[i] = loc + scale * rsft_zig_normal(bg, &g);
        }
        p->state = g.t;
        return;
    }
#endif
    (void)fast;
    for (i = 0; i < n; i++) {
        x[i] = loc + scale * rsft_standard_normal(bg);
    }
}

#endif
