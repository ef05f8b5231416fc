/* gemm.cu — cuBLASLt plans with a fixed algorithm per (N, K). Row-major y (M, N) = x (M, K) ·
 * w (N, K)ᵀ is, in cuBLASLt's column-major terms, yᵀ (N×M) = op_T(w as K×N) · xᵀ (K×M).
 * Descriptors live on the stack (the Init forms), so a call allocates nothing. */
#include "gemm.cuh"

typedef struct gemm_descs {
    cublasLtMatmulDescOpaque_t op;
    cublasLtMatrixLayoutOpaque_t a, b, c;
} gemm_descs;

static sembed_status make_descs(gemm_descs *d, const sembed__cu_gemm_shape *g, int64_t M,
                                const void *bias, sembed_error *err) {
    const cudaDataType_t t = g->f32 ? CUDA_R_32F : CUDA_R_16F;
    SEMBED_CU(cublasLtMatmulDescInit(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (g->bias) {
        const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep,
                                                 sizeof ep));
        SEMBED_CU(cublasLtMatmulDescSetAttribute(&d->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                 sizeof bias));
    }
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->a, t, (uint64_t)g->K, (uint64_t)g->N, g->K));
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->b, t, (uint64_t)g->K, (uint64_t)M, g->K));
    SEMBED_CU(cublasLtMatrixLayoutInit(&d->c, t, (uint64_t)g->N, (uint64_t)M, g->N));
    return SEMBED_OK;
}

/* Is `algo` usable for M rows within the workspace? */
static bool algo_fits(cublasLtHandle_t lt, const sembed__cu_gemm_shape *g, const cublasLtMatmulAlgo_t *a,
                      int64_t M) {
    gemm_descs d;
    sembed_error e;
    /* any non-NULL bias pointer serves for the check (nothing runs) */
    if (make_descs(&d, g, M, g->bias ? (const void *)g : NULL, &e) != SEMBED_OK) return false;
    cublasLtMatmulHeuristicResult_t r;
    if (cublasLtMatmulAlgoCheck(lt, &d.op, &d.a, &d.b, &d.c, &d.c, a, &r) !=
        CUBLAS_STATUS_SUCCESS)
        return false;
    return r.workspaceSize <= g->ws_bytes;
}

sembed_status sembed__cu_gemm_plan(sembed__cu_gemm_shape *g, cublasLtHandle_t lt, int32_t N,
                                   int32_t K, int64_t M_max, bool f32, bool bias,
                                   size_t ws_bytes, sembed_error *err) {
    memset(g, 0, sizeof *g);
    g->N = N, g->K = K, g->M_max = M_max, g->f32 = f32, g->bias = bias, g->ws_bytes = ws_bytes;
    /* The heuristic is asked for a large M whatever M_max is, so that contexts of every size
     * pick the same algorithm (and small ones still get one without split-K). */
    const int64_t M_plan = M_max > 4096 ? M_max : 4096;
    gemm_descs d;
    sembed_status s = make_descs(&d, g, M_plan, bias ? (const void *)g : NULL, err);
    if (s != SEMBED_OK) return s;
    cublasLtMatmulPreferenceOpaque_t pref;
    SEMBED_CU(cublasLtMatmulPreferenceInit(&pref));
    SEMBED_CU(cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                   &ws_bytes, sizeof ws_bytes));
    enum { N_RES = 32 };
    cublasLtMatmulHeuristicResult_t res[N_RES];
    int n_res = 0;
    SEMBED_CU(cublasLtMatmulAlgoGetHeuristic(lt, &d.op, &d.a, &d.b, &d.c, &d.c, &pref, N_RES, res,
                                             &n_res));
    /* The first algorithm, in the heuristic's order for M_max, that splits no K, reduces
     * nothing across CTAs, and is valid for every M we will call it with. */
    const int64_t probe[] = {1, 2, 7, 16, 64, 333, M_max};
    for (int i = 0; i < n_res; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
        int32_t splitk = 1;
        uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE;
        size_t wr = 0;
        if (cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                                 &splitk, sizeof splitk, &wr) !=
                CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo,
                                                 CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red,
                                                 sizeof red, &wr) != CUBLAS_STATUS_SUCCESS)
            continue;
        if (splitk > 1 || red != CUBLASLT_REDUCTION_SCHEME_NONE) continue;
        bool ok = true;
        for (size_t p = 0; p < sizeof probe / sizeof probe[0] && ok; p++)
            if (probe[p] <= M_max) ok = algo_fits(lt, g, &res[i].algo, probe[p]);
        if (!ok) continue;
        g->algo = res[i].algo;
        cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_ID, &g->algo_id,
                                             sizeof g->algo_id, &wr);
        uint32_t tile = 0, stages = 0;
        cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile,
                                             sizeof tile, &wr);
        cublasLtMatmulAlgoConfigGetAttribute(&g->algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                             sizeof stages, &wr);
        g->tile_id = (int32_t)tile, g->stages_id = (int32_t)stages;
        return SEMBED_OK;
    }
    return sembed__err(err, SEMBED_ERR_BACKEND,
                       "cuBLASLt offers no fixed algorithm without split-K for a %s GEMM of "
                       "N=%d, K=%d, M up to %lld (%d candidates)",
                       f32 ? "fp32" : "fp16", N, K, (long long)M_max, n_res);
}

sembed_status sembed__cu_gemm(const sembed__cu_gemm_shape *g, cublasLtHandle_t lt, void *y,
                              const void *x, const void *w, const void *b, int64_t M, void *ws,
                              cudaStream_t stream, sembed_error *err) {
    SEMBED_ASSERT(M <= g->M_max && (b != NULL) == g->bias);
    if (M <= 0) return SEMBED_OK;
    gemm_descs d;
    sembed_status s = make_descs(&d, g, M, b, err);
    if (s != SEMBED_OK) return s;
    const float one = 1.0f, zero = 0.0f;
    SEMBED_CU(cublasLtMatmul(lt, &d.op, &one, w, &d.a, x, &d.b, &zero, y, &d.c, y, &d.c, &g->algo,
                             ws, g->ws_bytes, stream));
    return SEMBED_OK;
}
