/* cli_cmd.c - the confer command table, global options and option parsing. */
#include "cli_cmd.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_render.h"

/* confer undo and confer revert (cli_cmd_undo.c). */
int cli_cmd_undo(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_revert(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_share(struct cli_ctx *ctx, int argc, char **argv);

/* The commands, in the order `confer --help` lists them. */
static const struct cli_cmd commands[] = {
    {"login", cli_cmd_login, "log in to a server and remember the session", "session"},
    {"whoami", cli_cmd_whoami, "show who you are logged in as, and your meetings", NULL},
    {"ping", cli_cmd_ping, "measure the round trip to the server", NULL},
    {"passwd", cli_cmd_passwd, "change your password", NULL},
    {"logout", cli_cmd_logout, "end the session and forget its token", NULL},
    {"meetings", cli_cmd_meetings, "list your meetings", "meetings"},
    {"use", cli_cmd_use, "choose the meeting the other commands work on", NULL},
    {"meeting", cli_cmd_meeting, "show, change or create a meeting (show|set|create)", NULL},
    {"members", cli_cmd_members, "list the members of the meeting, set or remove one", NULL},
    {"agenda", cli_cmd_agenda, "the agenda: items, their documents, the sessions", "record"},
    {"show", cli_cmd_show, "show one agenda item and its text", NULL},
    {"edit", cli_cmd_edit, "edit a section's text in $EDITOR, merged with others' changes", NULL},
    {"write", cli_cmd_write, "write a section's text live in the terminal, with others", NULL},
    {"watch", cli_cmd_watch, "follow the meeting's changes live (and one section's text)", NULL},
    {"items", cli_cmd_items, "list agenda items; show, add, set or remove one; renumber", NULL},
    {"sessions", cli_cmd_sessions, "list sessions; show, add, set or remove one", NULL},
    {"docs", cli_cmd_docs, "list documents; show, add, set or remove one", NULL},
    {"actions", cli_cmd_actions, "list actions; show, add, set or remove one", NULL},
    {"decisions", cli_cmd_decisions, "list agreements; show, add, set or remove one", NULL},
    {"interims", cli_cmd_interims, "interim meetings and deadlines; show, add, set or remove one",
     NULL},
    {"deadlines", cli_cmd_interims, "the same as interims", NULL},
    {"people", cli_cmd_people, "list the officers and people; show, add, set or remove one", NULL},
    {"history", cli_cmd_history, "the changes to the meeting, newest first", "report"},
    {"undo", cli_cmd_undo, "undo your own latest change to the meeting", NULL},
    {"revert", cli_cmd_revert, "undo one change of the meeting, by its seq in history", NULL},
    {"export", cli_cmd_export, "print or save the report (text, markdown or html)", NULL},
    {"import", cli_cmd_import, "read a report into the meeting", NULL},
    {"share", cli_cmd_share, "links to the live view for the projector and delegates", NULL},
    {"audit", cli_cmd_audit, "check the audit log (audit verify) or a saved report (audit check)",
     NULL},
};

static const struct cli_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static void top_help(const struct cli_ctx *ctx, FILE *f)
{
    fprintf(f,
            "usage: %s [--json] [-m MEETING] COMMAND [ARGS...]\n"
            "       %s COMMAND --help\n"
            "\n"
            "A client for conferd, the server for drafting the report of a standards meeting.\n",
            ctx->prog, ctx->prog);
    size_t w = 0;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        size_t n = strlen(commands[i].name);
        w = n > w ? n : w;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (i == 0 || commands[i].section != NULL) {
            fprintf(f, "\n%s commands:\n", commands[i].section != NULL ? commands[i].section : "");
        }
        fprintf(f, "  %-*s  %s\n", (int)w, commands[i].name, commands[i].summary);
    }
    fprintf(f,
            "\n"
            "options:\n"
            "  --json                  print results as JSON\n"
            "  -m, --meeting MEETING   work on MEETING this once, not the one chosen with use\n"
            "  -h, --help              show this help and exit\n"
            "  -V, --version           print the version and exit\n"
            "\n"
            "Start with `%s login USER@HOST`, then `%s use MEETING`. Settings and the\n"
            "session live in $XDG_CONFIG_HOME/confer (default ~/.config/confer).\n"
            "Tables fit the terminal (or $COLUMNS), long text wrapping in its column; piped\n"
            "to a program they are one row a line, cells separated by tabs, nothing cut.\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            ctx->prog, ctx->prog);
}

int cli_run(struct cli_ctx *ctx, int argc, char **argv)
{
    int i = 1;
    char err[512];

    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *mval = NULL;
        if (strcmp(a, "--meeting") == 0 || strcmp(a, "-m") == 0) {
            if (i + 1 >= argc) {
                fprintf(ctx->err, "%s: option %s needs a meeting id\nTry '%s --help'.\n", ctx->prog,
                        a, ctx->prog);
                return CLI_EXIT_USAGE;
            }
            mval = argv[++i];
        } else if (strncmp(a, "--meeting=", 10) == 0) {
            mval = a + 10;
        }
        if (mval != NULL) {
            if (!proto_name_valid(mval, strlen(mval))) {
                fprintf(ctx->err,
                        "%s: not a meeting id: '%s' (lower-case letters, digits, '.', '_', "
                        "'-')\nTry '%s meetings' for yours.\n",
                        ctx->prog, mval, ctx->prog);
                return CLI_EXIT_USAGE;
            }
            ctx->meeting = mval;
        } else if (strcmp(a, "--json") == 0) {
            ctx->json = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            top_help(ctx, ctx->out);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            fprintf(ctx->out, "%s %s\n", ctx->prog, CLI_VERSION);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else {
            fprintf(ctx->err, "%s: unknown option %s\nTry '%s --help'.\n", ctx->prog, a, ctx->prog);
            return CLI_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        top_help(ctx, ctx->err);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 >= argc) {
            top_help(ctx, ctx->out);
            return CLI_EXIT_OK;
        }
        const struct cli_cmd *cmd = find_cmd(argv[i + 1]);
        if (cmd == NULL) {
            fprintf(ctx->err, "%s: unknown command '%s'\nTry '%s --help'.\n", ctx->prog,
                    argv[i + 1], ctx->prog);
            return CLI_EXIT_USAGE;
        }
        char *hargv[] = {argv[i + 1], "--help", NULL};
        return cmd->run(ctx, 2, hargv);
    }
    const struct cli_cmd *cmd = find_cmd(name);
    if (cmd == NULL) {
        fprintf(ctx->err, "%s: unknown command '%s'\nTry '%s --help' for the list.\n", ctx->prog,
                name, ctx->prog);
        return CLI_EXIT_USAGE;
    }
    if (ctx->paths.dir[0] == '\0' && cli_paths_init(&ctx->paths, err, sizeof(err)) != 0) {
        /* --help needs no configuration */
        bool help = false;
        for (int j = i + 1; j < argc; j++) {
            help = help || strcmp(argv[j], "-h") == 0 || strcmp(argv[j], "--help") == 0;
        }
        if (!help) {
            return cli_fail(ctx, "%s", err);
        }
    }
    return cmd->run(ctx, argc - i, argv + i);
}

int cli_main(int argc, char **argv)
{
    struct cli_ctx ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.prog = "confer";
    ctx.out = stdout;
    ctx.err = stderr;
    ctx.in_fd = STDIN_FILENO;
    ctx.interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
    ctx.width = cli_term_width(STDOUT_FILENO);
    if (sodium_init() < 0) {
        fprintf(stderr, "confer: cannot initialise libsodium\n");
        return CLI_EXIT_FAIL;
    }
    int code = cli_run(&ctx, argc, argv);
    if (fflush(stdout) != 0 && code == CLI_EXIT_OK) {
        code = CLI_EXIT_FAIL;
    }
    return code;
}

/* ---- options ---- */

static const struct cli_opt *find_long(const struct cli_usage *u, const char *name, size_t n)
{
    for (size_t i = 0; i < u->nopts; i++) {
        if (strlen(u->opts[i].name) == n && strncmp(u->opts[i].name, name, n) == 0) {
            return &u->opts[i];
        }
    }
    return NULL;
}

static const struct cli_opt *find_short(const struct cli_usage *u, char c)
{
    for (size_t i = 0; i < u->nopts; i++) {
        if (u->opts[i].short_name != 0 && u->opts[i].short_name == c) {
            return &u->opts[i];
        }
    }
    return NULL;
}

static void opt_left(const struct cli_opt *o, char *buf, size_t cap)
{
    char sh[8] = "";
    if (o->short_name != 0) {
        snprintf(sh, sizeof(sh), "-%c, ", o->short_name);
    }
    if (o->kind == CLI_OPT_STR) {
        snprintf(buf, cap, "%s--%s %s", sh, o->name, o->metavar != NULL ? o->metavar : "VALUE");
    } else {
        snprintf(buf, cap, "%s--%s", sh, o->name);
    }
}

void cli_usage_print(const struct cli_ctx *ctx, const struct cli_usage *u, FILE *f)
{
    char left[128];
    const char *syn = u->synopsis != NULL ? u->synopsis : "";
    bool first = true;

    /* one "usage:" line per synopsis line */
    while (first || *syn != '\0') {
        const char *nl = strchr(syn, '\n');
        int n = nl != NULL ? (int)(nl - syn) : (int)strlen(syn);
        fprintf(f, "%s %s %s%s%.*s\n", first ? "usage:" : "      ", ctx->prog, u->cmd,
                n > 0 ? " " : "", n, syn);
        syn += n + (nl != NULL ? 1 : 0);
        first = false;
    }
    if (u->about != NULL) {
        fprintf(f, "\n%s\n", u->about);
    }
    size_t w = strlen(u->meeting ? "-m, --meeting ID" : "-h, --help");
    for (size_t i = 0; i < u->nopts; i++) {
        opt_left(&u->opts[i], left, sizeof(left));
        w = strlen(left) > w ? strlen(left) : w;
    }
    fprintf(f, "\noptions:\n");
    for (size_t i = 0; i < u->nopts; i++) {
        opt_left(&u->opts[i], left, sizeof(left));
        fprintf(f, "  %-*s  %s\n", (int)w, left, u->opts[i].help);
    }
    if (u->meeting) {
        fprintf(f, "  %-*s  %s\n", (int)w, "-m, --meeting ID",
                "the meeting (default: the one chosen with use)");
    }
    if (u->json) {
        fprintf(f, "  %-*s  %s\n", (int)w, "--json", "print the result as JSON");
    }
    fprintf(f, "  %-*s  %s\n", (int)w, "-h, --help", "show this help and exit");
}

int cli_usage_error(struct cli_ctx *ctx, const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(ctx->err, "%s %s: ", ctx->prog, cmd);
    va_start(ap, fmt);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    fprintf(ctx->err, "\nTry '%s %s --help'.\n", ctx->prog, cmd);
    return CLI_EXIT_USAGE;
}

bool cli_args_parse(struct cli_ctx *ctx, const struct cli_usage *u, int argc, char **argv,
                    struct cli_args *a, int *exit_code)
{
    bool only_args = false;

    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const struct cli_opt *o = NULL;
        const char *value = NULL;

        if (only_args || s[0] != '-' || s[1] == '\0') {
            if (a->n >= CLI_MAX_ARGS) {
                *exit_code = cli_usage_error(ctx, u->cmd, "too many arguments");
                return false;
            }
            a->v[a->n++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_args = true;
            continue;
        }
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            cli_usage_print(ctx, u, ctx->out);
            *exit_code = CLI_EXIT_OK;
            return false;
        }
        if (u->json && strcmp(s, "--json") == 0) {
            ctx->json = true;
            continue;
        }
        if (u->meeting && (strcmp(s, "-m") == 0 || strcmp(s, "--meeting") == 0 ||
                           strncmp(s, "--meeting=", 10) == 0)) {
            const char *v = strchr(s, '=') != NULL ? strchr(s, '=') + 1 : NULL;
            if (v == NULL) {
                if (i + 1 >= argc) {
                    *exit_code =
                        cli_usage_error(ctx, u->cmd, "option --meeting needs a value (ID)");
                    return false;
                }
                v = argv[++i];
            }
            if (!proto_name_valid(v, strlen(v))) {
                *exit_code = cli_usage_error(ctx, u->cmd,
                                             "not a meeting id: '%s' (lower-case letters, "
                                             "digits, '.', '_', '-')",
                                             v);
                return false;
            }
            ctx->meeting = v;
            continue;
        }
        if (s[1] == '-') {
            const char *eq = strchr(s + 2, '=');
            size_t n = eq != NULL ? (size_t)(eq - s - 2) : strlen(s + 2);
            o = find_long(u, s + 2, n);
            if (o == NULL) {
                *exit_code = cli_usage_error(ctx, u->cmd, "unknown option --%.*s", (int)n, s + 2);
                return false;
            }
            if (eq != NULL) {
                if (o->kind == CLI_OPT_FLAG) {
                    *exit_code =
                        cli_usage_error(ctx, u->cmd, "option --%s takes no value", o->name);
                    return false;
                }
                value = eq + 1;
            }
        } else {
            o = s[2] == '\0' ? find_short(u, s[1]) : NULL;
            if (o == NULL) {
                *exit_code = cli_usage_error(ctx, u->cmd, "unknown option %s", s);
                return false;
            }
        }
        if (o->kind == CLI_OPT_FLAG) {
            *o->flag = true;
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                *exit_code = cli_usage_error(ctx, u->cmd, "option --%s needs a value (%s)", o->name,
                                             o->metavar != NULL ? o->metavar : "VALUE");
                return false;
            }
            value = argv[++i];
        }
        *o->str = value;
    }
    if (a->n < u->min_args) {
        *exit_code = cli_usage_error(ctx, u->cmd, "missing argument%s (%s)",
                                     u->min_args - a->n > 1 ? "s" : "",
                                     u->synopsis != NULL ? u->synopsis : "");
        return false;
    }
    if (u->max_args >= 0 && a->n > u->max_args) {
        *exit_code = cli_usage_error(ctx, u->cmd, "unexpected argument '%s'", a->v[u->max_args]);
        return false;
    }
    return true;
}
