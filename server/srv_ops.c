/* srv_ops.c - conferd's command line: serve, and the operator commands that work on the
 * data folder while the server runs (init, account, fingerprint, demo). */
#include "srv_ops.h"

#include "srv.h"
#include "srv_share.h"
#include "srv_auth.h"
#include "srv_data.h"
#include "srv_hub.h"
#include "srv_meeting.h"
#include "srv_report.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *main_usage =
    "usage: conferd COMMAND [OPTIONS]\n"
    "\n"
    "The confer server and its operator tool. Commands:\n"
    "  init         make a data folder (database and host key)\n"
    "  serve        run the server\n"
    "  demo         make a demo data folder on first use, then serve it\n"
    "  account      add, list, disable, enable accounts or set their passwords\n"
    "  meeting      create a meeting, or import a report as a new meeting\n"
    "  audit        verify the audit chains of the meetings\n"
    "  backup       copy the database and the host key to files (safe while serving)\n"
    "  restore      put a backup in place of a stopped server's database (and key)\n"
    "  fingerprint  print the host key fingerprint clients should see\n"
    "\n"
    "Every command takes --data DIR (default: $CONFERD_DATA) and --help.\n";

struct opts {
    const char *data;
    const char *listen;
    const char *port_file;
    bool json;
    bool operator;
    bool password_stdin;
    const char *rapporteur;
    const char *title;
    const char *meeting;
    const char *sample;
    bool no_key;
    bool replace_key;
    struct srv_config cfg;
};

static void usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "conferd %s: %s\n(run conferd %s --help)\n", cmd, msg, cmd);
}

static int parse_size(const char *s, size_t min, size_t max, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max || s[0] == '-') {
        return PROTO_EINVAL;
    }
    *out = (size_t)v;
    return 0;
}

/* Splits HOST:PORT, [V6]:PORT, or HOST into cfg. */
static int parse_listen(const char *s, struct srv_config *cfg)
{
    const char *host = s, *port = NULL;
    size_t hlen = strlen(s);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            return PROTO_EINVAL;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close[1] == ':') {
            port = close + 2;
        } else if (close[1] != '\0') {
            return PROTO_EINVAL;
        }
    } else {
        const char *colon = strrchr(s, ':');
        if (colon && strchr(s, ':') == colon) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (hlen == 0 || hlen >= sizeof(cfg->host)) {
        return PROTO_EINVAL;
    }
    memcpy(cfg->host, host, hlen);
    cfg->host[hlen] = '\0';
    if (port) {
        size_t p = 0;
        if (parse_size(port, 0, 65535, &p) != 0) {
            return PROTO_EINVAL;
        }
        cfg->port = (int)p;
    }
    return 0;
}

