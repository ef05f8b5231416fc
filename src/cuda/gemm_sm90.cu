/* gemm_sm90.cu — Hopper GEMMs of CUTLASS (TMA + wgmma, warp-specialized, persistent) with
 * sembed's epilogue fused: y = act(fp16(x · wᵀ + b)), the bias added to the fp32 accumulator,
 * one rounding to fp16, then the activation on that fp16 value, rounded again — the bits
 * cuBLASLt's BIAS epilogue followed by act.cu's pass give (whether they do is checked at plan
 * time in gemm.cu and by test_cuda_ops, never assumed). What it saves: the FFN's GELU pass, a
 * read and a write of the (T, I) activations (1.15 ms of BERT-base 256×128 on an H200).
 *
 * Built only where CUTLASS's headers were found (SEMBED_HAVE_CUTLASS, see cuda.cmake) and for
 * sm_90a (wgmma needs the arch-specific target); elsewhere sembed__cu_sm90_configs() is 0. */
/* CUTLASS's device asserts are calls: with them, ptxas serializes the wgmma pipeline in every
 * kernel here (its warning C7510). This file is built without them whatever the build type. */
#ifndef NDEBUG
#define NDEBUG
#endif
#include "gemm_sm90.cuh"

#include "act.cuh"

#if defined(SEMBED_HAVE_CUTLASS)

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/sm90_visitor_compute_tma_warpspecialized.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/util/packed_stride.hpp"

namespace {

using namespace cute;
namespace fusion = cutlass::epilogue::fusion;

/* The activation on fp32 values that hold fp16 numbers (the input node rounded them). */
template <class T>
struct GeluOnF16;
template <int N>
struct GeluOnF16<cutlass::Array<float, N>> {
    CUTLASS_DEVICE cutlass::Array<float, N> operator()(cutlass::Array<float, N> const &v) const {
        cutlass::Array<float, N> o;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; i++) o[i] = sembed__gelu_f16(v[i]);
        return o;
    }
};

/* acc + b (fp32), rounded once to fp16 */
template <class Tile>
using BiasNode = fusion::Sm90EVT<
    fusion::Sm90Compute<cutlass::plus, cutlass::half_t, float, cutlass::FloatRoundStyle::round_to_nearest>,
    fusion::Sm90AccFetch,
    fusion::Sm90RowBroadcast<0, Tile, cutlass::half_t, float, Stride<_0, _1, int64_t>, 8>>;

/* gelu of that fp16 value, rounded again */
template <class Tile>
using GeluNode = fusion::Sm90EVT<
    fusion::Sm90Compute<GeluOnF16, cutlass::half_t, float, cutlass::FloatRoundStyle::round_to_nearest>,
    BiasNode<Tile>>;

template <class Tile, class Cluster, class MainSched, class EpiSched, bool GELU>
struct Cfg {
    using Fusion = cute::conditional_t<GELU, GeluNode<Tile>, BiasNode<Tile>>;
    using Epi = typename cutlass::epilogue::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Tile, Cluster,
        cutlass::epilogue::collective::EpilogueTileAuto, float, float, void,
        cutlass::layout::RowMajor, 8, cutlass::half_t, cutlass::layout::RowMajor, 8, EpiSched,
        Fusion>::CollectiveOp;
    using Main = typename cutlass::gemm::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, cutlass::half_t,
        cutlass::layout::RowMajor, 8, cutlass::half_t, cutlass::layout::ColumnMajor, 8, float,
        Tile, Cluster,
        cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
            sizeof(typename Epi::SharedStorage))>,
        MainSched>::CollectiveOp;
    using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Main, Epi>;
    using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

    static typename Gemm::Arguments args(__half *y, const __half *x, const __half *w,
                                         const __half *b, int M, int N, int K) {
        using SA = typename Gemm::GemmKernel::StrideA;
        using SB = typename Gemm::GemmKernel::StrideB;
        using SD = typename Gemm::GemmKernel::StrideD;
        typename Gemm::Arguments a{};
        a.mode = cutlass::gemm::GemmUniversalMode::kGemm;
        a.problem_shape = {M, N, K, 1};
        a.mainloop.ptr_A = reinterpret_cast<const cutlass::half_t *>(x);
        a.mainloop.dA = cutlass::make_cute_packed_stride(SA{}, cute::make_shape(M, K, 1));
        a.mainloop.ptr_B = reinterpret_cast<const cutlass::half_t *>(w);
        a.mainloop.dB = cutlass::make_cute_packed_stride(SB{}, cute::make_shape(N, K, 1));
        a.epilogue.ptr_C = nullptr;
        a.epilogue.ptr_D = reinterpret_cast<cutlass::half_t *>(y);
        a.epilogue.dD = cutlass::make_cute_packed_stride(SD{}, cute::make_shape(M, N, 1));
        a.epilogue.dC = a.epilogue.dD;
        typename BiasNode<Tile>::Arguments bias_args{
            {}, {reinterpret_cast<const cutlass::half_t *>(b), cutlass::half_t(0), {}}, {}};
        if constexpr (GELU)
            a.epilogue.thread = {bias_args, {}};
        else
            a.epilogue.thread = bias_args;
        return a;
    }

    static cudaError_t run(__half *y, const __half *x, const __half *w, const __half *b, int M,
                           int N, int K, void *ws, size_t ws_bytes, cudaStream_t st,
                           size_t *ws_needed) {
        Gemm g;
        const typename Gemm::Arguments a = args(y, x, w, b, M, N, K);
        if (g.can_implement(a) != cutlass::Status::kSuccess) return cudaErrorNotSupported;
        const size_t need = Gemm::get_workspace_size(a);
        if (ws_needed) *ws_needed = need;
        if (need > ws_bytes) return cudaErrorInvalidValue;
        if (!y) return cudaSuccess; /* a query of the workspace alone */
        if (g.initialize(a, ws, st) != cutlass::Status::kSuccess) return cudaErrorLaunchFailure;
        const cutlass::Status s = g.run(st);
        return s == cutlass::Status::kSuccess ? cudaGetLastError() : cudaErrorLaunchFailure;
    }
};

