/* cli_cmd_audit.c - confer audit verify and confer audit check, and the check of the signed
 * audit head that ends an export (PROTOCOL.md section 15). */
#include "cli_cmd.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli_audit.h"
#include "cli_record.h"
#include "cli_render.h"

#define HASH_SHOWN 16  /* hex digits of a hash shown in messages */
#define DIFF_COLS  100 /* columns of a differing line shown */

/* The first HASH_SHOWN hex digits of hash and "…". */
static void hash_prefix(const uint8_t hash[CLI_AUDIT_HASH_BYTES], char out[HASH_SHOWN + 8])
{
    char hex[CLI_AUDIT_HEX_LEN + 1];
    proto_hex(hash, CLI_AUDIT_HASH_BYTES, hex);
    snprintf(out, HASH_SHOWN + 8, "%.*s\xe2\x80\xa6", HASH_SHOWN, hex);
}

/* Keeps (seq, hash) as the known head of the meeting on server when it is newer. A file
 * that cannot be written is a warning: the check that was asked for has been done. quiet:
 * no warnings about malformed lines (the caller read the file already and warned). Returns
 * CLI_EXIT_FAIL only when the server signed another hash for a seq seen earlier. */
static int keep_head(struct cli_ctx *ctx, const char *server, const char *meeting, int64_t seq,
                     const uint8_t hash[CLI_AUDIT_HASH_BYTES], bool quiet)
{
    struct cli_head_entry known;
    char err[CLI_PATH_MAX + 256];

    if (cli_config_mkdir(&ctx->paths, err, sizeof(err)) != 0) {
        fprintf(ctx->err, "%s: warning: the audit head is not kept: %s\n", ctx->prog, err);
        return CLI_EXIT_OK;
    }
    int rc = cli_heads_update(ctx->paths.heads, server, meeting, seq, hash, quiet ? NULL : ctx->err,
                              &known, err, sizeof(err));
    if (rc == CLI_HEAD_FORK) {
        char was[HASH_SHOWN + 8];
        char now[HASH_SHOWN + 8];
        hash_prefix(known.hash, was);
        hash_prefix(hash, now);
        return cli_fail(ctx,
                        "the server's log no longer holds the head seen earlier (seq %lld, hash "
                        "%s, kept in %s): it now has hash %s at that seq, so the log was cut or "
                        "rewritten since; tell the server's operator (conferd audit verify "
                        "--meeting %s)",
                        (long long)seq, was, ctx->paths.heads, now, meeting);
    }
    if (rc < 0) {
        fprintf(ctx->err, "%s: warning: the audit head is not kept: %s\n", ctx->prog, err);
    }
    return CLI_EXIT_OK;
}

int cli_export_head_check(struct cli_ctx *ctx, const struct cli_mtg *m, const char *content,
                          size_t len)
{
    struct cli_audit_head h;
    const char *why = NULL;
    size_t lineno = 0;

    if (cli_audit_head_find(content, len, &h, &lineno, &why) != 0) {
        return cli_fail(ctx,
                        "the report of %s does not end with a valid audit head (line %zu: %s): "
                        "tell the server's operator",
                        m->id, lineno, why);
    }
    if (!h.signed_) {
        fprintf(ctx->err,
                "%s: warning: the report's audit head (seq %lld) is not signed (an older "
                "conferd): it cannot be checked later with confer audit check, and is not kept\n",
                ctx->prog, (long long)h.seq);
        return CLI_EXIT_OK;
    }
    if (!cli_audit_head_verify(&h, m->id, cli_conn_host_key(m->c))) {
        return cli_fail(ctx,
                        "the audit head of the report (seq %lld) is not signed by the host key "
                        "of %s (%s): the report cannot be relied on; nothing was written. Tell the "
                        "server's operator (conferd audit verify --meeting %s)",
                        (long long)h.seq, m->s.server, cli_conn_fingerprint(m->c), m->id);
    }
    return keep_head(ctx, m->s.server, m->id, h.seq, h.hash, false);
}

