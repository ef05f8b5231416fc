/* cpu/isa.c — what the CPU can run, read once with cpuid/xgetbv (and, for AMX, the Linux
 * permission to use tile data), capped by the environment variable SEMBED_CPU_ISA (scalar,
 * avx2, avx512, or amx: the highest level to use; for tests and benchmarks). Not the kernels. */
#include "backend.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

static sembed__cpu_isa g_isa;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static void detect(void) {
    sembed__cpu_isa f = {0};
#if defined(__x86_64__)
    uint32_t a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) goto done;
    const bool osxsave = c & (1u << 27), fma = c & (1u << 12);
    if (!osxsave) goto done;
    const uint64_t xcr0 = xgetbv0();
    const bool ymm_os = (xcr0 & 6) == 6, zmm_os = (xcr0 & 0xe6) == 0xe6;
    const bool amx_os = (xcr0 & (3u << 17)) == (3u << 17);
    if (__get_cpuid_max(0, NULL) < 7) goto done;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5), f512 = b & (1u << 16), dq = b & (1u << 17),
               bw = b & (1u << 30), vl = b & (1u << 31), vnni = c & (1u << 11);
    const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
    uint32_t a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    (void)b1, (void)c1, (void)d1;
    f.avx2 = avx2 && fma && ymm_os;
    f.avx512 = f.avx2 && f512 && dq && bw && vl && zmm_os;
    f.avx512_vnni = f.avx512 && vnni;
    f.avx512_bf16 = f.avx512 && (a1 & (1u << 5));
    if (f.avx512 && amx_os && amx_tile && (amx_int8 || amx_bf16)) {
        /* Linux hands out AMX tile state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA) */
        if (syscall(SYS_arch_prctl, 0x1023, 18) == 0) {
            f.amx_int8 = amx_int8;
            f.amx_bf16 = amx_bf16;
        }
    }
done:;
#endif
    const char *cap = getenv("SEMBED_CPU_ISA");
    if (cap) {
        if (strcmp(cap, "amx") != 0) f.amx_int8 = f.amx_bf16 = false;
        if (strcmp(cap, "amx") != 0 && strcmp(cap, "avx512") != 0)
            f.avx512 = f.avx512_vnni = f.avx512_bf16 = false;
        if (strcmp(cap, "scalar") == 0) f.avx2 = false;
    }
    g_isa = f;
}

const sembed__cpu_isa *sembed__cpu_isa_get(void) {
    pthread_once(&g_once, detect);
    return &g_isa;
}

static sembed__cpu_isa g_detected;
static bool g_saved;

void sembed__cpu_isa_cap(int32_t level) {
    pthread_once(&g_once, detect);
    if (!g_saved) g_detected = g_isa, g_saved = true;
    sembed__cpu_isa f = g_detected;
    if (level < 4) f.amx_int8 = f.amx_bf16 = false;
    if (level < 3) f.avx512_vnni = f.avx512_bf16 = false;
    if (level < 2) f.avx512 = false;
    if (level < 1) f.avx2 = false;
    g_isa = f;
}
