/* srv_meeting.c - the meeting methods of PROTOCOL.md section 7: records, objects,
 * members, history, audit, import and export.
 *
 * The method table's decoder has checked the parameters, the meeting, a repeated cid and
 * the role before a handler runs (srv_req.h); handlers go on with the object, the lock and
 * if_seq, in the order of section 10. Changes go through srv_hub_commit; responses wait
 * for their batch.
 */
#include "srv_meeting.h"

#include "proto_diff.h"

#include "srv_conn.h"
#include "srv_held.h"
#include "srv_hub.h"
#include "srv_req.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "srv_read.h"
#include "srv_report.h"

#define HISTORY_DEFAULT 100

static void packb(msgpack_packer *pk, bool v)
{
    v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

/* ---- field validation ---- */

struct fval {
    int idx;
    const msgpack_object *v; /* nil: unset */
};

struct fset {
    struct fval f[PROTO_MAX_FIELDS];
    size_t n;
};

static const struct fval *fset_get(const struct fset *s, int idx)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->f[i].idx == idx) {
            return &s->f[i];
        }
    }
    return NULL;
}

static bool is_int(const msgpack_object *v)
{
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER || v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

static int64_t int_of(const msgpack_object *v)
{
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
               ? (v->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->via.u64)
               : v->via.i64;
}

/* The string fields with a format of their own. */
static const struct {
    enum proto_fkind kind;
    bool (*valid)(const char *s, size_t len);
    const char *why;
} formats[] = {
    {PROTO_F_DATE, proto_date_valid, "must be a date YYYY-MM-DD"},
    {PROTO_F_TIME, proto_time_valid, "must be a time HH:MM"},
    {PROTO_F_TZ, proto_tz_valid, "must be an IANA time zone name, e.g. Europe/Zurich"},
    {PROTO_F_NUMBER, proto_number_valid, "must be an item number like 4 or 4.1"},
};

/* The field of a doc's ref, which holds no white space. */
static const struct proto_field *doc_ref_field(void)
{
    return &proto_type_info(PROTO_T_DOC)->fields[proto_field_find(PROTO_T_DOC, "ref", 3)];
}

/* True when valid UTF-8 s holds a code point of Unicode's White_Space property. */
static bool has_white_space(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t c = p[i];
        size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (n > len - i) {
            return false; /* not valid UTF-8: the caller refuses it already */
        }
        if (n > 1) {
            c &= 0xffu >> (n + 1);
            for (size_t k = 1; k < n; k++) {
                c = (c << 6) | (p[i + k] & 0x3fu);
            }
        }
        i += n;
        if ((c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
            (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
            c == 0x205f || c == 0x3000) {
            return true;
        }
    }
    return false;
}

/* Why value v does not fit field f (of meeting m, which item references must name; NULL:
 * not checked): returns true with the error code in *code and the reason in why, or false
 * when it fits. The one check of a value, for requests and imports alike. */
static bool value_misfit(size_t max_text, struct srv_meeting *m, const struct proto_field *f,
                         const msgpack_object *v, enum proto_code *code, char *why, size_t wl)
{
    *code = PROTO_CODE_BAD_REQUEST;
    if (v->type == MSGPACK_OBJECT_NIL) {
        if (f->kind == PROTO_F_ENUM || (f->kind == PROTO_F_INT && f->has_def_int)) {
            snprintf(why, wl, "may not be nil");
            return true;
        }
        return false;
    }
    if (f->kind == PROTO_F_INT || f->kind == PROTO_F_ITEMREF) {
        if (!is_int(v)) {
            snprintf(why, wl, "must be an integer");
            return true;
        }
        int64_t i = int_of(v);
        if (f->kind == PROTO_F_INT && (i < f->min_i || i > f->max_i)) {
            snprintf(why, wl, "must be from %lld to %lld", (long long)f->min_i,
                     (long long)f->max_i);
            return true;
        }
        if (f->kind == PROTO_F_ITEMREF && m && srv_rec_find(m->rec, PROTO_T_ITEM, i) == NULL) {
            snprintf(why, wl, "no such item in this meeting");
            return true;
        }
        return false;
    }
    if (v->type != MSGPACK_OBJECT_STR) {
        snprintf(why, wl, "must be a string");
        return true;
    }
    const char *s = v->via.str.ptr;
    size_t len = v->via.str.size;
    if (!proto_utf8_valid(s, len)) {
        snprintf(why, wl, "must be valid UTF-8 without NUL");
        return true;
    }
    if (f == doc_ref_field() && has_white_space(s, len)) {
        snprintf(why, wl, "may not hold spaces or other white space: e.g. TSAG-TD301");
        return true;
    }
    switch (f->kind) {
    case PROTO_F_TEXT:
        if (len > max_text) {
            *code = PROTO_CODE_TOO_LARGE;
            snprintf(why, wl, "text over %zu bytes", max_text);
            return true;
        }
        return false;
    case PROTO_F_STR:
        if (len > (f->max ? f->max : PROTO_STR_MAX)) {
            snprintf(why, wl, "at most %zu bytes", f->max ? f->max : PROTO_STR_MAX);
            return true;
        }
        if (memchr(s, '\n', len) || memchr(s, '\r', len)) {
            snprintf(why, wl, "must be one line");
            return true;
        }
        return false;
    case PROTO_F_DATE:
    case PROTO_F_TIME:
    case PROTO_F_TZ:
    case PROTO_F_NUMBER:
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
            if (formats[i].kind == f->kind && !formats[i].valid(s, len)) {
                snprintf(why, wl, "%s", formats[i].why);
                return true;
            }
        }
        return false;
    case PROTO_F_ENUM: {
        for (const char *const *e = f->values; *e; e++) {
            if (strlen(*e) == len && memcmp(*e, s, len) == 0) {
                return false;
            }
        }
        size_t used = (size_t)snprintf(why, wl, "must be one of");
        for (const char *const *e = f->values; *e && used < wl; e++) {
            used += (size_t)snprintf(why + used, wl - used, "%s %s", e == f->values ? "" : ",", *e);
        }
        return true;
    }
    default:
        snprintf(why, wl, "is read-only");
        return true;
    }
}

/* Checks one value against its field. Answers and returns false when it does not fit. */
static bool check_value(struct srv_req *req, struct srv_meeting *m, const struct proto_field *f,
                        const msgpack_object *v)
{
    char why[128];
    enum proto_code code;
    if (!value_misfit(req->conn->srv->cfg.max_text, m, f, v, &code, why, sizeof(why))) {
        return true;
    }
    if (code == PROTO_CODE_BAD_REQUEST) {
        srv_reply_bad(req, f->name, why);
    } else {
        char msg[192];
        snprintf(msg, sizeof(msg), "%s: %s", f->name, why);
        srv_reply_error(req, code, msg);
    }
    return false;
}

/* Reads a fields map of type t into out, checking names and values. */
static bool read_fields(struct srv_req *req, struct srv_meeting *m, enum proto_type t,
                        const msgpack_object *fields, struct fset *out)
{
    out->n = 0;
    for (uint32_t i = 0; i < fields->via.map.size; i++) {
        const msgpack_object_kv *kv = &fields->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR ||
            !proto_utf8_valid(kv->key.via.str.ptr, kv->key.via.str.size)) {
            srv_reply_bad(req, "fields", "keys must be strings");
            return false;
        }
        /* The name goes into the answer, which must stay UTF-8: cut between code points. */
        size_t nlen = kv->key.via.str.size < 60 ? kv->key.via.str.size : 60;
        while (nlen > 0 && nlen < kv->key.via.str.size &&
               ((unsigned char)kv->key.via.str.ptr[nlen] & 0xc0) == 0x80) {
            nlen--;
        }
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)nlen, nlen ? kv->key.via.str.ptr : "");
        int idx = proto_field_find(t, kv->key.via.str.ptr, kv->key.via.str.size);
        if (idx < 0) {
            bool ro = strcmp(name, "id") == 0 || strcmp(name, "seq") == 0;
            srv_reply_bad(req, name, ro ? "is read-only" : "no such field");
            return false;
        }
        const struct proto_field *f = &proto_type_info(t)->fields[idx];
        if (f->kind == PROTO_F_COMPUTED) {
            srv_reply_bad(req, name, "is read-only");
            return false;
        }
        if (fset_get(out, idx) != NULL) {
            srv_reply_bad(req, name, "given twice");
            return false;
        }
        if (!check_value(req, m, f, &kv->val)) {
            return false;
        }
        out->f[out->n].idx = idx;
        out->f[out->n].v = &kv->val;
        out->n++;
    }
    return true;
}

static void pack_fset(msgpack_packer *pk, enum proto_type t, const struct fset *s)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    msgpack_pack_map(pk, s->n);
    for (size_t i = 0; i < s->n; i++) {
        const struct proto_field *f = &ti->fields[s->f[i].idx];
        const msgpack_object *v = s->f[i].v;
        proto_pack_cstr(pk, f->name);
        if (v->type == MSGPACK_OBJECT_NIL) {
            if (f->kind == PROTO_F_TEXT) {
                proto_pack_cstr(pk, ""); /* an unset text reads "" */
            } else {
                msgpack_pack_nil(pk);
            }
        } else if (is_int(v)) {
            msgpack_pack_int64(pk, int_of(v));
        } else {
            proto_pack_str(pk, v->via.str.ptr, v->via.str.size);
        }
    }
}

/* The value a string field would have after a change: the new one, else the current. */
static void field_after(const struct srv_obj *cur, const struct fset *s, int idx, const char **str,
                        size_t *len)
{
    const struct fval *fv = fset_get(s, idx);
    *str = NULL;
    *len = 0;
    if (fv) {
        if (fv->v->type == MSGPACK_OBJECT_STR) {
            *str = fv->v->via.str.ptr;
            *len = fv->v->via.str.size;
        }
        return;
    }
    if (cur && cur->f[idx].set && cur->f[idx].s) {
        *str = cur->f[idx].s;
        *len = cur->f[idx].len;
    }
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Equal but for ASCII letter case. */
static bool same_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) {
        return false;
    }
    for (size_t i = 0; i < alen; i++) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

/* Unique keys (section 10): an item's number (as a string), a doc's (ref, revision) and an
 * action's ref (both regardless of ASCII letter case). Answers `conflict` naming the
 * object that holds the key and returns false when the change would repeat one. */