/* ---- confer audit verify ---- */

/* Writes "item #12", "member alice" for the mismatch entry e. */
static void mismatch_name(const msgpack_object *e, char *out, size_t cap)
{
    char raw[PROTO_NAME_MAX + 1];
    char type[PROTO_NAME_MAX + 1];
    int64_t id = 0;
    cli_obj_strcpy(e, "type", raw, sizeof(raw));
    cli_sanitize(raw, strlen(raw), type, sizeof(type));
    if (type[0] == '\0') {
        snprintf(type, sizeof(type), "object");
    }
    if (cli_obj_i64(e, "id", &id)) {
        snprintf(out, cap, "%s #%lld", type, (long long)id);
        return;
    }
    char rid[PROTO_NAME_MAX * 2];
    char sid[PROTO_NAME_MAX * 2];
    cli_obj_strcpy(e, "id", rid, sizeof(rid));
    cli_sanitize(rid, strlen(rid), sid, sizeof(sid));
    snprintf(out, cap, "%s %s", type, sid[0] != '\0' ? sid : "?");
}

/* Prints the mismatches of an audit.verify answer, one a line. */
static void print_mismatches(struct cli_ctx *ctx, const msgpack_object *list)
{
    uint32_t n = list != NULL && list->type == MSGPACK_OBJECT_ARRAY ? list->via.array.size : 0;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        char name[PROTO_NAME_MAX * 4];
        char raw[PROTO_NAME_MAX + 1];
        char field[PROTO_NAME_MAX + 1];
        if (e->type != MSGPACK_OBJECT_MAP) {
            continue;
        }
        mismatch_name(e, name, sizeof(name));
        cli_obj_strcpy(e, "field", raw, sizeof(raw));
        cli_sanitize(raw, strlen(raw), field, sizeof(field));
        if (field[0] == '\0') {
            fprintf(ctx->err, "  %s: in the log but not in the stored record, or the reverse\n",
                    name);
        } else {
            fprintf(ctx->err, "  %s: %s differs from the log\n", name, field);
        }
    }
    if (n >= 100) {
        fprintf(ctx->err, "  (the server lists the first %u)\n", n);
    }
}

