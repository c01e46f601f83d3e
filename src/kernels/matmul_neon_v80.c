/* matmul_neon_v80.c — the "neon-v80" kernel set: matmul_neon.c compiled without dotprod (sdot emulated there), for
 * ARMv8.0 cores such as the Raspberry Pi 4's Cortex-A72. Same layouts and results as the "neon" set. */
#define QE_NEON_V80 1
#include "matmul_neon.c"