static bool check_unique(struct srv_req *req, struct srv_meeting *m, enum proto_type t,
                         const struct srv_obj *cur, const struct fset *s)
{
    if (t != PROTO_T_DOC && t != PROTO_T_ACTION && t != PROTO_T_ITEM) {
        return true;
    }
    int ref_idx =
        t == PROTO_T_ITEM ? proto_field_find(t, "number", 6) : proto_field_find(t, "ref", 3);
    int rev_idx = t == PROTO_T_DOC ? proto_field_find(t, "revision", 8) : -1;
    if (cur && fset_get(s, ref_idx) == NULL && (rev_idx < 0 || fset_get(s, rev_idx) == NULL)) {
        return true; /* the key does not change: what the record holds stays as it is */
    }
    const char *ref = NULL, *rev = NULL;
    size_t ref_len = 0, rev_len = 0;
    field_after(cur, s, ref_idx, &ref, &ref_len);
    if (rev_idx >= 0) {
        field_after(cur, s, rev_idx, &rev, &rev_len);
    }
    if (ref == NULL) {
        return true;
    }
    const struct srv_objvec *vec = &m->rec->objs[t];
    for (size_t i = 0; i < vec->n; i++) {
        const struct srv_obj *o = vec->v[i];
        if (cur && o->id == cur->id) {
            continue;
        }
        const struct srv_val *r = &o->f[ref_idx];
        if (!r->set || r->s == NULL ||
            !(t == PROTO_T_ITEM ? same(r->s, r->len, ref, ref_len)
                                : same_nocase(r->s, r->len, ref, ref_len))) {
            continue;
        }
        if (rev_idx >= 0) {
            const struct srv_val *v = &o->f[rev_idx];
            bool vs = v->set && v->s;
            if (!same_nocase(vs ? v->s : "", vs ? v->len : 0, rev ? rev : "", rev_len)) {
                continue;
            }
        }
        char msg[192];
        if (t == PROTO_T_ITEM) {
            snprintf(msg, sizeof(msg), "number: item #%lld with the number %.*s exists already",
                     (long long)o->id, (int)r->len, r->s);
        } else if (t == PROTO_T_DOC) {
            const struct srv_val *v = &o->f[rev_idx];
            bool vs = v->set && v->s && v->len > 0;
            snprintf(msg, sizeof(msg),
                     "ref: document #%lld, %.*s%s%.*s, exists already (refs and revisions are "
                     "compared regardless of letter case)",
                     (long long)o->id, (int)r->len, r->s, vs ? " revision " : "",
                     vs ? (int)v->len : 0, vs ? v->s : "");
        } else {
            snprintf(msg, sizeof(msg),
                     "ref: action #%lld, %.*s, exists already (refs are compared regardless of "
                     "letter case)",
                     (long long)o->id, (int)r->len, r->s);
        }
        srv_reply_error_data(req, PROTO_CODE_CONFLICT, msg, "id", o->id);
        return false;
    }
    return true;
}

/* A session's or an interim's end is later than its start, when both are set after the
 * change (cur: the object as stored, NULL on create). Answers `bad_request` naming `end`
 * and returns false otherwise. Valid times HH:MM compare as strings. */
static bool check_times(struct srv_req *req, enum proto_type t, const struct srv_obj *cur,
                        const struct fset *s)
{
    if (t != PROTO_T_SESSION && t != PROTO_T_INTERIM) {
        return true;
    }
    int start_idx = proto_field_find(t, "start", 5);
    int end_idx = proto_field_find(t, "end", 3);
    const char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    field_after(cur, s, start_idx, &a, &alen);
    field_after(cur, s, end_idx, &b, &blen);
    if (a == NULL || b == NULL || alen == 0 || blen == 0) {
        return true;
    }
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(b, a, n);
    if (c > 0 || (c == 0 && blen > alen)) {
        return true;
    }
    char why[128];
    snprintf(why, sizeof(why), "must be later than the start: %.*s is not after %.*s",
             (int)(blen < 16 ? blen : 16), b, (int)(alen < 16 ? alen : 16), a);
    srv_reply_bad(req, "end", why);
    return false;
}

/* The next free action ref: action_prefix-N, N one more than the largest used. */
static bool next_action_ref(struct srv_meeting *m, char *out, size_t cap)
{
    const struct srv_val *p =
        &m->rec->meeting.f[proto_field_find(PROTO_T_MEETING, "action_prefix", 13)];
    if (!p->set || p->len == 0) {
        return false;
    }
    int ref_idx = proto_field_find(PROTO_T_ACTION, "ref", 3);
    long long max = 0;
    const struct srv_objvec *vec = &m->rec->objs[PROTO_T_ACTION];
    for (size_t i = 0; i < vec->n; i++) {
        const struct srv_val *r = &vec->v[i]->f[ref_idx];
        if (r->set && r->len > p->len + 1 && same_nocase(r->s, p->len, p->s, p->len) &&
            r->s[p->len] == '-') {
            char *end = NULL;
            long long n = strtoll(r->s + p->len + 1, &end, 10);
            if (*end == '\0' && n > max) {
                max = n;
            }
        }
    }
    if (max == LLONG_MAX) {
        return false; /* a ref like PREFIX-99999999999999999999: there is no next number */
    }
    snprintf(out, cap, "%s-%lld", p->s, max + 1);
    return true;
}

static void reply_seq(struct srv_req *req, int64_t seq, bool with_id, int64_t id)
{
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, with_id ? 2 : 1);
    if (with_id) {
        proto_pack_cstr(&pk, "id");
        msgpack_pack_int64(&pk, id);
    }
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, seq);
    srv_reply_finish(req, &b);
}

/* Answers a change that srv_hub_commit or srv_hub_create_meeting refused with rc (what:
 * the internal error's message). PROTO_EDB is a meeting that a failed batch left unable to
 * reload from the database: the server cannot use its database, so `unavailable`, which
 * the batch failure already logged; anything else is the server's own fault. */
static void reply_refused(struct srv_req *req, int64_t rc, const char *what)
{
    if (rc == PROTO_EDB) {
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE,
                        "the server cannot read this meeting's record from its database: "
                        "try again later");
        return;
    }
    srv_log(req->conn, SRV_LOG_ERROR, "change refused: %s", proto_strerror((int)rc));
    srv_reply_error(req, PROTO_CODE_INTERNAL, what);
}

/* Commits a change and answers with its seq (and id). */
static void commit_and_reply(struct srv_req *req, struct srv_change *ch, bool with_id)
{
    struct srv *srv = req->conn->srv;
    int64_t seq = srv_hub_commit(srv, ch);
    if (seq < 0) {
        reply_refused(req, seq, "the change could not be applied");
        return;
    }
    req->hold = srv_hub_hold(srv, ch->m);
    reply_seq(req, seq, with_id, ch->id);
}

/* ---- obj.create / obj.update / obj.delete ---- */

void srv_obj_create(struct srv_req *req)
{
    struct srv *srv = req->conn->srv;
    struct srv_meeting *m = req->m;
    enum proto_type t = req->p.t;
    struct fset fs = {0};
    if (!read_fields(req, m, t, req->p.fields.o, &fs) || !check_times(req, t, NULL, &fs) ||
        !srv_req_unlocked(req, m, false)) {
        return;
    }
    /* An action without a ref gets the next one of the meeting's prefix. */
    char ref[96];
    msgpack_object ref_obj;
    int ref_idx = proto_field_find(PROTO_T_ACTION, "ref", 3);
    if (t == PROTO_T_ACTION && fset_get(&fs, ref_idx) == NULL) {
        if (!next_action_ref(m, ref, sizeof(ref))) {
            srv_reply_bad(req, "ref",
                          "required: the meeting has no action_prefix to number actions");
            return;
        }
        ref_obj.type = MSGPACK_OBJECT_STR;
        ref_obj.via.str.ptr = ref;
        ref_obj.via.str.size = (uint32_t)strlen(ref);
        fs.f[fs.n].idx = ref_idx;
        fs.f[fs.n].v = &ref_obj;
        fs.n++;
    }
    if (!check_unique(req, m, t, NULL, &fs)) {
        return;
    }
    int64_t id = srv_hub_next_id(srv);
    if (id < 0) {
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot write the database");
        return;
    }
    struct srv_change ch;
    msgpack_packer pk;
    srv_req_change_begin(req, m, "create", t, &ch, &pk);
    ch.id = id;
    msgpack_pack_map(&pk, 1);
    proto_pack_cstr(&pk, "fields");
    pack_fset(&pk, t, &fs);
    commit_and_reply(req, &ch, true);
}

void srv_obj_update(struct srv_req *req)
{
    struct srv_meeting *m = req->m;
    enum proto_type t = req->p.t;
    int64_t id = req->p.id.i;
    bool has_if = req->p.if_seq.set;
    struct fset fs = {0};
    if (!read_fields(req, m, t, req->p.fields.o, &fs)) {
        return;
    }
    for (size_t i = 0; i < fs.n; i++) {
        const struct proto_field *f = &proto_type_info(t)->fields[fs.f[i].idx];
        if (f->kind == PROTO_F_TEXT && !has_if) {
            srv_reply_bad(req, f->name,
                          "replacing a whole text needs if_seq (or edit it with text.edit)");
            return;
        }
    }
    struct srv_obj *o = srv_req_obj(req, m);
    if (o == NULL) {
        return;
    }
    bool status_only = t == PROTO_T_MEETING && fs.n == 1 &&
                       fs.f[0].idx == proto_field_find(PROTO_T_MEETING, "status", 6);
    if (!srv_req_unlocked(req, m, status_only) || !srv_req_if_seq(req, o) ||
        !check_unique(req, m, t, o, &fs) || !check_times(req, t, o, &fs)) {
        return;
    }
    struct srv_change ch;
    msgpack_packer pk;
    srv_req_change_begin(req, m, "update", t, &ch, &pk);
    ch.id = id;
    if (t == PROTO_T_MEETING) {
        ch.id_str = m->rec->id;
    }
    /* A replaced text enters its field's history as [{"d": len(old)}, new]: later edits
     * made against older seqs transform over it. */
    struct proto_op ops[PROTO_MAX_FIELDS];
    int op_field[PROTO_MAX_FIELDS];
    size_t nops = 0;
    for (size_t i = 0; i < fs.n; i++) {
        const struct proto_field *f = &proto_type_info(t)->fields[fs.f[i].idx];
        if (f->kind != PROTO_F_TEXT) {
            continue;
        }
        const struct srv_val *cur = &o->f[fs.f[i].idx];
        const msgpack_object *v = fs.f[i].v;
        struct proto_op *op = &ops[nops];
        proto_op_init(op);
        proto_op_delete(op, cur->set && cur->s ? proto_utf8_count(cur->s, cur->len) : 0);
        if (v->type == MSGPACK_OBJECT_STR) {
            proto_op_insert(op, v->via.str.ptr, v->via.str.size);
        }
        op_field[nops++] = fs.f[i].idx;
    }
    msgpack_pack_map(&pk, nops > 0 ? 2 : 1);
    proto_pack_cstr(&pk, "fields");
    pack_fset(&pk, t, &fs);
    if (nops > 0) {
        proto_pack_cstr(&pk, "ops");
        msgpack_pack_map(&pk, nops);
        for (size_t i = 0; i < nops; i++) {
            proto_pack_cstr(&pk, proto_type_info(t)->fields[op_field[i]].name);
            proto_op_encode(&ops[i], &pk);
        }
    }
    int64_t seq = srv_hub_commit(req->conn->srv, &ch);
    for (size_t i = 0; i < nops; i++) {
        if (seq > 0) {
            srv_window_add(&m->win, seq, t, o->id, op_field[i], &ops[i]);
        }
        proto_op_free(&ops[i]);
    }
    if (seq < 0) {
        reply_refused(req, seq, "the change could not be applied");
        return;
    }
    req->hold = srv_hub_hold(req->conn->srv, m);
    reply_seq(req, seq, false, 0);
}