static int audit_verify(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "audit verify",
        "[options]",
        "Has the server check the meeting's audit log: every change since the meeting was\n"
        "created, each hashed with the one before; the signed checkpoints; that the stored\n"
        "record is what the log replays to; and that the log still holds the newest head\n"
        "this client has seen (from confer export, audit check and audit verify), so that a\n"
        "log cut short or rewritten since is caught. Fails (exit 1) saying what does not\n"
        "hold. A head that verifies is kept as the one seen.",
        NULL,
        0,
        true,
        0,
        0,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct cli_heads hs;
    struct cli_head_entry known;
    bool has_known = false;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    memset(&hs, 0, sizeof(hs));
    memset(&known, 0, sizeof(known));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK) {
        goto cleanup;
    }
    int rc = cli_heads_load(&hs, ctx->paths.heads, ctx->err);
    if (rc != 0) {
        fprintf(ctx->err,
                "%s: warning: cannot read %s (%s): verifying without the head seen earlier\n",
                ctx->prog, ctx->paths.heads, proto_strerror(rc));
    }
    const struct cli_head_entry *e = cli_heads_find(&hs, m.s.server, m.id);
    if (e != NULL) {
        known = *e;
        has_known = true;
    }
    /* audit.verify {meeting, known?: {seq, hash}} ->
     * {"ok", "count", "head", "seq"?, "state"?, "mismatch"?, "bad_seq"?} */
    if (has_known) {
        char hex[CLI_AUDIT_HEX_LEN + 1];
        proto_hex(known.hash, CLI_AUDIT_HASH_BYTES, hex);
        rc = cli_mtg_call(ctx, &m, "cannot verify the audit log", &r, "audit.verify",
                          "{s: s, s: {s: I, s: s}}", "meeting", m.id, "known", "seq", known.seq,
                          "hash", hex);
    } else {
        rc = cli_mtg_call(ctx, &m, "cannot verify the audit log", &r, "audit.verify", "{s: s}",
                          "meeting", m.id);
    }
    if (rc != CLI_EXIT_OK) {
        goto cleanup;
    }
    bool ok = false;
    bool state = true;
    bool has_state = false;
    int64_t count = 0;
    int64_t bad = 0;
    int64_t seq = 0;
    const msgpack_object *mism = NULL;
    char raw[160];
    char head[160];
    uint8_t head_bin[CLI_AUDIT_HASH_BYTES];
    if (proto_param_bool(r->result, "ok", &ok) != 0) {
        code = cli_fail(ctx, "cannot verify the audit log: the server's answer has no ok");
        goto cleanup;
    }
    (void)proto_param_i64(r->result, "count", &count);
    (void)proto_param_i64(r->result, "bad_seq", &bad);
    /* seq, state and mismatch came with PROTOCOL.md section 15: an older server omits them */
    bool has_seq = proto_param_i64(r->result, "seq", &seq) == 0 && seq >= 1;
    has_state = proto_param_bool(r->result, "state", &state) == 0;
    (void)proto_param_array(r->result, "mismatch", &mism);
    cli_obj_strcpy(r->result, "head", raw, sizeof(raw));
    cli_sanitize(raw, strlen(raw), head, sizeof(head));
    size_t got = 0;
    bool head_ok =
        strlen(raw) == CLI_AUDIT_HEX_LEN &&
        sodium_hex2bin(head_bin, sizeof(head_bin), raw, CLI_AUDIT_HEX_LEN, NULL, &got, NULL) == 0 &&
        got == sizeof(head_bin);
    if (ok && has_seq && head_ok &&
        keep_head(ctx, m.s.server, m.id, seq, head_bin, true) != CLI_EXIT_OK) {
        /* a head that contradicts the one seen (keep_head said so) */
        if (ctx->json) {
            (void)cli_print_json(ctx, cli_json_from_mp(r->result));
        }
        code = CLI_EXIT_FAIL;
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, cli_json_from_mp(r->result));
        if (!ok) {
            code = CLI_EXIT_FAIL;
        }
        goto cleanup;
    }
    if (ok) {
        fprintf(ctx->out, "audit chain of meeting %s ok: %lld entries, head %s", m.id,
                (long long)count, head);
        if (has_state) {
            fprintf(ctx->out, "; the record matches the log");
        }
        if (has_known) {
            fprintf(ctx->out, "; it holds the head seen earlier (seq %lld)", (long long)known.seq);
        }
        fputc('\n', ctx->out);
        if (!has_state) {
            fprintf(ctx->out, "(the server does not compare the record with the log: an older "
                              "conferd)\n");
        }
        code = ferror(ctx->out) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        goto cleanup;
    }
    bool said = false;
    if (has_known && bad == known.seq) {
        char was[HASH_SHOWN + 8];
        hash_prefix(known.hash, was);
        cli_fail(ctx,
                 "the server's log of meeting %s no longer holds the head seen earlier (seq "
                 "%lld, hash %s): the log was cut or rewritten since",
                 m.id, (long long)known.seq, was);
        said = true;
    } else if (bad > 0) {
        cli_fail(ctx, "the audit chain of meeting %s is broken at seq %lld (of %lld entries)", m.id,
                 (long long)bad, (long long)count);
        said = true;
    }
    if (has_state && !state) {
        cli_fail(ctx, "the stored record of meeting %s differs from its audit log:", m.id);
        print_mismatches(ctx, mism);
        said = true;
    }
    if (!said) {
        cli_fail(ctx, "the audit log of meeting %s does not verify (%lld entries)", m.id,
                 (long long)count);
    }
    fprintf(ctx->err, "Tell the server's operator (conferd audit verify --meeting %s).\n", m.id);
    code = CLI_EXIT_FAIL;

