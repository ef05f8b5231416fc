/* fmtf.c — cli_fmt_f32 (fmtf.h). snprintf's %.9g costs ~130 ns a float on the dev VM (a
 * 384-float vector ~50 us: the CLI's JSON lines ran at ~19k vectors/s on one core, a tenth of
 * what the GPU encodes); this takes the 9 digits from one double multiplication.
 * Why 9 digits from a double are exact enough: a nonzero float a has a = m·10^(e-8) with m the
 * 9-digit integer nearest to a·10^(8-e). Computing a·10^(8-e) in double errs by < 1e-15
 * relatively, so the m found is the nearest or off by one in ties only, and |m·10^(e-8) - a| <
 * (0.5 + 1e-6)·10^(e-8) <= ~5.0e-9·a: far inside half a float's ulp (>= 2^-25·a ≈ 3e-8·a, more
 * for denormals), so strtof rounds the text back to a. */
#include "fmtf.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static double pow10i(int k) { /* 10^k for |k| <= 66; exact for 0 <= k <= 22 */
    static const double P[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (k < 0) return 1.0 / pow10i(-k);
    return k <= 22 ? P[k] : k <= 44 ? P[22] * P[k - 22] : P[22] * P[22] * P[k - 44];
}

/* the nearest integer to p >= 0, ties to even as printf rounds an exact tie (1610167.125 with 9
 * digits is 1610167.12) */
static uint64_t round_even(double p) {
    const double r = floor(p), f = p - r;
    const uint64_t n = (uint64_t)r;
    return f > 0.5 || (f == 0.5 && (n & 1)) ? n + 1 : n;
}

int cli_fmt_f32(char *out, float v) {
    char *o = out;
    if (!isfinite(v)) {
        memcpy(out, "null", 5);
        return 4;
    }
    if (signbit(v)) *o++ = '-';
    const double a = fabs((double)v);
    if (a == 0.0) {
        *o++ = '0';
        *o = 0;
        return (int)(o - out);
    }
    /* the decimal exponent e with 10^e <= a < 10^(e+1); log10's floor can be one off near
     * powers of ten, and rounding m to 9 digits can carry into a tenth */
    int e = (int)floor(log10(a));
    uint64_t m = round_even(a * pow10i(8 - e));
    if (m >= 1000000000u) m = round_even(a * pow10i(8 - ++e));
    else if (m < 100000000u) m = round_even(a * pow10i(8 - --e));
    if (m >= 1000000000u) m = 100000000u, e++;
    char d[9];
    for (int i = 8; i >= 0; i--) d[i] = (char)('0' + m % 10), m /= 10;
    int nd = 9; /* significant digits left after dropping trailing zeros, as %g does */
    while (nd > 1 && d[nd - 1] == '0') nd--;
    if (e < -4 || e >= 9) { /* d.ddd e±XX */
        *o++ = d[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, d + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        *o++ = 'e';
        int x = e < 0 ? -e : e;
        *o++ = e < 0 ? '-' : '+';
        if (x >= 10) *o++ = (char)('0' + x / 10);
        else *o++ = '0';
        *o++ = (char)('0' + x % 10);
    } else if (e >= 0) { /* e+1 integer digits (at most 9), then the rest */
        for (int i = 0; i <= e; i++) *o++ = d[i];
        if (nd > e + 1) {
            *o++ = '.';
            memcpy(o, d + e + 1, (size_t)(nd - e - 1));
            o += nd - e - 1;
        }
    } else { /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -e - 1; i++) *o++ = '0';
        memcpy(o, d, (size_t)nd);
        o += nd;
    }
    *o = 0;
    return (int)(o - out);
}
