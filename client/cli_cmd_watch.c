/* cli_cmd_watch.c - `confer watch`: the meeting's changes and who is where, live; with an
 * ITEM, that section's text redrawn as others type. After a network break it reconnects by
 * itself, subscribes with the last seq it saw and says how many changes it replayed; it
 * stops, saying why, when the server refuses its token or shows another host key. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_cmd.h"
#include "cli_names.h"
#include "cli_record.h"
#include "cli_render.h"
#include "cli_text.h"

/* Code points inserted and deleted by a wire op. */
static void op_size(const msgpack_object *op, size_t *ins, size_t *del)
{
    *ins = *del = 0;
    for (uint32_t i = 0; op && op->type == MSGPACK_OBJECT_ARRAY && i < op->via.array.size; i++) {
        const msgpack_object *c = &op->via.array.ptr[i];
        if (c->type == MSGPACK_OBJECT_STR) {
            *ins += proto_utf8_count(c->via.str.ptr, c->via.str.size);
        } else if (c->type == MSGPACK_OBJECT_MAP) {
            const msgpack_object *d = proto_mp_map_get(c, "d");
            if (d && d->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                *del += (size_t)d->via.u64;
            } else if (d && d->type == MSGPACK_OBJECT_STR) {
                *del += proto_utf8_count(d->via.str.ptr, d->via.str.size);
            }
        }
    }
}

/* Appends a quoted piece of text to out (cut to about 40 characters, sanitized). */
static void quote_piece(char *out, size_t cap, const char *sign, const char *s, size_t n)
{
    char clean[256], cut[200];
    size_t cps = proto_utf8_count(s, n), take = n, len = strlen(out);
    if (cps > 40) { /* the first 40 code points */
        size_t i = 0, k = 0;
        while (i < n && k < 40) {
            i++;
            while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) {
                i++;
            }
            k++;
        }
        take = i;
    }
    snprintf(cut, sizeof(cut), "%.*s%s", (int)(take < 190 ? take : 190), s,
             take < n ? "\xe2\x80\xa6" : "");
    cli_sanitize(cut, strlen(cut), clean, sizeof(clean));
    if (len < cap) {
        snprintf(out + len, cap - len, " %s\xe2\x80\x9c%s\xe2\x80\x9d", sign, clean);
    }
}

/* What an op does to the text it applies to, as words: +"inserted" -"deleted" (the deleted
 * words when the text before is known, else their count). */
static void op_words(const msgpack_object *op, const char *text, size_t len, char *out, size_t cap)
{
    size_t pos = 0; /* a byte offset into text */
    out[0] = '\0';
    for (uint32_t i = 0; op && op->type == MSGPACK_OBJECT_ARRAY && i < op->via.array.size; i++) {
        const msgpack_object *c = &op->via.array.ptr[i];
        uint64_t n = 0;
        if (c->type == MSGPACK_OBJECT_STR) {
            quote_piece(out, cap, "+", c->via.str.ptr, c->via.str.size);
            continue;
        }
        const msgpack_object *d = c->type == MSGPACK_OBJECT_MAP ? proto_mp_map_get(c, "d") : NULL;
        if (c->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            n = c->via.u64;
        } else if (d && d->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            n = d->via.u64;
        } else if (d && d->type == MSGPACK_OBJECT_STR) {
            n = proto_utf8_count(d->via.str.ptr, d->via.str.size);
        } else {
            continue;
        }
        size_t start = pos;
        for (uint64_t k = 0; k < n && text && pos < len; k++) {
            pos++;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80) {
                pos++;
            }
        }
        if (c->type != MSGPACK_OBJECT_MAP) {
            continue; /* a skip */
        }
        if (text != NULL && pos > start) {
            quote_piece(out, cap, "-", text + start, pos - start);
        } else {
            size_t l = strlen(out);
            snprintf(out + l, cap > l ? cap - l : 0, " -%llu", (unsigned long long)n);
        }
    }
}

static void clock_of(const msgpack_object *p, char out[16])
{
    int64_t ms = 0;
    time_t t = time(NULL);
    if (cli_obj_i64(p, "time", &ms)) {
        t = (time_t)(ms / 1000);
    }
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, 16, "%H:%M:%S", &tm);
}

/* One line for a person: "12:01:07 alice  text item 4 body (+12 -3)", or with the words
 * (words: what op_words made of the op) "... body +“new words” -“old”". */
