/* cuda_common.cu — the failure path of the check macro (cuda_common.cuh). Not an op. */
#include "cuda_common.cuh"

#include <stdlib.h>
#include <string.h>

#include <atomic>

sembed_status sembed__cu_fail(sembed_error *err, const char *expr, const char *where, int line,
                              const char *reason) {
    return sembed__err(err, SEMBED_ERR_BACKEND, "CUDA error at %s:%d: %s: %s", where, line, expr,
                       reason ? reason : "unknown");
}

bool sembed__cu_pdl_on(void) {
    static const bool on = [] {
        const char *e = getenv("SEMBED_CUDA_PDL");
        return !(e && strcmp(e, "0") == 0);
    }();
    return on;
}

bool sembed__cu_device_is_90(int dev) {
    static std::atomic<int8_t> known[64]; /* 0 unknown, 1 yes, 2 no */
    const bool slot = dev >= 0 && dev < 64;
    const int8_t k = slot ? known[dev].load(std::memory_order_relaxed) : 0;
    if (k) return k == 1;
    int major = 0, minor = 0;
    const bool yes =
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess &&
        major == 9 && minor == 0;
    (void)cudaGetLastError();
    if (slot) known[dev].store(yes ? 1 : 2, std::memory_order_relaxed);
    return yes;
}
