/* cli_cmd.h - the confer command line: the command table, option parsing, and the helpers
 * commands share (session connection, passwords, error reporting, output).
 *
 * A command is one entry of the table in cli_cmd.c, {name, handler, summary}. A handler
 * gets argv with argv[0] the command's name, parses it with cli_args_parse against its
 * struct cli_usage (which also makes its --help), and returns an exit code:
 * CLI_EXIT_OK, CLI_EXIT_FAIL, or CLI_EXIT_USAGE. Errors go to ctx->err and say what to do.
 */
#ifndef CONFER_CLI_CMD_H
#define CONFER_CLI_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "cli_config.h"
#include "cli_conn.h"
#include "proto_schema.h"

#define CLI_VERSION      "0.1.0"
#define CLI_PASSWORD_MAX 1024 /* bytes (PROTOCOL.md section 9) */
#define CLI_MAX_ARGS     16   /* positional arguments of one command */

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_USAGE = 2,
};

/* What a command runs with. main builds it; tests build their own. */
struct cli_ctx {
    const char *prog;       /* "confer" */
    FILE *out;              /* results */
    FILE *err;              /* errors, warnings, prompts */
    int in_fd;              /* answers and --password-stdin lines */
    bool interactive;       /* in_fd and err are terminals: may prompt */
    bool json;              /* --json: results as JSON on out */
    int width;              /* columns for tables */
    struct cli_paths paths; /* configuration files */
    int connect_timeout_ms; /* 0: CLI_CONNECT_TIMEOUT_MS */
    const char *meeting;    /* --meeting/-m: overrides the session's meeting; NULL: none */
};

typedef int (*cli_cmd_fn)(struct cli_ctx *ctx, int argc, char **argv);

/* One command of the table. */
struct cli_cmd {
    const char *name;
    cli_cmd_fn run;
    const char *summary;
    const char *section; /* a heading printed before this command in --help; NULL: none */
};

/* Runs the command line argv[0..argc) (argv[0] the program) with ctx. Handles the global
 * options (--json, --help, --version) and `confer help [COMMAND]`. Returns the exit code. */
int cli_run(struct cli_ctx *ctx, int argc, char **argv);

/* Builds a ctx for the real terminal (stdout, stderr, stdin) and runs argv. Returns the
 * exit code. */
int cli_main(int argc, char **argv);

/* ---- options ---- */

enum cli_opt_kind {
    CLI_OPT_FLAG, /* --name sets *flag */
    CLI_OPT_STR,  /* --name VALUE or --name=VALUE sets *str */
};

struct cli_opt {
    const char *name; /* long name without "--" */
    char short_name;  /* 0: none */
    enum cli_opt_kind kind;
    const char *metavar; /* CLI_OPT_STR: shown in help, e.g. "SHA256:..." */
    const char *help;
    bool *flag;
    const char **str;
};

/* How a command is called; its --help is made from it. */
struct cli_usage {
    const char *cmd;      /* "login" */
    const char *synopsis; /* "USER@HOST[:PORT] [options]"; lines separated by '\n' */
    const char *about;    /* a paragraph */
    const struct cli_opt *opts;
    size_t nopts;
    bool json;    /* accepts --json */
    int min_args; /* positional arguments */
    int max_args;
    bool meeting; /* accepts -m/--meeting ID (sets ctx->meeting) */
};

struct cli_args {
    const char *v[CLI_MAX_ARGS];
    int n;
};

/* Parses argv[1..argc) against u: options anywhere, "--" ends them, -h/--help prints the
 * help to ctx->out, --json (when u->json) sets ctx->json, -m/--meeting ID (when u->meeting)
 * sets ctx->meeting. Returns true to run the command;
 * false with *exit_code set (CLI_EXIT_OK after --help, CLI_EXIT_USAGE after a usage error,
 * which is reported on ctx->err with a pointer to --help). */
bool cli_args_parse(struct cli_ctx *ctx, const struct cli_usage *u, int argc, char **argv,
                    struct cli_args *a, int *exit_code);

/* Prints u's help (usage lines, about, options) to f. */
void cli_usage_print(const struct cli_ctx *ctx, const struct cli_usage *u, FILE *f);

/* Reports a usage error ("confer login: MESSAGE" and "Try 'confer login --help'.") and
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(struct cli_ctx *ctx, const char *cmd, const char *fmt, ...);

/* ---- shared helpers ---- */

