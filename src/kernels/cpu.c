/* cpu.c — CPU feature detection and the one-time choice of kernel set (see cpu.h, kern.h). */
#include "kernels/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"

#if defined(__x86_64__)
#include <cpuid.h>
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

static qe_cpu_features g_cpu;
static char g_desc[160];
static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;

static void detect(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = c & bit_OSXSAVE;
    bool avx = c & bit_AVX;
    bool fma = c & bit_FMA, f16c = c & bit_F16C;
    /* The OS must save the registers: XCR0 bits 1,2 (SSE, AVX) and 5,6,7 (opmask, ZMM_Hi256, Hi16_ZMM). */
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    g_cpu.avx2 = avx && os_avx && (b & bit_AVX2);
    g_cpu.fma = os_avx && fma;
    g_cpu.f16c = os_avx && f16c;
    g_cpu.avx512f = os_avx512 && (b & bit_AVX512F);
    g_cpu.avx512bw = os_avx512 && (b & bit_AVX512BW);
    g_cpu.avx512vl = os_avx512 && (b & bit_AVX512VL);
    g_cpu.avx512dq = os_avx512 && (b & bit_AVX512DQ);
    g_cpu.avx512vnni = os_avx512 && (c & (1u << 11));
#elif defined(__aarch64__)
    g_cpu.neon = true;
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
    g_cpu.dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
#endif
    static const struct { const char *name; size_t off; } names[] = {
        {"avx2", offsetof(qe_cpu_features, avx2)},         {"fma", offsetof(qe_cpu_features, fma)},
        {"f16c", offsetof(qe_cpu_features, f16c)},         {"avx512f", offsetof(qe_cpu_features, avx512f)},
        {"avx512bw", offsetof(qe_cpu_features, avx512bw)}, {"avx512vl", offsetof(qe_cpu_features, avx512vl)},
        {"avx512dq", offsetof(qe_cpu_features, avx512dq)}, {"avx512vnni", offsetof(qe_cpu_features, avx512vnni)},
        {"neon", offsetof(qe_cpu_features, neon)},         {"dotprod", offsetof(qe_cpu_features, dotprod)},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (*(const bool *)((const char *)&g_cpu + names[i].off)) {
            size_t l = strlen(g_desc);
            snprintf(g_desc + l, sizeof g_desc - l, "%s%s", l ? " " : "", names[i].name);
        }
    if (!g_desc[0]) snprintf(g_desc, sizeof g_desc, "(no SIMD)");
}

const qe_cpu_features *qe_cpu(void) { pthread_once(&g_cpu_once, detect); return &g_cpu; }
const char *qe_cpu_describe(void) { pthread_once(&g_cpu_once, detect); return g_desc; }

/* Kernel sets whose ISA file is not compiled for this architecture (the Makefile filters *_avx2.c and
 * *_avx512.c out on aarch64, *_neon.c on x86-64). Not weak symbols: a weak definition here would stop the
 * linker from pulling the real one out of libqwen.a. */
#if !defined(__x86_64__)
const qe_kernel_set *qe_kernels_avx512(void) { return NULL; }
const qe_kernel_set *qe_kernels_avx2(void) { return NULL; }
#endif
#if !defined(__aarch64__)
const qe_kernel_set *qe_kernels_neon(void) { return NULL; }
const qe_kernel_set *qe_kernels_neon_v80(void) { return NULL; }
#endif

static const qe_kernel_set *g_active;
static pthread_once_t g_ks_once = PTHREAD_ONCE_INIT;

const char *const qe_kernel_set_names[] = {"avx512", "avx2", "neon", "neon-v80", NULL};

const qe_kernel_set *qe_kernels_usable(const char *name) {
    const qe_cpu_features *f = qe_cpu();
    if (!strcmp(name, "avx512"))
        return f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512vnni && f->fma && f->f16c
                   ? qe_kernels_avx512() : NULL;
    if (!strcmp(name, "avx2")) return f->avx2 && f->fma && f->f16c ? qe_kernels_avx2() : NULL;
    if (!strcmp(name, "neon")) return f->neon && f->dotprod ? qe_kernels_neon() : NULL;
    if (!strcmp(name, "neon-v80")) return f->neon ? qe_kernels_neon_v80() : NULL; /* ARMv8.0: no sdot */
    return NULL;
}

static void choose(void) {
    const char *env = getenv("QE_KERNELS");
    if (env && *env) {
        if (!strcmp(env, "ref")) { g_active = NULL; return; }
        g_active = qe_kernels_usable(env);
        if (g_active) return;
        qe_log(QE_LOG_WARN, "QE_KERNELS=%s is not available on this CPU (%s); choosing automatically", env,
               qe_cpu_describe());
    }
    for (size_t i = 0; qe_kernel_set_names[i] && !g_active; i++) g_active = qe_kernels_usable(qe_kernel_set_names[i]);
}

const qe_kernel_set *qe_kernels_active(void) { pthread_once(&g_ks_once, choose); return g_active; }
void qe_kernels_force(const qe_kernel_set *ks) { pthread_once(&g_ks_once, choose); g_active = ks; }
const char *qe_kernels_name(void) { const qe_kernel_set *k = qe_kernels_active(); return k ? k->name : "ref"; }