using Coop = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using CoopEpi = cutlass::epilogue::TmaWarpSpecializedCooperative;
using Ping = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using PingEpi = cutlass::epilogue::TmaWarpSpecialized;

typedef cudaError_t (*run_fn)(__half *, const __half *, const __half *, const __half *, int, int,
                              int, void *, size_t, cudaStream_t, size_t *);

struct cfg_entry {
    const char *name;
    run_fn run;
};

using T128x256 = Shape<_128, _256, _64>;
using T256x128 = Shape<_256, _128, _64>;
using T128x128 = Shape<_128, _128, _64>;
using T64x256 = Shape<_64, _256, _64>;
using C1 = Shape<_1, _1, _1>;
using C2 = Shape<_2, _1, _1>;
/* GELU only: for the plain bias epilogue, cuBLASLt's kernels were 10-25% faster than every
 * configuration here at the encoders' shapes (H200, dev/kernels/NOTES.md) */
#define CFG(name, T, C, S, E) {name, Cfg<T, C, S, E, true>::run}
const cfg_entry CFGS[] = {
    CFG("coop 128x256x64", T128x256, C1, Coop, CoopEpi),
    CFG("coop 128x256x64 c2", T128x256, C2, Coop, CoopEpi),
    CFG("coop 256x128x64", T256x128, C1, Coop, CoopEpi),
    CFG("coop 256x128x64 c2", T256x128, C2, Coop, CoopEpi),
    CFG("ping 128x128x64", T128x128, C1, Ping, PingEpi),
    CFG("ping 64x256x64", T64x256, C1, Ping, PingEpi),
};
#undef CFG

} // namespace

int sembed__cu_sm90_configs(void) { return (int)(sizeof CFGS / sizeof CFGS[0]); }

const char *sembed__cu_sm90_name(int cfg) {
    return cfg >= 0 && cfg < sembed__cu_sm90_configs() ? CFGS[cfg].name : "none";
}

cudaError_t sembed__cu_sm90_gemm(int cfg, bool gelu, __half *y, const __half *x, const __half *w,
                                 const __half *b, int64_t M, int32_t N, int32_t K, void *ws,
                                 size_t ws_bytes, cudaStream_t st, size_t *ws_needed) {
    if (cfg < 0 || cfg >= sembed__cu_sm90_configs() || M < 1 || M > INT32_MAX || !b)
        return cudaErrorInvalidValue;
    if (!gelu) return cudaErrorNotSupported;
    return CFGS[cfg].run(y, x, w, b, (int)M, N, K, ws, ws_bytes, st, ws_needed);
}

#else /* no CUTLASS: no configurations */

int sembed__cu_sm90_configs(void) { return 0; }
const char *sembed__cu_sm90_name(int) { return "none"; }
cudaError_t sembed__cu_sm90_gemm(int, bool, __half *, const __half *, const __half *,
                                 const __half *, int64_t, int32_t, int32_t, void *, size_t,
                                 cudaStream_t, size_t *) {
    return cudaErrorNotSupported;
}

#endif