void srv_obj_delete(struct srv_req *req)
{
    struct srv_meeting *m = req->m;
    enum proto_type t = req->p.t;
    int64_t id = req->p.id.i;
    struct srv_obj *o = srv_req_obj(req, m);
    if (o == NULL || !srv_req_unlocked(req, m, false) || !srv_req_if_seq(req, o)) {
        return;
    }
    struct srv_change ch;
    msgpack_packer pk;
    srv_req_change_begin(req, m, "delete", t, &ch, &pk);
    ch.id = id;
    /* An item's delete names the docs and decisions whose item it clears (section 10). */
    msgpack_pack_map(&pk, t == PROTO_T_ITEM ? 1 : 0);
    if (t == PROTO_T_ITEM) {
        srv_apply_pack_unlinked(&pk, m->rec, id);
    }
    commit_and_reply(req, &ch, false);
}

/* ---- members ---- */

static size_t count_rapporteurs(const struct srv_rec *rec)
{
    size_t n = 0;
    for (size_t i = 0; i < rec->nmembers; i++) {
        n += strcmp(rec->members[i].role, "rapporteur") == 0;
    }
    return n;
}

/* Ends the subscriptions (and so the presence) in m of every connection of user, once
 * user has no role left in m: a removed member gets no more of the meeting live. The
 * connections are gathered first and held, because ending a presence sends to the
 * others and may close a slow one, which changes the list being walked. */
static void end_subscriptions(struct srv_meeting *m, const char *user)
{
    size_t n = 0;
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        n += strcmp(s->conn->user, user) == 0;
    }
    if (n == 0) {
        return;
    }
    struct srv_conn **v = calloc(n, sizeof(*v));
    if (v == NULL) {
        /* Cannot gather them: close them, which ends their subscriptions too. */
        for (struct srv_sub *s = m->subs; s; s = s->next) {
            if (strcmp(s->conn->user, user) == 0) {
                srv_conn_close(s->conn, "removed from a meeting");
            }
        }
        return;
    }
    size_t k = 0;
    for (struct srv_sub *s = m->subs; s && k < n; s = s->next) {
        if (strcmp(s->conn->user, user) == 0) {
            v[k] = s->conn;
            srv_conn_hold(v[k]);
            k++;
        }
    }
    for (size_t i = 0; i < k; i++) {
        /* A connection closed meanwhile has already dropped its subscriptions. */
        srv_hub_unsubscribe(m, v[i]);
        srv_conn_done(v[i]);
    }
    free(v);
}

static void member_change(struct srv_req *req, bool set)
{
    struct srv *srv = req->conn->srv;
    char user[PROTO_NAME_MAX + 1], role[16] = "";
    struct srv_meeting *m = req->m;
    snprintf(user, sizeof(user), "%.*s", (int)req->p.user.len, req->p.user.s);
    if (set) {
        snprintf(role, sizeof(role), "%.*s", (int)req->p.role.len, req->p.role.s);
    }
    struct srv_member *cur = srv_rec_member(m->rec, user);
    if (set) {
        struct db_account a;
        int found = db_account_get(srv->db, user, &a);
        sodium_memzero(&a, sizeof(a));
        if (found != 0) {
            srv_reply_bad(req, "user",
                          "no such account: the operator adds accounts with conferd account");
            return;
        }
    } else if (cur == NULL) {
        srv_reply_error(req, PROTO_CODE_NOT_FOUND, "not a member of this meeting");
        return;
    }
    if (!srv_req_unlocked(req, m, false)) {
        return;
    }
    bool demotes =
        cur && strcmp(cur->role, "rapporteur") == 0 && (!set || strcmp(role, "rapporteur") != 0);
    if (demotes && count_rapporteurs(m->rec) <= 1) {
        srv_reply_error(req, PROTO_CODE_CONFLICT,
                        "a meeting needs a rapporteur: make someone else rapporteur first");
        return;
    }
    struct srv_change ch;
    msgpack_packer pk;
    srv_req_change_begin(req, m, "member", PROTO_T_COUNT, &ch, &pk);
    ch.id_str = user;
    msgpack_pack_map(&pk, 1);
    proto_pack_cstr(&pk, "role");
    set ? proto_pack_cstr(&pk, role) : msgpack_pack_nil(&pk);
    commit_and_reply(req, &ch, false);
    if (srv_hub_role(m, user) == SRV_ROLE_NONE) {
        end_subscriptions(m, user);
    }
}

void srv_member_set(struct srv_req *req)
{
    member_change(req, true);
}

void srv_member_remove(struct srv_req *req)
{
    member_change(req, false);
}

void srv_member_list(struct srv_req *req)
{
    struct srv_meeting *m = req->m;
    req->hold = srv_hub_hold(req->conn->srv, m);
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_array(&pk, m->rec->nmembers);
    for (size_t i = 0; i < m->rec->nmembers; i++) {
        msgpack_pack_map(&pk, 2);
        proto_pack_cstr(&pk, "user");
        proto_pack_cstr(&pk, m->rec->members[i].user);
        proto_pack_cstr(&pk, "role");
        proto_pack_cstr(&pk, m->rec->members[i].role);
    }
    srv_reply_finish(req, &b);
}

/* ---- meetings ---- */

void srv_meeting_create(struct srv_req *req)
{
    struct srv *srv = req->conn->srv;
    char id[PROTO_NAME_MAX + 1], rap[PROTO_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%.*s", (int)req->p.id.len, req->p.id.s);
    snprintf(rap, sizeof(rap), "%.*s", (int)req->p.rapporteur.len, req->p.rapporteur.s);
    /* The meeting's fields are given as parameters of their own. */
    struct srv_meeting tmp = {0};
    struct srv_rec *empty = srv_rec_new(id);
    if (empty == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    tmp.rec = empty;
    struct fset fs = {0};
    bool ok = true;
    for (uint32_t i = 0; ok && i < req->params->via.map.size; i++) {
        const msgpack_object_kv *kv = &req->params->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            continue;
        }
        int idx = proto_field_find(PROTO_T_MEETING, kv->key.via.str.ptr, kv->key.via.str.size);
        if (idx < 0) {
            continue; /* id, rapporteur, and unknown keys */
        }
        const struct proto_field *f = &proto_type_info(PROTO_T_MEETING)->fields[idx];
        ok = check_value(req, &tmp, f, &kv->val);
        if (ok && fs.n < PROTO_MAX_FIELDS && fset_get(&fs, idx) == NULL) {
            fs.f[fs.n].idx = idx;
            fs.f[fs.n].v = &kv->val;
            fs.n++;
        }
    }
    srv_rec_free(empty);
    if (!ok) {
        return;
    }
    if (!req->conn->operator) {
        srv_reply_error(req, PROTO_CODE_FORBIDDEN, "only an operator account creates meetings");
        return;
    }
    struct db_account a;
    int found = db_account_get(srv->db, rap, &a);
    sodium_memzero(&a, sizeof(a));
    if (found != 0) {
        srv_reply_bad(req, "rapporteur", "no such account: add it with conferd account add");
        return;
    }
    struct srv_change ch = {.user = req->conn->user, .author = req->conn, .id_str = id};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ch.payload, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "fields");
    pack_fset(&pk, PROTO_T_MEETING, &fs);
    proto_pack_cstr(&pk, "rapporteur");
    proto_pack_cstr(&pk, rap);
    struct srv_meeting *m = NULL;
    int rc = srv_hub_create_meeting(srv, id, &ch, &m);
    if (rc == PROTO_ECONFLICT) {
        srv_reply_error(req, PROTO_CODE_CONFLICT, "a meeting with this id exists");
        return;
    }
    if (rc != 0) {
        reply_refused(req, rc, "the meeting could not be created");
        return;
    }
    srv_log(req->conn, SRV_LOG_INFO, "meeting %s created (rapporteur %s)", id, rap);
    req->hold = srv_hub_hold(srv, m);
    struct proto_buf b;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "id");
    proto_pack_cstr(&pk, id);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, m->rec->seq);
    srv_reply_finish(req, &b);
}

static void pack_val_field(msgpack_packer *pk, const struct srv_obj *o, const char *name)
{
    int idx = proto_field_find(o->type, name, strlen(name));
    const struct srv_val *v = &o->f[idx];
    if (v->set && v->s) {
        proto_pack_str(pk, v->s, v->len);
    } else {
        msgpack_pack_nil(pk);
    }
}