/* One line per change, naming it as confer history does. */
static void print_event(struct cli_ctx *ctx, const struct cli_names *nm, const msgpack_object *p,
                        const char *words)
{
    char when[16], raw[PROTO_NAME_MAX + 1], user[PROTO_NAME_MAX + 1], kind[16], what[600] = "";
    char line[900], safe[900];
    clock_of(p, when);
    cli_obj_strcpy(p, "user", raw, sizeof(raw));
    cli_sanitize(raw, strlen(raw), user, sizeof(user));
    cli_obj_strcpy(p, "kind", kind, sizeof(kind));
    if (strcmp(kind, "text") == 0) {
        size_t ins = 0, del = 0;
        char field[16];
        op_size(proto_mp_map_get(p, "op"), &ins, &del);
        cli_obj_strcpy(p, "field", field, sizeof(field));
        if (words != NULL && words[0] != '\0') {
            snprintf(what, sizeof(what), "%s%s", field, words);
        } else {
            snprintf(what, sizeof(what), "%s (+%zu -%zu)", field, ins, del);
        }
    } else if (strcmp(kind, "member") == 0) {
        char role[16];
        cli_obj_strcpy(p, "role", role, sizeof(role));
        snprintf(what, sizeof(what), role[0] ? "role %s" : "removed", role);
    } else {
        const msgpack_object *f = proto_mp_map_get(p, "fields");
        for (uint32_t i = 0; f && f->type == MSGPACK_OBJECT_MAP && i < f->via.map.size; i++) {
            const msgpack_object *k = &f->via.map.ptr[i].key;
            size_t used = strlen(what);
            if (k->type == MSGPACK_OBJECT_STR && used + k->via.str.size + 3 < sizeof(what)) {
                snprintf(what + used, sizeof(what) - used, "%s%.*s", i ? ", " : "",
                         (int)k->via.str.size, k->via.str.ptr);
            }
        }
    }
    cli_names_change(nm, p, what, line, sizeof(line));
    cli_sanitize(line, strlen(line), safe, sizeof(safe));
    int64_t seq = 0;
    cli_obj_i64(p, "seq", &seq);
    fprintf(ctx->out, "%s  %-12s %s  [seq %lld]\n", when, user, safe, (long long)seq);
}

static void print_presence(struct cli_ctx *ctx, const struct cli_names *nm, const msgpack_object *p)
{
    char when[16], raw[PROTO_NAME_MAX + 1], user[PROTO_NAME_MAX + 1], state[8], field[16] = "";
    clock_of(p, when);
    cli_obj_strcpy(p, "user", raw, sizeof(raw));
    cli_sanitize(raw, strlen(raw), user, sizeof(user));
    cli_obj_strcpy(p, "state", state, sizeof(state));
    const msgpack_object *w = proto_mp_map_get(p, "where");
    if (strcmp(state, "leave") == 0 || w == NULL || w->type != MSGPACK_OBJECT_MAP) {
        fprintf(ctx->out, "%s  %-12s left\n", when, user);
        return;
    }
    char where[CLI_NAME_MAX], line[CLI_NAME_MAX + 20], safe[CLI_NAME_MAX + 20];
    cli_obj_strcpy(w, "field", field, sizeof(field));
    cli_names_of(nm, w, where, sizeof(where));
    snprintf(line, sizeof(line), "%s %s", where, field);
    cli_sanitize(line, strlen(line), safe, sizeof(safe));
    fprintf(ctx->out, "%s  %-12s %s %s\n", when, user,
            strcmp(state, "join") == 0 ? "is at" : "moved to", safe);
}

static void redraw(struct cli_ctx *ctx, const char *label, const struct cli_text *t, bool tty)
{
    if (tty) {
        fputs("\033[H\033[2J", ctx->out);
    } else {
        fputs("----\n", ctx->out);
    }
    fprintf(ctx->out, "%s  (seq %lld)\n\n%s\n", label, (long long)t->seq, t->text);
}

struct watch {
    struct cli_ctx *ctx;
    struct cli_names *nm;
    struct cli_mtg mt;
    bool follow_text;
    bool replica;
    struct cli_text t;
    char label[96];
    int64_t seq;
    long events;
    bool tty;
};

