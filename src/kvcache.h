/* kvcache.h — the f16 key/value cache of every slot, and the operations the scheduler needs on it.
 *
 * Layout: for each slot and layer, keys and values of every KV head in the layout attention reads
 * (kernels/ops.h: per head, keys dimension-major in blocks of 16 positions, values position-major; heads
 * head_stride = ctx_pad * head_dim elements apart), so the thread that owns a KV head streams two contiguous
 * regions. The whole cache is reserved with mmap (MAP_NORESERVE): pages become resident only when a position is
 * written, so a server with 4 slots of 4k context costs memory for the tokens it actually holds. Only the
 * engine thread touches it. */
#pragma once
#include <stdint.h>

typedef struct {
    int n_layer, n_slots, n_ctx, n_head_kv, head_dim;
    int64_t head_stride; /* elements between two KV heads' regions: n_ctx rounded up to 16, times head_dim */
    uint16_t *k, *v;     /* owned mapping */
    uint64_t bytes;      /* reserved (not resident) bytes of k + v */
} qe_kvcache;

int qe_kvcache_init(qe_kvcache *kv, int n_layer, int n_slots, int n_ctx, int n_head_kv, int head_dim, char *err);
void qe_kvcache_free(qe_kvcache *kv);

/* Keys and values of one slot and layer (every KV head), as qe_attention takes them. */
static inline uint16_t *qe_kv_k(const qe_kvcache *kv, int slot, int layer) {
    return kv->k + ((uint64_t)slot * kv->n_layer + layer) * (uint64_t)kv->n_head_kv * kv->head_stride;
}
static inline uint16_t *qe_kv_v(const qe_kvcache *kv, int slot, int layer) {
    return kv->v + ((uint64_t)slot * kv->n_layer + layer) * (uint64_t)kv->n_head_kv * kv->head_stride;
}

/* Stores one position's keys and values (n_head_kv * head_dim floats each, heads one after the other) as fp16. */
void qe_kvcache_store(qe_kvcache *kv, int slot, int layer, int pos, const float *k, const float *v);

/* Reads back one position's keys (n_head_kv * head_dim floats), for tests and tools. */
void qe_kvcache_load_keys(const qe_kvcache *kv, int slot, int layer, int pos, float *k);

/* Removes positions [p0, p0 + n_drop) of a slot holding n_used positions: the tail [p0 + n_drop, n_used) moves down
 * by n_drop and its keys are re-rotated by -n_drop positions (RoPE is a rotation, so R(pos - d) = R(-d) R(pos)).
 * Values do not depend on position and are only moved. */
void qe_kvcache_remove(qe_kvcache *kv, int slot, int p0, int n_drop, int n_used, float rope_base);

/* Copies positions [0, n) of slot `from` to slot `to` (a new request shares a prefix cached in a busy slot). */
void qe_kvcache_copy_prefix(qe_kvcache *kv, int from, int to, int n);
