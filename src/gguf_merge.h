/* gguf_merge.h — joins the parts of a split GGUF (llama.cpp's gguf-split: part k of n is
 * NAME-0000k-of-0000n.gguf, each a valid GGUF holding some of the tensors, the first one all of the
 * metadata plus split.no / split.count / split.tensors.count) into one plain GGUF file. Used by pull.c, so
 * a split model on the hub becomes one ordinary file in the store. */
#pragma once
#include "base.h"

/* Writes out_path (through out_path.part, renamed when complete). parts[] in order, n >= 1. */
int qe_gguf_merge(const char *const *parts, int n, const char *out_path, char *err);