/* (Re)subscribes; the first time takes the snapshot (and the text), later ones replay. */
static int start(struct watch *w, bool again, const char *item)
{
    struct cli_msg *m = NULL;
    int code;
    if (again) {
        code = cli_mtg_call(w->ctx, &w->mt, "subscribe", &m, "meeting.subscribe", "{s:s, s:I}",
                            "meeting", w->mt.id, "since", w->seq);
    } else {
        code = cli_mtg_call(w->ctx, &w->mt, "subscribe", &m, "meeting.subscribe", "{s:s}",
                            "meeting", w->mt.id);
    }
    if (code != CLI_EXIT_OK) {
        return code;
    }
    if (!again) {
        cli_obj_i64(m->result, "seq", &w->seq);
        const msgpack_object *rec = proto_mp_map_get(m->result, "snapshot");
        if (cli_names_add_record(w->nm, rec, true) != 0) {
            cli_msg_free(m);
            return cli_fail(w->ctx, "out of memory");
        }
        if (item) {
            const msgpack_object *o = cli_rec_find(rec, PROTO_T_ITEM, item);
            if (o == NULL) {
                cli_msg_free(m);
                return cli_fail(w->ctx, "no item %s in this meeting (confer agenda lists them)",
                                item);
            }
            int64_t id = 0;
            size_t len = 0;
            cli_obj_i64(o, "id", &id);
            const char *body = cli_obj_str(o, "body", &len);
            cli_obj_label(PROTO_T_ITEM, o, w->label, sizeof(w->label));
            if (cli_text_init(&w->t, w->mt.id, "item", id, NULL, "body", body ? body : "",
                              body ? len : 0, w->seq) != 0) {
                cli_msg_free(m);
                return cli_fail(w->ctx, "out of memory");
            }
            w->replica = true;
            if (!w->ctx->json) {
                redraw(w->ctx, w->label, &w->t, w->tty);
            }
        } else if (!w->ctx->json) {
            fprintf(w->ctx->out, "watching %s from seq %lld (Ctrl-C stops)\n", w->mt.id,
                    (long long)w->seq);
        }
    } else if (!w->ctx->json) {
        fprintf(w->ctx->out, "reconnected: %zu change%s replayed\n", cli_conn_pending(w->mt.c),
                cli_conn_pending(w->mt.c) == 1 ? "" : "s");
    }
    fflush(w->ctx->out);
    cli_msg_free(m);
    return CLI_EXIT_OK;
}

static void handle(struct watch *w, const struct cli_msg *m)
{
    if (m->kind != PROTO_RPC_NOTIFY || m->method == NULL) {
        return;
    }
    if (w->ctx->json) {
        json_t *j = json_pack("{s:s}", "notification", m->method);
        json_object_set_new(j, "params", cli_json_from_mp(m->params));
        char *s = json_dumps(j, JSON_COMPACT);
        if (s) {
            fprintf(w->ctx->out, "%s\n", s);
            free(s);
        }
        json_decref(j);
    }
    if (strcmp(m->method, "event") == 0) {
        int64_t seq = 0;
        cli_obj_i64(m->params, "seq", &seq);
        if (seq <= w->seq && !w->replica) {
            return;
        }
        w->events++;
        bool text_before = false;
        char words[512] = "";
        char kind[16] = "";
        cli_obj_strcpy(m->params, "kind", kind, sizeof(kind));
        if (strcmp(kind, "text") == 0) {
            /* The words, against the section's text before the op when it is this one. */
            int64_t id = 0;
            char field[16] = "";
            cli_obj_i64(m->params, "id", &id);
            cli_obj_strcpy(m->params, "field", field, sizeof(field));
            bool ours =
                w->replica && id == w->t.id && strcmp(field, w->t.field) == 0 && seq > w->seq;
            op_words(proto_mp_map_get(m->params, "op"), ours ? w->t.text : NULL,
                     ours ? w->t.len : 0, words, sizeof(words));
        }
        if (w->replica) {
            int64_t before = w->t.remote_ops;
            cli_text_handle(&w->t, w->mt.c, m);
            text_before = w->t.remote_ops != before;
        }
        if (seq > w->seq) {
            w->seq = seq;
        }
        if (!w->ctx->json) {
            if (text_before) {
                redraw(w->ctx, w->label, &w->t, w->tty);
            }
            cli_names_event(w->nm, m->params);
            print_event(w->ctx, w->nm, m->params, words);
        }
    } else if (strcmp(m->method, "presence") == 0 && !w->ctx->json) {
        print_presence(w->ctx, w->nm, m->params);
    }
    fflush(w->ctx->out);
}