enum {
    OPT_DATA = 1000,
    OPT_LISTEN,
    OPT_PORT_FILE,
    OPT_JSON,
    OPT_OPERATOR,
    OPT_PASSWORD_STDIN,
    OPT_PWHASH,
    OPT_MIN_PASSWORD,
    OPT_MAX_FRAME,
    OPT_OUTPUT_LIMIT,
    OPT_MAX_CONNS,
    OPT_LOGIN_TIMEOUT,
    OPT_TOKEN_TTL,
    OPT_OUTPUT_BUDGET,
    OPT_FRAME_TIMEOUT,
    OPT_MAX_CONNS_ADDR,
    OPT_MAX_CONNS_USER,
    OPT_SNAPSHOT_EVERY,
    OPT_IDLE_AFTER,
    OPT_RAPPORTEUR,
    OPT_TITLE,
    OPT_MEETING,
    OPT_SAMPLE,
    OPT_HTTP,
    OPT_HTTP_PORT_FILE,
    OPT_HTTP_BASE_URL,
    OPT_HTTP_MAX_STREAMS,
    OPT_HTTP_STREAMS_ADDR,
    OPT_NO_KEY,
    OPT_REPLACE_KEY,
};

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"data", required_argument, NULL, OPT_DATA},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"json", no_argument, NULL, OPT_JSON},
    {"operator", no_argument, NULL, OPT_OPERATOR},
    {"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
    {"pwhash-cost", required_argument, NULL, OPT_PWHASH},
    {"min-password", required_argument, NULL, OPT_MIN_PASSWORD},
    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
    {"output-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"login-timeout", required_argument, NULL, OPT_LOGIN_TIMEOUT},
    {"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
    {"output-budget", required_argument, NULL, OPT_OUTPUT_BUDGET},
    {"frame-timeout", required_argument, NULL, OPT_FRAME_TIMEOUT},
    {"max-conns-per-addr", required_argument, NULL, OPT_MAX_CONNS_ADDR},
    {"max-conns-per-user", required_argument, NULL, OPT_MAX_CONNS_USER},
    {"snapshot-every", required_argument, NULL, OPT_SNAPSHOT_EVERY},
    {"idle-after", required_argument, NULL, OPT_IDLE_AFTER},
    {"rapporteur", required_argument, NULL, OPT_RAPPORTEUR},
    {"title", required_argument, NULL, OPT_TITLE},
    {"meeting", required_argument, NULL, OPT_MEETING},
    {"sample", required_argument, NULL, OPT_SAMPLE},
    {"http", required_argument, NULL, OPT_HTTP},
    {"http-port-file", required_argument, NULL, OPT_HTTP_PORT_FILE},
    {"http-base-url", required_argument, NULL, OPT_HTTP_BASE_URL},
    {"http-max-streams", required_argument, NULL, OPT_HTTP_MAX_STREAMS},
    {"http-streams-per-addr", required_argument, NULL, OPT_HTTP_STREAMS_ADDR},
    {"no-key", no_argument, NULL, OPT_NO_KEY},
    {"replace-key", no_argument, NULL, OPT_REPLACE_KEY},
    {NULL, 0, NULL, 0},
};

/* Parses the options of one command. allowed lists the option ids it accepts. Returns 0,
 * 1 after printing help, or EXIT_USAGE after printing an error. Positional arguments are
 * left in argv[optind..]. */
static int parse_opts(const char *cmd, const char *help, int argc, char **argv, const int *allowed,
                      struct opts *o)
{
    size_t v = 0;
    optind = 0; /* glibc: full re-initialisation for each command */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return 1;
        }
        bool ok = false;
        for (const int *a = allowed; *a; a++) {
            ok = ok || *a == c;
        }
        if (!ok || c == '?' || c == ':') {
            char msg[128];
            snprintf(msg, sizeof(msg), "unknown or incomplete option '%s'", argv[optind - 1]);
            usage_error(cmd, msg);
            return EXIT_USAGE;
        }
        switch (c) {
        case OPT_DATA:
            o->data = optarg;
            break;
        case OPT_LISTEN:
            if (parse_listen(optarg, &o->cfg) != 0) {
                usage_error(cmd, "--listen takes HOST:PORT, [IPV6]:PORT or HOST");
                return EXIT_USAGE;
            }
            break;
        case OPT_PORT_FILE:
            o->cfg.port_file = optarg;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_OPERATOR:
            o->operator= true;
            break;
        case OPT_PASSWORD_STDIN:
            o->password_stdin = true;
            break;
        case OPT_NO_KEY:
            o->no_key = true;
            break;
        case OPT_REPLACE_KEY:
            o->replace_key = true;
            break;
        case OPT_PWHASH:
            if (srv_pwcost_parse(optarg, &o->cfg.pwcost) != 0) {
                usage_error(cmd, "--pwhash-cost takes interactive, moderate or min");
                return EXIT_USAGE;
            }
            break;
        case OPT_MIN_PASSWORD:
            if (parse_size(optarg, 1, 1024, &v) != 0) {
                usage_error(cmd, "--min-password takes a number from 1 to 1024");
                return EXIT_USAGE;
            }
            o->cfg.min_password = v;
            break;
        case OPT_MAX_FRAME:
            if (parse_size(optarg, PROTO_PRELOGIN_MAX, PROTO_SEND_MAX, &v) != 0) {
                usage_error(cmd, "--max-frame takes bytes from 4096 to 16777216");
                return EXIT_USAGE;
            }
            o->cfg.max_frame = (uint32_t)v;
            break;
        case OPT_OUTPUT_LIMIT:
            if (parse_size(optarg, 64 * 1024, (size_t)1 << 40, &v) != 0) {
                usage_error(cmd, "--output-limit takes bytes, at least 65536");
                return EXIT_USAGE;
            }
            o->cfg.output_limit = v;
            break;
        case OPT_MAX_CONNS:
            if (parse_size(optarg, 1, 1000000, &v) != 0) {
                usage_error(cmd, "--max-conns takes a number from 1 to 1000000");
                return EXIT_USAGE;
            }
            o->cfg.max_conns = (unsigned)v;
            break;
        case OPT_LOGIN_TIMEOUT:
            if (parse_size(optarg, 1, 3600 * 1000, &v) != 0) {
                usage_error(cmd, "--login-timeout takes milliseconds");
                return EXIT_USAGE;
            }
            o->cfg.login_timeout_ms = v;
            break;
        case OPT_TOKEN_TTL:
            if (parse_size(optarg, 1, (size_t)366 * 24 * 3600 * 1000, &v) != 0) {
                usage_error(cmd, "--token-ttl takes milliseconds");
                return EXIT_USAGE;
            }
            o->cfg.token_ttl_ms = v;
            break;
        case OPT_OUTPUT_BUDGET:
            if (parse_size(optarg, 64 * 1024, (size_t)1 << 44, &v) != 0) {
                usage_error(cmd, "--output-budget takes bytes, at least 65536");
                return EXIT_USAGE;
            }
            o->cfg.output_budget = v;
            break;
        case OPT_FRAME_TIMEOUT:
            if (parse_size(optarg, 1, 3600 * 1000, &v) != 0) {
                usage_error(cmd, "--frame-timeout takes milliseconds");
                return EXIT_USAGE;
            }
            o->cfg.frame_timeout_ms = v;
            break;
        case OPT_MAX_CONNS_ADDR:
        case OPT_MAX_CONNS_USER:
            if (parse_size(optarg, 1, 1000000, &v) != 0) {
                usage_error(cmd, c == OPT_MAX_CONNS_ADDR
                                     ? "--max-conns-per-addr takes a number from 1 to 1000000"
                                     : "--max-conns-per-user takes a number from 1 to 1000000");
                return EXIT_USAGE;
            }
            if (c == OPT_MAX_CONNS_ADDR) {
                o->cfg.max_conns_per_addr = (unsigned)v;
            } else {
                o->cfg.max_conns_per_user = (unsigned)v;
            }
            break;
        case OPT_SNAPSHOT_EVERY:
            if (parse_size(optarg, 1, 1000000, &v) != 0) {
                usage_error(cmd, "--snapshot-every takes a number of changes from 1 to 1000000");
                return EXIT_USAGE;
            }
            o->cfg.snapshot_every = (unsigned)v;
            break;
        case OPT_IDLE_AFTER:
            if (parse_size(optarg, 1, 24 * 3600 * 1000, &v) != 0) {
                usage_error(cmd, "--idle-after takes milliseconds");
                return EXIT_USAGE;
            }
            o->cfg.idle_ms = v;
            break;
        case OPT_RAPPORTEUR:
            o->rapporteur = optarg;
            break;
        case OPT_TITLE:
            o->title = optarg;
            break;
        case OPT_MEETING:
            o->meeting = optarg;
            break;
        case OPT_SAMPLE:
            o->sample = optarg;
            break;
        case OPT_HTTP: {
            struct srv_config hc = o->cfg;
            hc.port = -1;
            if (parse_listen(optarg, &hc) != 0 || hc.port < 0) {
                usage_error(cmd, "--http takes HOST:PORT or [IPV6]:PORT (port 0 picks one)");
                return EXIT_USAGE;
            }
            snprintf(o->cfg.http_host, sizeof(o->cfg.http_host), "%s", hc.host);
            o->cfg.http_port = hc.port;
            break;
        }
        case OPT_HTTP_PORT_FILE:
            o->cfg.http_port_file = optarg;
            break;
        case OPT_HTTP_BASE_URL:
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                usage_error(cmd, "--http-base-url takes a URL starting with https:// or http://");
                return EXIT_USAGE;
            }
            o->cfg.http_base_url = optarg;
            break;
        case OPT_HTTP_MAX_STREAMS:
        case OPT_HTTP_STREAMS_ADDR:
            if (parse_size(optarg, 1, 100000, &v) != 0) {
                usage_error(cmd, c == OPT_HTTP_MAX_STREAMS
                                     ? "--http-max-streams takes a number from 1 to 100000"
                                     : "--http-streams-per-addr takes a number from 1 to 100000");
                return EXIT_USAGE;
            }
            if (c == OPT_HTTP_MAX_STREAMS) {
                o->cfg.http_max_streams = (unsigned)v;
            } else {
                o->cfg.http_streams_per_addr = (unsigned)v;
            }
            break;
        default:
            usage_error(cmd, "unknown option");
            return EXIT_USAGE;
        }
    }
    if (o->data == NULL) {
        o->data = getenv("CONFERD_DATA");
    }
    if (o->data == NULL || *o->data == '\0') {
        usage_error(cmd, "no data folder: pass --data DIR or set CONFERD_DATA");
        return EXIT_USAGE;
    }
    return 0;
}

/* Reads one line without its newline into buf (wiped by the caller). From the terminal,
 * echo is off. Returns the length or -1. */
static int read_secret_line(FILE *in, bool tty, const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    if (tty) {
        /* echo off before the prompt: what is typed once it shows is neither echoed nor
         * flushed away */
        tcgetattr(fileno(in), &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(in), TCSAFLUSH, &quiet);
        fputs(prompt, stderr);
        fflush(stderr);
    }
    char *r = fgets(buf, (int)cap, in);
    if (tty) {
        tcsetattr(fileno(in), TCSAFLUSH, &old);
        fputs("\n", stderr);
    }
    if (r == NULL) {
        return -1;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    } else if (n + 1 >= cap) {
        return -1; /* longer than the buffer: refuse rather than truncate */
    }
    if (n > 0 && buf[n - 1] == '\r') {
        buf[--n] = '\0';
    }
    return (int)n;
}

/* Gets a new password from stdin (one line) or the terminal (asked twice) and hashes it.
 * Returns 0 or an exit code after printing why. */
static int new_password_hash(const struct opts *o, char hash[DB_PWHASH_MAX])
{
    char pw[SRV_PASSWORD_MAX + 2], again[SRV_PASSWORD_MAX + 2], why[96];
    int rc = 1;
    FILE *tty = NULL;
    int n = -1;
    if (o->password_stdin) {
        n = read_secret_line(stdin, false, "", pw, sizeof(pw));
    } else {
        tty = fopen("/dev/tty", "r+");
        if (tty == NULL) {
            fprintf(stderr, "conferd: no terminal to ask the password on: use "
                            "--password-stdin\n");
            return 1;
        }
        /* the rules are checked on the first entry, before it is asked a second time;
         * three tries */
        for (int tries = 0; tries < 3; tries++) {
            n = read_secret_line(tty, true, "New password: ", pw, sizeof(pw));
            if (n < 0 || srv_password_check(&o->cfg, pw, (size_t)n, why, sizeof(why))) {
                break;
            }
            fprintf(stderr, "conferd: %s%s\n", why,
                    tries < 2 ? "; try another" : "; nothing changed");
            sodium_memzero(pw, sizeof(pw));
            n = -2;
        }
        if (n >= 0) {
            int m = read_secret_line(tty, true, "Repeat it: ", again, sizeof(again));
            if (m != n || memcmp(pw, again, (size_t)n) != 0) {
                fprintf(stderr, "conferd: the passwords differ; nothing changed\n");
                n = -2;
            }
        }
    }
    if (n == -1) {
        fprintf(stderr, "conferd: no password read (at most %d bytes, one line)\n",
                SRV_PASSWORD_MAX);
    } else if (n >= 0 && !srv_password_check(&o->cfg, pw, (size_t)n, why, sizeof(why))) {
        fprintf(stderr, "conferd: %s\n", why);
    } else if (n >= 0) {
        rc = srv_password_hash(o->cfg.pwcost, pw, (size_t)n, hash) == 0 ? 0 : 1;
        if (rc != 0) {
            fprintf(stderr, "conferd: out of memory hashing the password\n");
        }
    }
    sodium_memzero(pw, sizeof(pw));
    sodium_memzero(again, sizeof(again));
    if (tty) {
        fclose(tty);
    }
    return rc;
}

