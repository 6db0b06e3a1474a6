/* cli_cmd_objects.c - listing, adding, changing and removing the objects of a meeting
 * (items, sessions, docs, actions, decisions, interims, people) and the meeting's own
 * fields, all through one implementation driven by a small table per type: which options
 * set which fields (the fields themselves, their kinds and allowed values come from
 * proto_schema.h), what add's arguments are, and the columns of the list.
 *
 * Objects are named the way people name them (cli_record.h): resolved against the record
 * read once with meeting.get. A change sends a fresh cid, and set/remove send if_seq = the
 * seq of the object as just read, so a change made meanwhile by someone else is refused
 * instead of overwritten.
 */
#include "cli_cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli_record.h"
#include "cli_render.h"

/* One option of a type: --FIELD (with '-' for '_') sets the field FIELD. */
struct opt_def {
    const char *field;
    const char *help;
};

enum col_kind {
    COL_STR,      /* the string field */
    COL_ID,       /* "12": bare, so that it can be pasted into a command */
    COL_DOC,      /* ref and revision: "TSAG-TD257R1" */
    COL_ITEM,     /* the number of the item the field points at */
    COL_SPAN,     /* "start-end" */
    COL_LINE,     /* the first line of a text field */
    COL_INT,      /* an integer field */
    COL_STATUS,   /* an action's status: "\u2713 done", "\u2717 dropped", "open" */
    COL_DEADLINE, /* a date that may have passed: "2023-05-01 (passed)" */
};

struct col {
    const char *header;
    const char *field;
    enum col_kind kind;
};

struct kind {
    enum proto_type type;
    const char *cmd;            /* "actions" */
    const char *target;         /* how set and remove name one: "REF" */
    const char *add_args;       /* add's arguments: "DATE START END" */
    const char *add_fields[4];  /* the fields add's arguments set, NULL-terminated */
    int add_min;                /* how many of them add needs */
    const char *add_needs;      /* a field that add requires as an option, or NULL */
    const char *add_note;       /* more about add, or NULL */
    const struct opt_def *opts; /* fields that add and set take as options */
    size_t nopts;
    const struct col *cols; /* the list's columns */
    size_t ncols;
    const char *filter; /* the list: "item" ([ITEM] argument) or "status" (--status), or NULL */
    const char *about;  /* the list's help */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct opt_def meeting_opts[] = {
    {"title", "the meeting's title"},
    {"group", "the group, e.g. RG-IEM"},
    {"parent", "the parent body, e.g. TSAG"},
    {"venue", "where it takes place"},
    {"start", "the first day"},
    {"end", "the last day"},
    {"tz", "the time zone of dates and times (IANA name, e.g. Europe/Zurich)"},
    {"report_ref", "the report's document, e.g. TSAG-TD182"},
    {"action_prefix", "numbers new actions PREFIX-1, PREFIX-2... (e.g. RG-IEM)"},
    {"deadline_days", "contribution deadline: days before an interim meeting"},
    {"status", "final locks the record; draft reopens it (rapporteur)"},
    {"abstract", "the abstract (replaces it whole)"},
};

static const struct opt_def item_opts[] = {
    {"number", "the item's number, e.g. 4 or 4.1"},
    {"title", "the item's title"},
    {"body", "the item's text (replaces it whole)"},
};

static const struct opt_def session_opts[] = {
    {"date", "the day"},     {"start", "the start time"},
    {"end", "the end time"}, {"kind", "a regular session or a drafting session"},
    {"title", "a title"},
};

static const struct opt_def doc_opts[] = {
    {"ref", "rename: the reference, with the revision if any (REF[REV])"},
    {"revision", "the revision, e.g. R1 (\"\" for none)"},
    {"title", "the document's title"},
    {"source", "who submitted it"},
    {"item", "the agenda item it belongs to (\"\" for none)"},
    {"status", "what became of it, e.g. noted"},
};

static const struct opt_def action_opts[] = {
    {"to", "whom the action is addressed to, e.g. WP2"},
    {"owner", "who carries it out"},
    {"due", "when it is due"},
    {"ref", "its reference (default: the next ACTION_PREFIX-N)"},
    {"status", "where it stands"},
    {"text", "the action's text (replaces it whole)"},
};

static const struct opt_def decision_opts[] = {
    {"item", "the agenda item it belongs to (\"\" for none)"},
    {"kind", "what the meeting did"},
    {"text", "the text (replaces it whole)"},
};

static const struct opt_def interim_opts[] = {
    {"date", "the day"},
    {"start", "the start time"},
    {"end", "the end time"},
    {"topic", "the main topic"},
    {"mode", "how it meets"},
    {"deadline_days", "contribution deadline in days before it (\"\": the meeting's)"},
};

static const struct opt_def person_opts[] = {
    {"name", "the name"},
    {"affiliation", "whom the person represents"},
    {"role", "the person's role in the meeting"},
    {"note", "a note, e.g. what an associate rapporteur covers"},
};

static const struct col item_cols[] = {
    {"NUMBER", "number", COL_STR},
    {"TITLE", "title", COL_STR},
};

static const struct col session_cols[] = {
    {"ID", "id", COL_ID},      {"DATE", "date", COL_STR},   {"TIME", "start", COL_SPAN},
    {"KIND", "kind", COL_STR}, {"TITLE", "title", COL_STR},
};

static const struct col doc_cols[] = {
    {"DOC", "ref", COL_DOC},    {"TITLE", "title", COL_STR},   {"SOURCE", "source", COL_STR},
    {"ITEM", "item", COL_ITEM}, {"STATUS", "status", COL_STR},
};

static const struct col action_cols[] = {
    {"REF", "ref", COL_STR},          {"TO", "to", COL_STR},        {"OWNER", "owner", COL_STR},
    {"STATUS", "status", COL_STATUS}, {"DUE", "due", COL_DEADLINE}, {"TEXT", "text", COL_LINE},
};

static const struct col decision_cols[] = {
    {"ID", "id", COL_ID},
    {"ITEM", "item", COL_ITEM},
    {"KIND", "kind", COL_STR},
    {"TEXT", "text", COL_LINE},
};

static const struct col interim_cols[] = {
    {"ID", "id", COL_ID},        {"DATE", "date", COL_STR}, {"TIME", "start", COL_SPAN},
    {"TOPIC", "topic", COL_STR}, {"MODE", "mode", COL_STR}, {"DEADLINE", "deadline", COL_DEADLINE},
};

static const struct col person_cols[] = {
    {"ID", "id", COL_ID},      {"NAME", "name", COL_STR}, {"AFFILIATION", "affiliation", COL_STR},
    {"ROLE", "role", COL_STR}, {"NOTE", "note", COL_STR},
};

static const struct kind kinds[] = {
    {PROTO_T_MEETING,
     "meeting",
     NULL,
     NULL,
     {NULL},
     0,
     NULL,
     NULL,
     meeting_opts,
     N(meeting_opts),
     NULL,
     0,
     NULL,
     NULL},
    {PROTO_T_ITEM,
     "items",
     "ITEM",
     "NUMBER TITLE",
     {"number", "title", NULL},
     2,
     NULL,
     "NUMBER is the item's number, e.g. 4 or 4.1; the agenda sorts by it.",
     item_opts,
     N(item_opts),
     item_cols,
     N(item_cols),
     NULL,
     "Lists the agenda items in order. ITEM, for show, set and remove, is an item's\n"
     "number (e.g. 4.1), or '#ID' (quoted: an unquoted # starts a shell comment)."},
    {PROTO_T_SESSION,
     "sessions",
     "ID",
     "DATE START END",
     {"date", "start", "end", NULL},
     3,
     NULL,
     "DATE is YYYY-MM-DD, START and END are HH:MM (or HHMM) in the meeting's time zone.",
     session_opts,
     N(session_opts),
     session_cols,
     N(session_cols),
     NULL,
     "Lists the sessions the meeting held, drafting sessions included, by date. ID, for\n"
     "show, set and remove, is the number in the ID column (type it bare: an unquoted\n"
     "#12 is a comment to the shell)."},
    {PROTO_T_DOC,
     "docs",
     "REF[REV]",
     "REF[REV]",
     {"ref", NULL},
     1,
     NULL,
     "REF[REV] is the document's reference with its revision, if any: TSAG-TD257R1 is\n"
     "TSAG-TD257 revision R1, TSAG-C032 has no revision.",
     doc_opts,
     N(doc_opts),
     doc_cols,
     N(doc_cols),
     "item",
     "Lists the documents, or only those of the agenda item ITEM (a number, e.g. 3).\n"
     "REF[REV] names one: TSAG-TD257R1, TSAG-C032, or #ID."},
    {PROTO_T_ACTION,
     "actions",
     "REF",
     "TEXT",
     {"text", NULL},
     1,
     NULL,
     "Without --ref the action gets the next reference of the meeting's action prefix\n"
     "(e.g. RG-IEM-6).",
     action_opts,
     N(action_opts),
     action_cols,
     N(action_cols),
     "status",
     "Lists the actions. REF names one: RG-IEM-4, 4 (the meeting's prefix), or #ID."},
    {PROTO_T_DECISION,
     "decisions",
     "ID",
     "TEXT",
     {"text", NULL},
     1,
     NULL,
     NULL,
     decision_opts,
     N(decision_opts),
     decision_cols,
     N(decision_cols),
     "item",
     "Lists the agreements register (what was agreed, noted or decided), or only the\n"
     "entries of the agenda item ITEM. ID, for show, set and remove, is the number in\n"
     "the ID column (type it bare: an unquoted #12 is a comment to the shell)."},
    {PROTO_T_INTERIM,
     "interims",
     "DATE|ID",
     "DATE START END",
     {"date", "start", "end", NULL},
     3,
     "topic",
     "DATE is YYYY-MM-DD, START and END are HH:MM (or HHMM) in the meeting's time zone.\n"
     "The contribution deadline is DATE minus --deadline-days (default: the meeting's).",
     interim_opts,
     N(interim_opts),
     interim_cols,
     N(interim_cols),
     NULL,
     "Lists the interim meetings with their contribution deadlines: the upcoming ones\n"
     "first, in date order (the next one marked), then the past ones. DATE (2023-10-09)\n"
     "names the interim of that date; ID, the number in the ID column, one of several\n"
     "on a date (type it bare: an unquoted #12 is a comment to the shell)."},
    {PROTO_T_PERSON,
     "people",
     "NAME|ID",
     "NAME",
     {"name", NULL},
     1,
     NULL,
     NULL,
     person_opts,
     N(person_opts),
     person_cols,
     N(person_cols),
     NULL,
     "Lists the people named in the report: the rapporteur, associate rapporteurs,\n"
     "counsellors, and others. NAME (any case) or ID (the ID column, bare) names one."},
};

static const struct kind *kind_of(enum proto_type t)
{
    for (size_t i = 0; i < N(kinds); i++) {
        if (kinds[i].type == t) {
            return &kinds[i];
        }
    }
    return NULL;
}

/* The noun of a type in messages: "item", "document", "person"... */
static const char *noun_of(enum proto_type t)
{
    return t == PROTO_T_DOC ? "document" : proto_type_info(t)->name;
}

static const struct proto_field *field_of(enum proto_type t, const char *name)
{
    int idx = proto_field_find(t, name, strlen(name));
    return idx >= 0 ? &proto_type_info(t)->fields[idx] : NULL;
}

/* ---- cells and tables ---- */

/* The text of one cell of o (today: "YYYY-MM-DD", to mark passed dates). */
static void cell(const msgpack_object *rec, const msgpack_object *o, const struct col *c, char *out,
                 size_t cap, const char *today)
{
    int64_t v = 0;
    out[0] = '\0';
    switch (c->kind) {
    case COL_STR:
        cli_obj_strcpy(o, c->field, out, cap);
        break;
    case COL_STATUS:
        cli_obj_strcpy(o, c->field, out, cap);
        if (strcmp(out, "done") == 0) {
            snprintf(out, cap, "\xe2\x9c\x93 done"); /* U+2713 */
        } else if (strcmp(out, "dropped") == 0) {
            snprintf(out, cap, "\xe2\x9c\x97 dropped"); /* U+2717 */
        }
        break;
    case COL_DEADLINE: {
        char st[16] = "";
        cli_obj_strcpy(o, c->field, out, cap);
        cli_obj_strcpy(o, "status", st, sizeof(st));
        /* a date before today; an action that is done or dropped has no deadline to miss */
        if (today != NULL && strlen(out) == 10 && out[4] == '-' && strcmp(out, today) < 0 &&
            strcmp(st, "done") != 0 && strcmp(st, "dropped") != 0 && strlen(out) + 10 < cap) {
            strcat(out, " (passed)");
        }
        break;
    }
    case COL_ID:
    case COL_INT:
        if (cli_obj_i64(o, c->field, &v)) {
            snprintf(out, cap, "%lld", (long long)v);
        }
        break;
    case COL_DOC:
        cli_docref_format(o, out, cap);
        break;
    case COL_ITEM:
        if (cli_obj_i64(o, c->field, &v)) {
            const msgpack_object *it = rec != NULL ? cli_rec_by_id(rec, PROTO_T_ITEM, v) : NULL;
            if (it != NULL) {
                cli_obj_strcpy(it, "number", out, cap);
            } else {
                snprintf(out, cap, "#%lld", (long long)v);
            }
        }
        break;
    case COL_SPAN: {
        char a[16];
        char b[16];
        cli_obj_strcpy(o, "start", a, sizeof(a));
        cli_obj_strcpy(o, "end", b, sizeof(b));
        snprintf(out, cap, "%s%s%s", a, a[0] != '\0' && b[0] != '\0' ? "-" : "", b);
        break;
    }
    case COL_LINE: {
        size_t n = 0;
        const char *s = cli_obj_str(o, c->field, &n);
        const char *nl = s != NULL ? memchr(s, '\n', n) : NULL;
        if (nl != NULL) {
            n = (size_t)(nl - s);
        }
        if (s != NULL) {
            /* the table cuts it to the width; keep whole characters */
            if (n >= cap) {
                n = cap - 1;
                while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
                    n--;
                }
            }
            memcpy(out, s, n);
            out[n] = '\0';
        }
        break;
    }
    }
}

