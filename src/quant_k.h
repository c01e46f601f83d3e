/* quant_k.h — the searched encoders (f32 -> k-quants and iq4_nl), used through quant.h's traits table.
 * n is a multiple of the type's block size. */
#pragma once
#include <stdint.h>

void qe_q2_K_from_float(const float *x, void *dst, int64_t n);
void qe_q3_K_from_float(const float *x, void *dst, int64_t n);
void qe_q4_K_from_float(const float *x, void *dst, int64_t n);
void qe_q5_K_from_float(const float *x, void *dst, int64_t n);
void qe_q6_K_from_float(const float *x, void *dst, int64_t n);
void qe_iq4_nl_from_float(const float *x, void *dst, int64_t n);
