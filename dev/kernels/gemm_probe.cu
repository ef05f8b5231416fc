// gemm_probe.cu — what cuBLASLt offers for the encoder's GEMM shapes on this card (a dev tool,
// not part of libsembed): every heuristic candidate with its config attributes (split-K,
// reduction, tile, stages, swizzle), its time at M = 8192 and 32768, and an empirical batch
// invariance check (rows 0..6 and the last row computed at M = 32768 vs alone in M = 7 / 1).
// Also: does the GELU_BIAS epilogue compute erf GELU or the tanh form?
//   nvcc -O2 -arch=sm_90 -o gemm_probe dev/kernels/gemm_probe.cu -lcublasLt
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#define CK(x)                                                                                  \
    do {                                                                                       \
        auto e_ = (x);                                                                         \
        if ((int)e_ != 0) {                                                                    \
            fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__, #x, (int)e_);      \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static __global__ void fill(__half *p, long n, unsigned seed) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned h = (unsigned)i * 2654435761u + seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    p[i] = __float2half_rn((float)(h & 0xFFFF) / 32768.0f - 1.0f);
}

struct Descs {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
};
static Descs make(int N, int K, long M, const void *bias, cublasLtEpilogue_t ep) {
    Descs d;
    CK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    CK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
    if (bias) CK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    CK(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_16F, K, N, K));
    CK(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_16F, K, M, K));
    CK(cublasLtMatrixLayoutCreate(&d.c, CUDA_R_16F, N, M, N));
    return d;
}
static void destroy(Descs &d) {
    cublasLtMatmulDescDestroy(d.op);
    cublasLtMatrixLayoutDestroy(d.a), cublasLtMatrixLayoutDestroy(d.b), cublasLtMatrixLayoutDestroy(d.c);
}