/* The order to list arr in: interims upcoming first, sessions by date, the rest as the
 * server gave them (items by number, others by id). Fills idx; returns the count. */
static size_t list_order(enum proto_type t, const msgpack_object *rec, const msgpack_object *arr,
                         size_t *idx, size_t cap, char today[CLI_DATE_LEN])
{
    char tz[72];
    cli_obj_strcpy(rec != NULL ? cli_rec_objects(rec, PROTO_T_MEETING) : NULL, "tz", tz,
                   sizeof(tz));
    cli_today(tz, today);
    if (t == PROTO_T_INTERIM) {
        return cli_interims_order(arr, today, idx, cap);
    }
    if (t == PROTO_T_SESSION) {
        /* every dated session counts as "upcoming" since "0000-00-00": by date and time */
        return cli_interims_order(arr, "0000-00-00", idx, cap);
    }
    size_t n = 0;
    for (uint32_t i = 0; i < arr->via.array.size && n < cap; i++) {
        idx[n++] = i;
    }
    return n;
}

/* Prints the objects arr[idx[0..n)] as k's table. For interims, the next one is marked. */
static int print_objects(struct cli_ctx *ctx, const struct kind *k, const msgpack_object *rec,
                         const msgpack_object *arr, const size_t *idx, size_t n, const char *today)
{
    const char *headers[8] = {NULL};
    const char *cells[8] = {NULL};
    char bufs[8][4096]; /* a cell; the table prints it whole (wrapped) */
    struct cli_table *t = NULL;
    int code = CLI_EXIT_FAIL;
    bool mark = k->type == PROTO_T_INTERIM && n > 0 &&
                cli_interim_upcoming(&arr->via.array.ptr[idx[0]], today);
    size_t off = mark ? 1 : 0;

    if (mark) {
        headers[0] = "";
    }
    for (size_t c = 0; c < k->ncols; c++) {
        headers[off + c] = k->cols[c].header;
    }
    t = cli_table_new(off + k->ncols, headers);
    if (t == NULL) {
        return cli_fail(ctx, "out of memory");
    }
    for (size_t r = 0; r < n; r++) {
        const msgpack_object *o = &arr->via.array.ptr[idx[r]];
        if (mark) {
            cells[0] = r == 0 ? "next" : "";
        }
        for (size_t c = 0; c < k->ncols; c++) {
            cell(rec, o, &k->cols[c], bufs[c], sizeof(bufs[c]), today);
            cells[off + c] = bufs[c];
        }
        if (cli_table_add(t, cells) != 0) {
            code = cli_fail(ctx, "out of memory");
            goto cleanup;
        }
    }
    code = cli_table_print(t, ctx->out, ctx->width) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;

cleanup:
    cli_table_free(t);
    return code;
}

int cli_obj_table(struct cli_ctx *ctx, enum proto_type t, const msgpack_object *rec,
                  const msgpack_object *arr)
{
    const struct kind *k = kind_of(t);
    char today[CLI_DATE_LEN];
    if (k == NULL || k->cols == NULL || arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY) {
        return cli_fail(ctx, "nothing to list");
    }
    size_t cap = arr->via.array.size;
    size_t *idx = malloc((cap > 0 ? cap : 1) * sizeof(*idx));
    if (idx == NULL) {
        return cli_fail(ctx, "out of memory");
    }
    size_t n = list_order(t, rec, arr, idx, cap, today);
    int code = print_objects(ctx, k, rec, arr, idx, n, today);
    free(idx);
    return code;
}

/* ---- listing ---- */

/* An object as JSON, with its item's number beside the item's id (item_number). */
static json_t *obj_json(const msgpack_object *rec, const msgpack_object *o)
{
    json_t *j = cli_json_from_mp(o);
    int64_t item = 0;
    if (j != NULL && cli_obj_i64(o, "item", &item)) {
        char num[32] = "";
        const msgpack_object *it = cli_rec_by_id(rec, PROTO_T_ITEM, item);
        if (it != NULL) {
            cli_obj_strcpy(it, "number", num, sizeof(num));
        }
        json_object_set_new(j, "item_number", num[0] ? json_string(num) : json_null());
    }
    return j;
}