void srv_meeting_list(struct srv_req *req)
{
    struct srv *srv = req->conn->srv;
    size_t n = 0;
    uint64_t hold = 0;
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        if (req->conn->operator|| srv_hub_role(m, req->conn->user) != SRV_ROLE_NONE) {
            n++;
            uint64_t h = srv_hub_hold(srv, m);
            hold = h > hold ? h : hold;
        }
    }
    req->hold = hold;
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_array(&pk, n);
    for (struct srv_meeting *m = srv->meetings; m; m = m->next) {
        struct srv_member *mb = srv_rec_member(m->rec, req->conn->user);
        if (!req->conn->operator&& mb == NULL) {
            continue;
        }
        msgpack_pack_map(&pk, 6);
        proto_pack_cstr(&pk, "id");
        proto_pack_cstr(&pk, m->rec->id);
        proto_pack_cstr(&pk, "title");
        pack_val_field(&pk, &m->rec->meeting, "title");
        proto_pack_cstr(&pk, "start");
        pack_val_field(&pk, &m->rec->meeting, "start");
        proto_pack_cstr(&pk, "end");
        pack_val_field(&pk, &m->rec->meeting, "end");
        proto_pack_cstr(&pk, "status");
        pack_val_field(&pk, &m->rec->meeting, "status");
        proto_pack_cstr(&pk, "role");
        mb ? proto_pack_cstr(&pk, mb->role) : msgpack_pack_nil(&pk);
    }
    srv_reply_finish(req, &b);
}

/* ---- long reads: time travel, history, verify, export (off the loop, srv_read.h) ---- */

enum read_kind { READ_GET, READ_EXPORT, READ_HISTORY, READ_VERIFY };

/* What a read job needs, copied on the loop at submit time (the pool thread sees nothing
 * else), and the response it packs there. */
struct read_job {
    enum read_kind kind;
    uint32_t msgid;
    char meeting[PROTO_NAME_MAX + 1];
    /* get, export: replay the log up to at (0: rec is a copy of the live record) */
    int64_t at, db_until;
    struct srv_entry *pending; /* copies of the entries over (db_until, at] not yet durable */
    struct srv_rec *rec;
    bool copy_live;              /* rec: a copy of the live record, made when the job starts */
    uint8_t head[DB_HASH_BYTES]; /* the audit head of rec when it is the live copy */
    enum srv_report_format fmt;
    /* history */
    struct db_history_filter f;
    char user[PROTO_NAME_MAX + 1], type[16], id_str[PROTO_NAME_MAX + 1];
    /* the host key: snapshots are checked with pk, export heads signed with sk (which
     * lives as long as the server) */
    uint8_t pk[PROTO_KEY_BYTES];
    const uint8_t *sk;
    /* verify */
    int64_t checkpoint_seq; /* the newest checkpoint the server has stored */
    bool has_known;
    int64_t known_seq;
    uint8_t known_hash[DB_HASH_BYTES];
    /* the result: a whole response, or an error */
    struct proto_buf reply;
    enum proto_code code;
    const char *message;
};

static void read_job_free(void *ud)
{
    struct read_job *job = ud;
    if (job == NULL) {
        return;
    }
    while (job->pending) {
        struct srv_entry *e = job->pending;
        job->pending = e->next;
        free(e->payload);
        free(e);
    }
    srv_rec_free(job->rec);
    proto_buf_free(&job->reply, 0);
    free(job);
}

/* A copy of an entry that owns its strings and payload, like the original. */
static struct srv_entry *entry_copy(const struct srv_entry *src)
{
    struct srv_entry *e = malloc(sizeof(*e));
    uint8_t *payload = malloc(src->a.payload_len ? src->a.payload_len : 1);
    if (e == NULL || payload == NULL) {
        free(e);
        free(payload);
        return NULL;
    }
    *e = *src;
    e->next = NULL;
    memcpy(payload, src->a.payload, src->a.payload_len);
    e->payload = payload;
    e->a.payload = payload;
    e->a.meeting = e->meeting;
    e->a.user = e->user;
    e->a.kind = e->kind;
    e->a.type = e->type;
    e->a.cid = src->a.cid ? e->cid : NULL;
    e->a.id_str = src->a.id_str ? e->id_str : NULL;
    return e;
}

/* A deep copy of a record, for a job that renders it off the loop. NULL when out of
 * memory. */
static struct srv_rec *rec_copy(const struct srv_rec *src)
{
    struct srv_rec *r = srv_rec_new(src->id);
    struct srv_obj *mo = r ? srv_obj_dup(&src->meeting) : NULL;
    if (mo == NULL) {
        srv_rec_free(r);
        return NULL;
    }
    for (size_t i = 0; i < PROTO_MAX_FIELDS; i++) {
        srv_val_unset(&r->meeting.f[i]);
    }
    r->meeting = *mo; /* takes mo's values */
    free(mo);
    r->seq = src->seq;
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        for (size_t i = 0; i < src->objs[t].n; i++) {
            struct srv_obj *o = srv_obj_dup(src->objs[t].v[i]);
            if (o == NULL || srv_rec_add(r, o) != 0) {
                srv_obj_free(o);
                srv_rec_free(r);
                return NULL;
            }
        }
    }
    for (size_t i = 0; i < src->nmembers; i++) {
        const struct srv_member *mb = &src->members[i];
        if (srv_rec_set_member(r, mb->user, mb->role, mb->seq) != 0) {
            srv_rec_free(r);
            return NULL;
        }
    }
    return r;
}

static struct read_job *read_job_new(struct srv_req *req, enum read_kind kind, const char *meeting)
{
    struct read_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return NULL;
    }
    job->kind = kind;
    job->msgid = req->msgid;
    memcpy(job->pk, req->conn->srv->host.pk, sizeof(job->pk));
    job->sk = req->conn->srv->host.sk;
    snprintf(job->meeting, sizeof(job->meeting), "%s", meeting);
    return job;
}

/* On the pool: the record at job->at, from the nearest snapshot and the log after it
 * (the durable entries, then the copies of those not yet durable). head gets the chain's
 * hash at `at`. */
static int replay(struct db *db, struct read_job *job, uint8_t head[DB_HASH_BYTES])
{
    struct srv_rebuild rb;
    int rc = srv_audit_rebuild_begin(db, job->meeting, job->pk, job->db_until, &rb);
    for (struct srv_entry *e = job->pending; e && rc == 0; e = e->next) {
        srv_audit_rebuild_add(&rb, &e->a);
    }
    if (rc == 0) {
        rc = srv_audit_rebuild_end(&rb);
    }
    if (rc == 0 && rb.seq != job->at) {
        rc = PROTO_EINVAL; /* the log ends before at: it lost entries */
    }
    if (rc != 0) {
        srv_audit_rebuild_free(&rb);
        job->code = rc == PROTO_EDB ? PROTO_CODE_UNAVAILABLE : PROTO_CODE_INTERNAL;
        job->message = rc == PROTO_EDB ? "cannot read the meeting's log"
                                       : "cannot rebuild the record at that seq";
        return rc;
    }
    memcpy(head, rb.head, DB_HASH_BYTES);
    srv_rec_free(job->rec);
    job->rec = rb.rec;
    rb.rec = NULL;
    return 0;
}

static int export_pack(struct read_job *job, const uint8_t head[DB_HASH_BYTES])
{
    char hex[2 * DB_HASH_BYTES + 1];
    char sig64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    uint8_t sig[crypto_sign_BYTES];
    struct proto_buf text = {0}, msg = {0};
    /* The last line carries the head signed as a checkpoint (PROTOCOL.md section 15), so a
     * printed report is checked with the server's fingerprint alone. */
    proto_hex(head, DB_HASH_BYTES, hex);
    srv_audit_checkpoint_msg(job->meeting, job->rec->seq, head, &msg);
    if (msg.data == NULL) {
        job->code = PROTO_CODE_INTERNAL;
        job->message = "out of memory";
        return PROTO_ENOMEM;
    }
    crypto_sign_detached(sig, NULL, msg.data, msg.len, job->sk);
    proto_buf_free(&msg, 0);
    sodium_bin2base64(sig64, sizeof(sig64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
    int rc = srv_report_export(job->rec, job->fmt, job->rec->seq, hex, sig64, &text);
    if (rc != 0) {
        job->code = PROTO_CODE_INTERNAL;
        job->message = "cannot render the report";
        proto_buf_free(&text, 0);
        return rc;
    }
    struct srv_req req = {.msgid = job->msgid};
    msgpack_packer pk;
    srv_reply_begin(&req, &pk, &job->reply);
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, job->rec->seq);
    proto_pack_cstr(&pk, "content");
    proto_pack_str(&pk, (const char *)text.data, text.len);
    proto_buf_free(&text, 0);
    return 0;
}

struct hist_ctx {
    size_t n;
    struct proto_buf items;
};

static int hist_one(void *ud, const struct db_audit *e);

static void pack_mismatch(msgpack_packer *pk, const struct srv_audit_mismatch *x)
{
    msgpack_pack_map(pk, 3);
    proto_pack_cstr(pk, "type");
    proto_pack_cstr(pk, x->type);
    proto_pack_cstr(pk, "id");
    if (x->has_str) {
        proto_pack_cstr(pk, x->id_str);
    } else {
        msgpack_pack_int64(pk, x->id);
    }
    proto_pack_cstr(pk, "field");
    if (x->has_field) {
        proto_pack_cstr(pk, x->field);
    } else {
        msgpack_pack_nil(pk);
    }
}

static int verify_pack(struct db *db, struct read_job *job)
{
    struct srv_audit_result *r = malloc(sizeof(*r));
    struct srv_audit_expect x = {
        .known_seq = job->known_seq,
        .known_hash = job->has_known ? job->known_hash : NULL,
        .checkpoint_seq = job->checkpoint_seq,
    };
    char hex[2 * DB_HASH_BYTES + 1];
    if (r == NULL) {
        return PROTO_ENOMEM;
    }
    int rc = srv_audit_check(db, job->meeting, job->pk, &x, r);
    if (rc != 0) {
        free(r);
        return rc;
    }
    if (r->bad_seq != 0) {
        srv_log(NULL, SRV_LOG_WARN, "meeting %s: audit.verify failed at seq %lld: %s", job->meeting,
                (long long)r->bad_seq, r->why);
    }
    struct srv_req req = {.msgid = job->msgid};
    msgpack_packer pk;
    size_t nkept = r->nmismatch < SRV_AUDIT_MISMATCH_MAX ? r->nmismatch : SRV_AUDIT_MISMATCH_MAX;
    proto_hex(r->head, DB_HASH_BYTES, hex);
    srv_reply_begin(&req, &pk, &job->reply);
    msgpack_pack_map(&pk, 5 + (r->bad_seq != 0) + (!r->state));
    proto_pack_cstr(&pk, "ok");
    packb(&pk, r->bad_seq == 0);
    proto_pack_cstr(&pk, "count");
    msgpack_pack_int64(&pk, r->count);
    proto_pack_cstr(&pk, "head");
    proto_pack_cstr(&pk, hex);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, r->seq);
    proto_pack_cstr(&pk, "state");
    packb(&pk, r->state);
    if (!r->state) {
        proto_pack_cstr(&pk, "mismatch");
        msgpack_pack_array(&pk, nkept);
        for (size_t i = 0; i < nkept; i++) {
            pack_mismatch(&pk, &r->mismatch[i]);
        }
    }
    if (r->bad_seq != 0) {
        proto_pack_cstr(&pk, "bad_seq");
        msgpack_pack_int64(&pk, r->bad_seq);
    }
    free(r);
    return 0;
}

