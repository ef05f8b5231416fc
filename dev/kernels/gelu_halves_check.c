/* gelu_halves_check.c — act.cuh's GELU before and after v8 folded the 0.5 into the polynomial
 * (erfc/2 from halved coefficients, x(1 - q) / x q instead of (x/2)(2 - erfc) / (x/2) erfc): the
 * same fp16 and bf16 results for every finite fp16 and bf16 input? Both forms are written out
 * with the device code's roundings (-ffp-contract=off, volatile steps); MUFU's rcp/ex2 are
 * stood in for by 1/a and exp2f, which both forms call with the same arguments.
 *   gcc -O2 -ffp-contract=off -o /tmp/gelu_halves_check dev/kernels/gelu_halves_check.c -lm */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static float erfc_parts(float x, float *t, float *e) {
    const float z = fabsf(x) * 0.70710678118654752f;
    *t = 1.0f / fmaf(0.3275911f, z, 1.0f);
    volatile float zz = z * z;
    volatile float arg = zz * -1.4426950408889634f;
    *e = exp2f(arg);
    return z;
}
/* A&S 7.1.26's coefficients (v7) and their halves (v8), highest power first */
static const float V7[5] = {1.061405429f, -1.453152027f, 1.421413741f, -0.284496736f, 0.254829592f};
static const float V8[5] = {0.5307027145f, -0.7265760135f, 0.7107068705f, -0.142248368f, 0.127414796f};

/* p(t) t e with the device code's steps: erfc (v7) or erfc/2 (v8) */
static float erfc_like(const float c[5], float x) {
    float t, e;
    erfc_parts(x, &t, &e);
    float p = fmaf(c[0], t, c[1]);
    for (int i = 2; i < 5; i++) p = fmaf(p, t, c[i]);
    volatile float pt = p * t;
    volatile float r = pt * e;
    return r;
}
static float gelu_v7(float x) {
    const float erfc_z = erfc_like(V7, x);
    volatile float hx = 0.5f * x;
    volatile float f = x >= 0.f ? 2.0f - erfc_z : erfc_z;
    return hx * f;
}
static float gelu_v8(float x) {
    const float q = erfc_like(V8, x);
    volatile float f = x >= 0.f ? 1.0f - q : q;
    return x * f;
}
static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static uint32_t to_bf16(float f) { /* round to nearest even (finite inputs) */
    const uint32_t u = bits(f);
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
static uint16_t to_f16(float f) {
    const _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

int main(void) {
    for (int i = 0; i < 5; i++)
        if (V7[i] * 0.5f != V8[i]) {
            printf("coefficient %d is not exactly half: %.9g vs %.9g\n", i, V7[i] * 0.5f, V8[i]);
            return 1;
        }
    long n16 = 0, d16 = 0, nb = 0, db = 0;
    for (uint32_t u = 0; u < 65536; u++) {
        uint16_t hb = (uint16_t)u;
        _Float16 h;
        memcpy(&h, &hb, 2);
        const float x = (float)h;
        if (isfinite(x)) {
            n16++;
            if (to_f16(gelu_v7(x)) != to_f16(gelu_v8(x))) d16++;
        }
        const uint32_t fb = u << 16;
        float y;
        memcpy(&y, &fb, 4);
        if (isfinite(y)) {
            nb++;
            if (to_bf16(gelu_v7(y)) != to_bf16(gelu_v8(y))) db++;
        }
    }
    printf("fp16 inputs: %ld of %ld results differ; bf16 inputs: %ld of %ld differ\n", d16, n16, db, nb);
    return d16 || db;
}