static int list(struct cli_ctx *ctx, const struct kind *k, int argc, char **argv)
{
    const char *status = NULL;
    char synopsis[512];
    char statuses[64] = "";
    const struct proto_field *sf = field_of(k->type, "status");
    for (size_t i = 0; sf != NULL && sf->values != NULL && sf->values[i] != NULL; i++) {
        snprintf(statuses + strlen(statuses), sizeof(statuses) - strlen(statuses), "%s%s",
                 i > 0 ? "|" : "", sf->values[i]);
    }
    const struct cli_opt opts[] = {
        {"status", 0, CLI_OPT_STR, statuses, "only the actions with this status", NULL, &status},
    };
    bool by_status = k->filter != NULL && strcmp(k->filter, "status") == 0;
    bool by_item = k->filter != NULL && strcmp(k->filter, "item") == 0;
    snprintf(synopsis, sizeof(synopsis),
             "%s[options]\n"
             "show %s [options]\n"
             "add %s [options]\n"
             "set %s [options]\n"
             "remove %s [options]%s",
             by_item ? "[ITEM] " : "", k->target, k->add_args, k->target, k->target,
             k->type == PROTO_T_ITEM ? "\nrenumber [options]" : "");
    struct cli_usage u = {
        argv[0], synopsis,        k->about, by_status ? opts : NULL, by_status ? N(opts) : 0, true,
        0,       by_item ? 1 : 0, true,
    };
    struct cli_args a;
    struct cli_mtg m;
    size_t *idx = NULL;
    char today[CLI_DATE_LEN];
    int code = CLI_EXIT_FAIL;
    int64_t item = 0;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (status != NULL) {
        bool ok = false;
        for (size_t i = 0; sf != NULL && sf->values[i] != NULL; i++) {
            ok = ok || strcmp(sf->values[i], status) == 0;
        }
        if (!ok) {
            return cli_usage_error(ctx, u.cmd, "--status must be one of %s", statuses);
        }
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK || cli_mtg_fetch(ctx, &m) != CLI_EXIT_OK) {
        goto cleanup;
    }
    if (a.n > 0) {
        const msgpack_object *it = cli_rec_find(m.rec, PROTO_T_ITEM, a.v[0]);
        if (it == NULL || !cli_obj_i64(it, "id", &item)) {
            code = cli_fail(ctx, "no item %s in meeting %s: %s agenda lists the items", a.v[0],
                            m.id, ctx->prog);
            goto cleanup;
        }
    }
    const msgpack_object *arr = cli_rec_objects(m.rec, k->type);
    if (arr == NULL) {
        code = cli_fail(ctx, "the server's record has no %s", proto_type_info(k->type)->plural);
        goto cleanup;
    }
    size_t cap = arr->via.array.size;
    idx = malloc((cap > 0 ? cap : 1) * sizeof(*idx));
    if (idx == NULL) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    size_t n = list_order(k->type, m.rec, arr, idx, cap, today);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *o = &arr->via.array.ptr[idx[i]];
        int64_t v = 0;
        char st[32];
        if (a.n > 0 && (!cli_obj_i64(o, "item", &v) || v != item)) {
            continue;
        }
        if (status != NULL && strcmp(cli_obj_strcpy(o, "status", st, sizeof(st)), status) != 0) {
            continue;
        }
        idx[kept++] = idx[i];
    }
    if (ctx->json) {
        json_t *j = json_array();
        for (size_t i = 0; j != NULL && i < kept; i++) {
            json_t *o = obj_json(m.rec, &arr->via.array.ptr[idx[i]]);
            if (o == NULL || json_array_append_new(j, o) != 0) {
                json_decref(j);
                j = NULL;
            }
        }
        code = cli_print_json(ctx, j);
        goto cleanup;
    }
    if (kept == 0) {
        fprintf(ctx->out, "no %s%s%s%s%s in meeting %s\n", status != NULL ? status : "",
                status != NULL ? " " : "", proto_type_info(k->type)->plural,
                a.n > 0 ? " under item " : "", a.n > 0 ? a.v[0] : "", m.id);
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    code = print_objects(ctx, k, m.rec, arr, idx, kept, today);

cleanup:
    free(idx);
    cli_mtg_close(&m);
    return code;
}

/* ---- add, set, remove (and meeting set, meeting create) ---- */

enum verb {
    V_ADD,
    V_SET,
    V_REMOVE,
    V_CREATE,
};

#define MAX_OPTS (PROTO_MAX_FIELDS + 2)

/* A field's value as it goes on the wire. */
struct fv {
    const char *name;
    enum { FV_STR, FV_INT, FV_NIL } kind;
    const char *s;
    int64_t i;
    char buf[CLI_REF_MAX];
};

/* A value given on the command line for a field. label names it in messages. */
struct given {
    const char *field;
    const char *value;
    char label[40];
};

static bool is_add_field(const struct kind *k, const char *field)
{
    for (size_t i = 0; k->add_fields[i] != NULL; i++) {
        if (strcmp(k->add_fields[i], field) == 0) {
            return true;
        }
    }
    return false;
}

/* What an option's value looks like in the help. */
static void metavar(enum proto_type t, const struct proto_field *f, char *out, size_t cap)
{
    const char *s = "TEXT";
    switch (f->kind) {
    case PROTO_F_DATE:
        s = "YYYY-MM-DD";
        break;
    case PROTO_F_TIME:
        s = "HH:MM";
        break;
    case PROTO_F_INT:
        s = "N";
        break;
    case PROTO_F_ITEMREF:
        s = "ITEM";
        break;
    case PROTO_F_NUMBER:
        s = "NUMBER";
        break;
    case PROTO_F_TZ:
        s = "ZONE";
        break;
    case PROTO_F_ENUM:
        out[0] = '\0';
        for (size_t i = 0; f->values[i] != NULL; i++) {
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", i > 0 ? "|" : "", f->values[i]);
        }
        return;
    default:
        break;
    }
    if (t == PROTO_T_DOC && strcmp(f->name, "ref") == 0) {
        s = "REF[REV]";
    }
    snprintf(out, cap, "%s", s);
}

/* Checks a value against its field and converts it to fv. With rec NULL only the form is
 * checked (item references included); with rec, item references are resolved. Returns
 * CLI_EXIT_OK, CLI_EXIT_USAGE (reported: a value of the wrong form) or CLI_EXIT_FAIL
 * (reported: an item that the meeting does not have). */
static int convert(struct cli_ctx *ctx, const char *cmd, struct cli_mtg *m, enum proto_type t,
                   const struct given *g, struct fv *out)
{
    const struct proto_field *f = field_of(t, g->field);
    const char *v = g->value;
    size_t n = strlen(v);
    const msgpack_object *rec = m != NULL ? m->rec : NULL;

    memset(out, 0, sizeof(*out));
    out->name = f->name;
    out->kind = FV_STR;
    out->s = v;
    if (n == 0 || (f->kind == PROTO_F_ITEMREF && strcmp(v, "none") == 0)) {
        if (f->kind == PROTO_F_ENUM || f->kind == PROTO_F_NUMBER ||
            (f->kind == PROTO_F_INT && f->has_def_int)) {
            return cli_usage_error(ctx, cmd, "%s cannot be empty", g->label);
        }
        out->kind = f->kind == PROTO_F_TEXT ? FV_STR : FV_NIL;
        return CLI_EXIT_OK;
    }
    switch (f->kind) {
    case PROTO_F_INT: {
        char *end = NULL;
        long long x = strtoll(v, &end, 10);
        if (*end != '\0' || x < f->min_i || x > f->max_i) {
            return cli_usage_error(ctx, cmd, "%s wants a whole number from %lld to %lld", g->label,
                                   (long long)f->min_i, (long long)f->max_i);
        }
        out->kind = FV_INT;
        out->i = x;
        return CLI_EXIT_OK;
    }
    case PROTO_F_DATE:
        if (!proto_date_valid(v, n)) {
            return cli_usage_error(ctx, cmd, "%s wants a date YYYY-MM-DD, not '%s'", g->label, v);
        }
        return CLI_EXIT_OK;
    case PROTO_F_TIME:
        if (n == 4 && v[0] >= '0' && v[0] <= '9' && v[1] >= '0' && v[1] <= '9') {
            snprintf(out->buf, sizeof(out->buf), "%.2s:%.2s", v, v + 2); /* 1300 */
            out->s = out->buf;
        }
        if (!proto_time_valid(out->s, strlen(out->s))) {
            return cli_usage_error(ctx, cmd, "%s wants a time HH:MM, not '%s'", g->label, v);
        }
        return CLI_EXIT_OK;
    case PROTO_F_ENUM: {
        char vals[128];
        for (size_t i = 0; f->values[i] != NULL; i++) {
            if (strcmp(f->values[i], v) == 0) {
                return CLI_EXIT_OK;
            }
        }
        metavar(t, f, vals, sizeof(vals));
        return cli_usage_error(ctx, cmd, "%s must be one of %s", g->label, vals);
    }
    case PROTO_F_NUMBER:
        if (!proto_number_valid(v, n)) {
            return cli_usage_error(ctx, cmd, "%s wants an item number like 4 or 4.1, not '%s'",
                                   g->label, v);
        }
        return CLI_EXIT_OK;
    case PROTO_F_TZ:
        if (!proto_tz_valid(v, n)) {
            return cli_usage_error(ctx, cmd, "%s wants a time zone like Europe/Zurich, not '%s'",
                                   g->label, v);
        }
        return CLI_EXIT_OK;
    case PROTO_F_ITEMREF: {
        int64_t id = 0;
        if (cli_id_parse(v, false, &id) != 0 && !proto_number_valid(v, n)) {
            return cli_usage_error(ctx, cmd, "%s wants an item number like 3 or 4.1, or #ID",
                                   g->label);
        }
        if (rec == NULL) {
            return CLI_EXIT_OK;
        }
        const msgpack_object *it = cli_rec_find(rec, PROTO_T_ITEM, v);
        if (it == NULL || !cli_obj_i64(it, "id", &id)) {
            return cli_fail(ctx, "no item %s in meeting %s: %s agenda lists the items", v, m->id,
                            ctx->prog);
        }
        out->kind = FV_INT;
        out->i = id;
        return CLI_EXIT_OK;
    }
    default:
        return CLI_EXIT_OK;
    }
}

