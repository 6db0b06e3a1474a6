/* srv_ops.h - the operator commands of conferd (init, serve, user, meeting, ...). */
#ifndef CONFER_SRV_OPS_H
#define CONFER_SRV_OPS_H

/* Entry point of the operator commands: argv[0] is the command (init, serve, ...).
 * Returns the process exit code. */
int srv_main(int argc, char **argv);

#endif