int cli_cmd_watch(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *count_s = NULL, *for_s = NULL;
    const struct cli_opt opts[] = {
        {"count", 0, CLI_OPT_STR, "N", "stop after N changes", NULL, &count_s},
        {"for", 0, CLI_OPT_STR, "SECONDS", "stop after this long", NULL, &for_s},
    };
    const struct cli_usage u = {
        .cmd = "watch",
        .synopsis = "[ITEM] [--count N] [--for SECONDS]",
        .about =
            "Shows the meeting's changes as they happen (who, what, where, when) and "
            "who is editing where. With ITEM (a number, or #ID), that section's text is "
            "redrawn live as others type. After a network break it reconnects by itself "
            "and replays what it missed; it stops (exit 1) when the server refuses its session "
            "(log in again), shows another host key, or refuses the subscription three times "
            "in a row. --json prints each notification as a line "
            "of "
            "JSON. Ctrl-C stops.",
        .opts = opts,
        .nopts = sizeof(opts) / sizeof(opts[0]),
        .json = true,
        .min_args = 0,
        .max_args = 1,
        .meeting = true,
    };
    struct cli_args a;
    int code = CLI_EXIT_OK;
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    long count = count_s ? strtol(count_s, NULL, 10) : 0;
    long secs = for_s ? strtol(for_s, NULL, 10) : 0;
    if ((count_s && count <= 0) || (for_s && secs <= 0)) {
        return cli_usage_error(ctx, "watch", "--count and --for take positive numbers");
    }
    struct watch w;
    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    w.tty = isatty(fileno(ctx->out)) && !ctx->json;
    if ((w.nm = cli_names_new()) == NULL) {
        return cli_fail(ctx, "out of memory");
    }
    code = cli_mtg_open(ctx, &w.mt, true);
    if (code == CLI_EXIT_OK) {
        code = start(&w, false, a.n ? a.v[0] : NULL);
    }
    int64_t end = secs ? proto_now_ms() + secs * 1000 : 0;
    int backoff = 250;
    int refused = 0; /* logged in again, but the subscription was refused, in a row */
    while (code == CLI_EXIT_OK && (count == 0 || w.events < count)) {
        int64_t left = end ? end - proto_now_ms() : 1000;
        if (end && left <= 0) {
            break;
        }
        struct cli_msg *m = NULL;
        int rc =
            w.mt.c ? cli_conn_next(w.mt.c, (int)(left < 1000 ? left : 1000), &m) : PROTO_ECLOSED;
        if (rc == 0) {
            handle(&w, m);
            cli_msg_free(m);
            backoff = 250;
            continue;
        }
        if (rc == PROTO_ETIMEDOUT) {
            continue;
        }
        /* The connection broke: come back and replay from the last seq. */
        if (w.mt.c && !ctx->json) {
            fprintf(ctx->out, "connection lost (%s); reconnecting...\n", cli_conn_error(w.mt.c));
            fflush(ctx->out);
        }
        cli_conn_free(w.mt.c);
        w.mt.c = NULL;
        usleep((useconds_t)backoff * 1000);
        backoff = backoff < 4000 ? backoff * 2 : 5000;
        /* quiet while the server is away; but a refused token or a changed host key is
         * said and ends the watch: trying again cannot help (and a refused token again
         * and again rate limits the account) */
        char *said = NULL;
        size_t said_len = 0;
        FILE *err = ctx->err, *quiet = open_memstream(&said, &said_len);
        if (quiet) {
            ctx->err = quiet;
        }
        bool hopeless = false;
        int c = cli_session_reconnect(ctx, &w.mt.s, &w.mt.c, NULL, &hopeless);
        if (c == CLI_EXIT_OK) {
            c = start(&w, true, NULL);
            /* the server answers, but not the subscription (no longer a member, the
             * meeting gone): a few times may be a restart, more will not change */
            refused = c == CLI_EXIT_OK ? 0 : refused + 1;
            hopeless = refused >= 3;
        }
        if (quiet) {
            fclose(quiet);
        }
        ctx->err = err;
        if (c != CLI_EXIT_OK) {
            cli_conn_free(w.mt.c);
            w.mt.c = NULL;
        }
        if (c != CLI_EXIT_OK && hopeless) {
            if (said != NULL && said_len > 0) {
                fwrite(said, 1, said_len, err);
            } else {
                cli_fail(ctx, "cannot connect again; not retrying");
            }
            code = CLI_EXIT_FAIL;
        }
        free(said);
    }
    if (w.replica) {
        cli_text_free(&w.t);
    }
    cli_mtg_close(&w.mt);
    cli_names_free(w.nm);
    return code;
}
