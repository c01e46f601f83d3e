/* matmul_neon.c — the aarch64 NEON (+dotprod) kernel set. Not written yet: on ARM the reference kernels run
 * (correct, ~40x slower than the SIMD sets on x86). This file exists so aarch64 builds link. */
#include "kernels/kern.h"

const qe_kernel_set *qe_kernels_neon(void) { return NULL; }
