/* testsrv.h - a real conferd for the server tests: a temporary data folder, accounts,
 * a meeting, a free loopback port; and logged-in client connections to it. */
#ifndef CONFER_TESTSRV_H
#define CONFER_TESTSRV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli_conn.h"
#include "proto_ot.h"

struct ts_server {
    char *dir; /* temporary folder: data/, port file, log */
    pid_t pid; /* 0 when not running */
    int port;
    const char *const *serve_args; /* extra arguments of serve (NULL-terminated), or NULL */
};

/* Makes a data folder with the accounts names[i] (password "<name>-password", fast
 * hashing; the first one an operator) and, when meeting is not NULL, that meeting with
 * names[0] as its rapporteur; then starts conferd. Returns 0 or -1. */
int ts_start(struct ts_server *s, const char *const *names, const char *meeting);

/* As ts_start, with extra arguments for serve (NULL-terminated, e.g. {"--login-timeout",
 * "4000", NULL}; kept by pointer, so ts_restart uses them too; NULL for none). */
int ts_start_args(struct ts_server *s, const char *const *names, const char *meeting,
                  const char *const *serve_args);

/* Starts conferd again on the same data folder and port (after ts_kill). */
int ts_restart(struct ts_server *s);

/* SIGKILL, no clean-up by the server. */
void ts_kill(struct ts_server *s);

/* SIGTERM and wait; removes the folder. Returns the server's exit status (0 is clean). */
int ts_stop(struct ts_server *s);

/* As ts_stop, but waits at most 15 s for the exit (then SIGKILL, and -1), and first reads
 * the server's log as it was after the exit into *log (malloc'd, NUL-terminated; NULL when
 * unreadable): sanitizer reports written at exit are in it. */
int ts_stop_log(struct ts_server *s, char **log);

/* Runs conferd with args (NULL-terminated) on the server's data folder, stdin from
 * input (may be NULL); returns its exit status. */
int ts_conferd(struct ts_server *s, const char *input, const char *const *args);

/* A connection logged in as name (password "<name>-password"), or NULL. */
struct cli_conn *ts_login(struct ts_server *s, const char *name);

/* The server's log so far (malloc'd, NUL-terminated; "" when there is none yet). */
char *ts_read_log(const struct ts_server *s);

/* A field of /proc/PID/status in KiB (field like "VmRSS:" or "VmHWM:"), or -1. */
long ts_proc_kib(pid_t pid, const char *field);

/* Sends text.edit of item id's body in meeting with op against base, without waiting for
 * the answer; *msgid gets its msgid. */
void ts_send_edit(struct cli_conn *c, const char *meeting, int64_t id, int64_t base,
                  const struct proto_op *op, uint32_t *msgid);

#endif