/* On the pool: reads with the job's own connection and packs the whole response. */
static int read_work(struct db *db, void *ud)
{
    struct read_job *job = ud;
    struct srv_req req = {.msgid = job->msgid};
    msgpack_packer pk;
    uint8_t head[DB_HASH_BYTES] = {0};
    int rc = 0;
    switch (job->kind) {
    case READ_GET:
        if ((rc = replay(db, job, head)) == 0) {
            srv_reply_begin(&req, &pk, &job->reply);
            srv_rec_pack(&pk, job->rec);
        }
        return rc;
    case READ_EXPORT:
        if (job->at > 0) {
            rc = replay(db, job, head);
        } else {
            memcpy(head, job->head, DB_HASH_BYTES);
        }
        return rc == 0 ? export_pack(job, head) : rc;
    case READ_HISTORY: {
        struct hist_ctx h = {0};
        rc = db_audit_history(db, job->meeting, &job->f, hist_one, &h);
        if (rc == 0) {
            srv_reply_begin(&req, &pk, &job->reply);
            msgpack_pack_array(&pk, h.n);
            rc = proto_buf_append(&job->reply, h.items.data, h.items.len);
        }
        proto_buf_free(&h.items, 0);
        return rc;
    }
    case READ_VERIFY:
        return verify_pack(db, job);
    }
    return PROTO_EINVAL;
}

static void read_done(struct srv_req *req, int rc, void *ud)
{
    struct read_job *job = ud;
    if (rc == 0) {
        srv_reply_finish(req, &job->reply);
    } else if (job->message) {
        srv_reply_error(req, job->code, job->message);
    } else {
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot read the meeting's log");
    }
}

/* On the loop when the job starts: the copy of a live record is made only now, so that
 * jobs waiting in the queue hold no copies; the response then waits for the batch of the
 * latest change the copy shows. */
static int read_start(struct srv *srv, void *ud, uint64_t *hold)
{
    struct read_job *job = ud;
    if (!job->copy_live) {
        return 0;
    }
    struct srv_meeting *m = srv_hub_find(srv, job->meeting, strlen(job->meeting));
    if (m == NULL || (job->rec = rec_copy(m->rec)) == NULL) {
        job->code = PROTO_CODE_INTERNAL;
        job->message = m ? "out of memory" : "the meeting is gone";
        return m ? PROTO_ENOMEM : PROTO_ENOTFOUND;
    }
    memcpy(job->head, m->head, DB_HASH_BYTES);
    if (job->kind == READ_EXPORT) {
        srv_hub_sign_head(srv, m); /* an exported head is covered by a checkpoint */
    }
    *hold = srv_hub_hold(srv, m);
    return 0;
}

static const struct srv_read_ops read_ops = {read_start, read_work, read_done, read_job_free};

/* Prepares job to rebuild m at `at` (0 or the current seq: the live record, copied when
 * the job starts when copy_live, else left to the caller). Answers and returns false on failure.
 * The response waits for the batch of m's latest change, as a read of the live record does. */
static bool record_at(struct srv_req *req, struct srv_meeting *m, int64_t at, bool copy_live,
                      struct read_job *job)
{
    req->hold = srv_hub_hold(req->conn->srv, m);
    if (at == 0 || at == m->rec->seq) {
        job->at = 0;
        job->copy_live = copy_live;
        return true;
    }
    if (at < 1 || at > m->rec->seq) {
        char why[96];
        snprintf(why, sizeof(why), "must be from 1 to the meeting's seq (%lld)",
                 (long long)m->rec->seq);
        srv_reply_bad(req, "at", why);
        return false;
    }
    job->at = at;
    job->db_until = at < m->committed_seq ? at : m->committed_seq;
    struct srv_entry **tail = &job->pending;
    for (struct srv_entry *e = m->pending; e; e = e->next) {
        if (e->a.seq > job->db_until && e->a.seq <= at) {
            if ((*tail = entry_copy(e)) == NULL) {
                srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
                return false;
            }
            tail = &(*tail)->next;
        }
    }
    return true;
}

void srv_meeting_get(struct srv_req *req)
{
    int64_t at = req->p.at.set ? req->p.at.i : 0;
    struct srv_meeting *m = req->m;
    struct read_job *job = read_job_new(req, READ_GET, m->rec->id);
    if (job == NULL) {
        return;
    }
    if (!record_at(req, m, at, false, job)) {
        read_job_free(job);
        return;
    }
    if (job->at > 0) {
        srv_read_submit(req, &read_ops, job); /* answers when refused */
        return;
    }
    /* The live record: packing it is as quick as a subscribe's snapshot. */
    read_job_free(job);
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    srv_rec_pack(&pk, m->rec);
    srv_reply_finish(req, &b);
}

void srv_agenda_get(struct srv_req *req)
{
    struct srv_meeting *m = req->m;
    req->hold = srv_hub_hold(req->conn->srv, m);
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    if (srv_rec_pack_agenda(&pk, m->rec) < 0) {
        proto_buf_free(&b, 0);
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    srv_reply_finish(req, &b);
}

/* ---- subscriptions ---- */

/* A catch-up over at most this many durable entries reads them on the loop (a reconnect
 * after a short break); a longer one reads them off the loop in a read job (srv_read.h),
 * so that a late subscriber with an old since holds up nobody. */
#define SUB_LOOP_ENTRIES 64
/* Read jobs of one catch-up. Each job after the first reads only what became durable while
 * the one before ran; past this many (a long read queue) the rest is read on the loop. */
#define SUB_MAX_JOBS 8

struct replay_send {
    struct srv_conn *conn;
    uint64_t hold;
};

static int send_event(void *ud, const struct db_audit *e)
{
    struct replay_send *r = ud;
    struct proto_buf ev = {0};
    int rc = srv_hub_pack_event(e, &ev);
    if (rc == 0) {
        srv_held_send(r->conn, ev.data, ev.len, r->hold);
    }
    proto_buf_free(&ev, 0);
    return rc;
}

/* A catch-up's read job: it reads the durable entries (from, until] of the meeting and
 * packs their events one after the other into events, lens[i] bytes each. A job chained
 * after another takes over what that one packed. */
struct sub_job {
    char meeting[PROTO_NAME_MAX + 1];
    int64_t from, until;
    int64_t last;  /* seq of the last entry read */
    size_t max;    /* bytes of events at most: the connection's output limit */
    unsigned jobs; /* jobs of this catch-up so far, this one included */
    struct proto_buf events;
    size_t *lens;
    size_t n, cap;
};

static void sub_job_free(void *ud)
{
    struct sub_job *job = ud;
    if (job) {
        proto_buf_free(&job->events, 0);
        free(job->lens);
        free(job);
    }
}

/* On the pool: packs one entry's event (the entries must follow each other: a gap means
 * the log lost entries). */
static int sub_pack_one(void *ud, const struct db_audit *e)
{
    struct sub_job *job = ud;
    if (e->seq != job->last + 1) {
        return PROTO_EINVAL;
    }
    if (job->n == job->cap) {
        size_t cap = job->cap ? job->cap * 2 : 256;
        size_t *v = realloc(job->lens, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        job->lens = v;
        job->cap = cap;
    }
    size_t before = job->events.len;
    int rc = srv_hub_pack_event(e, &job->events);
    if (rc != 0) {
        return rc;
    }
    if (job->events.len > job->max) {
        return PROTO_ETOOBIG; /* sent, it would close the connection as a slow consumer */
    }
    job->lens[job->n++] = job->events.len - before;
    job->last = e->seq;
    return 0;
}

/* On the pool, with the job's own read-only connection. */
static int sub_work(struct db *db, void *ud)
{
    struct sub_job *job = ud;
    job->last = job->from;
    int rc = db_audit_range(db, job->meeting, job->from, job->until, sub_pack_one, job);
    return rc == 0 && job->last != job->until ? PROTO_EINVAL : rc;
}

/* Subscribes req's connection to m and answers, all in this one call on the loop, so that
 * the live events that follow start right after the response's seq. With since: the
 * events of (since, m's seq] first (those job packed, when given, then the rest from the
 * database and the pending entries), then the response; without: the response with the
 * snapshot. */
static void subscribe_answer(struct srv_req *req, struct srv_meeting *m, bool has_since,
                             int64_t since, const struct sub_job *job)
{
    struct srv *srv = req->conn->srv;
    if (srv_hub_subscribe(m, req->conn) != 0) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    req->hold = srv_hub_hold(srv, m);
    if (has_since) {
        struct replay_send r = {.conn = req->conn, .hold = req->hold};
        if (job) {
            size_t off = 0;
            for (size_t i = 0; i < job->n; i++) {
                srv_held_send(req->conn, job->events.data + off, job->lens[i], req->hold);
                off += job->lens[i];
            }
            since = job->until;
        }
        if (srv_hub_entries(srv, m, since, m->rec->seq, send_event, &r) != 0) {
            srv_hub_unsubscribe(m, req->conn);
            srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot read the meeting's log");
            return;
        }
    }
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, has_since ? 1 : 2);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, m->rec->seq);
    if (!has_since) {
        proto_pack_cstr(&pk, "snapshot");
        srv_rec_pack(&pk, m->rec);
    }
    srv_reply_finish(req, &b);
}

static const struct srv_read_ops sub_ops;

/* On the loop when a catch-up job has read its part: the meeting is looked up again (a
 * failed batch may have reloaded it, or lost it), and what became durable meanwhile is
 * read by another job when it is more than a few entries, else the catch-up is sent. */