/* Start-up messages name the path, the reason and the fix (srv_data.h). */
#define WHY_MAX 1024

static int open_db_or_say(const char *dir, struct db **db)
{
    char why[WHY_MAX];
    int rc = srv_data_open_db_why(dir, db, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "conferd: %s\n", why);
        return 1;
    }
    return 0;
}

static int cmd_init(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA, 0};
    static const char *help = "usage: conferd init --data DIR\n\n"
                              "Makes a data folder: DIR (0700) with a new host key and an "
                              "empty database (0600),\nthen prints the host key fingerprint "
                              "that clients will be shown.\n";
    struct opts o = {0};
    srv_config_defaults(&o.cfg);
    int r = parse_opts("init", help, argc, argv, allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    char fp[PROTO_FINGERPRINT_LEN], why[WHY_MAX];
    int rc = srv_data_init_why(o.data, fp, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "conferd init: %s\n", why);
        return 1;
    }
    printf("initialised %s\nhost key fingerprint: %s\n", o.data, fp);
    return 0;
}

static int cmd_fingerprint(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA, 0};
    static const char *help = "usage: conferd fingerprint --data DIR\n\n"
                              "Prints the fingerprint of the server's host key (SHA256:...), "
                              "for clients to check.\n";
    struct opts o = {0};
    srv_config_defaults(&o.cfg);
    int r = parse_opts("fingerprint", help, argc, argv, allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    struct proto_hostkey key;
    char why[WHY_MAX];
    int rc = srv_data_load_key_why(o.data, &key, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "conferd fingerprint: %s\n", why);
        return 1;
    }
    char fp[PROTO_FINGERPRINT_LEN];
    proto_fingerprint(key.pk, fp);
    sodium_memzero(&key, sizeof(key));
    printf("%s\n", fp);
    return 0;
}

struct list_ctx {
    bool json;
    json_t *arr;
};

static int list_one(void *ud, const struct db_account *a)
{
    struct list_ctx *ctx = ud;
    if (ctx->json) {
        json_array_append_new(ctx->arr, json_pack("{s:s, s:b, s:b, s:I}", "name", a->name,
                                                  "operator", a->operator, "disabled", a->disabled,
                                                  "created", (json_int_t)a->created_ms));
        return 0;
    }
    time_t t = (time_t)(a->created_ms / 1000);
    struct tm tm;
    char when[32];
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%MZ", &tm);
    printf("%-24s %-9s %-9s %s\n", a->name, a->operator? "operator" : "-",
           a->disabled ? "disabled" : "enabled", when);
    return 0;
}

