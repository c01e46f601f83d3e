/* cpu.h — what this CPU can do (cpuid + OS support via xgetbv on x86, HWCAP on aarch64), detected once.
 * The kernel set is chosen from this in cpu.c; QE_KERNELS=ref|avx2|avx512|neon|neon-v80 overrides the choice. */
#pragma once
#include <stdbool.h>

typedef struct {
    bool avx2, fma, f16c;                     /* x86: the AVX2 kernel set needs all three */
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni; /* the AVX-512 set needs all five */
    bool neon, dotprod;                       /* aarch64 */
} qe_cpu_features;

const qe_cpu_features *qe_cpu(void);
/* One line such as "avx2 fma f16c avx512f avx512bw avx512vl avx512dq avx512vnni" for logs. */
const char *qe_cpu_describe(void);