/* Converts every given value; a doc's "ref" in the REF[REV] form also sets the revision
 * unless --revision is given. Returns an exit code (errors reported). */
static int convert_all(struct cli_ctx *ctx, const char *cmd, struct cli_mtg *m, enum proto_type t,
                       const struct given *g, size_t ng, struct fv *out, size_t *nout)
{
    bool rev_given = false;
    for (size_t i = 0; i < ng; i++) {
        rev_given = rev_given || strcmp(g[i].field, "revision") == 0;
    }
    *nout = 0;
    for (size_t i = 0; i < ng; i++) {
        int code = convert(ctx, cmd, m, t, &g[i], &out[*nout]);
        if (code != CLI_EXIT_OK) {
            return code;
        }
        struct fv *f = &out[(*nout)++];
        if (t == PROTO_T_DOC && strcmp(g[i].field, "ref") == 0 && f->kind == FV_STR &&
            strpbrk(g[i].value, " \t\r\n\v\f") != NULL) {
            return cli_usage_error(ctx, cmd,
                                   "%s may not hold spaces: write the reference as one word, "
                                   "e.g. TSAG-TD301",
                                   g[i].label);
        }
        if (t == PROTO_T_DOC && strcmp(g[i].field, "ref") == 0 && f->kind == FV_STR) {
            struct fv *r = &out[*nout];
            memset(r, 0, sizeof(*r));
            if (cli_docref_parse(g[i].value, f->buf, sizeof(f->buf), r->buf, sizeof(r->buf)) != 0) {
                return cli_usage_error(ctx, cmd, "%s is not a document reference like TSAG-TD257R1",
                                       g[i].label);
            }
            f->s = f->buf;
            if (!rev_given) {
                r->name = "revision";
                r->kind = FV_STR;
                r->s = r->buf;
                (*nout)++;
            }
        }
    }
    return CLI_EXIT_OK;
}

static void pack_fvs(msgpack_packer *pk, const struct fv *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        proto_pack_cstr(pk, f[i].name);
        if (f[i].kind == FV_INT) {
            msgpack_pack_int64(pk, f[i].i);
        } else if (f[i].kind == FV_NIL) {
            msgpack_pack_nil(pk);
        } else {
            proto_pack_cstr(pk, f[i].s);
        }
    }
}

/* Packs the params of the change: obj.create/update/delete or meeting.create. */
static int pack_change(struct proto_buf *b, enum verb v, enum proto_type t, const char *meeting,
                       const char *id_str, int64_t id, int64_t if_seq, const char *cid,
                       const char *rapporteur, const struct fv *f, size_t nf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, proto_buf_msgpack_write);
    if (v == V_CREATE) {
        /* meeting.create {id, rapporteur, the meeting's fields...} -> {"id", "seq"} */
        msgpack_pack_map(&pk, 2 + nf);
        proto_pack_cstr(&pk, "id");
        proto_pack_cstr(&pk, id_str);
        proto_pack_cstr(&pk, "rapporteur");
        proto_pack_cstr(&pk, rapporteur);
        pack_fvs(&pk, f, nf);
        return b->data != NULL ? 0 : PROTO_ENOMEM;
    }
    /* obj.create {meeting, type, fields, cid} -> {"id", "seq"}
     * obj.update {meeting, type, id, fields, if_seq, cid} -> {"seq"}
     * obj.delete {meeting, type, id, if_seq, cid} -> {"seq"} */
    size_t n = v == V_ADD ? 4 : v == V_SET ? 6 : 5;
    msgpack_pack_map(&pk, n);
    proto_pack_cstr(&pk, "meeting");
    proto_pack_cstr(&pk, meeting);
    proto_pack_cstr(&pk, "type");
    proto_pack_cstr(&pk, proto_type_info(t)->name);
    if (v != V_ADD) {
        proto_pack_cstr(&pk, "id");
        if (t == PROTO_T_MEETING) {
            proto_pack_cstr(&pk, id_str);
        } else {
            msgpack_pack_int64(&pk, id);
        }
        proto_pack_cstr(&pk, "if_seq");
        msgpack_pack_int64(&pk, if_seq);
    }
    if (v != V_REMOVE) {
        proto_pack_cstr(&pk, "fields");
        msgpack_pack_map(&pk, nf);
        pack_fvs(&pk, f, nf);
    }
    proto_pack_cstr(&pk, "cid");
    proto_pack_cstr(&pk, cid);
    return b->data != NULL ? 0 : PROTO_ENOMEM;
}

#define STDIN_TEXT_MAX (1 << 20) /* the server's default text limit */

/* Appends to about (cap bytes) how k's add (v V_ADD) or set (cmd: "actions set") takes a
 * text from standard input: which arguments and options, and an example. */
static void stdin_note(const struct kind *k, enum verb v, const char *cmd, char *about, size_t cap)
{
    char which[96] = "";
    char example[96] = "";
    for (size_t i = 0; v == V_ADD && k->add_fields[i] != NULL; i++) {
        const struct proto_field *f = field_of(k->type, k->add_fields[i]);
        if (f != NULL && f->kind == PROTO_F_TEXT) {
            snprintf(which, sizeof(which), "TEXT");
            snprintf(example, sizeof(example), "%s -", cmd);
        }
    }
    for (size_t i = 0; i < k->nopts; i++) {
        const struct proto_field *f = field_of(k->type, k->opts[i].field);
        if (f == NULL || f->kind != PROTO_F_TEXT || (v == V_ADD && is_add_field(k, f->name))) {
            continue;
        }
        snprintf(which + strlen(which), sizeof(which) - strlen(which), "%s--%s",
                 which[0] != '\0' ? ", " : "", f->name);
        if (example[0] == '\0') {
            const char *arg = v == V_ADD ? k->add_args : v == V_SET ? k->target : "ID";
            snprintf(example, sizeof(example), "%s%s%s --%s -", cmd, arg != NULL ? " " : "",
                     arg != NULL ? arg : "", f->name);
        }
    }
    if (which[0] != '\0') {
        size_t n = strlen(about);
        snprintf(about + n, cap - n,
                 "\nA text given as - (%s) is read from standard input, one final newline\n"
                 "dropped: e.g. printf 'Line 1\\nLine 2\\n' | confer %s",
                 which, example);
    }
}

/* The value given for field, or NULL. */
static const char *given_value(const struct given *g, size_t ng, const char *field)
{
    const char *v = NULL;
    for (size_t i = 0; i < ng; i++) {
        if (strcmp(g[i].field, field) == 0) {
            v = g[i].value;
        }
    }
    return v;
}

/* A text field given as "-" takes standard input as its value: read once, into *buf (the
 * caller's to free), one final newline dropped. Returns an exit code (errors reported). */
static int read_stdin_text(struct cli_ctx *ctx, const char *cmd, enum proto_type t, struct given *g,
                           size_t ng, char **buf)
{
    struct given *which = NULL;
    for (size_t i = 0; i < ng; i++) {
        const struct proto_field *f = field_of(t, g[i].field);
        if (f == NULL || f->kind != PROTO_F_TEXT || strcmp(g[i].value, "-") != 0) {
            continue;
        }
        if (which != NULL) {
            return cli_usage_error(ctx, cmd,
                                   "%s and %s both say - : only one text can come from standard "
                                   "input",
                                   which->label, g[i].label);
        }
        which = &g[i];
    }
    if (which == NULL) {
        return CLI_EXIT_OK;
    }
    if (isatty(ctx->in_fd)) {
        fprintf(ctx->err, "%s: reading %s from standard input; end it with Ctrl-D\n", ctx->prog,
                which->label);
    }
    size_t len = 0;
    int rc = cli_read_fd(ctx->in_fd, STDIN_TEXT_MAX, false, buf, &len);
    if (rc == PROTO_ETOOBIG) {
        return cli_fail(ctx, "%s: standard input holds more than %d bytes, more than a text may",
                        which->label, STDIN_TEXT_MAX);
    }
    if (rc != 0) {
        return cli_fail(ctx, "%s: cannot read standard input: %s", which->label,
                        proto_strerror(rc));
    }
    if (strlen(*buf) != len || !proto_utf8_valid(*buf, len)) {
        return cli_fail(ctx, "%s: standard input is not text (UTF-8 without NUL bytes)",
                        which->label);
    }
    if (len > 0 && (*buf)[len - 1] == '\n') {
        (*buf)[--len] = '\0';
        if (len > 0 && (*buf)[len - 1] == '\r') {
            (*buf)[--len] = '\0';
        }
    }
    which->value = *buf;
    return CLI_EXIT_OK;
}

/* ---- item numbers: shifting and closing gaps ---- */

#define NUM_MAX 33 /* an item number and its NUL (the schema allows 32 bytes) */

/* One planned change of an item's number. */
struct renum {
    int64_t id;
    int64_t seq;
    long long key; /* the component that changes: the order to send them in */
    char from[NUM_MAX];
    char to[NUM_MAX];
    char title[80];
};