static int cmd_account(int argc, char **argv)
{
    static const int allowed[] = {
        OPT_DATA, OPT_JSON, OPT_OPERATOR, OPT_PASSWORD_STDIN, OPT_PWHASH, OPT_MIN_PASSWORD, 0};
    static const char *help =
        "usage: conferd account add NAME [--operator] [--password-stdin] --data DIR\n"
        "       conferd account list [--json] --data DIR\n"
        "       conferd account disable NAME --data DIR\n"
        "       conferd account enable NAME --data DIR\n"
        "       conferd account passwd NAME [--password-stdin] --data DIR\n"
        "\n"
        "Manages accounts; works while the server runs (it notices within a second:\n"
        "a disabled account's connections are closed and its tokens revoked).\n"
        "Names are 1-64 characters of a-z 0-9 . _ - ; passwords at least 15 characters.\n"
        "\n"
        "  --operator         the account may create meetings\n"
        "  --password-stdin   read the password from one line of stdin (else asked twice)\n"
        "  --pwhash-cost C    Argon2id cost: interactive (default), moderate, min\n"
        "  --min-password N   shortest password accepted (default 15)\n"
        "  --json             list: JSON output\n";
    struct opts o = {0};
    srv_config_defaults(&o.cfg);
    int r = parse_opts("account", help, argc, argv, allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos < 1) {
        usage_error("account", "say what to do: add, list, disable, enable or passwd");
        return EXIT_USAGE;
    }
    const char *verb = pos[0];
    bool is_list = strcmp(verb, "list") == 0;
    if ((is_list && npos != 1) || (!is_list && npos != 2)) {
        usage_error("account", is_list ? "list takes no name" : "give exactly one account name");
        return EXIT_USAGE;
    }
    const char *name = is_list ? NULL : pos[1];
    if (name && !proto_name_valid(name, strlen(name))) {
        usage_error("account", "a name is 1-64 characters of a-z 0-9 . _ - (starting with a "
                               "letter or digit)");
        return EXIT_USAGE;
    }
    if (!is_list && strcmp(verb, "add") != 0 && strcmp(verb, "disable") != 0 &&
        strcmp(verb, "enable") != 0 && strcmp(verb, "passwd") != 0) {
        usage_error("account", "unknown action: use add, list, disable, enable or passwd");
        return EXIT_USAGE;
    }
    struct db *db = NULL;
    if (open_db_or_say(o.data, &db) != 0) {
        return 1;
    }
    int rc = 0, status = 0;
    char hash[DB_PWHASH_MAX];
    if (is_list) {
        struct list_ctx ctx = {.json = o.json, .arr = o.json ? json_array() : NULL};
        if (!o.json) {
            printf("%-24s %-9s %-9s %s\n", "NAME", "ROLE", "STATE", "CREATED");
        }
        rc = db_account_list(db, list_one, &ctx);
        if (o.json) {
            json_dumpf(ctx.arr, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
            json_decref(ctx.arr);
        }
    } else if (strcmp(verb, "add") == 0) {
        if (db_account_get(db, name, &(struct db_account){0}) == 0) {
            fprintf(stderr, "conferd account: %s already exists\n", name);
            status = 1;
        } else if ((status = new_password_hash(&o, hash)) == 0) {
            rc = db_account_add(db, name, hash, o.operator);
            if (rc == 0) {
                printf("account %s added%s\n", name, o.operator? " (operator)" : "");
            }
        }
    } else if (strcmp(verb, "passwd") == 0) {
        if (db_account_get(db, name, &(struct db_account){0}) != 0) {
            fprintf(stderr, "conferd account: no account %s\n", name);
            status = 1;
        } else if ((status = new_password_hash(&o, hash)) == 0) {
            rc = db_account_set_pwhash(db, name, hash, true);
            if (rc == 0) {
                printf("password of %s changed; its tokens are revoked\n", name);
            }
        }
    } else {
        bool disable = strcmp(verb, "disable") == 0;
        rc = db_account_set_disabled(db, name, disable);
        if (rc == 0) {
            printf("account %s %s\n", name, disable ? "disabled" : "enabled");
        }
    }
    sodium_memzero(hash, sizeof(hash));
    if (rc == PROTO_ENOTFOUND) {
        fprintf(stderr, "conferd account: no account %s\n", name ? name : "");
        status = 1;
    } else if (rc == PROTO_ECONFLICT) {
        fprintf(stderr, "conferd account: %s already exists\n", name ? name : "");
        status = 1;
    } else if (rc != 0) {
        fprintf(stderr, "conferd account: database error: %s\n", db_errmsg(db));
        status = 1;
    }
    db_close(db);
    return status;
}

/* Reads a whole file of at most max bytes. Returns a malloc'd NUL-terminated buffer. */
static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL) {
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf != NULL) {
        *len = fread(buf, 1, max + 1, f);
        if (ferror(f) || *len > max) {
            free(buf);
            buf = NULL;
        } else {
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Creates meeting id with its rapporteur (and title) through the hub. */
static int offline_create(struct srv *srv, const char *id, const char *rapporteur,
                          const char *title, struct srv_meeting **m)
{
    struct srv_change ch = {.user = "conferd", .id_str = id};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ch.payload, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "fields");
    msgpack_pack_map(&pk, title ? 1 : 0);
    if (title) {
        proto_pack_cstr(&pk, "title");
        proto_pack_cstr(&pk, title);
    }
    proto_pack_cstr(&pk, "rapporteur");
    proto_pack_cstr(&pk, rapporteur);
    return srv_hub_create_meeting(srv, id, &ch, m);
}

static int offline_member(struct srv *srv, struct srv_meeting *m, const char *user,
                          const char *role)
{
    struct srv_change ch = {
        .m = m, .user = "conferd", .kind = "member", .type = PROTO_T_COUNT, .id_str = user};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ch.payload, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    proto_pack_cstr(&pk, "role");
    proto_pack_cstr(&pk, role);
    return srv_hub_commit(srv, &ch) < 0 ? PROTO_EINVAL : 0;
}

/* Makes a meeting (and imports a report into it when file is not NULL), offline. */
static int make_meeting(const char *dir, const char *id, const char *rapporteur, const char *title,
                        const char *file, const char *const *members)
{
    uv_loop_t loop;
    struct srv srv;
    struct srv_meeting *m = NULL;
    char *text = NULL;
    size_t len = 0;
    int status = 1;
    if (file && (text = read_file(file, SRV_REPORT_MAX, &len)) == NULL) {
        fprintf(stderr, "conferd meeting: cannot read %s (or it is over 4 MiB)\n", file);
        return 1;
    }
    char why[WHY_MAX];
    if (srv_data_check(dir, why, sizeof(why)) != 0) {
        fprintf(stderr, "conferd meeting: %s\n", why);
        free(text);
        return 1;
    }
    uv_loop_init(&loop);
    int rc = srv_init_offline(&srv, &loop, dir);
    if (rc != 0) {
        fprintf(stderr, "conferd meeting: cannot open %s: %s\n", dir, proto_strerror(rc));
        goto cleanup_loop;
    }
    struct db_account a;
    rc = db_account_get(srv.db, rapporteur, &a);
    sodium_memzero(&a, sizeof(a));
    if (rc != 0) {
        fprintf(stderr, "conferd meeting: no account %s (add it with conferd account add)\n",
                rapporteur);
        goto cleanup;
    }
    rc = offline_create(&srv, id, rapporteur, title, &m);
    if (rc == PROTO_ECONFLICT) {
        fprintf(stderr, "conferd meeting: a meeting %s exists already\n", id);
        goto cleanup;
    }
    if (rc != 0) {
        fprintf(stderr, "conferd meeting: cannot create %s: %s\n", id, proto_strerror(rc));
        goto cleanup;
    }
    struct srv_import_counts counts;
    memset(&counts, 0, sizeof(counts));
    char err[256] = "";
    if (text && srv_import_into(&srv, m, "conferd", NULL, text, len, SRV_IMPORT_NEW, &counts, err,
                                sizeof(err)) != 0) {
        fprintf(stderr, "conferd meeting: %s cannot be imported: %s\n", file, err);
        goto cleanup;
    }
    for (const char *const *p = members; p && p[0]; p += 2) {
        if (offline_member(&srv, m, p[0], p[1]) != 0) {
            fprintf(stderr, "conferd meeting: cannot add member %s\n", p[0]);
            goto cleanup;
        }
    }
    srv_hub_checkpoint_all(&srv); /* rows, snapshot and signed head, as at a shutdown */
    if (srv_sync_offline(&srv) != 0) {
        fprintf(stderr, "conferd meeting: cannot write the database\n");
        goto cleanup;
    }
    printf("meeting %s created at seq %lld (rapporteur %s)", id, (long long)m->rec->seq,
           rapporteur);
    if (text) {
        printf("; imported");
        for (int t = 1; t < PROTO_T_COUNT; t++) {
            if (counts.created[t]) {
                printf(" %lld %s", (long long)counts.created[t],
                       proto_type_info((enum proto_type)t)->plural);
            }
        }
    }
    printf("\n");
    status = 0;
cleanup:
    srv_close_offline(&srv);
cleanup_loop:
    uv_loop_close(&loop);
    free(text);
    return status;
}

static int cmd_meeting(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA, OPT_RAPPORTEUR, OPT_TITLE, 0};
    static const char *help =
        "usage: conferd meeting create ID --rapporteur USER [--title TITLE] --data DIR\n"
        "       conferd meeting import ID FILE --rapporteur USER --data DIR\n"
        "\n"
        "Creates meeting ID (1-64 characters a-z 0-9 . _ -) with USER as its rapporteur;\n"
        "import also reads FILE into it: a report in the layout of the sample report, or\n"
        "a text or Markdown export (not HTML).\n"
        "A running server picks the new meeting up within a second.\n";
    struct opts o = {0};
    srv_config_defaults(&o.cfg);
    int r = parse_opts("meeting", help, argc, argv, allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    int npos = argc - optind;
    char **pos = argv + optind;
    bool create = npos == 2 && strcmp(pos[0], "create") == 0;
    bool import = npos == 3 && strcmp(pos[0], "import") == 0;
    if (!create && !import) {
        usage_error("meeting", "use: meeting create ID or meeting import ID FILE");
        return EXIT_USAGE;
    }
    if (!proto_name_valid(pos[1], strlen(pos[1]))) {
        usage_error("meeting", "a meeting id is 1-64 characters of a-z 0-9 . _ -");
        return EXIT_USAGE;
    }
    if (o.rapporteur == NULL || !proto_name_valid(o.rapporteur, strlen(o.rapporteur))) {
        usage_error("meeting", "--rapporteur USER is required");
        return EXIT_USAGE;
    }
    return make_meeting(o.data, pos[1], o.rapporteur, o.title, import ? pos[2] : NULL, NULL);
}

struct verify_all {
    struct db *db;
    const uint8_t *pk;
    bool json;
    bool stopped; /* no server runs: the newest entry of each meeting must be signed */
    json_t *arr;
    int bad;
    int n;
};

/* A mismatch as people name it: "item 12: body", "member alice: role". */
static void mismatch_words(const struct srv_audit_mismatch *x, char *out, size_t cap)
{
    char who[PROTO_NAME_MAX + 32];
    if (x->has_str) {
        snprintf(who, sizeof(who), "%s %s", x->type, x->id_str);
    } else {
        snprintf(who, sizeof(who), "%s %lld", x->type, (long long)x->id);
    }
    if (x->has_field) {
        snprintf(out, cap, "%s: %s differs from the log", who, x->field);
    } else {
        snprintf(out, cap, "%s: on one side only (the log or the stored record)", who);
    }
}

static int verify_meeting(void *ud, const char *id)
{
    struct verify_all *v = ud;
    struct srv_audit_expect x = {.head_signed = v->stopped};
    struct srv_audit_result *r = malloc(sizeof(*r));
    char hex[2 * DB_HASH_BYTES + 1], words[256];
    if (r == NULL) {
        return PROTO_ENOMEM;
    }
    int rc = srv_audit_check(v->db, id, v->pk, &x, r);
    if (rc != 0) {
        free(r);
        return rc;
    }
    size_t nkept = r->nmismatch < SRV_AUDIT_MISMATCH_MAX ? r->nmismatch : SRV_AUDIT_MISMATCH_MAX;
    v->n++;
    proto_hex(r->head, DB_HASH_BYTES, hex);
    if (r->bad_seq) {
        v->bad++;
    }
    if (v->json) {
        json_t *o =
            json_pack("{s:s, s:b, s:I, s:s, s:I, s:b, s:I}", "meeting", id, "ok", r->bad_seq == 0,
                      "count", (json_int_t)r->count, "head", hex, "seq", (json_int_t)r->seq,
                      "state", r->state, "rows_seq", (json_int_t)r->rows_seq);
        if (r->bad_seq) {
            json_object_set_new(o, "bad_seq", json_integer(r->bad_seq));
            json_object_set_new(o, "problem", json_string(r->why));
        }
        if (!r->state) {
            json_t *mm = json_array();
            for (size_t i = 0; i < nkept; i++) {
                const struct srv_audit_mismatch *m = &r->mismatch[i];
                json_array_append_new(
                    mm, json_pack("{s:s, s:o, s:o}", "type", m->type, "id",
                                  m->has_str ? json_string(m->id_str) : json_integer(m->id),
                                  "field", m->has_field ? json_string(m->field) : json_null()));
            }
            json_object_set_new(o, "mismatch", mm);
        }
        json_array_append_new(v->arr, o);
    } else if (r->bad_seq) {
        printf("%-24s BROKEN at seq %lld: %s\n", id, (long long)r->bad_seq, r->why);
        for (size_t i = 0; i < nkept; i++) {
            mismatch_words(&r->mismatch[i], words, sizeof(words));
            printf("%-24s   %s\n", "", words);
        }
        if (r->nmismatch > nkept) {
            printf("%-24s   and %zu more differences\n", "", r->nmismatch - nkept);
        }
    } else {
        printf("%-24s ok  %lld entries, head %s, record as the log has it at seq %lld\n", id,
               (long long)r->count, hex, (long long)r->rows_seq);
    }
    free(r);
    return 0;
}

static int cmd_audit(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA, OPT_MEETING, OPT_JSON, 0};
    static const char *help =
        "usage: conferd audit verify [--meeting ID] [--json] --data DIR\n"
        "\n"
        "Recomputes the hash chain of every meeting's audit log (or one), checks that no\n"
        "seq is missing, that every signed checkpoint and snapshot matches, and replays the\n"
        "log to compare it with the stored record (its objects, members and meeting row).\n"
        "On a stopped server the newest entry of each meeting must be covered by a\n"
        "checkpoint (a server signs its heads when it stops): a tail cut off is caught.\n"
        "Exits 1 and names each problem (meeting, seq, object and field) when one fails.\n";
    struct opts o = {0};
    srv_config_defaults(&o.cfg);
    int r = parse_opts("audit", help, argc, argv, allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (argc - optind != 1 || strcmp(argv[optind], "verify") != 0) {
        usage_error("audit", "use: audit verify");
        return EXIT_USAGE;
    }
    struct proto_hostkey key;
    char why[WHY_MAX];
    int rc = srv_data_load_key_why(o.data, &key, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "conferd audit: %s\n", why);
        return 1;
    }
    struct db *db = NULL;
    if (open_db_or_say(o.data, &db) != 0) {
        return 1;
    }
    int lock = -1;
    int lrc = srv_data_lock(o.data, &lock); /* held: no server starts while this reads */
    struct verify_all v = {.db = db,
                           .pk = key.pk,
                           .json = o.json,
                           .stopped = lrc == 0,
                           .arr = o.json ? json_array() : NULL};
    if (lrc != 0 && !o.json) {
        printf("(a server is running: entries after its last checkpoint need not be signed "
               "yet)\n");
    }
    if (o.meeting) {
        if (db_meeting_exists(db, o.meeting) != 0) {
            fprintf(stderr, "conferd audit: no meeting %s\n", o.meeting);
            rc = 1;
        } else {
            rc = verify_meeting(&v, o.meeting);
        }
    } else {
        rc = db_meeting_list(db, verify_meeting, &v);
    }
    if (o.json && rc == 0) {
        json_dumpf(v.arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    }
    json_decref(v.arr);
    if (rc < 0) {
        fprintf(stderr, "conferd audit: database error: %s\n", db_errmsg(db));
    }
    db_close(db);
    srv_data_unlock(lock);
    sodium_memzero(&key, sizeof(key));
    return rc != 0 || v.bad > 0 ? 1 : 0;
}

/* ---- backup and restore ----
 *
 * A backup is two files: FILE, a copy of the database (SQLite's online backup), and
 * FILE.key, a copy of the host key (64 raw bytes), both 0600. Restore puts them back.
 */

#define KEY_SUFFIX ".key"

/* path + suffix into out; false when it does not fit. */
static bool path_with(char *out, size_t cap, const char *path, const char *suffix)
{
    int n = snprintf(out, cap, "%s%s", path, suffix);
    return n > 0 && (size_t)n < cap;
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Writes the 64 bytes of a secret key to a new file (mode 0600), synced. Returns 0 or
 * PROTO_ECONFLICT (the file exists) or PROTO_EIO (errno says why). */
static int write_key_file(const char *path, const uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return errno == EEXIST ? PROTO_ECONFLICT : PROTO_EIO;
    }
    int rc = 0;
    if (write(fd, sk, crypto_sign_SECRETKEYBYTES) != (ssize_t)crypto_sign_SECRETKEYBYTES ||
        fsync(fd) != 0) {
        rc = PROTO_EIO;
    }
    int err = errno;
    close(fd);
    if (rc != 0) {
        unlink(path);
        errno = err;
    }
    return rc;
}

/* Reads a host key file written by backup: 64 bytes, an Ed25519 secret key whose public
 * half matches its seed. Returns 0 or prints why and returns 1. */
static int read_key_file(const char *path, struct proto_hostkey *key)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    struct proto_hostkey check;
    struct stat st;
    int rc = 1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "conferd restore: cannot read the host key %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size != (off_t)crypto_sign_SECRETKEYBYTES ||
        read(fd, key->sk, sizeof(key->sk)) != (ssize_t)sizeof(key->sk)) {
        fprintf(stderr,
                "conferd restore: %s is not a confer host key (%d bytes from conferd "
                "backup): nothing changed\n",
                path, crypto_sign_SECRETKEYBYTES);
        goto cleanup;
    }
    crypto_sign_ed25519_sk_to_seed(seed, key->sk);
    if (crypto_sign_seed_keypair(check.pk, check.sk, seed) != 0 ||
        sodium_memcmp(check.sk, key->sk, sizeof(check.sk)) != 0) {
        fprintf(stderr, "conferd restore: %s is not an Ed25519 host key: nothing changed\n", path);
        goto cleanup;
    }
    memcpy(key->pk, check.pk, sizeof(key->pk));
    rc = 0;