static void sub_done(struct srv_req *req, int rc, void *ud)
{
    struct sub_job *job = ud;
    struct srv *srv = req->conn->srv;
    if (rc == PROTO_ETOOBIG) {
        srv_reply_error(req, PROTO_CODE_TOO_LARGE,
                        "since: the events since then are over the output limit: subscribe "
                        "without since for a snapshot");
        return;
    }
    if (rc != 0) {
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot read the meeting's log");
        return;
    }
    struct srv_meeting *m = srv_hub_find(srv, job->meeting, strlen(job->meeting));
    if (m == NULL || srv_hub_role(m, req->conn->user) == SRV_ROLE_NONE) {
        srv_reply_error(req, PROTO_CODE_NOT_FOUND,
                        "no such meeting, or you are not a member of it: ask its rapporteur");
        return;
    }
    if (m->committed_seq < job->until) {
        /* Durable entries never go away: this is not the meeting the job read. */
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "the meeting was reloaded: subscribe again");
        return;
    }
    if (m->committed_seq - job->until > SUB_LOOP_ENTRIES && job->jobs < SUB_MAX_JOBS) {
        struct sub_job *next = malloc(sizeof(*next));
        if (next != NULL) {
            *next = *job; /* takes over the events packed so far */
            job->events = (struct proto_buf){0};
            job->lens = NULL;
            next->from = job->until;
            next->until = m->committed_seq;
            next->jobs++;
            srv_read_submit(req, &sub_ops, next); /* answers when refused */
            return;
        }
        /* Out of memory for another job: the rest is read on the loop. */
    }
    subscribe_answer(req, m, true, job->from, job);
}

static const struct srv_read_ops sub_ops = {NULL, sub_work, sub_done, sub_job_free};

void srv_meeting_subscribe(struct srv_req *req)
{
    int64_t since = req->p.since.i;
    bool has_since = req->p.since.set;
    struct srv_meeting *m = req->m;
    if (has_since && (since < 0 || since > m->rec->seq)) {
        char why[96];
        snprintf(why, sizeof(why), "must be from 0 to the meeting's seq (%lld)",
                 (long long)m->rec->seq);
        srv_reply_bad(req, "since", why);
        return;
    }
    srv_hub_unsubscribe(m, req->conn);
    if (!has_since || m->committed_seq - since <= SUB_LOOP_ENTRIES) {
        subscribe_answer(req, m, has_since, since, NULL);
        return;
    }
    /* A long catch-up: the connection is subscribed only when the job is done, so that none
     * of the meeting's live events can come before the replayed ones; its next requests
     * wait meanwhile (srv_read.h). */
    struct sub_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    snprintf(job->meeting, sizeof(job->meeting), "%s", m->rec->id);
    job->from = since;
    job->until = m->committed_seq;
    job->max = req->conn->srv->cfg.output_limit;
    job->jobs = 1;
    srv_read_submit(req, &sub_ops, job); /* answers when refused */
}

void srv_meeting_unsubscribe(struct srv_req *req)
{
    struct srv_meeting *m = req->m;
    srv_hub_unsubscribe(m, req->conn);
    srv_reply_empty(req);
}

/* ---- history and audit ---- */

/* A one-line description of an entry for people. */
static void summarize(const struct db_audit *e, char *out, size_t cap)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    char names[200] = "";
    if (msgpack_unpack_next(&u, (const char *)e->payload, e->payload_len, &off) ==
        MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *f = proto_mp_map_get(&u.data, "fields");
        for (uint32_t i = 0; f && f->type == MSGPACK_OBJECT_MAP && i < f->via.map.size; i++) {
            const msgpack_object *k = &f->via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR && strlen(names) + k->via.str.size + 3 < 190) {
                strncat(names, i ? ", " : "", sizeof(names) - strlen(names) - 1);
                strncat(names, k->via.str.ptr, k->via.str.size);
            }
        }
        if (strcmp(e->type, "member") == 0) {
            const msgpack_object *r = proto_mp_map_get(&u.data, "role");
            if (r && r->type == MSGPACK_OBJECT_STR) {
                snprintf(names, sizeof(names), "role %.*s", (int)r->via.str.size, r->via.str.ptr);
            } else {
                snprintf(names, sizeof(names), "removed");
            }
        }
        const msgpack_object *fd = proto_mp_map_get(&u.data, "field");
        if (fd && fd->type == MSGPACK_OBJECT_STR) {
            snprintf(names, sizeof(names), "edit of %.*s", (int)fd->via.str.size, fd->via.str.ptr);
        }
    }
    msgpack_unpacked_destroy(&u);
    char id[80];
    if (e->id_str) {
        snprintf(id, sizeof(id), "%s", e->id_str);
    } else {
        snprintf(id, sizeof(id), "%lld", (long long)e->id_int);
    }
    snprintf(out, cap, "%s %s %s%s%s", e->kind, e->type, id, names[0] ? ": " : "", names);
}

static int hist_one(void *ud, const struct db_audit *e)
{
    struct hist_ctx *h = ud;
    msgpack_packer pk;
    char summary[300], hex[2 * DB_HASH_BYTES + 1];
    msgpack_packer_init(&pk, &h->items, proto_buf_msgpack_write);
    summarize(e, summary, sizeof(summary));
    proto_hex(e->hash, DB_HASH_BYTES, hex);
    int64_t import = srv_hub_entry_import(e);
    msgpack_pack_map(&pk, srv_hub_entry_keys(e) + 2 + (import != 0));
    srv_hub_pack_entry_keys(&pk, e);
    if (import != 0) {
        proto_pack_cstr(&pk, "import"); /* the seq of the import's first change */
        msgpack_pack_int64(&pk, import);
    }
    proto_pack_cstr(&pk, "summary");
    proto_pack_cstr(&pk, summary);
    proto_pack_cstr(&pk, "hash");
    proto_pack_cstr(&pk, hex);
    h->n++;
    return 0;
}

void srv_history_list(struct srv_req *req)
{
    struct db_history_filter f = {.limit = HISTORY_DEFAULT};
    const struct srv_params *p = &req->p;
    char user[PROTO_NAME_MAX + 1] = "", type[16] = "", id_str[PROTO_NAME_MAX + 1] = "";
    f.since = p->since.set ? p->since.i : 0;
    f.until = p->until.set ? p->until.i : 0;
    if (p->limit.set) {
        f.limit = (int)p->limit.i;
    }
    snprintf(user, sizeof(user), "%.*s", (int)p->user.len, p->user.len ? p->user.s : "");
    snprintf(type, sizeof(type), "%.*s", (int)p->type.len, p->type.len ? p->type.s : "");
    if (p->id.set && p->id.o->type == MSGPACK_OBJECT_STR) {
        snprintf(id_str, sizeof(id_str), "%.*s", (int)p->id.len, p->id.len ? p->id.s : "");
        f.id_str = id_str;
    } else if (p->id.set) {
        f.id_int = p->id.i;
    }
    struct srv_meeting *m = req->m;
    /* The log may be long and the filter match little of it: read it off the loop. */
    struct read_job *job = read_job_new(req, READ_HISTORY, m->rec->id);
    if (job == NULL) {
        return;
    }
    job->f = f;
    snprintf(job->user, sizeof(job->user), "%s", user);
    snprintf(job->type, sizeof(job->type), "%s", type);
    snprintf(job->id_str, sizeof(job->id_str), "%s", id_str);
    job->f.user = user[0] ? job->user : NULL;
    job->f.type = type[0] ? job->type : NULL;
    job->f.id_str = f.id_str ? job->id_str : NULL;
    srv_read_submit(req, &read_ops, job); /* answers when refused */
}

/* audit.verify reads and hashes the whole log: a read job with its own connection. */
/* Reads known {"seq", "hash": 64 hex digits}; answers and returns false when it is not. */
static bool read_known(struct srv_req *req, int64_t *seq, uint8_t hash[DB_HASH_BYTES])
{
    const char *hex = NULL;
    size_t len = 0;
    const msgpack_object *k = req->p.known.o;
    if (proto_param_i64(k, "seq", seq) != 0 || *seq < 1 ||
        proto_param_str(k, "hash", &hex, &len) != 0 || len != 2 * DB_HASH_BYTES ||
        sodium_hex2bin(hash, DB_HASH_BYTES, hex, len, NULL, NULL, NULL) != 0) {
        srv_reply_bad(req, "known", "must be {\"seq\": a seq from 1, \"hash\": 64 hex digits}");
        return false;
    }
    return true;
}

void srv_audit_verify_method(struct srv_req *req)
{
    struct srv_meeting *m = req->m;
    int64_t known_seq = 0;
    uint8_t known_hash[DB_HASH_BYTES];
    if (req->p.known.set && !read_known(req, &known_seq, known_hash)) {
        return;
    }
    struct read_job *job = read_job_new(req, READ_VERIFY, m->rec->id);
    if (job == NULL) {
        return;
    }
    job->checkpoint_seq = m->checkpoint_stored;
    if (req->p.known.set) {
        job->has_known = true;
        job->known_seq = known_seq;
        memcpy(job->known_hash, known_hash, DB_HASH_BYTES);
    }
    srv_read_submit(req, &read_ops, job); /* answers when refused */
}

/* ---- import and export ---- */

void srv_report_export_method(struct srv_req *req)
{
    enum srv_report_format fmt = SRV_REPORT_TEXT;
    int64_t at = req->p.at.set ? req->p.at.i : 0;
    /* The table allows only the names this parses. */
    srv_report_format_parse(req->p.format.s, req->p.format.len, &fmt);
    struct srv_meeting *m = req->m;
    /* Rendering is linear in the record (and more): always off the loop, from a replay or
     * from a copy of the live record. */
    struct read_job *job = read_job_new(req, READ_EXPORT, m->rec->id);
    if (job == NULL) {
        return;
    }
    job->fmt = fmt;
    if (!record_at(req, m, at, true, job)) {
        read_job_free(job);
        return;
    }
    srv_read_submit(req, &read_ops, job); /* answers when refused */
}

/* A value as a string ("" when unset). */
static const char *vstr(const struct srv_val *v, size_t *len)
{
    *len = v->set && v->s ? v->len : 0;
    return v->set && v->s ? v->s : "";
}

static bool vsame(const struct srv_val *a, const struct srv_val *b)
{
    size_t al = 0, bl = 0;
    const char *as = vstr(a, &al), *bs = vstr(b, &bl);
    return same(as, al, bs, bl);
}

/* An imported item reference as a meeting id (0: none), through map (local import ids to
 * meeting ids). */
static int64_t import_mapped(const struct srv_val *v, const int64_t *map, size_t nmap)
{
    return v->set && v->i >= 0 && (size_t)v->i < nmap ? map[v->i] : 0;
}

