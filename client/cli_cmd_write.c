/* cli_cmd_write.c - `confer write`: a live terminal editor of one text (in progress). */
#include "cli_cmd.h"

int cli_cmd_write(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail(ctx, "write: not yet available");
}