int main() {
    cublasLtHandle_t lt;
    CK(cublasLtCreate(&lt));
    const long MBIG = 32768;
    const size_t WS = (size_t)32 << 20;
    void *ws;
    CK(cudaMalloc(&ws, WS));
    const int shapes[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536},
                             {2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    for (auto &sh : shapes) {
        const int N = sh[0], K = sh[1];
        __half *x, *w, *b, *y, *y2;
        CK(cudaMalloc(&x, MBIG * K * 2));
        CK(cudaMalloc(&w, (long)N * K * 2));
        CK(cudaMalloc(&b, N * 2));
        CK(cudaMalloc(&y, MBIG * N * 2));
        CK(cudaMalloc(&y2, 8L * N * 2));
        fill<<<(MBIG * K + 255) / 256, 256>>>(x, MBIG * K, 1);
        fill<<<((long)N * K + 255) / 256, 256>>>(w, (long)N * K, 2);
        fill<<<(N + 255) / 256, 256>>>(b, N, 3);
        for (long Mq : {8192L, 32768L}) {
            Descs d = make(N, K, Mq, b, CUBLASLT_EPILOGUE_BIAS);
            cublasLtMatmulPreference_t pref;
            CK(cublasLtMatmulPreferenceCreate(&pref));
            CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &WS, sizeof WS));
            cublasLtMatmulHeuristicResult_t res[64];
            int nres = 0;
            CK(cublasLtMatmulAlgoGetHeuristic(lt, d.op, d.a, d.b, d.c, d.c, pref, 64, res, &nres));
            printf("== N=%d K=%d heuristic at M=%ld: %d results\n", N, K, Mq, nres);
            for (int i = 0; i < nres && i < 24; i++) {
                int32_t id = -1, tile = -1, stages = -1, splitk = -1, swz = -1, custom = -1, inner = -1, cluster = -1;
                uint32_t red = 99;
                size_t wr;
                auto get = [&](cublasLtMatmulAlgoConfigAttributes_t a, void *v, size_t s) {
                    return (int)cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, a, v, s, &wr);
                };
                get(CUBLASLT_ALGO_CONFIG_ID, &id, 4);
                get(CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, 4);
                get(CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, 4);
                int rs = get(CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, 4);
                int rr = get(CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, 4);
                get(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swz, 4);
                get(CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, 4);
                get(CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &inner, 4);
                get(CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, 4);
                // time at Mq
                const float one = 1.f, zero = 0.f;
                float ms = -1;
                bool okrun = true;
                for (int r = 0; r < 3 && okrun; r++)
                    okrun = cublasLtMatmul(lt, d.op, &one, w, d.a, x, d.b, &zero, y, d.c, y, d.c, &res[i].algo, ws, WS, 0) == 0;
                if (okrun) {
                    cudaEventRecord(e0);
                    for (int r = 0; r < 20; r++)
                        cublasLtMatmul(lt, d.op, &one, w, d.a, x, d.b, &zero, y, d.c, y, d.c, &res[i].algo, ws, WS, 0);
                    cudaEventRecord(e1);
                    cudaEventSynchronize(e1);
                    cudaEventElapsedTime(&ms, e0, e1);
                    ms /= 20;
                }
                // batch invariance: rows 0..6 at Mq vs M=7, the last row vs M=1
                int inv = -1;
                if (okrun) {
                    Descs d7 = make(N, K, 7, b, CUBLASLT_EPILOGUE_BIAS), d1 = make(N, K, 1, b, CUBLASLT_EPILOGUE_BIAS);
                    cublasLtMatmulHeuristicResult_t chk;
                    bool v7 = cublasLtMatmulAlgoCheck(lt, d7.op, d7.a, d7.b, d7.c, d7.c, &res[i].algo, &chk) == 0;
                    bool v1 = cublasLtMatmulAlgoCheck(lt, d1.op, d1.a, d1.b, d1.c, d1.c, &res[i].algo, &chk) == 0;
                    if (v7 && v1) {
                        cudaMemset(y2, 0xFF, 8L * N * 2);
                        cublasLtMatmul(lt, d7.op, &one, w, d7.a, x, d7.b, &zero, y2, d7.c, y2, d7.c, &res[i].algo, ws, WS, 0);
                        cublasLtMatmul(lt, d1.op, &one, w, d1.a, x + (Mq - 1) * K, d1.b, &zero, y2 + 7L * N, d1.c, y2 + 7L * N, d1.c, &res[i].algo, ws, WS, 0);
                        std::vector<__half> A(8L * N), B(8L * N);
                        cudaMemcpy(A.data(), y, 7L * N * 2, cudaMemcpyDeviceToHost);
                        cudaMemcpy(A.data() + 7L * N, y + (Mq - 1) * N, N * 2L, cudaMemcpyDeviceToHost);
                        cudaMemcpy(B.data(), y2, 8L * N * 2, cudaMemcpyDeviceToHost);
                        inv = memcmp(A.data(), B.data(), 8L * N * 2) == 0;
                    } else
                        inv = -2;
                    destroy(d7), destroy(d1);
                }
                cudaGetLastError();
                printf("  %2d algo %3d tile %3d stages %3d splitk %d(rc%d) red %u(rc%d) swz %d custom %d inner %d cluster %d ws %zu: %.4f ms %.0f TFLOP/s invariant %d\n",
                       i, id, tile, stages, splitk, rs, red, rr, swz, custom, inner, cluster, res[i].workspaceSize, ms,
                       ms > 0 ? 2.0 * Mq * N * K / (ms * 1e9) : 0.0, inv);
            }
            cublasLtMatmulPreferenceDestroy(pref);
            destroy(d);
        }
        cudaFree(x), cudaFree(w), cudaFree(b), cudaFree(y), cudaFree(y2);
    }
    // GELU epilogue: erf or tanh?
    {
        const int N = 64, K = 64, M = 64;
        __half *x, *w, *b, *y;
        cudaMalloc(&x, M * K * 2), cudaMalloc(&w, N * K * 2), cudaMalloc(&b, N * 2), cudaMalloc(&y, M * N * 2);
        fill<<<16, 256>>>(x, M * K, 5), fill<<<16, 256>>>(w, N * K, 6), fill<<<1, 64>>>(b, N, 7);
        std::vector<__half> hx(M * K), hw(N * K), hb(N), hy(M * N);
        cudaMemcpy(hx.data(), x, M * K * 2, cudaMemcpyDeviceToHost);
        cudaMemcpy(hw.data(), w, N * K * 2, cudaMemcpyDeviceToHost);
        cudaMemcpy(hb.data(), b, N * 2, cudaMemcpyDeviceToHost);
        Descs d = make(N, K, M, b, CUBLASLT_EPILOGUE_GELU_BIAS);
        const float one = 1.f, zero = 0.f;
        CK(cublasLtMatmul(lt, d.op, &one, w, d.a, x, d.b, &zero, y, d.c, y, d.c, NULL, ws, WS, 0));
        cudaMemcpy(hy.data(), y, M * N * 2, cudaMemcpyDeviceToHost);
        double e_erf = 0, e_tanh = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double s = __half2float(hb[n]);
                for (int k = 0; k < K; k++) s += (double)__half2float(hx[m * K + k]) * __half2float(hw[n * K + k]);
                double ge = 0.5 * s * (1 + erf(s / sqrt(2.0)));
                double gt = 0.5 * s * (1 + tanh(0.7978845608 * (s + 0.044715 * s * s * s)));
                double v = __half2float(hy[m * N + n]);
                e_erf = fmax(e_erf, fabs(v - ge)), e_tanh = fmax(e_tanh, fabs(v - gt));
            }
        printf("GELU_BIAS epilogue: max |err| vs erf GELU %.3g, vs tanh GELU %.3g\n", e_erf, e_tanh);
    }
    return 0;
}
