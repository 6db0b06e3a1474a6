/* main.c - the confer command-line client. */
#include "cli_cmd.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