/* True when the imported value v of a field of kind k equals the meeting's cur. */
static bool import_same_value(const struct srv_val *v, const struct srv_val *cur,
                              enum proto_fkind k, const int64_t *map, size_t nmap)
{
    if (k == PROTO_F_ITEMREF) {
        return import_mapped(v, map, nmap) == (cur->set ? cur->i : 0);
    }
    if (k == PROTO_F_INT) {
        return cur->set && cur->i == v->i;
    }
    return cur->set && vsame(v, cur);
}

/* The fields that match an imported object to one of the meeting (PROTOCOL.md section 13):
 * items by number, docs by (ref, revision), actions by ref, sessions and interims by (date,
 * start), people by name, decisions by (item, text). Fills key[0..2) with field indexes
 * (-1: none); returns how many. */
static size_t import_keys(enum proto_type t, int key[2])
{
    static const char *const keys[PROTO_T_COUNT][2] = {
        [PROTO_T_ITEM] = {"number", NULL},     [PROTO_T_DOC] = {"ref", "revision"},
        [PROTO_T_ACTION] = {"ref", NULL},      [PROTO_T_SESSION] = {"date", "start"},
        [PROTO_T_INTERIM] = {"date", "start"}, [PROTO_T_PERSON] = {"name", NULL},
        [PROTO_T_DECISION] = {"item", "text"},
    };
    size_t n = 0;
    key[0] = key[1] = -1;
    for (size_t k = 0; k < 2 && keys[t][k] != NULL; k++) {
        key[n] = proto_field_find(t, keys[t][k], strlen(keys[t][k]));
        n += key[n] >= 0;
    }
    return n;
}

/* The meeting's object an imported one matches, or NULL. Docs and actions are matched in
 * either mode (their keys are unique in a meeting), the others only when merging. */
static struct srv_obj *import_match(struct srv_meeting *m, const struct srv_obj *o, bool merge,
                                    const int64_t *map, size_t nmap)
{
    int key[2];
    size_t nkeys = import_keys(o->type, key);
    if (nkeys == 0 || (!merge && o->type != PROTO_T_DOC && o->type != PROTO_T_ACTION)) {
        return NULL;
    }
    const struct proto_typeinfo *ti = proto_type_info(o->type);
    /* An item reference is compared as the meeting id it maps to. */
    int64_t ref[2] = {0, 0};
    for (size_t k = 0; k < nkeys; k++) {
        if (ti->fields[key[k]].kind == PROTO_F_ITEMREF) {
            ref[k] = import_mapped(&o->f[key[k]], map, nmap);
        }
    }
    const struct srv_objvec *vec = &m->rec->objs[o->type];
    for (size_t i = 0; i < vec->n; i++) {
        const struct srv_obj *x = vec->v[i];
        bool same_key = true;
        for (size_t k = 0; k < nkeys && same_key; k++) {
            const struct srv_val *xv = &x->f[key[k]];
            const struct srv_val *ov = &o->f[key[k]];
            if (ti->fields[key[k]].kind == PROTO_F_ITEMREF) {
                same_key = ref[k] == (xv->set ? xv->i : 0);
            } else if (o->type == PROTO_T_DOC || o->type == PROTO_T_ACTION) {
                /* refs are unique regardless of letter case (PROTOCOL.md section 10) */
                bool os = ov->set && ov->s, xs = xv->set && xv->s;
                same_key = same_nocase(os ? ov->s : "", os ? ov->len : 0, xs ? xv->s : "",
                                       xs ? xv->len : 0);
            } else {
                same_key = vsame(ov, xv);
            }
        }
        if (same_key) {
            return vec->v[i];
        }
    }
    return NULL;
}

/* Packs the value of field i of an imported object. */
static void pack_import_value(msgpack_packer *pk, const struct srv_val *v, enum proto_fkind k,
                              const int64_t *map, size_t nmap)
{
    if (k == PROTO_F_ITEMREF) {
        int64_t mapped = import_mapped(v, map, nmap);
        mapped ? msgpack_pack_int64(pk, mapped) : msgpack_pack_nil(pk);
    } else if (k == PROTO_F_INT) {
        msgpack_pack_int64(pk, v->i);
    } else {
        proto_pack_str(pk, v->s, v->len);
    }
}

/* True for a field an import sets: one the report gives, not computed, not the status of
 * the meeting. */
static bool import_sets(const struct srv_obj *o, size_t i)
{
    const struct proto_field *f = &proto_type_info(o->type)->fields[i];
    return o->f[i].set && f->kind != PROTO_F_COMPUTED &&
           !(o->type == PROTO_T_MEETING && strcmp(f->name, "status") == 0);
}

/* Packs a create payload of an imported object. */
static void pack_import_create(msgpack_packer *pk, const struct srv_obj *o, const int64_t *map,
                               size_t nmap, int64_t first)
{
    const struct proto_typeinfo *ti = proto_type_info(o->type);
    size_t n = 0;
    for (size_t i = 0; i < ti->nfields; i++) {
        n += import_sets(o, i);
    }
    msgpack_pack_map(pk, 2);
    proto_pack_cstr(pk, "import");
    msgpack_pack_int64(pk, first);
    proto_pack_cstr(pk, "fields");
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < ti->nfields; i++) {
        if (import_sets(o, i)) {
            proto_pack_cstr(pk, ti->fields[i].name);
            pack_import_value(pk, &o->f[i], ti->fields[i].kind, map, nmap);
        }
    }
}

/* One update an import makes: the fields of cur whose imported values in o differ. A text
 * field changes by one op that turns the old text into the new (proto_diff), as an edit
 * would, so that edits made against older seqs transform over it. */
struct import_update {
    size_t nset;
    bool set[PROTO_MAX_FIELDS];
    struct proto_op ops[PROTO_MAX_FIELDS];
    int op_field[PROTO_MAX_FIELDS];
    size_t nops;
};

static void import_update_free(struct import_update *u)
{
    for (size_t i = 0; i < u->nops; i++) {
        proto_op_free(&u->ops[i]);
    }
    u->nops = 0;
}

/* Finds what differs. Returns 0 (u->nset 0: nothing), or PROTO_ENOMEM / PROTO_EINVAL. */
static int import_update_plan(const struct srv_obj *o, const struct srv_obj *cur,
                              const int64_t *map, size_t nmap, struct import_update *u)
{
    const struct proto_typeinfo *ti = proto_type_info(o->type);
    memset(u, 0, sizeof(*u));
    for (size_t i = 0; i < ti->nfields; i++) {
        enum proto_fkind k = ti->fields[i].kind;
        if (!import_sets(o, i) || import_same_value(&o->f[i], &cur->f[i], k, map, nmap)) {
            continue;
        }
        u->set[i] = true;
        u->nset++;
        if (k == PROTO_F_TEXT) {
            size_t ol = 0, nl = 0;
            const char *os = vstr(&cur->f[i], &ol), *ns = vstr(&o->f[i], &nl);
            proto_op_init(&u->ops[u->nops]);
            int rc = proto_diff(os, ol, ns, nl, &u->ops[u->nops]);
            if (rc != 0) {
                proto_op_free(&u->ops[u->nops]);
                import_update_free(u);
                return rc == PROTO_ENOMEM ? PROTO_ENOMEM : PROTO_EINVAL;
            }
            u->op_field[u->nops++] = (int)i;
        }
    }
    return 0;
}

static void pack_import_update(msgpack_packer *pk, const struct srv_obj *o,
                               const struct import_update *u, const int64_t *map, size_t nmap,
                               int64_t first)
{
    const struct proto_typeinfo *ti = proto_type_info(o->type);
    msgpack_pack_map(pk, u->nops > 0 ? 3 : 2);
    proto_pack_cstr(pk, "import");
    msgpack_pack_int64(pk, first);
    proto_pack_cstr(pk, "fields");
    msgpack_pack_map(pk, u->nset);
    for (size_t i = 0; i < ti->nfields; i++) {
        if (u->set[i]) {
            proto_pack_cstr(pk, ti->fields[i].name);
            pack_import_value(pk, &o->f[i], ti->fields[i].kind, map, nmap);
        }
    }
    if (u->nops > 0) {
        proto_pack_cstr(pk, "ops");
        msgpack_pack_map(pk, u->nops);
        for (size_t i = 0; i < u->nops; i++) {
            proto_pack_cstr(pk, ti->fields[u->op_field[i]].name);
            proto_op_encode(&u->ops[i], pk);
        }
    }
}

/* Checks every value an import would set as obj.create/obj.update check theirs (item
 * references aside: the import maps them itself). Returns 0, or PROTO_EINVAL /
 * PROTO_ETOOBIG (a text over max_text) with the reason in err. */
static int import_check_obj(size_t max_text, const struct srv_obj *o, size_t nth, char *err,
                            size_t errlen)
{
    const struct proto_typeinfo *ti = proto_type_info(o->type);
    for (size_t i = 0; i < ti->nfields; i++) {
        const struct proto_field *f = &ti->fields[i];
        const struct srv_val *v = &o->f[i];
        if (!v->set || f->kind == PROTO_F_COMPUTED || f->kind == PROTO_F_ITEMREF ||
            (o->type == PROTO_T_MEETING && strcmp(f->name, "status") == 0)) {
            continue;
        }
        msgpack_object mo = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
        if (f->kind == PROTO_F_INT) {
            mo.via.i64 = v->i;
        } else {
            mo.type = MSGPACK_OBJECT_STR;
            mo.via.str.ptr = v->s ? v->s : "";
            mo.via.str.size = (uint32_t)(v->s ? v->len : 0);
        }
        enum proto_code code;
        char why[128];
        if (value_misfit(max_text, NULL, f, &mo, &code, why, sizeof(why))) {
            if (o->type == PROTO_T_MEETING) {
                snprintf(err, errlen, "the meeting's %s: %s", f->name, why);
            } else {
                snprintf(err, errlen, "%s %zu, %s: %s", ti->name, nth + 1, f->name, why);
            }
            return code == PROTO_CODE_TOO_LARGE ? PROTO_ETOOBIG : PROTO_EINVAL;
        }
    }
    return 0;
}