cleanup:
    close(fd);
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(&check, sizeof(check));
    if (rc != 0) {
        sodium_memzero(key, sizeof(*key));
    }
    return rc;
}

static int cmd_backup(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA, OPT_NO_KEY, 0};
    static const char *help =
        "usage: conferd backup FILE [--no-key] --data DIR\n"
        "\n"
        "Writes what conferd restore needs, as two new files (mode 0600):\n"
        "  FILE       a copy of the database, made with SQLite's online backup: safe\n"
        "             while the server runs\n"
        "  FILE.key   a copy of the host key (secret: keep it where only you can read\n"
        "             it); clients have pinned its fingerprint\n"
        "\n"
        "  --no-key   the database only: restore then needs the host key from elsewhere\n"
        "             (the folder's own DIR/host.key, or a FILE.key kept from before)\n";
    struct opts o = {0};
    struct proto_hostkey key;
    char keyfile[4096];
    char why[WHY_MAX];
    struct db *db = NULL;
    int status = 1;

    memset(&key, 0, sizeof(key));
    srv_config_defaults(&o.cfg);
    int r = parse_opts("backup", help, argc, argv, allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (argc - optind != 1) {
        usage_error("backup", "give the file to write");
        return EXIT_USAGE;
    }
    const char *file = argv[optind];
    if (!path_with(keyfile, sizeof(keyfile), file, KEY_SUFFIX)) {
        usage_error("backup", "the file name is too long");
        return EXIT_USAGE;
    }
    if (!o.no_key) {
        if (srv_data_load_key_why(o.data, &key, why, sizeof(why)) != 0) {
            fprintf(stderr, "conferd backup: %s\n", why);
            goto cleanup;
        }
        if (path_exists(keyfile)) {
            fprintf(stderr, "conferd backup: %s exists: choose a new FILE\n", keyfile);
            goto cleanup;
        }
    }
    if (open_db_or_say(o.data, &db) != 0) {
        goto cleanup;
    }
    int rc = db_backup(db, file);
    if (rc == PROTO_ECONFLICT) {
        fprintf(stderr, "conferd backup: %s exists: choose a new file\n", file);
        goto cleanup;
    }
    if (rc != 0) {
        fprintf(stderr, "conferd backup: cannot write %s: %s\n", file, db_errmsg(db));
        goto cleanup;
    }
    if (!o.no_key) {
        rc = write_key_file(keyfile, key.sk);
        if (rc != 0) {
            fprintf(stderr,
                    "conferd backup: cannot write %s: %s; the database copy %s is "
                    "removed again\n",
                    keyfile, rc == PROTO_ECONFLICT ? "it exists" : strerror(errno), file);
            unlink(file);
            goto cleanup;
        }
        printf("backup written: %s (the database) and %s (the host key: secret)\n", file, keyfile);
    } else {
        printf("backup written to %s (the database only): conferd restore needs the host "
               "key\nfrom elsewhere: %s/%s, or a copy of it put at %s\n",
               file, o.data, SRV_HOSTKEY_FILE, keyfile);
    }
    status = 0;
cleanup:
    db_close(db);
    sodium_memzero(&key, sizeof(key));
    return status;
}

