/* commands.h — one function per subcommand, each in src/cli/cmd_<name>.c. They are declared weak so a
 * command whose file is not there yet builds as "not available" instead of breaking the link. */
#pragma once

#define QE_CMD(name) int cmd_##name(int argc, char **argv) __attribute__((weak))
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