static int import_check(size_t max_text, const struct srv_rec *parsed, char *err, size_t errlen)
{
    int rc = import_check_obj(max_text, &parsed->meeting, 0, err, errlen);
    for (int t = 1; rc == 0 && t < PROTO_T_COUNT; t++) {
        const struct srv_objvec *vec = &parsed->objs[t];
        for (size_t i = 0; rc == 0 && i < vec->n; i++) {
            rc = import_check_obj(max_text, vec->v[i], i, err, errlen);
        }
    }
    /* Item numbers are unique in a meeting (PROTOCOL.md section 10): a report that numbers
     * two sections alike is refused whole. */
    int num = proto_field_find(PROTO_T_ITEM, "number", 6);
    const struct srv_objvec *items = &parsed->objs[PROTO_T_ITEM];
    for (size_t i = 0; rc == 0 && i < items->n; i++) {
        const struct srv_val *a = &items->v[i]->f[num];
        for (size_t j = i + 1; rc == 0 && a->set && j < items->n; j++) {
            const struct srv_val *b = &items->v[j]->f[num];
            if (b->set && vsame(a, b)) {
                snprintf(err, errlen, "two sections are numbered %.*s: number them apart",
                         (int)(a->len < 32 ? a->len : 32), a->s ? a->s : "");
                rc = PROTO_EINVAL;
            }
        }
    }
    return rc;
}

/* What the meeting holds that mode "new" refuses; true when it holds anything. */
static bool import_holds(const struct srv_meeting *m, int64_t held[])
{
    bool any = false;
    for (int t = 1; t < PROTO_T_COUNT; t++) {
        held[t] = (int64_t)m->rec->objs[t].n;
        any = any || held[t] > 0;
    }
    return any;
}

/* One change of an import: its update of cur (o's differing fields), or its create of o
 * (cur NULL). Returns the seq, 0 when there was nothing to change, or a negative code. */
static int64_t import_change(struct srv *srv, struct srv_meeting *m, const char *user,
                             struct srv_conn *author, const struct srv_obj *o,
                             const struct srv_obj *cur, const int64_t *map, size_t nmap,
                             int64_t first, int64_t *id_out)
{
    struct srv_change ch = {.m = m, .user = user, .type = o->type, .author = author};
    msgpack_packer pk;
    struct import_update u;
    int64_t seq = 0;
    if (cur == NULL) {
        int64_t id = srv_hub_next_id(srv);
        if (id < 0) {
            return id;
        }
        ch.kind = "create";
        ch.id = id;
        *id_out = id;
        msgpack_packer_init(&pk, &ch.payload, proto_buf_msgpack_write);
        pack_import_create(&pk, o, map, nmap, first);
        return srv_hub_commit(srv, &ch);
    }
    *id_out = cur->id;
    int rc = import_update_plan(o, cur, map, nmap, &u);
    if (rc != 0 || u.nset == 0) {
        return rc;
    }
    ch.kind = "update";
    ch.id = cur->id;
    int64_t cur_id = cur->id;
    if (o->type == PROTO_T_MEETING) {
        ch.id_str = m->rec->id;
    }
    msgpack_packer_init(&pk, &ch.payload, proto_buf_msgpack_write);
    pack_import_update(&pk, o, &u, map, nmap, first);
    seq = srv_hub_commit(srv, &ch);
    for (size_t i = 0; seq > 0 && i < u.nops; i++) {
        srv_window_add(&m->win, seq, o->type, cur_id, u.op_field[i], &u.ops[i]);
    }
    import_update_free(&u);
    return seq;
}

int srv_import_into(struct srv *srv, struct srv_meeting *m, const char *user,
                    struct srv_conn *author, const char *text, size_t len,
                    enum srv_import_mode mode, struct srv_import_counts *counts, char *err,
                    size_t errlen)
{
    struct srv_rec *parsed = NULL;
    int64_t *map = NULL;
    memset(counts, 0, sizeof(*counts));
    int rc = srv_report_import(text, len, &parsed, err, errlen);
    if (rc != 0) {
        return rc;
    }
    /* Everything is checked before the first change: a refused report changes nothing. */
    if ((rc = import_check(srv->cfg.max_text, parsed, err, errlen)) != 0) {
        goto cleanup;
    }
    if (m->broken) {
        rc = PROTO_EDB; /* memory and database disagree until it reloads */
        goto cleanup;
    }
    if (mode == SRV_IMPORT_NEW && import_holds(m, counts->held)) {
        snprintf(err, errlen, "the meeting is not empty: import with mode \"merge\"");
        rc = PROTO_ECONFLICT;
        goto cleanup;
    }
    /* Every change of the import names the seq of its first (PROTOCOL.md section 12): they
     * are made in this turn of the loop, so they take consecutive seqs from here, and land
     * in one batch, which the writer commits in one transaction. */
    int64_t first = m->rec->seq + 1;
    int64_t maxid = srv_rec_max_id(parsed);
    size_t nmap = (size_t)maxid + 1;
    map = calloc(nmap, sizeof(*map));
    if (map == NULL) {
        rc = PROTO_ENOMEM;
        goto cleanup;
    }
    /* The meeting's own fields first (those the report gives and that differ), then items
     * (so that other objects can point at them), then everything else. */
    int64_t id = 0;
    int64_t seq = import_change(srv, m, user, author, &parsed->meeting, &m->rec->meeting, map, nmap,
                                first, &id);
    static const enum proto_type order[] = {PROTO_T_ITEM,   PROTO_T_SESSION, PROTO_T_PERSON,
                                            PROTO_T_ACTION, PROTO_T_DOC,     PROTO_T_DECISION,
                                            PROTO_T_INTERIM};
    enum proto_type t = PROTO_T_MEETING;
    for (size_t k = 0; seq >= 0 && k < sizeof(order) / sizeof(order[0]); k++) {
        t = order[k];
        const struct srv_objvec *vec = &parsed->objs[t];
        for (size_t i = 0; seq >= 0 && i < vec->n; i++) {
            const struct srv_obj *o = vec->v[i];
            const struct srv_obj *cur = import_match(m, o, mode == SRV_IMPORT_MERGE, map, nmap);
            seq = import_change(srv, m, user, author, o, cur, map, nmap, first, &id);
            if (seq >= 0 && o->id >= 0 && o->id <= maxid) {
                map[o->id] = id;
            }
            if (seq >= 0) {
                int64_t *c = cur == NULL ? counts->created
                             : seq > 0   ? counts->updated
                                         : counts->unchanged;
                c[t]++;
            }
        }
    }
    if (seq < 0) {
        rc = seq == PROTO_EDB ? PROTO_EDB : seq == PROTO_ENOMEM ? PROTO_ENOMEM : PROTO_EINVAL;
        if (rc == PROTO_EINVAL) {
            snprintf(err, errlen,
                     "a %s of the report does not fit the record: nothing of the "
                     "report was imported",
                     proto_type_info(t)->name);
        }
        /* One import is one transaction: the changes made so far go with the open batch,
         * which fails as a whole (nothing of it acknowledged, the meeting reloaded). */
        if (m->rec->seq >= first) {
            srv_hub_fail_open(srv, m, "an import could not make all of its changes");
        }
    }
cleanup:
    free(map);
    srv_rec_free(parsed);
    return rc;
}

void srv_report_import_method(struct srv_req *req)
{
    struct srv *srv = req->conn->srv;
    const char *text = req->p.text.s;
    size_t len = req->p.text.len;
    struct srv_meeting *m = req->m;
    if (!srv_req_unlocked(req, m, false)) {
        return;
    }
    /* The table allows only "new" and "merge". */
    enum srv_import_mode mode = req->p.mode.set && same(req->p.mode.s, req->p.mode.len, "merge", 5)
                                    ? SRV_IMPORT_MERGE
                                    : SRV_IMPORT_NEW;
    struct srv_import_counts counts;
    char err[256] = "";
    int rc = srv_import_into(srv, m, req->conn->user, req->conn, text, len, mode, &counts, err,
                             sizeof(err));
    /* A refusal acknowledges nothing, so it need not wait for the batch (which fails as a
     * whole when the import made changes before it stopped). */
    req->hold = rc == 0 || rc == PROTO_ECONFLICT ? srv_hub_hold(srv, m) : 0;
    struct proto_buf b;
    msgpack_packer pk;
    if (rc == PROTO_EDB || rc == PROTO_ENOMEM) {
        reply_refused(req, rc, "the report could not be imported");
        return;
    }
    if (rc == PROTO_ECONFLICT) {
        /* data.counts: {type: n} of what the meeting holds (PROTOCOL.md section 13). */
        size_t n = 0;
        for (int t = 1; t < PROTO_T_COUNT; t++) {
            n += counts.held[t] > 0;
        }
        proto_buf_init(&b);
        msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
        msgpack_pack_map(&pk, 1);
        proto_pack_cstr(&pk, "counts");
        msgpack_pack_map(&pk, n);
        for (int t = 1; t < PROTO_T_COUNT; t++) {
            if (counts.held[t] > 0) {
                proto_pack_cstr(&pk, proto_type_info((enum proto_type)t)->name);
                msgpack_pack_int64(&pk, counts.held[t]);
            }
        }
        srv_reply_error_packed(req, PROTO_CODE_CONFLICT, err, &b);
        proto_buf_free(&b, 0);
        return;
    }
    if (rc == PROTO_ETOOBIG) {
        char msg[320];
        snprintf(msg, sizeof(msg), "text: %s", err[0] ? err : "report over 4 MiB");
        srv_reply_error(req, PROTO_CODE_TOO_LARGE, msg);
        return;
    }
    if (rc != 0) {
        char msg[320];
        snprintf(msg, sizeof(msg), "text: %s", err[0] ? err : "not a report");
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST, msg);
        return;
    }
    srv_log(req->conn, SRV_LOG_INFO, "report imported into %s (seq %lld)", m->rec->id,
            (long long)m->rec->seq);
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, m->rec->seq);
    proto_pack_cstr(&pk, "counts");
    msgpack_pack_map(&pk, PROTO_T_COUNT - 1);
    for (int t = 1; t < PROTO_T_COUNT; t++) {
        proto_pack_cstr(&pk, proto_type_info((enum proto_type)t)->name);
        msgpack_pack_map(&pk, 3);
        proto_pack_cstr(&pk, "created");
        msgpack_pack_int64(&pk, counts.created[t]);
        proto_pack_cstr(&pk, "updated");
        msgpack_pack_int64(&pk, counts.updated[t]);
        proto_pack_cstr(&pk, "unchanged");
        msgpack_pack_int64(&pk, counts.unchanged[t]);
    }
    srv_reply_finish(req, &b);
}