cleanup:
    cli_heads_free(&hs);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

/* ---- confer audit check FILE ---- */

static bool starts_ci(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n < l) {
        return false;
    }
    for (size_t i = 0; i < l; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (c != lit[i]) {
            return false;
        }
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t l = strlen(suffix);
    return n >= l && strcmp(s + n - l, suffix) == 0;
}

/* The export format of a file: html by its start, markdown by its name, else text. */
static const char *guess_format(const char *name, const char *text, size_t len)
{
    if (starts_ci(text, len, "<!doctype") || starts_ci(text, len, "<html")) {
        return "html";
    }
    if (ends_with(name, ".md") || ends_with(name, ".markdown")) {
        return "markdown";
    }
    return "text";
}

/* Code points in s[0..n) (invalid bytes count one each). */
static size_t cols(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    }
    return c;
}

static bool all_blank(const char *s, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
            return false;
        }
    }
    return true;
}

/* Shows one side of a differing line: sanitized, starting a little before the column of
 * the difference when that is far in, and cut to DIFF_COLS columns. */
static void show_line(struct cli_ctx *ctx, const char *label, const char *s, size_t n,
                      size_t from_col)
{
    if (s == NULL) {
        fprintf(ctx->err, "  %s (no such line: the text ends before)\n", label);
        return;
    }
    size_t skip = 0;
    if (from_col > DIFF_COLS / 2) {
        /* step to the code point from_col - 20 */
        size_t want = from_col - 20;
        size_t c = 0;
        while (skip < n && c < want) {
            skip++;
            while (skip < n && ((unsigned char)s[skip] & 0xc0) == 0x80) {
                skip++;
            }
            c++;
        }
    }
    size_t take = n - skip < 4 * DIFF_COLS ? n - skip : 4 * DIFF_COLS;
    char safe[4 * DIFF_COLS + 8];
    char fitted[4 * DIFF_COLS + 16];
    cli_sanitize(s + skip, take, safe, sizeof(safe));
    cli_fit(safe, DIFF_COLS, fitted, sizeof(fitted));
    fprintf(ctx->err, "  %s %s%s\n", label, skip > 0 ? "\xe2\x80\xa6" : "", fitted);
}

struct check_result {
    const char *file;
    const char *meeting;
    const char *server;
    const char *format;
    struct cli_audit_head h;
    bool sig_ok;
    const char *content; /* "same", "differs", "not checked" */
    size_t diff_line;
};

static int check_json(struct cli_ctx *ctx, const struct check_result *cr, int code)
{
    char hex[CLI_AUDIT_HEX_LEN + 1];
    json_t *j = json_object();
    proto_hex(cr->h.hash, CLI_AUDIT_HASH_BYTES, hex);
    json_object_set_new(j, "ok", json_boolean(code == CLI_EXIT_OK));
    json_object_set_new(j, "file", json_string(cr->file));
    json_object_set_new(j, "meeting", json_string(cr->meeting));
    json_object_set_new(j, "server", json_string(cr->server));
    json_object_set_new(j, "seq", json_integer(cr->h.seq));
    json_object_set_new(j, "hash", json_string(hex));
    json_object_set_new(j, "signature",
                        json_string(!cr->h.signed_ ? "missing"
                                    : cr->sig_ok   ? "good"
                                                   : "bad"));
    json_object_set_new(j, "content", json_string(cr->content));
    if (cr->format != NULL) {
        json_object_set_new(j, "format", json_string(cr->format));
    }
    if (cr->diff_line > 0) {
        json_object_set_new(j, "line", json_integer((json_int_t)cr->diff_line));
    }
    int rc = cli_print_json(ctx, j);
    return rc != CLI_EXIT_OK ? rc : code;
}

