/* mapfile.h — open a file and map it read-only: the only way weight files are read. The parsers
 * (gguf.h, safetensors) then work on the (data, size) pair and never do I/O themselves. */
#pragma once
#include <stdint.h>

#include "base.h"

typedef struct {
    const uint8_t *data; /* borrowed by everyone else; valid until qe_mapfile_close */
    uint64_t size;
} qe_mapfile;

/* Maps `path` read-only. Fails with a clear message for a missing file, a directory, an empty file or an
 * I/O error (QE_EIO / QE_EFORMAT for empty). On failure *map is zeroed and safe to close. */
int qe_mapfile_open(const char *path, qe_mapfile *map, char *err);
/* Unmaps; a zeroed or already closed map is fine. */
void qe_mapfile_close(qe_mapfile *map);
