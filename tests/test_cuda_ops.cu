/* test_cuda_ops.cu — every CUDA op against the scalar reference (src/ref/) on host fp32 copies
 * of the same fp16-rounded inputs: odd, tiny and large shapes, relative tolerances for fp16,
 * NaN/Inf checks, outputs poisoned with NaN before each run, guard bytes around every device
 * buffer, and bit-exact batch invariance for the GEMM and attention. Skips (77) without a GPU. */
#include "act.cuh"
#include "add_ln.cuh"
#include "attention.cuh"
#include "attention_sm90.cuh"
#include "cache_file.h"
#include "embed_ln.cuh"
#include "gemm.cuh"
#include "gemm_sm90.cuh"
#include "pool.cuh"

extern "C" {
#include "sembed_cuda.h"
#include "testlib.h"
}

#include <math.h>
#include <stdio.h>
#include <time.h>
#include <type_traits>
#include <stdlib.h>
#include <vector>

#define GUARD 256
#define CK(x)                                                                                  \
    do {                                                                                       \
        cudaError_t e_ = (x);                                                                  \
        if (e_ != cudaSuccess) {                                                               \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)
#define OK(x)                                                                                  \
    do {                                                                                       \
        sembed_error e_;                                                                       \
        sembed_status s_ = (x);                                                                \
        CHECKF(s_ == SEMBED_OK, "%s", e_.msg);                                                 \
        (void)e_;                                                                              \
    } while (0)

static uint64_t rng = 88172645463325252ull;
static float frand(float a) { /* uniform in [-a, a) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return a * (2.0f * (float)((rng >> 11) * (1.0 / 9007199254740992.0)) - 1.0f);
}

/* ---- device buffers with guards ------------------------------------------------------------ */

static std::vector<void *> g_bufs;
static std::vector<size_t> g_sizes;

static void *dalloc(size_t bytes) {
    char *p;
    CK(cudaMalloc(&p, bytes + 2 * GUARD));
    CK(cudaMemset(p, 0xA5, bytes + 2 * GUARD));
    g_bufs.push_back(p);
    g_sizes.push_back(bytes);
    return p + GUARD;
}
static void check_guards_and_free(const char *what) {
    for (size_t i = 0; i < g_bufs.size(); i++) {
        std::vector<unsigned char> h(g_sizes[i] + 2 * GUARD);
        CK(cudaMemcpy(h.data(), g_bufs[i], h.size(), cudaMemcpyDeviceToHost));
        bool ok = true;
        for (size_t j = 0; j < GUARD; j++)
            ok = ok && h[j] == 0xA5 && h[GUARD + g_sizes[i] + j] == 0xA5;
        CHECKF(ok, "%s: guard bytes of buffer %zu overwritten", what, i);
        CK(cudaFree(g_bufs[i]));
    }
    g_bufs.clear();
    g_sizes.clear();
}

/* The 16-bit element types on the host: E is __half or sembed__bf16. */
static float e2f(__half v) { return __half2float(v); }
static float e2f(sembed__bf16 v) { return __bfloat162float(v); }
template <class E> static E f2e(float v);
template <> __half f2e<__half>(float v) { return __float2half_rn(v); }
template <> sembed__bf16 f2e<sembed__bf16>(float v) { return __float2bfloat16_rn(v); }
template <class E> static const char *ename() { return std::is_same<E, __half>::value ? "f16" : "bf16"; }
/* A test's tolerance for E: fp16's, or bf16's (3 fewer significant bits: 8x) */
template <class E> static double etol(double f16_tol) {
    return std::is_same<E, __half>::value ? f16_tol : 8 * f16_tol;
}

/* E-rounded random host data, and its device copy */
template <class E> static E *up_e(std::vector<float> &host, size_t n, float a) {
    host.resize(n);
    std::vector<E> h(n);
    for (size_t i = 0; i < n; i++) {
        h[i] = f2e<E>(frand(a));
        host[i] = e2f(h[i]);
    }
    E *d = (E *)dalloc(n * 2);
    CK(cudaMemcpy(d, h.data(), n * 2, cudaMemcpyHostToDevice));
    return d;
}
static __half *up_h(std::vector<float> &host, size_t n, float a) { return up_e<__half>(host, n, a); }
static float *up_f(std::vector<float> &host, size_t n, float a, float base = 0.f) {
    host.resize(n);
    for (size_t i = 0; i < n; i++) host[i] = base + frand(a);
    float *d = (float *)dalloc(n * 4);
    CK(cudaMemcpy(d, host.data(), n * 4, cudaMemcpyHostToDevice));
    return d;
}
static int32_t *up_i(const std::vector<int32_t> &host) {
    int32_t *d = (int32_t *)dalloc(host.size() * 4 + 4);
    CK(cudaMemcpy(d, host.data(), host.size() * 4, cudaMemcpyHostToDevice));
    return d;
}
template <class E> static std::vector<float> down_h(const E *d, size_t n) {
    std::vector<E> h(n);
    CK(cudaMemcpy(h.data(), d, n * 2, cudaMemcpyDeviceToHost));
    std::vector<float> f(n);
    for (size_t i = 0; i < n; i++) f[i] = e2f(h[i]);
    return f;
}
static std::vector<float> down_f(const float *d, size_t n) {
    std::vector<float> f(n);
    CK(cudaMemcpy(f.data(), d, n * 4, cudaMemcpyDeviceToHost));
    return f;
}

/* ‖got − ref‖ / ‖ref‖ <= tol, and no NaN/Inf (outputs were poisoned with NaN). */
static void compare(const char *what, const std::vector<float> &got, const std::vector<float> &ref,
                    double tol) {
    double num = 0, den = 0;
    size_t bad = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        if (!isfinite(got[i])) {
            bad++;
            continue;
        }
        num += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    const double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    CHECKF(bad == 0, "%s: %zu of %zu outputs are NaN/Inf (unwritten?)", what, bad, ref.size());
    CHECKF(rel <= tol, "%s: relative error %.3g > %.3g", what, rel, tol);
    printf("  %-44s rel err %.2e\n", what, rel);
}

static sembed__exec ref_ex(int64_t scratch) {
    static std::vector<float> buf;
    buf.assign((size_t)scratch, 0.f);
    sembed__exec ex = {NULL, buf.data(), scratch};
    return ex;
}

/* ---- ops ------------------------------------------------------------------------------------ */

template <class E> static void test_embed_ln(int64_t T, int32_t H, bool with_type) {
    const int32_t V = 101, P = 520;
    std::vector<float> word, pos, type, g, b;
    E *dw = up_e<E>(word, (size_t)V * H, 1.f), *dp = up_e<E>(pos, (size_t)P * H, 0.5f);
    E *dt = with_type ? up_e<E>(type, (size_t)H, 0.3f) : NULL;
    float *dg = up_f(g, H, 0.2f, 1.f), *db = up_f(b, H, 0.2f);
    std::vector<int32_t> ids(T), pids(T);
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)((t * 37 + 11) % V), pids[t] = (int32_t)(t % P);
    int32_t *di = up_i(ids), *dpi = up_i(pids);
    E *out = (E *)dalloc((size_t)T * H * 2);
    CK(cudaMemset(out, 0xFF, (size_t)T * H * 2));
    sembed_error e;
    CHECKF(sembed__cu_embed_ln(out, di, dpi, dw, dp, dt, dg, db, T, H, 1e-12f, 0, &e) == SEMBED_OK,
           "%s", e.msg);
    CK(cudaDeviceSynchronize());
    std::vector<float> ref((size_t)T * H);
    sembed__exec ex = ref_ex(1);
    sembed__backend_ref.embed_ln(ref.data(), ids.data(), pids.data(), NULL, word.data(), pos.data(),
                                 with_type ? type.data() : NULL, g.data(), b.data(), T, H, 1e-12f,
                                 &ex);
    char name[96];
    snprintf(name, sizeof name, "embed_ln %s T=%lld H=%d type=%d", ename<E>(), (long long)T, H,
             with_type);
    compare(name, down_h(out, (size_t)T * H), ref, etol<E>(2e-3));
    check_guards_and_free(name);
}

/* act(x · wᵀ + b) by the reference ops: what a GEMM test compares with. */
static std::vector<float> ref_linear(const std::vector<float> &x, const std::vector<float> &w,
                                     const float *b, int64_t M, int32_t N, int32_t K,
                                     sembed__act_kind act) {
    std::vector<float> ref((size_t)M * N);
    sembed__exec ex = ref_ex(1);
    sembed__backend_ref.gemm_bias(ref.data(), x.data(), w.data(), b, M, N, K, &ex);
    if (act != SEMBED__ACTK_IDENTITY) sembed__backend_ref.act(ref.data(), (int64_t)ref.size(), act, &ex);
    return ref;
}

static const char *dt_name(sembed__cu_dtype dt) {
    return dt == SEMBED__CU_F32 ? "f32" : dt == SEMBED__CU_BF16 ? "bf16" : "f16";
}

static void test_gemm(cublasLtHandle_t lt, int64_t M, int32_t N, int32_t K, sembed__cu_dtype dt,
                      bool bias, void *ws, sembed__act_kind act = SEMBED__ACTK_IDENTITY) {
    char name[96];
    snprintf(name, sizeof name, "gemm %s M=%lld N=%d K=%d bias=%d act=%d", dt_name(dt),
             (long long)M, N, K, bias, (int)act);
    std::vector<float> x, w, b;
    void *dx, *dw, *db = NULL, *dy;
    const bool f32 = dt == SEMBED__CU_F32;
    if (f32) {
        dx = up_f(x, (size_t)M * K, 1.f), dw = up_f(w, (size_t)N * K, 0.1f);
        if (bias) db = up_f(b, N, 1.f);
    } else if (dt == SEMBED__CU_BF16) {
        dx = up_e<sembed__bf16>(x, (size_t)M * K, 1.f), dw = up_e<sembed__bf16>(w, (size_t)N * K, 0.1f);
        if (bias) db = up_e<sembed__bf16>(b, N, 1.f);
    } else {
        dx = up_h(x, (size_t)M * K, 1.f), dw = up_h(w, (size_t)N * K, 0.1f);
        if (bias) db = up_h(b, N, 1.f);
    }
    const size_t es = f32 ? 4 : 2;
    dy = dalloc((size_t)M * N * es);
    CK(cudaMemset(dy, 0xFF, (size_t)M * N * es));
    sembed__cu_gemm_shape g;
    sembed_error e;
    const int64_t M_max = M > 4096 ? M : 4096;
    sembed_status s = sembed__cu_gemm_plan(&g, lt, N, K, M_max, dt, bias, act, (size_t)32 << 20, &e);
    CHECKF(s == SEMBED_OK, "%s: %s", name, e.msg);
    if (s != SEMBED_OK) {
        check_guards_and_free(name);
        return;
    }
    OK(sembed__cu_gemm(&g, lt, dy, dx, dw, db, M, ws, 0, &e_));
    CK(cudaDeviceSynchronize());
    const std::vector<float> ref = ref_linear(x, w, bias ? b.data() : NULL, M, N, K, act);
    compare(name,
            f32 ? down_f((float *)dy, ref.size())
                : dt == SEMBED__CU_BF16 ? down_h((sembed__bf16 *)dy, ref.size())
                                        : down_h((__half *)dy, ref.size()),
            ref, f32 ? 1e-5 : dt == SEMBED__CU_BF16 ? etol<sembed__bf16>(2e-3) : 2e-3);
    /* batch invariance: rows computed alone (M=1) and in smaller batches match bit for bit */
    if (M >= 64) {
        const int64_t starts[] = {0, M / 2, M - 1}, counts[] = {1, 7, 1};
        for (int q = 0; q < 3; q++) {
            const int64_t r0 = starts[q], m = r0 + counts[q] <= M ? counts[q] : 1;
            void *dy2 = dalloc((size_t)m * N * es);
            OK(sembed__cu_gemm(&g, lt, dy2, (char *)dx + (size_t)r0 * K * es, dw, db, m, ws, 0,
                               &e_));
            CK(cudaDeviceSynchronize());
            std::vector<unsigned char> a((size_t)m * N * es), c((size_t)m * N * es);
            CK(cudaMemcpy(a.data(), (char *)dy + (size_t)r0 * N * es, a.size(), cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(c.data(), dy2, c.size(), cudaMemcpyDeviceToHost));
            CHECKF(memcmp(a.data(), c.data(), a.size()) == 0,
                   "%s: rows %lld..+%lld differ alone vs in a batch of %lld (algo %d tile %d)",
                   name, (long long)r0, (long long)m, (long long)M, g.algo_id, g.tile_id);
        }
        printf("  %-44s batch-invariant checks done (algo %d, tile %d, stages %d)\n", name,
               g.algo_id, g.tile_id, g.stages_id);
    }
    check_guards_and_free(name);
}

/* The small-M GEMM kernel by itself against the reference (no cuBLASLt: it also runs under
 * racecheck, which cannot run cuBLASLt's kernels). */
template <class E>
static void test_gemm_small(int64_t M, int32_t N, int32_t K, sembed__act_kind act, bool bias) {
    char name[96];
    snprintf(name, sizeof name, "gemm small-M kernel %s M=%lld N=%d K=%d act=%d bias=%d",
             ename<E>(), (long long)M, N, K, (int)act, bias);
    std::vector<float> x, w, b;
    void *dx = up_e<E>(x, (size_t)M * K, 1.f), *dw = up_e<E>(w, (size_t)N * K, 0.1f);
    void *db = bias ? up_e<E>(b, N, 1.f) : NULL;
    void *dy = dalloc((size_t)M * N * 2);
    CK(cudaMemset(dy, 0xFF, (size_t)M * N * 2));
    OK(sembed__cu_gemm_small(dy, dx, dw, db, M, N, K, act,
                             std::is_same<E, __half>::value ? SEMBED__CU_F16 : SEMBED__CU_BF16, 0,
                             &e_));
    CK(cudaDeviceSynchronize());
    const std::vector<float> ref = ref_linear(x, w, bias ? b.data() : NULL, M, N, K, act);
    compare(name, down_h((E *)dy, ref.size()), ref, etol<E>(2e-3));
    check_guards_and_free(name);
}

/* CUTLASS's Hopper GEMMs (gemm_sm90.cuh), every configuration, against the reference; with
 * cuBLASLt (plan != NULL), whether its rows are the bits the plan gives at M rows (printed: the
 * plan checks that itself before it uses a configuration, and test_gemm_rows checks the rows of
 * what it chose). */
static void test_gemm_sm90(int64_t M, int32_t N, int32_t K, sembed__act_kind act,
                           cublasLtHandle_t lt, void *ws) {
    for (int c = 0; c < sembed__cu_sm90_configs(); c++) {
        char name[128];
        snprintf(name, sizeof name, "gemm CUTLASS %s M=%lld N=%d K=%d act=%d",
                 sembed__cu_sm90_name(c), (long long)M, N, K, (int)act);
        std::vector<float> x, w, b;
        void *dx = up_h(x, (size_t)M * K, 1.f), *dw = up_h(w, (size_t)N * K, 0.1f);
        void *db = up_h(b, N, 1.f);
        void *dy = dalloc((size_t)M * N * 2), *dws = dalloc((size_t)32 << 20);
        CK(cudaMemset(dy, 0xFF, (size_t)M * N * 2));
        const cudaError_t r = sembed__cu_sm90_gemm(c, act == SEMBED__ACTK_GELU, (__half *)dy,
                                                   (const __half *)dx, (const __half *)dw,
                                                   (const __half *)db, M, N, K, dws,
                                                   (size_t)32 << 20, 0, NULL);
        CHECKF(r == cudaSuccess, "%s: %s", name, cudaGetErrorString(r));
        CK(cudaDeviceSynchronize());
        const std::vector<float> ref = ref_linear(x, w, b.data(), M, N, K, act);
        compare(name, down_h((__half *)dy, ref.size()), ref, 2e-3);
        if (lt) {
            sembed__cu_gemm_shape g;
            sembed_error e;
            if (sembed__cu_gemm_plan(&g, lt, N, K, M > 4096 ? M : 4096, SEMBED__CU_F16, true, act,
                                     (size_t)32 << 20, &e) == SEMBED_OK) {
                void *dy2 = dalloc((size_t)M * N * 2);
                OK(sembed__cu_gemm(&g, lt, dy2, dx, dw, db, M, ws, 0, &e_));
                std::vector<uint16_t> a((size_t)M * N), o((size_t)M * N);
                CK(cudaMemcpy(a.data(), dy, a.size() * 2, cudaMemcpyDeviceToHost));
                CK(cudaMemcpy(o.data(), dy2, o.size() * 2, cudaMemcpyDeviceToHost));
                printf("  %-44s same bits as the plan's (CUTLASS %s for M >= %lld): %s\n", name,
                       sembed__cu_sm90_name(g.sm90), (long long)g.M_sm90,
                       memcmp(a.data(), o.data(), a.size() * 2) == 0 ? "yes" : "no");
            }
        }
        check_guards_and_free(name);
    }
}

/* Batch invariance of a planned fp16 GEMM over many M: every row computed in a batch of m rows
 * (m = 1 .. 300 and a few larger, each slice at another offset) is the same bits as in one
 * batch of M_ALL rows. Random data with many exponents, so that another order of the K sums
 * shows in the fp16 outputs. This is what lets the plan use a second algorithm for small M
 * (gemm.cuh's algo_small): the rows must not depend on which algorithm M picked. */
template <class E>
static void test_gemm_rows(cublasLtHandle_t lt, int32_t N, int32_t K, sembed__act_kind act,
                           bool quick, void *ws) {
    char name[96];
    snprintf(name, sizeof name, "gemm rows %s N=%d K=%d act=%d", ename<E>(), N, K, (int)act);
    const int64_t M_ALL = 1024;
    auto wide = [](size_t n, int e0) { /* |v| in 2^e0 .. 2^(e0+10) */
        std::vector<E> h(n);
        for (size_t i = 0; i < n; i++) {
            const float u = frand(1.f), m = 1.f + fabsf(frand(1.f));
            h[i] = f2e<E>(ldexpf(u < 0 ? -m : m, (int)((frand(1.f) + 1.f) * 4.99f) + e0));
        }
        return h;
    };
    std::vector<E> hx = wide((size_t)M_ALL * K, -6), hw = wide((size_t)N * K, -9),
                   hb = wide(N, -6);
    E *dx = (E *)dalloc(hx.size() * 2), *dw = (E *)dalloc(hw.size() * 2);
    E *db = (E *)dalloc(hb.size() * 2);
    E *dy = (E *)dalloc((size_t)M_ALL * N * 2), *dy2 = (E *)dalloc((size_t)M_ALL * N * 2);
    CK(cudaMemcpy(dx, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dw, hw.data(), hw.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, hb.data(), hb.size() * 2, cudaMemcpyHostToDevice));
    sembed__cu_gemm_shape g;
    sembed_error e;
    sembed_status s = sembed__cu_gemm_plan(&g, lt, N, K, 4096,
                                           std::is_same<E, __half>::value ? SEMBED__CU_F16
                                                                          : SEMBED__CU_BF16,
                                           true, act, (size_t)32 << 20, &e);
    CHECKF(s == SEMBED_OK, "%s: %s", name, e.msg);
    if (s != SEMBED_OK) {
        check_guards_and_free(name);
        return;
    }
    CK(cudaMemset(dy, 0xFF, (size_t)M_ALL * N * 2));
    OK(sembed__cu_gemm(&g, lt, dy, dx, dw, db, M_ALL, ws, 0, &e_));
    std::vector<uint16_t> a((size_t)M_ALL * N), b((size_t)M_ALL * N);
    CK(cudaMemcpy(a.data(), dy, a.size() * 2, cudaMemcpyDeviceToHost));
    std::vector<int64_t> ms; /* quick (under compute-sanitizer): 30 sizes */
    for (int64_t m = 1; m <= 300; m += quick ? (m < 17 ? 1 : 47) : 1) ms.push_back(m);
    for (int64_t m : {384, 511, 512, 513, 1000}) ms.push_back(m);
    int64_t n_diff = 0, first_m = 0;
    for (int64_t m : ms) {
        const int64_t off = (m * 131) % (M_ALL - m + 1);
        CK(cudaMemset(dy2, 0xFF, (size_t)m * N * 2));
        OK(sembed__cu_gemm(&g, lt, dy2, dx + off * K, dw, db, m, ws, 0, &e_));
        CK(cudaMemcpy(b.data(), dy2, (size_t)m * N * 2, cudaMemcpyDeviceToHost));
        if (memcmp(a.data() + off * N, b.data(), (size_t)m * N * 2) != 0) {
            if (!n_diff) first_m = m;
            n_diff++;
        }
    }
    CHECKF(n_diff == 0, "%s: rows differ from the %lld-row batch at %lld of %zu sizes (first M=%lld; "
           "algo %d tile %d; own kernel for M <= %lld; small-M algo %d tile %d for M <= %lld)",
           name, (long long)M_ALL, (long long)n_diff, ms.size(), (long long)first_m, g.algo_id,
           g.tile_id, (long long)g.M_own, g.small_algo_id, g.small_tile_id, (long long)g.M_small);
    printf("  %-44s same bits at %zu sizes of M (algo %d tile %d; own kernel for M <= %lld; "
           "small-M algo %d tile %d for M <= %lld)\n", name, ms.size(), g.algo_id, g.tile_id,
           (long long)g.M_own, g.small_algo_id, g.small_tile_id, (long long)g.M_small);
    check_guards_and_free(name);
}

static const char *att_kernel_name = "";

/* Sequences of the given lengths packed; returns the device output (T, H) as floats. */
template <class E>
static std::vector<float> run_attention(const std::vector<int32_t> &lens, int32_t H, int32_t A,
                                        const std::vector<float> &qkv_src /* (T, 3H) E-exact */,
                                        const float *d_rel, int32_t R) {
    std::vector<int32_t> off(1, 0);
    for (int32_t L : lens) off.push_back(off.back() + L);
    const int32_t S = (int32_t)lens.size(), T = off.back();
    std::vector<E> h((size_t)T * 3 * H);
    for (size_t i = 0; i < h.size(); i++) h[i] = f2e<E>(qkv_src[i]);
    E *dq = (E *)dalloc(h.size() * 2);
    CK(cudaMemcpy(dq, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    std::vector<int32_t> tiles(2 * (size_t)sembed__att_max_tiles(T, S));
    const sembed__att_tiles nt = sembed__att_make_tiles(tiles.data(), off.data(), S, A);
    /* the tiles of sequences whose heads share blocks come last, counted */
    for (int32_t i = 0; i < nt.n; i++) {
        const int32_t s = tiles[2 * i], L = off[s + 1] - off[s];
        CHECKF((sembed__att_heads_per_block(L, A) > 1) == (i >= nt.n - nt.n_short),
               "attention tiles: tile %d (sequence %d, %d tokens, %d heads) out of order", i, s, L, A);
    }
    int32_t *doff = up_i(off), *dt = up_i(tiles);
    E *out = (E *)dalloc((size_t)T * H * 2);
    CK(cudaMemset(out, 0xFF, (size_t)T * H * 2));
    sembed_error e;
    CHECKF(sembed__cu_attention(out, dq, doff, dt, d_rel, nt, H, A, R, 0, &e) == SEMBED_OK, "%s",
           e.msg);
    CK(cudaDeviceSynchronize());
    return down_h(out, (size_t)T * H);
}

template <class E>
static void test_attention(int32_t H, int32_t A, bool rel, const std::vector<int32_t> &lens) {
    const int32_t R = 514;
    int32_t T = 0;
    for (int32_t L : lens) T += L;
    char name[96];
    snprintf(name, sizeof name, "attention %s %s H=%d A=%d rel=%d S=%zu T=%d", att_kernel_name,
             ename<E>(), H, A, rel, lens.size(), T);
    std::vector<float> qkv((size_t)T * 3 * H), relb;
    for (size_t i = 0; i < qkv.size(); i++) qkv[i] = e2f(f2e<E>(frand(2.f)));
    float *d_rel = rel ? up_f(relb, (size_t)A * (2 * R - 1), 2.f) : NULL;
    std::vector<float> got = run_attention<E>(lens, H, A, qkv, d_rel, R);
    std::vector<int32_t> off(1, 0);
    for (int32_t L : lens) off.push_back(off.back() + L);
    std::vector<float> ref((size_t)T * H);
    sembed__exec ex = ref_ex(R);
    sembed__backend_ref.attention(ref.data(), qkv.data(), off.data(), rel ? relb.data() : NULL,
                                  (int32_t)lens.size(), H, A, R, &ex);
    compare(name, got, ref, etol<E>(5e-3));
    /* batch invariance: the last sequence alone gives the same bits as packed after the rest */
    if (lens.size() > 1) {
        const int32_t L = lens.back(), t0 = T - L;
        std::vector<float> alone_in(qkv.begin() + (size_t)t0 * 3 * H, qkv.end());
        std::vector<float> alone = run_attention<E>(std::vector<int32_t>(1, L), H, A, alone_in, d_rel, R);
        CHECKF(memcmp(alone.data(), got.data() + (size_t)t0 * H, alone.size() * 4) == 0,
               "%s: the last sequence differs alone vs packed", name);
    }
    check_guards_and_free(name);
}

template <class E> static void test_add_ln(int64_t T, int32_t H, bool alias) {
    std::vector<float> a, b, g, be;
    E *da = up_e<E>(a, (size_t)T * H, 3.f), *db = up_e<E>(b, (size_t)T * H, 1.f);
    float *dg = up_f(g, H, 0.2f, 1.f), *dbe = up_f(be, H, 0.2f);
    E *out = alias ? db : (E *)dalloc((size_t)T * H * 2);
    if (!alias) CK(cudaMemset(out, 0xFF, (size_t)T * H * 2));
    sembed_error e;
    CHECKF(sembed__cu_add_ln(out, da, db, dg, dbe, T, H, 1e-5f, 0, &e) == SEMBED_OK, "%s", e.msg);
    CK(cudaDeviceSynchronize());
    std::vector<float> ref((size_t)T * H);
    sembed__exec ex = ref_ex(1);
    sembed__backend_ref.add_ln(ref.data(), a.data(), b.data(), g.data(), be.data(), T, H, 1e-5f,
                               &ex);
    char name[96];
    snprintf(name, sizeof name, "add_ln %s T=%lld H=%d alias=%d", ename<E>(), (long long)T, H,
             alias);
    compare(name, down_h(out, (size_t)T * H), ref, etol<E>(2e-3));
    check_guards_and_free(name);
}

/* Every element within rel·|ref| + abs_tol of ref (a NaN fails); the worst one named (after
 * "vs " and vs_what). Returns the largest relative error, for the log. */
static double check_each(const char *name, const std::vector<float> &got,
                         const std::vector<float> &ref, double rel, double abs_tol,
                         const char *vs_what) {
    size_t worst = 0;
    double werr = 0, rmax = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        const double d = fabs((double)got[i] - ref[i]), excess = d - (rel * fabs(ref[i]) + abs_tol);
        if (isnan(d)) {
            werr = d, worst = i;
            break;
        }
        if (excess > werr) werr = excess, worst = i;
        if (ref[i] != 0.f) rmax = fmax(rmax, d / fabs(ref[i]));
    }
    CHECKF(werr == 0, "%s: element %zu: %.9g vs %s%.9g", name, worst, got[worst], vs_what,
           ref[worst]);
    return rmax;
}

template <class E> static void test_act(int64_t n, int64_t misalign, sembed__act_kind kind) {
    std::vector<float> x;
    E *dx = up_e<E>(x, (size_t)(n + misalign), 4.f) + misalign;
    std::vector<float> ref(x.begin() + misalign, x.end());
    sembed_error e;
    CHECKF(sembed__cu_act16(dx, n, kind, 0, &e) == SEMBED_OK, "%s", e.msg);
    CK(cudaDeviceSynchronize());
    sembed__exec ex = ref_ex(1);
    sembed__backend_ref.act(ref.data(), n, kind, &ex);
    char name[96];
    snprintf(name, sizeof name, "act %s kind=%d n=%lld misalign=%lld", ename<E>(), (int)kind,
             (long long)n, (long long)misalign);
    const std::vector<float> got = down_h(dx, (size_t)n);
    compare(name, got, ref, etol<E>(2e-3));
    /* the 16-bit GELU (a rational erfc), element by element: within the output type's rounding */
    if (kind == SEMBED__ACTK_GELU) check_each(name, got, ref, etol<E>(1e-3), 1e-6, "exact GELU ");
    std::vector<float> xf;
    float *dxf = up_f(xf, (size_t)n, 4.f);
    CHECKF(sembed__cu_act_f32(dxf, n, kind, 0, &e) == SEMBED_OK, "%s", e.msg);
    CK(cudaDeviceSynchronize());
    sembed__backend_ref.act(xf.data(), n, kind, &ex);
    snprintf(name, sizeof name, "act f32 kind=%d n=%lld", (int)kind, (long long)n);
    /* element by element, relative 1e-5 with an absolute floor: both sides compute GELU as
     * 0.5 x (1 + erf(x / sqrt 2)), and for x < -2 the sum cancels, so an ulp between CUDA's and
     * the C library's erff is a large relative error of a tiny result (seen: 2.6e-4 at n = 1) */
    printf("  %-44s max rel err %.2e\n", name, check_each(name, down_f(dxf, (size_t)n), xf, 1e-5, 1e-6, ""));
    check_guards_and_free(name);
}

template <class E> static void test_pool(int32_t H, bool with_skip) {
    const std::vector<int32_t> lens = {1, 3, 64, 2, 100, 513};
    std::vector<int32_t> off(1, 0), skip = {0, 1, 5, 2, 0, 7};
    for (int32_t L : lens) off.push_back(off.back() + L);
    const int32_t S = (int32_t)lens.size(), T = off.back();
    std::vector<float> x;
    E *dx = up_e<E>(x, (size_t)T * H, 2.f);
    sembed__cu_pool_kinds kinds = {6, {SEMBED__POOLK_CLS, SEMBED__POOLK_MEAN, SEMBED__POOLK_MAX,
                                       SEMBED__POOLK_MEAN_SQRT_LEN, SEMBED__POOLK_WEIGHTED_MEAN,
                                       SEMBED__POOLK_LAST}};
    const size_t F = (size_t)6 * H;
    float *out = (float *)dalloc(S * F * 4);
    CK(cudaMemset(out, 0xFF, S * F * 4));
    int32_t *doff = up_i(off), *dskip = with_skip ? up_i(skip) : NULL;
    sembed_error e;
    CHECKF(sembed__cu_pool(out, dx, doff, dskip, kinds, S, H, 0, &e) == SEMBED_OK, "%s", e.msg);
    CK(cudaDeviceSynchronize());
    std::vector<float> ref(S * F);
    sembed__exec ex = ref_ex(1);
    sembed__backend_ref.pool(ref.data(), x.data(), off.data(), with_skip ? skip.data() : NULL,
                             kinds.k, 6, S, H, &ex);
    char name[96];
    snprintf(name, sizeof name, "pool %s 6 kinds H=%d skip=%d", ename<E>(), H, with_skip);
    compare(name, down_f(out, S * F), ref, 1e-5);
    /* pooling and normalization in one kernel, against ref's pool then normalize */
    CK(cudaMemset(out, 0xFF, S * F * 4));
    CHECKF(sembed__cu_pool_normalize(out, NULL, dx, doff, dskip, kinds, S, H, 0, &e) == SEMBED_OK, "%s",
           e.msg);
    CK(cudaDeviceSynchronize());
    sembed__backend_ref.normalize(ref.data(), S, (int32_t)F, &ex);
    snprintf(name, sizeof name, "pool+normalize 6 kinds H=%d skip=%d", H, with_skip);
    compare(name, down_f(out, S * F), ref, 1e-5);
    /* one kind, as MiniLM (mean) */
    sembed__cu_pool_kinds mean = {1, {SEMBED__POOLK_MEAN}};
    CK(cudaMemset(out, 0xFF, S * F * 4));
    float *host = NULL, *host_d = NULL; /* the second output in mapped host memory */
    CK(cudaHostAlloc((void **)&host, (size_t)S * H * 4, cudaHostAllocMapped));
    CK(cudaHostGetDevicePointer((void **)&host_d, host, 0));
    std::fill(host, host + (size_t)S * H, NAN);
    CHECKF(sembed__cu_pool_normalize(out, host_d, dx, doff, dskip, mean, S, H, 0, &e) == SEMBED_OK,
           "%s", e.msg);
    CK(cudaDeviceSynchronize());
    CHECKF(memcmp(host, down_f(out, (size_t)S * H).data(), (size_t)S * H * 4) == 0,
           "pool+normalize: the mapped host copy differs from the device output");
    CK(cudaFreeHost(host));
    std::vector<float> ref1((size_t)S * H);
    sembed__backend_ref.pool(ref1.data(), x.data(), off.data(), with_skip ? skip.data() : NULL,
                             mean.k, 1, S, H, &ex);
    sembed__backend_ref.normalize(ref1.data(), S, H, &ex);
    snprintf(name, sizeof name, "pool+normalize mean H=%d skip=%d", H, with_skip);
    compare(name, down_f(out, (size_t)S * H), ref1, 1e-5);
    /* normalize, a zero row included */
    const int32_t R = 4, Fn = 385;
    std::vector<float> v;
    float *dv = up_f(v, (size_t)R * Fn, 1.f);
    CK(cudaMemset(dv + Fn, 0, Fn * 4));
    std::fill(v.begin() + Fn, v.begin() + 2 * Fn, 0.f);
    CHECKF(sembed__cu_normalize(dv, R, Fn, 0, &e) == SEMBED_OK, "%s", e.msg);
    CK(cudaDeviceSynchronize());
    sembed__backend_ref.normalize(v.data(), R, Fn, &ex);
    compare("normalize S=4 F=385 (a zero row)", down_f(dv, (size_t)R * Fn), v, 1e-6);
    check_guards_and_free(name);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool same_plan(const sembed__cu_gemm_shape &a, const sembed__cu_gemm_shape &b) {
    return !memcmp(&a.algo, &b.algo, sizeof a.algo) && a.M_small == b.M_small &&
           (a.M_small == 0 || !memcmp(&a.algo_small, &b.algo_small, sizeof a.algo_small)) &&
           a.M_own == b.M_own && a.sm90 == b.sm90 && (a.sm90 < 0 || a.M_sm90 == b.M_sm90);
}

/* The plan kept on disk (gemm.cu, "plans on disk"): a second process's plan (the in-process
 * plans forgotten) is read back, the same; a damaged file or a record out of range is timed
 * again and rewritten. */
static void test_gemm_plan_disk(cublasLtHandle_t lt) {
    char *dir = t_tmpdir();
    setenv("SEMBED_CACHE_DIR", dir, 1);
    char *path = sembed__path_join(dir, "gpu-plans.txt");
    const size_t WS = (size_t)32 << 20;
    sembed_error e;
    sembed__cu_gemm_shape a, b, c;
    sembed__cu_gemm_plan_forget();
    if (!sembed__cu_gemm_plan_uses_disk()) { /* as under compute-sanitizer: the file is bypassed */
        CHECKF(sembed__cu_gemm_plan(&c, lt, 1536, 384, 4096, SEMBED__CU_F16, true,
                                    SEMBED__ACTK_GELU, WS, &e) == SEMBED_OK, "%s", e.msg);
        CHECK(!sembed__file_exists(path));
        printf("  GEMM plan on disk: bypassed (a SEMBED_CUDA_GEMM* switch is set), nothing written\n");
        unsetenv("SEMBED_CACHE_DIR");
        sembed__cu_gemm_plan_forget();
        sembed__free(path);
        t_rmdir(dir);
        return;
    }
    const double t0 = now_ms();
    CHECKF(sembed__cu_gemm_plan(&a, lt, 1536, 384, 4096, SEMBED__CU_F16, true, SEMBED__ACTK_GELU,
                                WS, &e) == SEMBED_OK, "%s", e.msg);
    const double t1 = now_ms();
    CHECK(sembed__file_exists(path));
    sembed__cu_gemm_plan_forget();
    const double t2 = now_ms();
    CHECKF(sembed__cu_gemm_plan(&b, lt, 1536, 384, 65536, SEMBED__CU_F16, true, SEMBED__ACTK_GELU,
                                WS, &e) == SEMBED_OK, "%s", e.msg);
    const double t3 = now_ms();
    CHECK(same_plan(a, b));
    printf("  GEMM plan N=1536 K=384: timed %.1f ms, read from disk %.1f ms (own kernel M<=%lld, "
           "small algorithm M<=%lld, CUTLASS %d)\n", t1 - t0, t3 - t2, (long long)a.M_own,
           (long long)a.M_small, a.sm90);
    /* the record, as gemm.cu lays it out: two algorithms, M_small, M_own, M_sm90, sm90, format */
    char *data = NULL;
    size_t len = 0;
    CHECK(sembed__read_file(path, 1 << 20, &data, &len, &e) == SEMBED_OK);
    char key[SEMBED__CACHE_KEY_MAX];
    uint8_t rec[SEMBED__CACHE_VAL_MAX];
    size_t n = 0;
    const char *nl = data ? strchr(data, '\n') : NULL;
    CHECK(nl && sembed__cache_parse_line(data, (size_t)(nl - data), key, rec, &n) &&
          n == 2 * sizeof(cublasLtMatmulAlgo_t) + 32 && !strncmp(key, "gemm1/", 6));
    sembed__free(data);
    /* a record out of range (M_own not a multiple of 16): timed again, the record mended */
    int64_t bad = 7;
    memcpy(rec + 2 * sizeof(cublasLtMatmulAlgo_t) + 8, &bad, sizeof bad);
    CHECK(sembed__cache_put(path, key, rec, n));
    sembed__cu_gemm_plan_forget();
    CHECKF(sembed__cu_gemm_plan(&c, lt, 1536, 384, 4096, SEMBED__CU_F16, true, SEMBED__ACTK_GELU,
                                WS, &e) == SEMBED_OK, "%s", e.msg);
    CHECK(c.M_own % 16 == 0 && sembed__cache_get(path, key, rec, n));
    int64_t own = -1;
    memcpy(&own, rec + 2 * sizeof(cublasLtMatmulAlgo_t) + 8, sizeof own);
    CHECK(own == c.M_own);
    /* a damaged file: timed again, rewritten */
    CHECK(t_write_file(dir, "gpu-plans.txt", "\x01garbage\n", 9));
    sembed__cu_gemm_plan_forget();
    CHECKF(sembed__cu_gemm_plan(&c, lt, 1536, 384, 4096, SEMBED__CU_F16, true, SEMBED__ACTK_GELU,
                                WS, &e) == SEMBED_OK, "%s", e.msg);
    CHECK(sembed__cache_get(path, key, rec, n));
    /* a switch bypasses the file: nothing read, nothing written */
    remove(path);
    setenv("SEMBED_CUDA_GEMM_SMALL", "0", 1);
    sembed__cu_gemm_plan_forget();
    CHECKF(sembed__cu_gemm_plan(&c, lt, 1536, 384, 4096, SEMBED__CU_F16, true, SEMBED__ACTK_GELU,
                                WS, &e) == SEMBED_OK, "%s", e.msg);
    CHECK(!sembed__file_exists(path) && c.M_small == 0);
    unsetenv("SEMBED_CUDA_GEMM_SMALL");
    unsetenv("SEMBED_CACHE_DIR");
    sembed__cu_gemm_plan_forget();
    sembed__free(path);
    t_rmdir(dir);
}

int main(void) {
    /* SEMBED_TEST_QUICK=1 (under compute-sanitizer): the large shapes are left out */
    const bool quick = getenv("SEMBED_TEST_QUICK") && atoi(getenv("SEMBED_TEST_QUICK")) == 1;
    if (sembed__cuda_device_count() < 1) {
        printf("test_cuda_ops: no CUDA device, skipped\n");
        return 77;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("test_cuda_ops on %s\n", prop.name);

    test_embed_ln<__half>(1, 8, false);
    test_embed_ln<__half>(7, 384, true);
    test_embed_ln<__half>(1000, 768, true);
    test_embed_ln<__half>(33, 1024, false);
    test_embed_ln<sembed__bf16>(7, 384, true); /* SEMBED_PRECISION_BF16 on CUDA */
    test_embed_ln<sembed__bf16>(1000, 768, true);

    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cublasLtCreate failed\n");
        return 1;
    }
    void *ws;
    CK(cudaMalloc(&ws, (size_t)32 << 20));
    /* SEMBED_TEST_SKIP_GEMM=1: cuBLASLt's GEMMs left out (racecheck cannot run its Hopper
     * kernels: "Internal Sanitizer Error"; memcheck still covers them) */
    const char *skip_env = getenv("SEMBED_TEST_SKIP_GEMM");
    const bool gemm = !skip_env || !*skip_env || strcmp(skip_env, "0") == 0;
    if (!gemm) printf("  GEMM tests skipped (SEMBED_TEST_SKIP_GEMM)\n");
    test_gemm_small<__half>(1, 1152, 384, SEMBED__ACTK_IDENTITY, true);
    test_gemm_small<__half>(16, 384, 1536, SEMBED__ACTK_IDENTITY, true);
    test_gemm_small<__half>(17, 1536, 384, SEMBED__ACTK_GELU, true);
    test_gemm_small<__half>(40, 776, 256, SEMBED__ACTK_IDENTITY, false); /* N not a multiple of 32 */
    test_gemm_small<__half>(64, 768, 768, SEMBED__ACTK_GELU, false);
    test_gemm_small<sembed__bf16>(1, 1152, 384, SEMBED__ACTK_IDENTITY, true);
    test_gemm_small<sembed__bf16>(17, 1536, 384, SEMBED__ACTK_GELU, true);
    if (gemm) {
    test_gemm(lt, 1, 8, 8, SEMBED__CU_F16, true, ws);
    test_gemm(lt, 7, 1152, 384, SEMBED__CU_F16, true, ws);
    test_gemm(lt, 333, 384, 1536, SEMBED__CU_F16, true, ws);
    test_gemm(lt, 4096, 1152, 384, SEMBED__CU_F16, true, ws);
    if (!quick) test_gemm(lt, 4096, 768, 3072, SEMBED__CU_F16, true, ws);
    test_gemm(lt, 65, 1000, 72, SEMBED__CU_F16, true, ws);
    test_gemm(lt, 5, 256, 384, SEMBED__CU_F32, true, ws);
    test_gemm(lt, 300, 96, 200, SEMBED__CU_F32, false, ws);
    /* the encoder's shapes: MiniLM-L6 (H 384, I 1536), then BERT-base (768, 3072) */
    const int32_t rows_shapes[][2] = {{1152, 384}, {384, 384},  {1536, 384}, {384, 1536},
                                      {2304, 768}, {768, 768},  {3072, 768}, {768, 3072}};
    for (int i = 0; i < (quick ? 2 : 8); i++)
        test_gemm_rows<__half>(lt, rows_shapes[i][0], rows_shapes[i][1], SEMBED__ACTK_IDENTITY, quick, ws);
    /* the FFN's first GEMM with its GELU: fused in the small-M kernel, a pass after cuBLASLt */
    test_gemm_rows<__half>(lt, 1536, 384, SEMBED__ACTK_GELU, quick, ws);
    if (!quick) test_gemm_rows<__half>(lt, 3072, 768, SEMBED__ACTK_GELU, quick, ws);
    test_gemm(lt, 7, 1536, 384, SEMBED__CU_F16, true, ws, SEMBED__ACTK_GELU);
    test_gemm(lt, 16, 3072, 768, SEMBED__CU_F16, true, ws, SEMBED__ACTK_GELU);
    test_gemm(lt, 333, 1536, 384, SEMBED__CU_F16, true, ws, SEMBED__ACTK_GELU);
    /* bf16 (SEMBED_PRECISION_BF16 on CUDA): the planned GEMMs, their batch invariance */
    test_gemm(lt, 7, 1152, 384, SEMBED__CU_BF16, true, ws);
    test_gemm(lt, 4096, 1152, 384, SEMBED__CU_BF16, true, ws);
    test_gemm(lt, 333, 1536, 384, SEMBED__CU_BF16, true, ws, SEMBED__ACTK_GELU);
    test_gemm_rows<sembed__bf16>(lt, 1152, 384, SEMBED__ACTK_IDENTITY, quick, ws);
    test_gemm_rows<sembed__bf16>(lt, 1536, 384, SEMBED__ACTK_GELU, quick, ws);
    if (!quick) test_gemm_rows<sembed__bf16>(lt, 768, 3072, SEMBED__ACTK_IDENTITY, quick, ws);
    }
    /* CUTLASS's Hopper kernels, where built and on a 9.0 device */
    if (sembed__cu_sm90_configs() > 0 && prop.major == 9 && prop.minor == 0) {
        test_gemm_sm90(200, 1536, 384, SEMBED__ACTK_GELU, gemm ? lt : NULL, ws);
        test_gemm_sm90(1, 1536, 384, SEMBED__ACTK_GELU, gemm ? lt : NULL, ws);
        if (!quick) test_gemm_sm90(4099, 3072, 768, SEMBED__ACTK_GELU, gemm ? lt : NULL, ws);
    } else {
        printf("  CUTLASS GEMM tests skipped (%d configurations built; device %d.%d)\n",
               sembed__cu_sm90_configs(), prop.major, prop.minor);
    }
    if (gemm) test_gemm_plan_disk(lt);
    CK(cudaFree(ws));
    cublasLtDestroy(lt);

    /* both attention kernels: mma.sync everywhere, wgmma where built and on a 9.0 device */
    for (int k = 0; k < 2; k++) {
        sembed__att_force_kernel(k);
        if (k == 1 && !sembed__att_uses_sm90()) {
            printf("  wgmma attention tests skipped (built: %d; device %d.%d)\n",
                   (int)sembed__cu_sm90_attention_built(), prop.major, prop.minor);
            break;
        }
        att_kernel_name = k ? "wgmma" : "mma.sync";
        const std::vector<int32_t> lens = {1, 5, 64, 65, 130, 17, 512};
        test_attention<__half>(384, 12, false, lens);
        test_attention<__half>(768, 12, false, lens);
        test_attention<__half>(768, 12, true, lens);
        test_attention<__half>(384, 12, true, {3, 200});
        test_attention<__half>(64, 2, false, {1});
        test_attention<__half>(256, 4, false, {33, 128, 1, 2, 3});
        test_attention<__half>(384, 12, false, {192, 191, 129, 300});
        /* short sequences: the wgmma kernel puts 4 heads in a block up to 16 tokens and 2 up
         * to 32 where the head count allows (6: at most 2; 3: 1) */
        const std::vector<int32_t> shorts = {16, 17, 32, 33, 1, 9, 31, 15, 2, 24};
        test_attention<__half>(384, 12, false, shorts);
        test_attention<__half>(768, 12, false, shorts);
        test_attention<__half>(768, 12, true, shorts);
        test_attention<__half>(192, 6, false, shorts);
        test_attention<__half>(192, 3, true, shorts);
        test_attention<sembed__bf16>(384, 12, false, lens);
        test_attention<sembed__bf16>(768, 12, true, lens);
        test_attention<sembed__bf16>(768, 12, true, shorts);
    }
    sembed__att_force_kernel(-1);

    test_add_ln<__half>(1, 8, false);
    test_add_ln<__half>(77, 384, true);
    test_add_ln<__half>(quick ? 100 : 2048, 768, false);
    test_add_ln<__half>(9, 1000, true); /* 4 vectors per lane */
    test_add_ln<__half>(5, 2048, false);
    test_add_ln<sembed__bf16>(77, 384, true);
    test_add_ln<sembed__bf16>(quick ? 100 : 2048, 768, false);

    for (int k = SEMBED__ACTK_GELU; k <= SEMBED__ACTK_SIGMOID; k++) {
        test_act<__half>(1, 0, (sembed__act_kind)k);
        test_act<__half>(quick ? 1003 : 1000003, 1, (sembed__act_kind)k);
        test_act<sembed__bf16>(1003, 1, (sembed__act_kind)k);
    }
    if (!quick) test_act<__half>(4096 * 1536, 0, SEMBED__ACTK_GELU);

    test_pool<__half>(384, false);
    test_pool<__half>(72, true);
    test_pool<sembed__bf16>(384, true);
    return t_done("test_cuda_ops");
}