/* Splits the valid item number s at the component after its first plen bytes: *val is that
 * component's value and *rest what follows it ("" or ".1..."). False when it does not fit
 * in a long long. */
static bool num_component(const char *s, size_t plen, long long *val, const char **rest)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s + plen, &end, 10);
    if (errno != 0 || end == s + plen) {
        return false;
    }
    *val = v;
    *rest = end;
    return true;
}

/* Fills out[0..cap) with the items of rec whose number is valid and begins with prefix
 * (plen bytes: "" for the top level, else e.g. "4."). Returns how many, or -1 when more
 * than cap. */
static long items_under(const msgpack_object *rec, const char *prefix, size_t plen,
                        struct renum *out, size_t cap)
{
    const msgpack_object *arr = cli_rec_objects(rec, PROTO_T_ITEM);
    size_t n = 0;
    for (uint32_t i = 0;
         arr != NULL && arr->type == MSGPACK_OBJECT_ARRAY && i < arr->via.array.size; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        char num[NUM_MAX];
        const char *rest = NULL;
        long long v = 0;
        cli_obj_strcpy(o, "number", num, sizeof(num));
        if (!proto_number_valid(num, strlen(num)) || strncmp(num, prefix, plen) != 0 ||
            !num_component(num, plen, &v, &rest)) {
            continue;
        }
        if (n >= cap) {
            return -1;
        }
        memset(&out[n], 0, sizeof(out[n]));
        (void)cli_obj_i64(o, "id", &out[n].id);
        (void)cli_obj_i64(o, "seq", &out[n].seq);
        out[n].key = v;
        snprintf(out[n].from, sizeof(out[n].from), "%s", num);
        cli_obj_strcpy(o, "title", out[n].title, sizeof(out[n].title));
        n++;
    }
    return (long)n;
}

/* Writes prefix, v and rest as an item number into out. False when it is too long. */
static bool num_make(char *out, const char *prefix, size_t plen, long long v, const char *rest)
{
    int w = snprintf(out, NUM_MAX, "%.*s%lld%s", (int)plen, prefix, v, rest);
    return w > 0 && w < NUM_MAX && proto_number_valid(out, (size_t)w);
}

/* True when number s is held by an item of rec (compared the way the client names items). */
static const msgpack_object *number_taken(const msgpack_object *rec, const char *s, int64_t but)
{
    const msgpack_object *arr = cli_rec_objects(rec, PROTO_T_ITEM);
    for (uint32_t i = 0;
         arr != NULL && arr->type == MSGPACK_OBJECT_ARRAY && i < arr->via.array.size; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        char num[NUM_MAX];
        int64_t id = 0;
        cli_obj_strcpy(o, "number", num, sizeof(num));
        if (cli_obj_i64(o, "id", &id) && id != but && cli_number_same(num, s)) {
            return o;
        }
    }
    return NULL;
}

/* False (reported) when the planned numbers, with the items that keep theirs, would repeat
 * a number. */
static bool plan_unique(struct cli_ctx *ctx, const msgpack_object *rec, const struct renum *p,
                        size_t n, const char *extra)
{
    const msgpack_object *arr = cli_rec_objects(rec, PROTO_T_ITEM);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = i + 1; k < n; k++) {
            if (cli_number_same(p[i].to, p[k].to)) {
                cli_fail(ctx,
                         "items %s and %s would both become %s: give one of them another "
                         "number with %s items set ITEM --number NUMBER first",
                         p[i].from, p[k].from, p[i].to, ctx->prog);
                return false;
            }
        }
        if (extra != NULL && cli_number_same(p[i].to, extra)) {
            cli_fail(ctx, "item %s would become %s, the new item's number", p[i].from, extra);
            return false;
        }
        for (uint32_t j = 0;
             arr != NULL && arr->type == MSGPACK_OBJECT_ARRAY && j < arr->via.array.size; j++) {
            const msgpack_object *o = &arr->via.array.ptr[j];
            int64_t id = 0;
            bool moves = false;
            (void)cli_obj_i64(o, "id", &id);
            for (size_t k = 0; k < n; k++) {
                moves = moves || p[k].id == id;
            }
            char num[NUM_MAX];
            cli_obj_strcpy(o, "number", num, sizeof(num));
            if (!moves && cli_number_same(num, p[i].to)) {
                cli_fail(ctx,
                         "item %s would become %s, which item #%lld keeps: give it another "
                         "number with %s items set first",
                         p[i].from, p[i].to, (long long)id, ctx->prog);
                return false;
            }
        }
    }
    return true;
}

/* Sends the planned number changes p[order...] one obj.update each. Says what it did per
 * item on ctx->out (or gathers it into j). Returns the exit code: on a failure, what was
 * done stays done, and the message says so. */
static int send_numbers(struct cli_ctx *ctx, struct cli_mtg *m, const struct renum *p, size_t n,
                        json_t *j)
{
    for (size_t i = 0; i < n; i++) {
        struct proto_buf b = {0};
        struct cli_msg *r = NULL;
        struct fv f;
        char cid[CLI_CID_LEN + 1];
        char what[160];
        memset(&f, 0, sizeof(f));
        f.name = "number";
        f.kind = FV_STR;
        f.s = p[i].to;
        cli_cid_new(cid);
        if (pack_change(&b, V_SET, PROTO_T_ITEM, m->id, m->id, p[i].id, p[i].seq, cid, NULL, &f,
                        1) != 0) {
            proto_buf_free(&b, 0);
            return cli_fail(ctx, "out of memory");
        }
        snprintf(what, sizeof(what), "cannot renumber item %s to %s (%zu of %zu renumbered)",
                 p[i].from, p[i].to, i, n);
        int code = cli_mtg_change(ctx, m, what, &b, "obj.update", &r);
        proto_buf_free(&b, 0);
        int64_t seq = 0;
        if (code == CLI_EXIT_OK) {
            (void)cli_obj_i64(r->result, "seq", &seq);
        }
        cli_msg_free(r);
        if (code != CLI_EXIT_OK) {
            return code;
        }
        if (j != NULL) {
            json_t *o = json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)p[i].id, "from",
                                  p[i].from, "to", p[i].to, "seq", (json_int_t)seq);
            if (o == NULL || json_array_append_new(j, o) != 0) {
                return cli_fail(ctx, "out of memory");
            }
        } else {
            char safe[sizeof(p[i].title)];
            cli_sanitize(p[i].title, strlen(p[i].title), safe, sizeof(safe));
            fprintf(ctx->json ? ctx->err : ctx->out, "item %s is now %s%s%s%s\n", p[i].from,
                    p[i].to, safe[0] != '\0' ? " (" : "", safe, safe[0] != '\0' ? ")" : "");
        }
    }
    return CLI_EXIT_OK;
}

static int renum_desc(const void *a, const void *b)
{
    const struct renum *x = a, *y = b;
    return x->key < y->key ? 1 : x->key > y->key ? -1 : -strcmp(x->from, y->from);
}

static int renum_asc(const void *a, const void *b)
{
    return -renum_desc(a, b);
}

/* Plans making room for a new item numbered num: when num is taken, every item of its
 * level from num on, with its sub-items, moves one up (4 -> 5, 4.1 -> 5.1), highest first so
 * no two items ever share a number on the way. *n is 0 when num is free. */
static int plan_shift(struct cli_ctx *ctx, const msgpack_object *rec, const char *num,
                      struct renum **out, size_t *n)
{
    const char *dot = strrchr(num, '.');
    size_t plen = dot != NULL ? (size_t)(dot - num) + 1 : 0;
    const msgpack_object *arr = cli_rec_objects(rec, PROTO_T_ITEM);
    size_t cap = arr != NULL && arr->type == MSGPACK_OBJECT_ARRAY ? arr->via.array.size : 0;
    long long at = 0;
    const char *rest = NULL;
    *out = NULL;
    *n = 0;
    if (number_taken(rec, num, 0) == NULL) {
        return CLI_EXIT_OK;
    }
    if (!num_component(num, plen, &at, &rest)) {
        return cli_fail(ctx, "item number %s is too large to shift", num);
    }
    struct renum *p = calloc(cap > 0 ? cap : 1, sizeof(*p));
    if (p == NULL) {
        return cli_fail(ctx, "out of memory");
    }
    long got = items_under(rec, num, plen, p, cap);
    size_t k = 0;
    for (long i = 0; i < got; i++) {
        if (p[i].key < at) {
            continue;
        }
        const char *r = NULL;
        long long v = 0;
        (void)num_component(p[i].from, plen, &v, &r);
        if (v == LLONG_MAX || !num_make(p[i].to, num, plen, v + 1, r)) {
            int code = cli_fail(ctx, "item %s cannot move one up: its number would be too long",
                                p[i].from);
            free(p);
            return code;
        }
        p[k++] = p[i];
    }
    qsort(p, k, sizeof(*p), renum_desc);
    if (!plan_unique(ctx, rec, p, k, num)) {
        free(p);
        return CLI_EXIT_FAIL;
    }
    *out = p;
    *n = k;
    return CLI_EXIT_OK;
}

/* What removing o loses, in words ("its text, 2 docs and 1 decision lose their item"), or
 * "" when nothing but the object itself: an item's body and the docs and decisions that
 * point at it, an action's or a decision's text. */
