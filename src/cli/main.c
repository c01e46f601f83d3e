/* main.c — `qwen-edge <command> [options]`: dispatches to the subcommands in cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "version.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"serve", cmd_serve, "chat page on http://localhost:8080 + OpenAI / ollama compatible API"},
    {"chat", cmd_chat, "talk to the model in the terminal (keeps the last 3 rounds)"},
    {"run", cmd_run, "answer one prompt and exit (-p TEXT)"},
    {"pull", cmd_pull, "download a model (Hugging Face, HF_ENDPOINT mirror, ModelScope, URL)"},
    {"list", cmd_list, "list downloaded models"},
    {"rm", cmd_rm, "delete a downloaded model"},
    {"info", cmd_info, "print a GGUF file's metadata and tensor table"},
    {"bench", cmd_bench, "measure prefill and decode speed"},
    {"tokenize", cmd_tokenize, "print the token ids of each line of stdin"},
    {"convert", cmd_convert, "convert a Hugging Face safetensors folder to GGUF"},
    {"kb", cmd_kb, "knowledge bases: add documents, search them, FAQ answers (docs/KB.md)"},
    {"mkmodel", cmd_mkmodel, "write a random-weight GGUF with Qwen2.5's exact shape (for tests)"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

bool cli_is_command(const char *word, size_t n) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strlen(commands[i].name) == n && !memcmp(commands[i].name, word, n)) return true;
    return false;
}

static void usage(FILE *out) {
    fprintf(out,
            "qwen-edge %s — run Qwen2.5 privately on your CPU\n\n"
            "usage: qwen-edge <command> [options]      (qwen-edge <command> --help for its options)\n\n"
            "commands:\n",
            QE_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nquick start:\n"
            "  qwen-edge serve                 download the default model if needed, open http://localhost:8080\n"
            "  qwen-edge chat -m model.gguf    chat in the terminal\n"
            "  qwen-edge run -m model.gguf -p \"你好\"\n");
}

int main(int argc, char **argv) {
    cli_set_self(argv[0]);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("qwen-edge %s\n", QE_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "qwen-edge: unknown command '%s' (see qwen-edge --help)\n", argv[1]);
    return 2;
}
