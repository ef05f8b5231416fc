/* cuda_common.cu — the failure path of the check macro (cuda_common.cuh). Not an op. */
#include "cuda_common.cuh"

#include <stdlib.h>
#include <string.h>

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