static void remove_loses(const struct cli_mtg *m, enum proto_type t, const msgpack_object *o,
                         int64_t id, char *out, size_t cap)
{
    char text[8];
    const char *field = t == PROTO_T_ITEM ? "body" : "text";
    bool has_text = (t == PROTO_T_ITEM || t == PROTO_T_ACTION || t == PROTO_T_DECISION) &&
                    cli_obj_strcpy(o, field, text, sizeof(text)) != NULL && text[0] != '\0';
    size_t ndocs = 0, ndec = 0;
    for (int k = 0; t == PROTO_T_ITEM && k < 2; k++) {
        const msgpack_object *list = cli_rec_objects(m->rec, k ? PROTO_T_DECISION : PROTO_T_DOC);
        for (uint32_t i = 0;
             list != NULL && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size; i++) {
            int64_t item = 0;
            if (cli_obj_i64(&list->via.array.ptr[i], "item", &item) && item == id) {
                k ? ndec++ : ndocs++;
            }
        }
    }
    out[0] = '\0';
    if (!has_text && ndocs == 0 && ndec == 0) {
        return;
    }
    char links[96] = "";
    if (ndocs || ndec) {
        if (ndocs == 0) {
            snprintf(links, sizeof(links), "%s%zu decision%s lose%s their item",
                     has_text ? ", " : "", ndec, ndec == 1 ? "" : "s", ndec == 1 ? "s" : "");
        } else if (ndec > 0) {
            snprintf(links, sizeof(links), "%s%zu doc%s and %zu decision%s lose their item",
                     has_text ? ", " : "", ndocs, ndocs == 1 ? "" : "s", ndec,
                     ndec == 1 ? "" : "s");
        } else {
            snprintf(links, sizeof(links), "%s%zu doc%s lose%s their item", has_text ? ", " : "",
                     ndocs, ndocs == 1 ? "" : "s", ndocs == 1 ? "s" : "");
        }
    }
    snprintf(out, cap, "%s%s", has_text ? "its text" : "", links);
}

/* Asks before removing what holds text or links; true to go on. */
static bool confirm_remove(struct cli_ctx *ctx, const struct cli_mtg *m, enum proto_type t,
                           const msgpack_object *o, int64_t id, const char *label)
{
    char loses[160];
    remove_loses(m, t, o, id, loses, sizeof(loses));
    if (loses[0] == '\0') {
        return true;
    }
    if (!ctx->interactive) {
        cli_fail(ctx,
                 "removing %s loses %s: pass --yes to remove it (it can be undone with %s "
                 "revert)",
                 label, loses, ctx->prog);
        return false;
    }
    char q[400];
    snprintf(q, sizeof(q), "Remove %s (%s)? It can be undone with %s revert.", label, loses,
             ctx->prog);
    if (cli_ask_yes(ctx, q)) {
        return true;
    }
    cli_fail(ctx, "nothing removed");
    return false;
}

