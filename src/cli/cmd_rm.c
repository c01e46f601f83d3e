/* cmd_rm.c — `qwen-edge rm NAME...`: deletes models from the store (file, sidecar and any .part). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "modelstore.h"

int cmd_rm(int argc, char **argv) {
    int n = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qwen-edge rm NAME [NAME...]\n\n"
                   "Deletes downloaded models. NAME is what `qwen-edge list` shows (e.g. qwen2.5-0.5b-instruct:q8_0)\n"
                   "or the file name. An unfinished download (.part) is deleted too.\n");
            return 0;
        }
        char path[1400], err[QE_ERR_LEN];
        n++;
        if (qe_model_remove(argv[i], path, sizeof path, err)) { fprintf(stderr, "qwen-edge rm: %s\n", err); bad = 1; }
        else printf("removed %s\n", path);
    }
    if (!n) { fprintf(stderr, "usage: qwen-edge rm NAME (see `qwen-edge list`)\n"); return 2; }
    return bad;
}