/* Unlinks path and its SQLite companions (-wal, -shm, -journal). */
static void remove_db_files(const char *path)
{
    static const char *const sfx[] = {"-wal", "-shm", "-journal"};
    char p[4096];
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        if (path_with(p, sizeof(p), path, sfx[i])) {
            unlink(p);
        }
    }
    unlink(path);
}

/* Copies the regular file from into the new file to (mode 0600), synced. Returns 0, or
 * prints why and returns 1 (to removed). */
static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = -1;
    int rc = 1;
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "conferd restore: cannot read %s: %s\n", from,
                in < 0 ? strerror(errno) : "not a file");
        goto cleanup;
    }
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        fprintf(stderr, "conferd restore: cannot write %s: %s\n", to, strerror(errno));
        goto cleanup;
    }
    /* at most the size the file had when opened: a file that grows meanwhile is not a
     * backup conferd wrote */
    off_t left = st.st_size;
    while (left > 0) {
        size_t want = left < (off_t)sizeof(buf) ? (size_t)left : sizeof(buf);
        ssize_t n = read(in, buf, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "conferd restore: cannot read %s: %s\n", from,
                    n < 0 ? strerror(errno) : "it became shorter");
            goto cleanup;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                fprintf(stderr, "conferd restore: cannot write %s: %s\n", to, strerror(errno));
                goto cleanup;
            }
            off += w;
        }
        left -= n;
    }
    if (fsync(out) != 0) {
        fprintf(stderr, "conferd restore: cannot write %s: %s\n", to, strerror(errno));
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (in >= 0) {
        close(in);
    }
    if (out >= 0) {
        close(out);
        if (rc != 0) {
            unlink(to);
        }
    }
    return rc;
}

/* A free name path + ".before-restore-YYYYMMDD-HHMMSS[-N]" (UTC) for the file set aside,
 * its -wal too. Returns 0 or 1 when none is free. */
static int aside_name(const char *path, char *out, size_t cap)
{
    char stamp[32];
    char wal[4200];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    for (int i = 0; i < 100; i++) {
        int n = i == 0 ? snprintf(out, cap, "%s.before-restore-%s", path, stamp)
                       : snprintf(out, cap, "%s.before-restore-%s-%d", path, stamp, i);
        if (n < 0 || (size_t)n >= cap || !path_with(wal, sizeof(wal), out, "-wal")) {
            return 1;
        }
        if (!path_exists(out) && !path_exists(wal)) {
            return 0;
        }
    }
    return 1;
}

