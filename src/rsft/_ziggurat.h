/*
 * Inlined standard-normal ziggurat that consumes a numpy bit generator exactly as
 * numpy.random.Generator.standard_normal does (256 layers, 52-bit mantissa, 8-bit index,
 * one sign bit per 64-bit draw; Marsaglia & Tsang's tail and wedge tests).
 *
 * The layer tables are numpy's own: setup.py reads them, bit for bit, from the libnpyrandom
 * static library this extension links against and writes rsft_zig_tables.h. Where that is
 * not possible (a non-ELF platform) RSFT_HAVE_ZIG_TABLES is 0 and numpy's non-inlined
 * random_standard_normal is called instead. The test-suite checks the stream against
 * Generator.standard_normal either way.
 */
#ifndef RSFT_ZIGGURAT_H
#define RSFT_ZIGGURAT_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "numpy/random/bitgen.h"
#include "numpy/random/distributions.h"
#include "rsft_zig_tables.h"

#if RSFT_HAVE_ZIG_TABLES

/* Marsaglia's r for 256 layers, and 1/r (the double nearest both). */
static const double rsft_zig_r = 3.6541528853610088;
static const double rsft_zig_inv_r = 0.27366123732975828;

static inline double rsft_standard_normal(bitgen_t *bg)
{
    uint64_t r, rabs, bits;
    int idx;
    double x, xx, yy;
    for (;;) {
        r = bg->next_uint64(bg->state);
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
                xx = -rsft_zig_inv_r * log1p(-bg->next_double(bg->state));
                yy = -log1p(-bg->next_double(bg->state));
                if (yy + yy > xx * xx) {
                    return ((rabs >> 8) & 0x1) ? -(rsft_zig_r + xx) : rsft_zig_r + xx;
                }
            }
        }
        else if (((rsft_fi_double[idx - 1] - rsft_fi_double[idx]) * bg->next_double(bg->state)
                  + rsft_fi_double[idx]) < exp(-0.5 * x * x)) {
            return x;                      /* the wedge */
        }
    }
}

#else

static inline double rsft_standard_normal(bitgen_t *bg)
{
    return random_standard_normal(bg);
}

#endif
#endif