/* Prints "confer: MESSAGE" to ctx->err; returns CLI_EXIT_FAIL. */
int cli_fail(struct cli_ctx *ctx, const char *fmt, ...);

/* Reports an error response: "confer: WHAT: MESSAGE" plus advice by code (for
 * rate_limited, when to retry from data.retry_after_ms). Returns CLI_EXIT_FAIL. */
int cli_fail_rpc(struct cli_ctx *ctx, const char *what, const struct cli_msg *m);

/* Reports a failed call (transport error rc, or error response m). Returns CLI_EXIT_FAIL. */
int cli_fail_call(struct cli_ctx *ctx, const char *what, struct cli_conn *c, int rc,
                  const struct cli_msg *m);

/* Prints j (stealing the reference) as JSON on ctx->out. Returns CLI_EXIT_OK, or
 * CLI_EXIT_FAIL when j is NULL or writing fails. */
int cli_print_json(struct cli_ctx *ctx, json_t *j);

/* Reads one line from fd into buf (cap bytes, NUL-terminated, without the newline and a
 * trailing '\r'), byte by byte so nothing after the line is consumed. Returns 0,
 * PROTO_ECLOSED at end of input before any byte, PROTO_ETOOBIG when the line is longer than
 * cap - 1 (it is read to its end and buf wiped), PROTO_EIO. */
int cli_read_line(int fd, char *buf, size_t cap);

/* Asks question (a yes/no question, without the "(yes/no)") on ctx->err and reads the
 * answer from ctx->in_fd, up to three times. True on yes; false on no, end of input or no
 * clear answer. */
bool cli_ask_yes(struct cli_ctx *ctx, const char *question);

/* Reads a password. From the terminal (ctx->in_fd, without echo) when prompt is not NULL,
 * else one line of ctx->in_fd (--password-stdin). The newline is dropped. Returns 0,
 * PROTO_ECLOSED (end of input or Ctrl-C/Ctrl-D), PROTO_ETOOBIG (over CLI_PASSWORD_MAX
 * bytes), PROTO_EIO. buf must hold CLI_PASSWORD_MAX + 1 bytes; wipe it after use. */
int cli_read_password(struct cli_ctx *ctx, const char *prompt, char *buf, size_t cap);

/* Loads the session file into s. On failure prints why (e.g. "not logged in: run confer
 * login USER@HOST") and returns CLI_EXIT_FAIL; else CLI_EXIT_OK. */
int cli_session_get(struct cli_ctx *ctx, struct cli_session *s);

/* Connects to the session's server (its key must be pinned) and logs in with the session
 * token (auth.token). On success *out is the connection, and *result (when not NULL) the
 * auth.token response (free both). Prints why on failure ("... log in again: confer login
 * USER@HOST" when the token is refused) and returns CLI_EXIT_FAIL. */
int cli_session_connect(struct cli_ctx *ctx, const struct cli_session *s, struct cli_conn **out,
                        struct cli_msg **result);

/* As cli_session_connect, for a command that connects again by itself: on failure
 * *hopeless (when not NULL) says that trying again cannot help and must not be done: the
 * token was refused (a refused token counts as a failed login, and enough of them rate
 * limit the account), logins are rate limited, or the host key is not the pinned one. It
 * is false for a network or server that may come back. */
int cli_session_reconnect(struct cli_ctx *ctx, const struct cli_session *s, struct cli_conn **out,
                          struct cli_msg **result, bool *hopeless);

/* Opens a connection to host:port with the given policy, reporting failures on ctx->err.
 * Returns CLI_EXIT_OK or CLI_EXIT_FAIL. */
int cli_connect(struct cli_ctx *ctx, const char *hostport, const struct cli_host_policy *pol,
                struct cli_conn **out);

/* ---- a command's meeting ---- */

#define CLI_CID_LEN 22 /* base64url of 16 random bytes */

/* What a command that works on a meeting holds: the session, the connection, the meeting's
 * id, and the record once fetched. Zero it (memset) before cli_mtg_open; release it with
 * cli_mtg_close whatever happened. */
struct cli_mtg {
    struct cli_session s;
    struct cli_conn *c;
    char id[PROTO_NAME_MAX + 1]; /* "" when none is chosen and none was needed */
    struct cli_msg *got;         /* the meeting.get response, NULL before cli_mtg_fetch */
    const msgpack_object *rec;   /* got->result: {"seq", "meeting", "items", ...} */
};

