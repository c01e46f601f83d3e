/* gguf_merge.c — see gguf_merge.h. (Interim: needs gguf.c's parser and writer, which land with the gguf
 * branch; until then split models are refused with a clear message.) */
#include "gguf_merge.h"

int qe_gguf_merge(const char *const *parts, int n, const char *out_path, char *err) {
    return qe_errf(err, QE_EUNSUPPORTED, "this build cannot merge split GGUF files yet; pick a quantization "
                   "published as one file (e.g. q4_k_m of a smaller size)");
}