/* Renames the database at path with its -wal and -shm to aside (+ "-wal", "-shm"). */
static int set_db_aside(const char *path, const char *aside)
{
    static const char *const sfx[] = {"-wal", "-shm"};
    if (rename(path, aside) != 0) {
        return 1;
    }
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        char a[4200], b[4200];
        if (path_with(a, sizeof(a), path, sfx[i]) && path_with(b, sizeof(b), aside, sfx[i]) &&
            path_exists(a) && rename(a, b) != 0) {
            return 1;
        }
    }
    return 0;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int cmd_restore(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA, OPT_REPLACE_KEY, 0};
    static const char *help =
        "usage: conferd restore BACKUP [--replace-key] --data DIR\n"
        "\n"
        "Puts the database copy BACKUP (from conferd backup) in place of DIR's database,\n"
        "with the host key BACKUP.key when it is there. The server must be stopped: a\n"
        "folder a conferd serve runs on is refused. BACKUP is checked first (a confer\n"
        "database this conferd can open, integrity_check), before anything changes. DIR's\n"
        "database is kept aside, renamed DIR/confer.db.before-restore-DATE-TIME (with its\n"
        "-wal), never deleted; an older schema is migrated. DIR is made when missing;\n"
        "modes are set to 0700 (DIR) and 0600 (database, key).\n"
        "\n"
        "Without BACKUP.key the folder keeps its own host key (it must have one). A\n"
        "BACKUP.key that is not the folder's key is refused, since clients have pinned\n"
        "the folder's:\n"
        "  --replace-key   put BACKUP.key in its place (the old key is kept aside, renamed\n"
        "                  like the database); clients then see the backup's key\n";
    struct opts o = {0};
    struct proto_hostkey bkey, dkey;
    char keyfile[4096], tmp[4096], dbpath[4096], keypath[4096], aside[4200], keyaside[4200];
    char why[WHY_MAX], p[4200];
    int lock = -1;
    int status = 1;
    bool have_bkey = false, have_dkey = false, tmp_made = false;

    memset(&bkey, 0, sizeof(bkey));
    memset(&dkey, 0, sizeof(dkey));
    aside[0] = keyaside[0] = '\0';
    srv_config_defaults(&o.cfg);
    int r = parse_opts("restore", help, argc, argv, allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (argc - optind != 1) {
        usage_error("restore", "give the backup file to restore");
        return EXIT_USAGE;
    }
    const char *backup = argv[optind];
    if (!path_with(keyfile, sizeof(keyfile), backup, KEY_SUFFIX) ||
        !path_with(tmp, sizeof(tmp), o.data, "/" SRV_DB_FILE ".restoring") ||
        !path_with(dbpath, sizeof(dbpath), o.data, "/" SRV_DB_FILE) ||
        !path_with(keypath, sizeof(keypath), o.data, "/" SRV_HOSTKEY_FILE)) {
        usage_error("restore", "a path is too long");
        return EXIT_USAGE;
    }
    struct stat st;
    if (stat(backup, &st) != 0) {
        fprintf(stderr, "conferd restore: %s: %s: give the FILE that conferd backup wrote\n",
                backup, strerror(errno));
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr,
                "conferd restore: %s is not a file: give the FILE that conferd backup "
                "wrote\n",
                backup);
        return 1;
    }
    if (path_with(p, sizeof(p), backup, "-wal") && path_exists(p)) {
        fprintf(stderr,
                "conferd restore: %s has a -wal beside it: a program has it open, or it is "
                "not a file conferd backup wrote; nothing changed\n",
                backup);
        return 1;
    }
    if (mkdir(o.data, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "conferd restore: cannot make the data folder %s: %s\n", o.data,
                strerror(errno));
        return 1;
    }
    int rc = srv_data_lock(o.data, &lock);
    if (rc == PROTO_ECONFLICT) {
        fprintf(stderr,
                "conferd restore: the data folder %s is in use: a conferd serve runs on it "
                "(it holds %s/serve.lock); stop it first, then restore\n",
                o.data, o.data);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "conferd restore: cannot lock the data folder %s (%s/serve.lock): %s\n",
                o.data, o.data, strerror(errno));
        return 1;
    }
    /* the check runs on a private copy in the folder (what SQLite makes beside it while
     * checking stays there), so the backup is never written to */
    remove_db_files(tmp); /* left by a restore that was stopped */
    if (copy_file(backup, tmp) != 0) {
        goto cleanup;
    }
    tmp_made = true;
    int version = 0;
    if (db_check_file(tmp, &version, why, sizeof(why)) != 0) {
        fprintf(stderr,
                "conferd restore: %s is not a confer database this conferd can "
                "restore: %s; nothing changed\n",
                backup, why);
        goto cleanup;
    }
    /* the host keys: the backup's, the folder's */
    if (path_exists(keyfile)) {
        if (read_key_file(keyfile, &bkey) != 0) {
            goto cleanup;
        }
        have_bkey = true;
    }
    if (path_exists(keypath)) {
        if (srv_data_load_key_why(o.data, &dkey, why, sizeof(why)) != 0) {
            fprintf(stderr, "conferd restore: %s; nothing changed\n", why);
            goto cleanup;
        }
        have_dkey = true;
    }
    if (!have_bkey && !have_dkey) {
        fprintf(stderr,
                "conferd restore: no host key: there is no %s and the folder has no %s; put "
                "the server's host key at one of them (mode 0600) and restore again; "
                "nothing changed\n",
                keyfile, keypath);
        goto cleanup;
    }
    bool new_key = have_bkey && (!have_dkey || sodium_memcmp(bkey.sk, dkey.sk, sizeof(bkey.sk)));
    if (new_key && have_dkey && !o.replace_key) {
        char fb[PROTO_FINGERPRINT_LEN], fd[PROTO_FINGERPRINT_LEN];
        proto_fingerprint(bkey.pk, fb);
        proto_fingerprint(dkey.pk, fd);
        fprintf(stderr,
                "conferd restore: the host key %s (%s) is not the folder's %s (%s), which "
                "clients have pinned: pass --replace-key to put the backup's in its place, "
                "or remove %s to keep the folder's; nothing changed\n",
                keyfile, fb, keypath, fd, keyfile);
        goto cleanup;
    }
    /* from here on the folder changes: the old database aside, the copy in its place */
    if (path_exists(dbpath)) {
        if (aside_name(dbpath, aside, sizeof(aside)) != 0 || set_db_aside(dbpath, aside) != 0) {
            fprintf(stderr, "conferd restore: cannot set %s aside: %s; nothing changed\n", dbpath,
                    strerror(errno));
            aside[0] = '\0';
            goto cleanup;
        }
    }
    if (rename(tmp, dbpath) != 0) {
        fprintf(stderr, "conferd restore: cannot put the copy %s at %s: %s\n", tmp, dbpath,
                strerror(errno));
        goto cleanup;
    }
    tmp_made = false;
    if (new_key) {
        if (have_dkey && (aside_name(keypath, keyaside, sizeof(keyaside)) != 0 ||
                          rename(keypath, keyaside) != 0)) {
            fprintf(stderr, "conferd restore: cannot set the host key %s aside: %s\n", keypath,
                    strerror(errno));
            goto cleanup;
        }
        if (write_key_file(keypath, bkey.sk) != 0) {
            fprintf(stderr, "conferd restore: cannot write the host key %s: %s\n", keypath,
                    strerror(errno));
            goto cleanup;
        }
    }
    if (chmod(o.data, 0700) != 0 || chmod(dbpath, 0600) != 0 || chmod(keypath, 0600) != 0) {
        fprintf(stderr, "conferd restore: cannot set the modes in %s: %s\n", o.data,
                strerror(errno));
        goto cleanup;
    }
    sync_dir(o.data);
    /* what serve will need: the key, and the database opened (and migrated) read-write */
    if (srv_data_check(o.data, why, sizeof(why)) != 0) {
        fprintf(stderr, "conferd restore: restored, but the folder does not serve: %s\n", why);
        goto cleanup;
    }
    char fp[PROTO_FINGERPRINT_LEN];
    proto_fingerprint(new_key ? bkey.pk : dkey.pk, fp);
    printf("restored %s into %s (schema version %d)\n", backup, o.data, version);
    if (aside[0] != '\0') {
        printf("the database it replaced is kept as %s\n", aside);
    }
    if (keyaside[0] != '\0') {
        printf("the host key it replaced is kept as %s\n", keyaside);
    }
    printf("host key %s (%s)\n", fp,
           new_key ? (have_dkey ? "the backup's, replacing the folder's" : "the backup's")
                   : "the folder's own");
    status = 0;
cleanup:
    if (tmp_made) {
        remove_db_files(tmp);
    }
    sodium_memzero(&bkey, sizeof(bkey));
    sodium_memzero(&dkey, sizeof(dkey));
    srv_data_unlock(lock);
    return status;
}
static const char *serve_help =
    "usage: conferd serve --data DIR [--listen HOST:PORT] [OPTIONS]\n"
    "\n"
    "Runs the server in the foreground; logs go to stderr. SIGINT or SIGTERM stops it\n"
    "gracefully (clients are sent 'closing').\n"
    "\n"
    "  --listen HOST:PORT     address to listen on (default 127.0.0.1:7414; port 0 picks one)\n"
    "  --port-file FILE       write the port listened on to FILE\n"
    "  --max-frame BYTES      plaintext per frame after login (default 1048576)\n"
    "  --output-limit BYTES   queued output per connection before it is dropped (default "
    "64 MiB)\n"
    "  --output-budget BYTES  queued output of all connections together; past it the\n"
    "                         biggest consumers are dropped (default 128 MiB)\n"
    "  --max-conns N          open connections (default 20000)\n"
    "  --max-conns-per-addr N open connections per IPv4 address or IPv6 /64 (default 256)\n"
    "  --max-conns-per-user N logged-in connections per user (default 64)\n"
    "  --snapshot-every N     store a signed snapshot of a meeting's record every N changes\n"
    "                         (default 4096): time travel replays at most N entries\n"
    "  --idle-after MS        a meeting unchanged this long has its rows refreshed, a\n"
    "                         snapshot stored and its head signed (default 60000)\n"
    "  --frame-timeout MS     a frame that has started must be complete within MS after\n"
    "                         login (default 10000)\n"
    "  --login-timeout MS     handshake and login deadline (default 10000)\n"
    "  --token-ttl MS         lifetime of login tokens (default 12 hours)\n"
    "  --pwhash-cost C        Argon2id cost: interactive (default), moderate, min (tests)\n"
    "  --min-password N       shortest new password accepted (default 15)\n"
    "\n"
    "The live view (read-only pages behind share links; off unless --http is given):\n"
    "  --http HOST:PORT       serve it on HOST:PORT (e.g. 127.0.0.1:7415; put a TLS proxy\n"
    "                         in front for anything but loopback)\n"
    "  --http-base-url URL    what share links start with, as people reach the proxy\n"
    "                         (default http://HOST:PORT)\n"
    "  --http-port-file FILE  write the HTTP port listened on to FILE\n"
    "  --http-max-streams N   live pages open at once (default 2000)\n"
    "  --http-streams-per-addr N  live pages open at once from one address (default 32)\n";

