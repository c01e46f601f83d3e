/* commands.h — one function per subcommand, each in src/cli/cmd_<name>.c (which includes this header, so a
 * signature that drifts is a compile error). Strong declarations: a command listed in main.c whose file is
 * missing is a link error, not a run-time "not available". */
#pragma once

#define QE_CMD(name) int cmd_##name(int argc, char **argv)
QE_CMD(run);
QE_CMD(chat);
QE_CMD(serve);
QE_CMD(bench);
QE_CMD(info);
QE_CMD(mkmodel);
QE_CMD(tokenize);
QE_CMD(pull);
QE_CMD(list);
QE_CMD(rm);
QE_CMD(convert);
QE_CMD(kb);
#undef QE_CMD

#include <stdbool.h>
#include <stddef.h>
/* True if word[0..n) names a command (main.c's table): "qwen-edge pull" in a message is a command to run. */
bool cli_is_command(const char *word, size_t n);