int cli_obj_change(struct cli_ctx *ctx, enum proto_type t, int argc, char **argv)
{
    const struct kind *k = kind_of(t);
    enum verb v;
    if (k == NULL || argc < 1) {
        return cli_fail(ctx, "no such command");
    }
    if (strcmp(argv[0], "add") == 0 && t != PROTO_T_MEETING) {
        v = V_ADD;
    } else if (strcmp(argv[0], "set") == 0) {
        v = V_SET;
    } else if (strcmp(argv[0], "remove") == 0 && t != PROTO_T_MEETING) {
        v = V_REMOVE;
    } else if (strcmp(argv[0], "create") == 0 && t == PROTO_T_MEETING) {
        v = V_CREATE;
    } else {
        return cli_usage_error(ctx, k->cmd, "unknown sub-command '%s'", argv[0]);
    }

    /* the options: one per field of the table, but those add takes as arguments */
    const char *vals[MAX_OPTS];
    const struct opt_def *defs[MAX_OPTS] = {NULL};
    char names[MAX_OPTS][32];
    char metas[MAX_OPTS][64];
    struct cli_opt opts[MAX_OPTS];
    size_t no = 0;
    const char *rapporteur = NULL;
    memset(vals, 0, sizeof(vals));
    for (size_t i = 0; v != V_REMOVE && i < k->nopts && no + 1 < MAX_OPTS; i++) {
        const struct opt_def *d = &k->opts[i];
        if (v == V_ADD && is_add_field(k, d->field)) {
            continue;
        }
        snprintf(names[no], sizeof(names[no]), "%s", d->field);
        for (char *p = names[no]; *p != '\0'; p++) {
            *p = *p == '_' ? '-' : *p;
        }
        metavar(t, field_of(t, d->field), metas[no], sizeof(metas[no]));
        defs[no] = d;
        opts[no] = (struct cli_opt){names[no], 0, CLI_OPT_STR, metas[no], d->help, NULL, &vals[no]};
        no++;
    }
    bool yes = false;
    bool renumber = false;
    if (v == V_ADD && t == PROTO_T_ITEM) {
        opts[no++] = (struct cli_opt){"renumber",
                                      0,
                                      CLI_OPT_FLAG,
                                      NULL,
                                      "when NUMBER is taken, move it and the later items one up",
                                      &renumber,
                                      NULL};
    }
    if (v == V_REMOVE) {
        opts[no++] = (struct cli_opt){
            "yes", 0, CLI_OPT_FLAG, NULL, "remove without asking (scripts)", &yes, NULL};
    }
    if (v == V_CREATE) {
        opts[no++] = (struct cli_opt){"rapporteur",
                                      0,
                                      CLI_OPT_STR,
                                      "USER",
                                      "the account that runs the meeting (required)",
                                      NULL,
                                      &rapporteur};
    }

    const char *noun = noun_of(t);
    const char *verbs[] = {"add", "set", "remove", "create"};
    char cmd[64];
    char synopsis[256];
    char about[1024];
    snprintf(cmd, sizeof(cmd), "%s %s", k->cmd, verbs[v]);
    switch (v) {
    case V_ADD:
        snprintf(synopsis, sizeof(synopsis), "%s%s%s%s [options]", k->add_args,
                 k->add_needs != NULL ? " --" : "", k->add_needs != NULL ? k->add_needs : "",
                 k->add_needs != NULL ? " TEXT" : "");
        snprintf(about, sizeof(about),
                 "Adds %s %s to the meeting; the options set its other fields.%s%s%s",
                 strchr("aeiou", noun[0]) != NULL ? "an" : "a", noun,
                 k->add_note != NULL ? "\n" : "", k->add_note != NULL ? k->add_note : "",
                 t == PROTO_T_ITEM ? "\nWith --renumber, when NUMBER is taken, that item and "
                                     "the later ones of its\nlevel move one up first, with "
                                     "their sub-items (4 -> 5, 4.1 -> 5.1), each its own\n"
                                     "change, the highest first."
                                   : "");
        stdin_note(k, v, cmd, about, sizeof(about));
        break;
    case V_SET:
        snprintf(synopsis, sizeof(synopsis), "%s%s[options]", t == PROTO_T_MEETING ? "" : k->target,
                 t == PROTO_T_MEETING ? "" : " ");
        snprintf(about, sizeof(about),
                 "Changes the fields given as options, and only those, of the %s%s%s. An empty\n"
                 "value (\"\") clears a field. If someone changed it since it was read, nothing\n"
                 "is changed: run the command again.%s",
                 noun, t == PROTO_T_MEETING ? "" : " ", t == PROTO_T_MEETING ? "" : k->target,
                 t == PROTO_T_MEETING
                     ? "\nThe rapporteur changes the meeting; --status final locks the record\n"
                       "and --status draft (alone) reopens it."
                     : "");
        stdin_note(k, v, cmd, about, sizeof(about));
        break;
    case V_REMOVE:
        snprintf(synopsis, sizeof(synopsis), "%s [options]", k->target);
        snprintf(about, sizeof(about),
                 "Removes the %s %s from the meeting. If someone changed it since it was read,\n"
                 "nothing is removed: run the command again. Removing what holds text (a\n"
                 "section, an action, a decision) asks first on a terminal; elsewhere it needs\n"
                 "--yes. It says how to undo it (%s revert SEQ).",
                 noun, k->target, ctx->prog);
        break;
    case V_CREATE:
        snprintf(synopsis, sizeof(synopsis), "ID --rapporteur USER [options]");
        snprintf(about, sizeof(about),
                 "Creates the meeting ID (lower-case letters, digits, '.', '_', '-') with USER\n"
                 "as its rapporteur; the options set its fields. Operator accounts only.");
        stdin_note(k, v, cmd, about, sizeof(about));
        break;
    }
    if ((v == V_SET || v == V_REMOVE) && k->target != NULL && strstr(k->target, "ID") != NULL) {
        size_t used = strlen(about);
        snprintf(about + used, sizeof(about) - used, "%s",
                 "\nID is the number in the list's ID column: type it bare (an unquoted #12 is a\n"
                 "comment to the shell).");
    }
    int nargs = v == V_ADD ? 0 : v == V_SET && t == PROTO_T_MEETING ? 0 : 1;
    int maxargs = nargs;
    if (v == V_ADD) {
        while (k->add_fields[maxargs] != NULL) {
            maxargs++;
        }
        nargs = k->add_min;
    }
    const struct cli_usage u = {
        cmd, synopsis, about, opts, no, true, nargs, maxargs, v != V_CREATE,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct cli_msg *r = NULL;
    struct proto_buf b = {0};
    struct given g[MAX_OPTS + 4];
    struct fv f[MAX_OPTS + 4];
    size_t ng = 0;
    size_t nf = 0;
    char cid[CLI_CID_LEN + 1];
    char label[CLI_REF_MAX + CLI_REV_MAX + 32];
    char what[CLI_REF_MAX + CLI_REV_MAX + 64];
    char *stdin_text = NULL;
    struct renum *shift = NULL;
    size_t nshift = 0;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }

    /* the values given: add's arguments, then the options */
    for (int i = 0; v == V_ADD && i < a.n; i++) {
        g[ng].field = k->add_fields[i];
        g[ng].value = a.v[i];
        snprintf(g[ng].label, sizeof(g[ng].label), "%s", k->add_fields[i]);
        for (char *p = g[ng].label; *p != '\0'; p++) {
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        }
        ng++;
    }
    for (size_t i = 0; i < no; i++) {
        if (opts[i].str == &rapporteur || opts[i].flag == &yes || vals[i] == NULL) {
            continue;
        }
        g[ng].field = defs[i]->field;
        g[ng].value = vals[i];
        snprintf(g[ng].label, sizeof(g[ng].label), "--%s", names[i]);
        ng++;
    }
    if (v == V_ADD && k->add_needs != NULL) {
        bool has = false;
        for (size_t i = 0; i < ng; i++) {
            has = has || strcmp(g[i].field, k->add_needs) == 0;
        }
        if (!has) {
            return cli_usage_error(ctx, cmd, "--%s is required", k->add_needs);
        }
    }
    if (v == V_SET && ng == 0) {
        return cli_usage_error(ctx, cmd, "nothing to change: give at least one option");
    }
    if (v == V_CREATE) {
        if (!proto_name_valid(a.v[0], strlen(a.v[0]))) {
            return cli_usage_error(ctx, cmd,
                                   "not a meeting id: '%s' (1-64 lower-case letters, digits, '.', "
                                   "'_', '-')",
                                   a.v[0]);
        }
        if (rapporteur == NULL || !proto_name_valid(rapporteur, strlen(rapporteur))) {
            return cli_usage_error(ctx, cmd, "--rapporteur USER is required (an account name)");
        }
    }
    code = read_stdin_text(ctx, cmd, t, g, ng, &stdin_text);
    if (code != CLI_EXIT_OK) {
        goto cleanup;
    }
    code = convert_all(ctx, cmd, NULL, t, g, ng, f, &nf);
    if (code != CLI_EXIT_OK) {
        goto cleanup;
    }

    /* the record, and the object to change */
    code = CLI_EXIT_FAIL;
    if (cli_mtg_open(ctx, &m, v != V_CREATE) != CLI_EXIT_OK) {
        goto cleanup;
    }
    const msgpack_object *target = NULL;
    int64_t id = 0;
    int64_t if_seq = 0;
    if (v != V_CREATE) {
        if (cli_mtg_fetch(ctx, &m) != CLI_EXIT_OK) {
            goto cleanup;
        }
        if (v == V_SET && t == PROTO_T_MEETING) {
            target = cli_rec_objects(m.rec, PROTO_T_MEETING);
        } else if (v != V_ADD) {
            target = cli_rec_find(m.rec, t, a.v[0]);
            if (target == NULL) {
                code = cli_fail(ctx, "no %s %s in meeting %s: %s %s lists them", noun, a.v[0], m.id,
                                ctx->prog, t == PROTO_T_ITEM ? "agenda" : k->cmd);
                goto cleanup;
            }
        }
        if (target != NULL) {
            (void)cli_obj_i64(target, "id", &id);
            if (!cli_obj_i64(target, "seq", &if_seq)) {
                code = cli_fail(ctx, "the server's record has no seq for the %s", noun);
                goto cleanup;
            }
            cli_obj_label(t, target, label, sizeof(label));
        }
        if (convert_all(ctx, cmd, &m, t, g, ng, f, &nf) != CLI_EXIT_OK) {
            code = CLI_EXIT_FAIL;
            goto cleanup;
        }
        const char *num = t == PROTO_T_ITEM ? given_value(g, ng, "number") : NULL;
        if (renumber && num != NULL) {
            if (plan_shift(ctx, m.rec, num, &shift, &nshift) != CLI_EXIT_OK) {
                code = CLI_EXIT_FAIL;
                goto cleanup;
            }
        } else if (num != NULL) {
            const msgpack_object *holder = number_taken(m.rec, num, v == V_SET ? id : 0);
            if (holder != NULL) {
                char title[80];
                char safe[sizeof(title)];
                int64_t hid = 0;
                (void)cli_obj_i64(holder, "id", &hid);
                cli_obj_strcpy(holder, "title", title, sizeof(title));
                cli_sanitize(title, strlen(title), safe, sizeof(safe));
                code = cli_fail(ctx,
                                "%s: item %s (#%lld%s%s) has that number already: choose "
                                "another%s",
                                v == V_ADD ? "cannot add the item" : "cannot change it", num,
                                (long long)hid, safe[0] != '\0' ? ", " : "", safe,
                                v == V_ADD ? ", or add it with --renumber to move it and the "
                                             "later items one up"
                                           : "");
                goto cleanup;
            }
        }
    }
    if (nshift > 0) {
        code = send_numbers(ctx, &m, shift, nshift, NULL);
        if (code != CLI_EXIT_OK) {
            goto cleanup;
        }
    }

    if (v == V_REMOVE && !yes && !confirm_remove(ctx, &m, t, target, id, label)) {
        code = CLI_EXIT_FAIL;
        goto cleanup;
    }
    cli_cid_new(cid);
    if (pack_change(&b, v, t, m.id, v == V_CREATE ? a.v[0] : m.id, id, if_seq, cid, rapporteur, f,
                    nf) != 0) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    const char *method = v == V_CREATE ? "meeting.create"
                         : v == V_ADD  ? "obj.create"
                         : v == V_SET  ? "obj.update"
                                       : "obj.delete";
    switch (v) {
    case V_ADD:
        snprintf(what, sizeof(what), "cannot add the %s", noun);
        break;
    case V_SET:
        snprintf(what, sizeof(what), "cannot change %s", label);
        break;
    case V_REMOVE:
        snprintf(what, sizeof(what), "cannot remove %s", label);
        break;
    case V_CREATE:
        snprintf(what, sizeof(what), "cannot create meeting %s", a.v[0]);
        break;
    }
    if (v == V_CREATE) {
        m.id[0] = '\0'; /* the chosen meeting has nothing to do with it: no role to name */
        code = cli_mtg_call(ctx, &m, what, &r, method, "r", b.data, b.len);
    } else {
        code = cli_mtg_change(ctx, &m, what, &b, method, &r);
    }
    if (code != CLI_EXIT_OK) {
        if (nshift > 0) {
            fprintf(ctx->err,
                    "%s: the items moved up stay where they are now: %s items renumber "
                    "closes the gap\n",
                    ctx->prog, ctx->prog);
        }
        goto cleanup;
    }

    /* say what it is now */
    if (v == V_REMOVE || v == V_CREATE) {
        if (ctx->json) {
            code = cli_print_json(ctx, cli_json_from_mp(r->result));
        } else if (v == V_REMOVE) {
            int64_t seq = 0;
            if (cli_obj_i64(r->result, "seq", &seq)) {
                fprintf(ctx->out, "removed %s (undo: %s revert %lld)\n", label, ctx->prog,
                        (long long)seq);
            } else {
                fprintf(ctx->out, "removed %s\n", label);
            }
        } else {
            fprintf(ctx->out, "created meeting %s with rapporteur %s (%s use %s to work on it)\n",
                    a.v[0], rapporteur, ctx->prog, a.v[0]);
        }
        goto cleanup;
    }
    if (v == V_ADD && !cli_obj_i64(r->result, "id", &id)) {
        code = cli_fail(ctx, "added, but the server's answer has no id");
        goto cleanup;
    }
    if (cli_mtg_fetch(ctx, &m) != CLI_EXIT_OK) {
        code = CLI_EXIT_FAIL;
        goto cleanup;
    }
    const msgpack_object *now =
        t == PROTO_T_MEETING ? cli_rec_objects(m.rec, t) : cli_rec_by_id(m.rec, t, id);
    if (ctx->json) {
        code = now != NULL ? cli_print_json(ctx, cli_json_from_mp(now))
                           : cli_print_json(ctx, cli_json_from_mp(r->result));
        goto cleanup;
    }
    if (now != NULL) {
        cli_obj_label(t, now, label, sizeof(label));
    } else {
        snprintf(label, sizeof(label), "%s #%lld", noun, (long long)id);
    }
    char safe[sizeof(label)];
    cli_sanitize(label, strlen(label), safe, sizeof(safe));
    fprintf(ctx->out, "%s %s\n", v == V_ADD ? "added" : "updated", safe);

cleanup:
    free(shift);
    free(stdin_text);
    proto_buf_free(&b, 0);
    cli_msg_free(r);
    cli_mtg_close(&m);
    return code;
}