static const int serve_allowed[] = {OPT_DATA,
                                    OPT_LISTEN,
                                    OPT_PORT_FILE,
                                    OPT_MAX_FRAME,
                                    OPT_OUTPUT_LIMIT,
                                    OPT_MAX_CONNS,
                                    OPT_LOGIN_TIMEOUT,
                                    OPT_TOKEN_TTL,
                                    OPT_PWHASH,
                                    OPT_MIN_PASSWORD,
                                    OPT_SAMPLE,
                                    OPT_OUTPUT_BUDGET,
                                    OPT_FRAME_TIMEOUT,
                                    OPT_MAX_CONNS_ADDR,
                                    OPT_MAX_CONNS_USER,
                                    OPT_SNAPSHOT_EVERY,
                                    OPT_IDLE_AFTER,
                                    OPT_HTTP,
                                    OPT_HTTP_PORT_FILE,
                                    OPT_HTTP_BASE_URL,
                                    OPT_HTTP_MAX_STREAMS,
                                    OPT_HTTP_STREAMS_ADDR,
                                    0};

#define DEMO_MEETING "rg-iem-2023-06"

static int serve_demo(struct opts *o, bool demo);

static int serve(struct opts *o)
{
    return serve_demo(o, false);
}

static int serve_demo(struct opts *o, bool demo)
{
    uv_loop_t loop;
    struct srv srv;
    o->cfg.data_dir = o->data;
    /* One descriptor per connection: take what the system allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* srv_init only logs a code; this says which file is wrong and how to fix it. */
    char why[WHY_MAX];
    if (srv_data_check(o->data, why, sizeof(why)) != 0) {
        fprintf(stderr, "conferd serve: %s\n", why);
        return 1;
    }
    int lock = -1; /* held until the process ends */
    int lrc = srv_data_lock(o->data, &lock);
    if (lrc == PROTO_ECONFLICT) {
        fprintf(stderr, "conferd serve: another conferd serves %s already (stop it first)\n",
                o->data);
        return 1;
    }
    if (lrc != 0) {
        fprintf(stderr, "conferd serve: cannot take the lock %s/serve.lock: %s\n", o->data,
                strerror(errno));
        return 1;
    }
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "conferd: cannot start the event loop\n");
        return 1;
    }
    if (srv_init(&srv, &loop, &o->cfg) != 0) {
        uv_loop_close(&loop);
        return 1;
    }
    if (demo && o->cfg.http_port >= 0) {
        /* A new link each start: the ones printed before keep working until revoked. */
        char url[1024];
        if (srv_share_make(&srv, DEMO_MEETING, "rapporteur", "demo", url, sizeof(url)) == 0) {
            printf("\nLive view of %s (open it in a browser; ?follow=1 for the projector):\n"
                   "  %s\n\n",
                   DEMO_MEETING, url);
            fflush(stdout);
            sodium_memzero(url, sizeof(url));
        }
    }
    return srv_run(&srv) == 0 ? 0 : 1;
}

static int cmd_serve(int argc, char **argv)
{
    struct opts o = {0};
    srv_config_defaults(&o.cfg);
    int r = parse_opts("serve", serve_help, argc, argv, serve_allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    if (optind != argc) {
        usage_error("serve", "unexpected argument");
        return EXIT_USAGE;
    }
    return serve(&o);
}

/* A readable random password: 24 characters of a-z and 2-9 (about 120 bits). */
static void random_password(char out[25])
{
    static const char alphabet[] = "abcdefghijkmnopqrstuvwxyz23456789";
    for (int i = 0; i < 24; i++) {
        out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
    }
    out[24] = '\0';
}

/* Demo accounts: name, operator. */
static const struct {
    const char *name;
    bool operator;
} demo_accounts[] = {
    {"admin", true},       {"rapporteur", false}, {"associate", false},
    {"counsellor", false}, {"viewer", false},
};

static int demo_setup(const char *dir, int port, const char *sample)
{
    char fp[PROTO_FINGERPRINT_LEN], why[WHY_MAX];
    struct db *db = NULL;
    int rc = srv_data_init_why(dir, fp, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "conferd demo: %s\n", why);
        return 1;
    }
    if (open_db_or_say(dir, &db) != 0) {
        return 1;
    }
    printf("demo data folder %s made; host key %s\n\n", dir, fp);
    printf("Demo accounts (passwords are shown this once):\n");
    for (size_t i = 0; i < sizeof(demo_accounts) / sizeof(demo_accounts[0]); i++) {
        char pw[25], hash[DB_PWHASH_MAX];
        random_password(pw);
        rc = srv_password_hash(SRV_PWCOST_INTERACTIVE, pw, strlen(pw), hash);
        if (rc == 0) {
            rc = db_account_add(db, demo_accounts[i].name, hash, demo_accounts[i].operator);
        }
        if (rc != 0) {
            fprintf(stderr, "conferd demo: cannot add %s: %s\n", demo_accounts[i].name,
                    db_errmsg(db));
            sodium_memzero(pw, sizeof(pw));
            db_close(db);
            return 1;
        }
        printf("  %-11s %s%s\n", demo_accounts[i].name, pw,
               demo_accounts[i].operator? "  (operator)" : "");
        sodium_memzero(pw, sizeof(pw));
        sodium_memzero(hash, sizeof(hash));
    }
    db_close(db);
    if (sample) {
        static const char *const members[] = {"associate", "associate", "counsellor", "counsellor",
                                              "viewer",    "viewer",    NULL};
        if (make_meeting(dir, DEMO_MEETING, "rapporteur", NULL, sample, members) != 0) {
            return 1;
        }
    }
    printf("\nFrom another terminal:  build/bin/confer login rapporteur@127.0.0.1:%d\n\n", port);
    fflush(stdout);
    return 0;
}

static int cmd_demo(int argc, char **argv)
{
    static const char *help =
        "usage: conferd demo --data DIR [--listen HOST:PORT] [serve options]\n"
        "\n"
        "On first use makes DIR as a demo data folder with the accounts admin (operator),\n"
        "rapporteur, associate, counsellor and viewer, printing their generated passwords\n"
        "once, and (with --sample FILE) imports that report as meeting " DEMO_MEETING "\n"
        "with those accounts as its members; then serves it like conferd serve.\n";
    struct opts o = {0};
    srv_config_defaults(&o.cfg);
    int r = parse_opts("demo", help, argc, argv, serve_allowed, &o);
    if (r != 0) {
        return r == 1 ? 0 : r;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", o.data, SRV_DB_FILE);
    if (access(path, F_OK) != 0) {
        if (demo_setup(o.data, o.cfg.port, o.sample) != 0) {
            return 1;
        }
    } else {
        printf("serving the demo data folder %s: its accounts (admin, rapporteur, associate,\n"
               "counsellor, viewer) had their passwords printed when it was made. To set one\n"
               "anew:  conferd account passwd NAME --data %s\n"
               "(or remove the folder to start afresh)\n",
               o.data, o.data);
        fflush(stdout);
    }
    return serve_demo(&o, true);
}

int srv_main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "conferd: libsodium failed to initialise\n");
        return 1;
    }
    umask(077); /* database, WAL and key files are the owner's only */
    /* A peer that resets while output is pending must cost its connection (EPIPE), not
     * the process. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fputs(main_usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("conferd 0.1.0 (protocol %d)\n", PROTO_VERSION);
        return 0;
    }
    argc--;
    argv++;
    if (strcmp(cmd, "init") == 0) {
        return cmd_init(argc, argv);
    }
    if (strcmp(cmd, "serve") == 0) {
        return cmd_serve(argc, argv);
    }
    if (strcmp(cmd, "demo") == 0) {
        return cmd_demo(argc, argv);
    }
    if (strcmp(cmd, "account") == 0) {
        return cmd_account(argc, argv);
    }
    if (strcmp(cmd, "fingerprint") == 0) {
        return cmd_fingerprint(argc, argv);
    }
    if (strcmp(cmd, "meeting") == 0) {
        return cmd_meeting(argc, argv);
    }
    if (strcmp(cmd, "audit") == 0) {
        return cmd_audit(argc, argv);
    }
    if (strcmp(cmd, "backup") == 0) {
        return cmd_backup(argc, argv);
    }
    if (strcmp(cmd, "restore") == 0) {
        return cmd_restore(argc, argv);
    }
    fprintf(stderr, "conferd: unknown command '%s'\n\n%s", cmd, main_usage);
    return EXIT_USAGE;
}