/* Loads the session, picks the meeting (ctx->meeting, else the one chosen with confer use)
 * and connects. With need set and no meeting chosen, says "no meeting chosen: run confer use
 * MEETING (confer meetings lists yours)". Reports failures; returns an exit code. */
int cli_mtg_open(struct cli_ctx *ctx, struct cli_mtg *m, bool need);

/* (Re)reads the whole record with meeting.get into m->got / m->rec. Returns an exit code. */
int cli_mtg_fetch(struct cli_ctx *ctx, struct cli_mtg *m);

/* Calls method with params packed from fmt (cli_pack.h) and waits for the response. On a
 * transport error or an error response, reports it with cli_mtg_fail ("confer: WHAT: ...")
 * and returns CLI_EXIT_FAIL; else *out is the response (free it) and CLI_EXIT_OK. */
int cli_mtg_call(struct cli_ctx *ctx, struct cli_mtg *m, const char *what, struct cli_msg **out,
                 const char *method, const char *fmt, ...);

/* Sends a change (params: one packed map that holds a cid) and waits for its response. When
 * the connection breaks before the response, connects again and sends the same request
 * once more: the server applies a repeated cid once. Reports errors like cli_mtg_call. */
int cli_mtg_change(struct cli_ctx *ctx, struct cli_mtg *m, const char *what,
                   const struct proto_buf *params, const char *method, struct cli_msg **out);

/* Reports a failed call on the meeting in words that say what to do: not_found (of the
 * meeting), forbidden (naming the caller's role), locked, conflict (a stale if_seq),
 * bad_request (the server's message, which names the field), then as cli_fail_call.
 * Returns CLI_EXIT_FAIL. */
int cli_mtg_fail(struct cli_ctx *ctx, struct cli_mtg *m, const char *what, int rc,
                 const struct cli_msg *msg);

/* Closes the connection, frees the record and wipes the session. */
void cli_mtg_close(struct cli_mtg *m);

/* A fresh random change id (PROTOCOL.md section 7, cid) into out. */
void cli_cid_new(char out[CLI_CID_LEN + 1]);

/* Today's date "YYYY-MM-DD" in the time zone tz (an IANA name; NULL or "": local time). */
void cli_today(const char *tz, char out[11]);

/* The generic change of an object (cli_cmd_objects.c), driven by the option table of type
 * t: argv[0] is the verb, "add", "set" or "remove" (and for PROTO_T_MEETING "set" or
 * "create"), argv[1..] its arguments. Returns an exit code. */
int cli_obj_change(struct cli_ctx *ctx, enum proto_type t, int argc, char **argv);

/* Prints the objects of type t in arr (an array of object maps) as the table `confer
 * sessions` (etc.) shows them; rec, when not NULL, names the items that objects refer to.
 * Returns an exit code. */
int cli_obj_table(struct cli_ctx *ctx, enum proto_type t, const msgpack_object *rec,
                  const msgpack_object *arr);

/* Checks the audit head that ends an export of m's meeting, content[0..len): its signature
 * by the connection's (pinned) host key, and keeps it as the newest head seen (cli_audit.h).
 * An unsigned head (an older server) is a warning. Returns CLI_EXIT_OK, or CLI_EXIT_FAIL
 * (said on ctx->err) when the head is missing or malformed, its signature does not hold, or
 * it contradicts a head seen earlier. */
int cli_export_head_check(struct cli_ctx *ctx, const struct cli_mtg *m, const char *content,
                          size_t len);

/* Commands */
int cli_cmd_login(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_logout(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_whoami(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_passwd(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_ping(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_use(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_meetings(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_meeting(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_members(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_agenda(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_show(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_edit(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_write(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_watch(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_items(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_sessions(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_docs(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_actions(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_decisions(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_interims(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_people(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_history(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_export(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_import(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_audit(struct cli_ctx *ctx, int argc, char **argv);

/* The meeting's presence list (presence.list), or NULL: an old server or a lost connection
 * shows nobody. Free with cli_msg_free. */
struct cli_msg *cli_presence_fetch(struct cli_mtg *m);

/* The users present in object (type, id) in pres, but except (NULL: none), as "associate,
 * counsellor" (sanitized), or "". */
void cli_presence_in(const struct cli_msg *pres, const char *type, int64_t id, const char *except,
                     char *out, size_t cap);

#endif