/* confer items renumber: closes the gaps in the top-level numbers. */
static int items_renumber(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_usage u = {
        "items renumber",
        "[options]",
        "Closes the gaps in the agenda's item numbers: 1, 2, 4, 7 become 1, 2, 3, 4 (counting\n"
        "from 1, or from 0 when there is an item 0). Only the top-level number, the one before\n"
        "the first dot, is renumbered; sub-items keep their place under it (when 4 becomes\n"
        "3, 4.1 becomes 3.1), and sub-numbers are never closed up. Items whose number is not\n"
        "a plain item number are left alone. Each item that moves is its own change, made in\n"
        "an order where no two items ever share a number; it says what became of each.",
        NULL,
        0,
        true,
        0,
        0,
        true,
    };
    struct cli_args a;
    struct cli_mtg m;
    struct renum *p = NULL;
    long long *keys = NULL;
    json_t *j = NULL;
    int code = CLI_EXIT_FAIL;

    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    code = CLI_EXIT_FAIL;
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK || cli_mtg_fetch(ctx, &m) != CLI_EXIT_OK) {
        goto cleanup;
    }
    const msgpack_object *arr = cli_rec_objects(m.rec, PROTO_T_ITEM);
    size_t cap = arr != NULL && arr->type == MSGPACK_OBJECT_ARRAY ? arr->via.array.size : 0;
    p = calloc(cap > 0 ? cap : 1, sizeof(*p));
    keys = calloc(cap > 0 ? cap : 1, sizeof(*keys));
    if (p == NULL || keys == NULL) {
        code = cli_fail(ctx, "out of memory");
        goto cleanup;
    }
    long got = items_under(m.rec, "", 0, p, cap);
    size_t nk = 0;
    for (long i = 0; i < got; i++) {
        keys[nk++] = p[i].key;
    }
    qsort(p, (size_t)(got > 0 ? got : 0), sizeof(*p), renum_asc);
    /* the distinct top-level numbers, in order: p is sorted by them */
    nk = 0;
    for (long i = 0; i < got; i++) {
        if (nk == 0 || keys[nk - 1] != p[i].key) {
            keys[nk++] = p[i].key;
        }
    }
    long long base = nk > 0 && keys[0] == 0 ? 0 : 1;
    size_t n = 0;
    size_t rank = 0;
    for (long i = 0; i < got; i++) {
        while (rank < nk && keys[rank] != p[i].key) {
            rank++;
        }
        long long to = base + (long long)rank;
        if (to == p[i].key) {
            continue;
        }
        const char *rest = NULL;
        long long v = 0;
        (void)num_component(p[i].from, 0, &v, &rest);
        if (!num_make(p[i].to, "", 0, to, rest)) {
            code = cli_fail(ctx, "item %s: its new number would be too long", p[i].from);
            goto cleanup;
        }
        p[n++] = p[i];
    }
    if (!plan_unique(ctx, m.rec, p, n, NULL)) {
        goto cleanup;
    }
    if (ctx->json) {
        j = json_array();
        if (j == NULL) {
            code = cli_fail(ctx, "out of memory");
            goto cleanup;
        }
    } else if (n == 0) {
        fprintf(ctx->out, "the item numbers of meeting %s have no gaps: nothing renumbered\n",
                m.id);
    }
    /* lowest first: every number an item moves to was left by a lower one before it */
    code = send_numbers(ctx, &m, p, n, j);
    if (code == CLI_EXIT_OK && j != NULL) {
        code = cli_print_json(ctx, j);
        j = NULL;
    }

cleanup:
    json_decref(j);
    free(keys);
    free(p);
    cli_mtg_close(&m);
    return code;
}

/* ---- show ---- */

/* Prints one line of text (no newline in it), sanitized, wrapped at spaces to width columns;
 * the lines after the first are indented by indent, the first starts at column indent. */
static void wrap_line(FILE *out, const char *s, size_t len, size_t indent, size_t width)
{
    char *safe = cli_sanitize_dup(s, len);
    if (safe == NULL) {
        fputc('\n', out);
        return;
    }
    size_t col = indent;
    const char *p = safe;
    while (*p != '\0') {
        const char *sp = strchr(p, ' ');
        size_t wlen = sp ? (size_t)(sp - p) : strlen(p);
        size_t w = proto_utf8_count(p, wlen);
        if (col > indent && col + 1 + w > width) {
            fprintf(out, "\n%*s", (int)indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, wlen, out);
        col += w;
        p += wlen;
        while (*p == ' ') {
            p++;
        }
    }
    fputc('\n', out);
    free(safe);
}

/* Prints "label   value", the value's paragraphs wrapped to the width under its first. */
static void show_field(struct cli_ctx *ctx, const char *label, const char *value, size_t len)
{
    const size_t indent = 14;
    size_t width = ctx->width > 0 ? (size_t)ctx->width : CLI_TERM_WIDTH_DEFAULT;
    if (width < indent + 20) {
        width = indent + 20;
    }
    fprintf(ctx->out, "%-*s", (int)indent, label);
    bool first = true;
    while (len > 0 || first) {
        const char *nl = memchr(value, '\n', len);
        size_t n = nl ? (size_t)(nl - value) : len;
        if (!first) {
            fprintf(ctx->out, "%*s", (int)indent, "");
        }
        wrap_line(ctx->out, value, n, indent, width);
        first = false;
        value += nl ? n + 1 : n;
        len -= nl ? n + 1 : n;
    }
}

/* confer TYPE show NAME: one object whole. */
static int show(struct cli_ctx *ctx, const struct kind *k, int argc, char **argv)
{
    char synopsis[96], cmd[48];
    snprintf(cmd, sizeof(cmd), "%s show", k->cmd);
    snprintf(synopsis, sizeof(synopsis), "%s [options]", k->target);
    char about[160];
    snprintf(about, sizeof(about),
             "Prints one %s whole: each of its fields, long texts wrapped to the terminal.",
             noun_of(k->type));
    const struct cli_usage u = {cmd, synopsis, about, NULL, 0, true, 1, 1, true};
    struct cli_args a;
    struct cli_mtg m;
    int code = CLI_EXIT_FAIL;
    memset(&m, 0, sizeof(m));
    if (!cli_args_parse(ctx, &u, argc, argv, &a, &code)) {
        return code;
    }
    if (cli_mtg_open(ctx, &m, true) != CLI_EXIT_OK || cli_mtg_fetch(ctx, &m) != CLI_EXIT_OK) {
        goto cleanup;
    }
    const msgpack_object *o = cli_rec_find(m.rec, k->type, a.v[0]);
    if (o == NULL) {
        code = cli_fail(ctx, "no %s %s in meeting %s: %s %s lists them", noun_of(k->type), a.v[0],
                        m.id, ctx->prog, k->cmd);
        goto cleanup;
    }
    if (ctx->json) {
        code = cli_print_json(ctx, obj_json(m.rec, o));
        goto cleanup;
    }
    char label[CLI_REF_MAX + CLI_REV_MAX + 32], safe[sizeof(label)];
    cli_obj_label(k->type, o, label, sizeof(label));
    cli_sanitize(label, strlen(label), safe, sizeof(safe));
    fprintf(ctx->out, "%s\n", safe);
    const struct proto_typeinfo *ti = proto_type_info(k->type);
    int64_t id = 0;
    if (cli_obj_i64(o, "id", &id)) {
        char v[24];
        snprintf(v, sizeof(v), "%lld", (long long)id);
        show_field(ctx, "id", v, strlen(v));
    }
    for (size_t i = 0; i < ti->nfields; i++) {
        const struct proto_field *f = &ti->fields[i];
        char buf[160];
        int64_t n = 0;
        size_t len = 0;
        const char *v = cli_obj_str(o, f->name, &len);
        if (f->kind == PROTO_F_ITEMREF) {
            if (!cli_obj_i64(o, f->name, &n)) {
                continue;
            }
            const msgpack_object *it = cli_rec_by_id(m.rec, PROTO_T_ITEM, n);
            char num[32] = "", title[120] = "";
            if (it != NULL) {
                cli_obj_strcpy(it, "number", num, sizeof(num));
                cli_obj_strcpy(it, "title", title, sizeof(title));
            }
            snprintf(buf, sizeof(buf), it ? "%s \"%s\"" : "%s", it ? num : "(removed)", title);
            v = buf;
            len = strlen(buf);
        } else if (v == NULL && cli_obj_i64(o, f->name, &n)) {
            snprintf(buf, sizeof(buf), "%lld", (long long)n);
            v = buf;
            len = strlen(buf);
        }
        if (v == NULL || len == 0) {
            continue;
        }
        show_field(ctx, f->name, v, len);
    }
    code = ferror(ctx->out) ? CLI_EXIT_FAIL : CLI_EXIT_OK;

cleanup:
    cli_mtg_close(&m);
    return code;
}

/* ---- the commands ---- */

static int run(struct cli_ctx *ctx, enum proto_type t, int argc, char **argv)
{
    if (t == PROTO_T_ITEM && argc >= 2 && strcmp(argv[1], "renumber") == 0) {
        return items_renumber(ctx, argc - 1, argv + 1);
    }
    if (argc >= 2 && (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "set") == 0 ||
                      strcmp(argv[1], "remove") == 0)) {
        return cli_obj_change(ctx, t, argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "show") == 0) {
        return show(ctx, kind_of(t), argc - 1, argv + 1);
    }
    return list(ctx, kind_of(t), argc, argv);
}

int cli_cmd_items(struct cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, PROTO_T_ITEM, argc, argv);
}

int cli_cmd_sessions(struct cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, PROTO_T_SESSION, argc, argv);
}

int cli_cmd_docs(struct cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, PROTO_T_DOC, argc, argv);
}

int cli_cmd_actions(struct cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, PROTO_T_ACTION, argc, argv);
}

int cli_cmd_decisions(struct cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, PROTO_T_DECISION, argc, argv);
}

int cli_cmd_interims(struct cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, PROTO_T_INTERIM, argc, argv);
}

int cli_cmd_people(struct cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, PROTO_T_PERSON, argc, argv);
}