static int audit_check(struct cli_ctx *ctx, int argc, char **argv)
{
    bool offline = false;
    const char *format = NULL;
    const struct cli_opt opts[] = {
        {"offline", 0, CLI_OPT_FLAG, NULL,
         "check only the signed head, without asking the server for its text", &offline, NULL},
        {"format", 0, CLI_OPT_STR, "text|markdown|html",
         "FILE's format (default: html by its start, markdown for *.md, else text)", NULL, &format},
    };
    const struct cli_usage u = {
        "audit check",
        "FILE [--offline] [--format F] [options]",
        "Checks a report exported earlier (confer export, \"-\": standard input): that its\n"
        "last line, the audit head, is signed by the pinned host key of the server for the\n"
        "meeting, then that the server's report at that seq is FILE byte for byte (names\n"
        "the first line that differs). With --offline only the head is checked, without\n"
        "connecting. A head that holds is kept as the one seen (see audit verify).",
        opts,
        sizeof(opts) / sizeof(opts[0]),
        true,
        1,
        1,
        true,
    };
    struct cli_args a;
    struct cli_session s;
    struct cli_known_hosts kh;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct check_result cr;
    char *text = NULL;
    size_t len = 0;
    char meeting[PROTO_NAME_MAX + 1];
    char fp[PROTO_FINGERPRINT_LEN];
    int code = CLI_EXIT_FAIL;
    bool report = false; /* the head was read: the result can be told as JSON */

    memset(&s, 0, sizeof(s));
    memset(&kh, 0, sizeof(kh));
    memset(&m, 0, sizeof(m));
    memset(&cr, 0, sizeof(cr));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (format != NULL && strcmp(format, "text") != 0 && strcmp(format, "markdown") != 0 &&
        strcmp(format, "html") != 0) {
        return cli_usage_error(ctx, u.cmd, "--format must be text, markdown or html");
    }
    const char *file = a.v[0];
    int rc = cli_audit_read_file(file, ctx->in_fd, CLI_AUDIT_FILE_MAX, &text, &len);
    if (rc == PROTO_ENOTFOUND) {
        return cli_fail(ctx, "cannot read %s: no such file", file);
    }
    if (rc == PROTO_ETOOBIG) {
        return cli_fail(ctx, "%s is too large to be a report (at most %d MiB)", file,
                        CLI_AUDIT_FILE_MAX >> 20);
    }
    if (rc != 0) {
        return cli_fail(ctx, "cannot read %s: %s", file, proto_strerror(rc));
    }

    /* the server and the meeting: the session's, as for every meeting command, but no
     * login is needed to check the head */
    rc = cli_session_load(&s, ctx->paths.session, ctx->err);
    if (rc != 0 && rc != PROTO_ENOTFOUND) {
        code = cli_fail(ctx, "cannot read %s: %s", ctx->paths.session, proto_strerror(rc));
        goto cleanup;
    }
    if (s.server[0] == '\0') {
        code = cli_fail(ctx,
                        "no server known: run %s login USER@HOST once (the report is checked "
                        "with that server's pinned host key)",
                        ctx->prog);
        goto cleanup;
    }
    snprintf(meeting, sizeof(meeting), "%s", ctx->meeting != NULL ? ctx->meeting : s.meeting);
    if (meeting[0] == '\0') {
        code = cli_fail(ctx,
                        "no meeting chosen: pass -m MEETING (the meeting the report is of) or run "
                        "%s use MEETING",
                        ctx->prog);
        goto cleanup;
    }
    const char *why = NULL;
    size_t lineno = 0;
    if (cli_audit_head_find(text, len, &cr.h, &lineno, &why) != 0) {
        if (lineno == 0) {
            code = cli_fail(ctx, "%s is empty: not a report exported by confer", file);
        } else {
            code = cli_fail(ctx,
                            "%s does not end with an audit head (line %zu: %s): not a whole "
                            "report exported by confer",
                            file, lineno, why);
        }
        goto cleanup;
    }
    cr.file = file;
    cr.meeting = meeting;
    cr.server = s.server;
    cr.content = "not checked";
    report = true;
    if (!cr.h.signed_) {
        code = cli_fail(ctx,
                        "the audit head of %s (seq %lld) is not signed (exported from an older "
                        "conferd): it cannot be checked",
                        file, (long long)cr.h.seq);
        goto cleanup;
    }
    rc = cli_known_hosts_load(&kh, ctx->paths.known_hosts, ctx->err);
    if (rc != 0) {
        code = cli_fail(ctx, "cannot read %s: %s", ctx->paths.known_hosts, proto_strerror(rc));
        goto cleanup;
    }
    const struct cli_known_host *pin = cli_known_hosts_find(&kh, s.server);
    if (pin == NULL) {
        code = cli_fail(ctx,
                        "no host key pinned for %s: connect once (%s login USER@%s) and compare "
                        "the fingerprint with conferd fingerprint on the server's host",
                        s.server, ctx->prog, s.server);
        goto cleanup;
    }
    proto_fingerprint(pin->pk, fp);
    cr.sig_ok = cli_audit_head_verify(&cr.h, meeting, pin->pk);
    if (!cr.sig_ok) {
        code = cli_fail(ctx,
                        "%s: the signature of its audit head (line %zu: seq %lld) does not hold "
                        "for meeting %s and the host key of %s (%s): the head was changed, or the "
                        "report is of another meeting (-m) or server",
                        file, lineno, (long long)cr.h.seq, meeting, s.server, fp);
        goto cleanup;
    }
    if (keep_head(ctx, s.server, meeting, cr.h.seq, cr.h.hash, false) != CLI_EXIT_OK) {
        goto cleanup;
    }
    char hp[HASH_SHOWN + 8];
    hash_prefix(cr.h.hash, hp);
    if (offline) {
        if (!ctx->json) {
            fprintf(ctx->out,
                    "%s: the audit head (seq %lld, hash %s) is signed by the host key of %s "
                    "(%s) for meeting %s\n"
                    "only the head was checked (--offline): the text was not compared with the "
                    "server's\n",
                    file, (long long)cr.h.seq, hp, s.server, fp, meeting);
        }
        code = CLI_EXIT_OK;
        goto cleanup;
    }

    cr.format = format != NULL ? format : guess_format(file, text, len);
    /* the same meeting whatever the session file says by now */
    const char *given = ctx->meeting;
    ctx->meeting = meeting;
    rc = cli_mtg_open(ctx, &m, true);
    ctx->meeting = given;
    if (rc != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (strcmp(m.s.server, s.server) != 0 ||
        sodium_memcmp(cli_conn_host_key(m.c), pin->pk, PROTO_KEY_BYTES) != 0) {
        code = cli_fail(ctx, "the session changed server while checking: run the check again");
        goto cleanup;
    }
    /* report.export {meeting, format, at} -> {"seq", "content"} */
    if (cli_mtg_call(ctx, &m, "cannot fetch the server's report", &r, "report.export",
                     "{s: s, s: s, s: I}", "meeting", meeting, "format", cr.format, "at",
                     cr.h.seq) != CLI_EXIT_OK) {
        goto cleanup;
    }
    const char *content = NULL;
    size_t clen = 0;
    if (proto_param_str(r->result, "content", &content, &clen) != 0) {
        code = cli_fail(ctx, "cannot fetch the server's report: the answer has no content");
        goto cleanup;
    }
    size_t dl = 0;
    const char *la = NULL;
    const char *lb = NULL;
    size_t na = 0;
    size_t nb = 0;
    if (!cli_audit_first_diff(text, len, content, clen, &dl, &la, &na, &lb, &nb)) {
        cr.content = "same";
        if (!ctx->json) {
            fprintf(ctx->out,
                    "%s: the audit head (seq %lld, hash %s) is signed by the host key of %s "
                    "(%s) for meeting %s\n"
                    "the text is the server's report (%s) at seq %lld, byte for byte\n",
                    file, (long long)cr.h.seq, hp, s.server, fp, meeting, cr.format,
                    (long long)cr.h.seq);
        }
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    cr.content = "differs";
    cr.diff_line = dl;
    size_t same = 0;
    while (la != NULL && lb != NULL && same < na && same < nb && la[same] == lb[same]) {
        same++;
    }
    size_t col = la != NULL ? cols(la, same) : 0;
    code = cli_fail(ctx,
                    "%s differs from the server's report (%s) at seq %lld, first at line %zu "
                    "(its signed head holds: the text was changed after the export, or it is in "
                    "another format: --format)",
                    file, cr.format, (long long)cr.h.seq, dl);
    show_line(ctx, "file:  ", la, na, col);
    show_line(ctx, "server:", lb, nb, col);
    if ((la != NULL && lb != NULL && na == nb && memcmp(la, lb, na) == 0) ||
        (la == NULL && all_blank(lb, nb)) || (lb == NULL && all_blank(la, na))) {
        fprintf(ctx->err, "  (they differ only in line ends, or blank lines at the end)\n");
    }

cleanup:
    if (report && ctx->json) {
        code = check_json(ctx, &cr, code);
    }
    free(text);
    cli_msg_free(r);
    cli_mtg_close(&m);
    cli_known_hosts_free(&kh);
    cli_session_wipe(&s);
    return code;
}

/* ---- confer audit ---- */

int cli_cmd_audit(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "audit",
        "verify [options]\n"
        "check FILE [--offline] [--format F] [options]",
        "verify  has the server check the meeting's audit log: the hash chain, the signed\n"
        "        checkpoints, the stored record against the log, and that the log still\n"
        "        holds the newest head this client has seen.\n"
        "check   checks a report exported earlier: its signed audit head against the\n"
        "        server's pinned host key, and its text against the server's report at\n"
        "        that seq (--offline: the head only).\n"
        "Both fail (exit 1) saying what does not hold. `confer audit verify --help` and\n"
        "`confer audit check --help` tell more.",
        NULL,
        0,
        true,
        0,
        CLI_MAX_ARGS,
        true,
    };
    struct cli_args a;
    int code = CLI_EXIT_FAIL;

    /* the sub-command is the first argument that is not an option or an option's value */
    int sub = 0;
    for (int i = 1; i < argc && sub == 0; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--") == 0) {
            sub = i + 1 < argc ? i + 1 : 0;
            break;
        }
        if (strcmp(s, "-m") == 0 || strcmp(s, "--meeting") == 0 || strcmp(s, "--format") == 0) {
            i++;
            continue;
        }
        if (s[0] != '-' || s[1] == '\0') {
            sub = i;
        }
    }
    if (sub > 0 && (strcmp(argv[sub], "verify") == 0 || strcmp(argv[sub], "check") == 0)) {
        /* moved to argv[1], the sub-command's argv[0] */
        char *name = argv[sub];
        memmove(argv + 2, argv + 1, (size_t)(sub - 1) * sizeof(*argv));
        argv[1] = name;
        return strcmp(name, "verify") == 0 ? audit_verify(ctx, argc - 1, argv + 1)
                                           : audit_check(ctx, argc - 1, argv + 1);
    }
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (a.n == 0) {
        return cli_usage_error(ctx, "audit",
                               "missing sub-command (audit verify, or audit check FILE)");
    }
    return cli_usage_error(
        ctx, "audit", "unknown sub-command '%s' (use: audit verify, audit check FILE)", a.v[0]);
}
