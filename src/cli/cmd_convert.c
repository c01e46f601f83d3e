/* cmd_convert.c — `qwen-edge convert DIR -o FILE.gguf [--type T]`: a Hugging Face Qwen2 folder
 * (config.json + safetensors + tokenizer.json) to one GGUF file (hf.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "hf.h"
#include "quant.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge convert DIR -o FILE.gguf [--type keep|f16|bf16|f32|q8_0|q5_0|q5_1|q4_0|q4_1]\n\n"
            "Converts a Hugging Face Qwen2 / Qwen2.5 model folder (config.json, model.safetensors or the sharded\n"
            "model-0000k-of-0000n.safetensors + model.safetensors.index.json, tokenizer.json, and\n"
            "tokenizer_config.json if present) to a GGUF file that qwen-edge and llama.cpp load.\n\n"
            "  -o FILE       output (written as FILE.part, renamed when complete)\n"
            "  --type T      weight matrices in T (default keep: as stored, bf16/f16/f32). Rows that do not fit\n"
            "                T's block fall back to q8_0, then f16. Norms and biases are always f32.\n\n"
            "You rarely need this: `qwen-edge serve -m DIR` converts a folder once into $QWEN_EDGE_HOME/cache/.\n");
}

int cmd_convert(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *type_name = "keep";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) out = argv[++i];
        else if ((!strcmp(a, "--type") || !strcmp(a, "--outtype")) && i + 1 < argc) type_name = argv[++i];
        else if (a[0] == '-') { fprintf(stderr, "qwen-edge convert: unknown option or missing value '%s'\n", a); return 2; }
        else if (!dir) dir = a;
        else { fprintf(stderr, "qwen-edge convert: one folder at a time\n"); return 2; }
    }
    if (!dir || !out) { usage(stderr); return 2; }
    int type = -1;
    if (strcasecmp(type_name, "keep") && strcasecmp(type_name, "auto")) {
        char lower[32];
        snprintf(lower, sizeof lower, "%s", type_name);
        for (char *p = lower; *p; p++) if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        type = qe_type_from_name(lower);
        if (type < 0 && !strcmp(lower, "fp16")) type = 1;
        if (type < 0) { fprintf(stderr, "qwen-edge convert: unknown --type '%s' (see --help)\n", type_name); return 2; }
    }
    if (!qe_hf_is_folder(dir)) {
        fprintf(stderr, "qwen-edge convert: %s is not a Hugging Face model folder (no config.json)\n", dir);
        return 1;
    }
    char err[QE_ERR_LEN];
    double t0 = qe_now();
    if (qe_hf_to_gguf(dir, out, type, err)) {
        fprintf(stderr, "qwen-edge convert: %s\n", err);
        return 1;
    }
    fprintf(stderr, "wrote %s in %.1f s\n", out, qe_now() - t0);
    return 0;
}
