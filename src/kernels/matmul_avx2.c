/* matmul_avx2.c — the AVX2 + FMA + F16C kernel set (CPUs without AVX-512). Not written yet: the
 * reference path serves these CPUs. */
#include "kernels/kern.h"

const qe_kernel_set *qe_kernels_avx2(void) { return NULL; }
