/* cmd_list.c — `qwen-edge list`: the models in the store, with size and where they came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "modelstore.h"

int cmd_list(int argc, char **argv) {
    int paths = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qwen-edge list [--paths]\n\n"
                   "Lists the models in $QWEN_EDGE_HOME (default ~/.local/share/qwen-edge/models): name, size, file.\n"
                   "Unfinished downloads are marked (partial); `qwen-edge pull NAME` resumes them.\n"
                   "  --paths   print full paths instead of file names\n");
            return 0;
        }
        if (!strcmp(argv[i], "--paths")) paths = 1;
        else { fprintf(stderr, "qwen-edge list: unknown option '%s'\n", argv[i]); return 2; }
    }
    char dir[1024], err[QE_ERR_LEN];
    qe_model_entry *v;
    int n;
    if (qe_models_dir(dir, sizeof dir, err) || qe_model_list(&v, &n, err)) {
        fprintf(stderr, "qwen-edge list: %s\n", err);
        return 1;
    }
    if (n == 0) {
        printf("no models in %s yet: run `qwen-edge pull` to download %s\n", dir, QE_DEFAULT_MODEL);
        free(v);
        return 0;
    }
    printf("%-36s %10s  %s\n", "NAME", "SIZE", paths ? "PATH" : "FILE");
    for (int i = 0; i < n; i++) {
        char size[32];
        double b = (double)v[i].size;
        if (b >= 1073741824.0) snprintf(size, sizeof size, "%.2f GB", b / 1073741824.0);
        else snprintf(size, sizeof size, "%.1f MB", b / 1048576.0);
        printf("%-36s %10s  %s%s\n", v[i].name, size, paths ? v[i].path : v[i].file, v[i].partial ? "  (partial)" : "");
    }
    printf("(%s)\n", dir);
    free(v);
    return 0;
}
