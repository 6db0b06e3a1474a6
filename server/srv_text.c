/* srv_text.c - text.edit: co-editing of text fields with the ops of PROTOCOL.md section 6.
 *
 * An edit names the seq its text reflects (base). The server transforms it, in seq order,
 * over every op applied to the same field after base (ShareDB's rule: transform(op,
 * applied, left)), applies it, and enters it as a change. Recent ops are kept in a window
 * per meeting; an edit older than the window reads the ops from the audit log.
 */
#include "srv_hub.h"
#include "srv_req.h"

#include <stdlib.h>
#include <string.h>

/* The window of recent ops per meeting holds at most this many ops and this much op
 * content: an editor alternating a large insert and its delete must not grow memory
 * without end. Edits with an older base read the ops from the audit log. */
#define WINDOW_MAX       4096
#define WINDOW_MAX_BYTES (8u * 1024 * 1024)

/* What an op costs the window: its components and the text it inserts. */
static size_t op_bytes(const struct proto_op *op)
{
    size_t n = sizeof(struct srv_textop) + op->len * sizeof(*op->comps);
    for (size_t i = 0; i < op->len; i++) {
        n += op->comps[i].slen;
    }
    return n;
}

/* Drops the oldest op: the window now starts after it. */
static void drop_oldest(struct srv_meeting *m)
{
    struct srv_textop *old = &m->ops[m->ops_head];
    m->ops_from = old->seq + 1;
    m->ops_bytes -= op_bytes(&old->op);
    proto_op_free(&old->op);
    m->ops_head = (m->ops_head + 1) % m->ops_cap;
    m->ops_n--;
}

void srv_text_free(struct srv_meeting *m)
{
    for (size_t i = 0; i < m->ops_n; i++) {
        proto_op_free(&m->ops[(m->ops_head + i) % m->ops_cap].op);
    }
    free(m->ops);
    m->ops = NULL;
    m->ops_n = m->ops_cap = m->ops_head = 0;
    m->ops_bytes = 0;
}

int srv_text_record(struct srv_meeting *m, int64_t seq, enum proto_type t, int64_t id, int field,
                    const struct proto_op *op)
{
    size_t cost = op_bytes(op);
    if (cost > WINDOW_MAX_BYTES) {
        /* Alone over the bound: keep nothing, the log has it. */
        while (m->ops_n > 0) {
            drop_oldest(m);
        }
        m->ops_from = seq + 1;
        return 0;
    }
    if (m->ops_cap == 0) {
        m->ops = calloc(WINDOW_MAX, sizeof(*m->ops));
        if (m->ops == NULL) {
            m->ops_from = seq + 1; /* the window holds nothing before this */
            return PROTO_ENOMEM;
        }
        m->ops_cap = WINDOW_MAX;
    }
    while (m->ops_n > 0 && (m->ops_n == m->ops_cap || m->ops_bytes + cost > WINDOW_MAX_BYTES)) {
        drop_oldest(m);
    }
    struct srv_textop *slot = &m->ops[(m->ops_head + m->ops_n) % m->ops_cap];
    proto_op_init(&slot->op);
    if (proto_op_copy(op, &slot->op) != 0) {
        /* Nothing before this op can be trusted to be complete any more. */
        while (m->ops_n > 0) {
            drop_oldest(m);
        }
        m->ops_from = seq + 1;
        return PROTO_ENOMEM;
    }
    slot->seq = seq;
    slot->type = t;
    slot->id = id;
    slot->field = field;
    m->ops_n++;
    m->ops_bytes += cost;
    return 0;
}

/* The ops applied to one field after base, oldest first (owned copies). */
struct oplist {
    struct proto_op *v;
    size_t n, cap;
    bool before_create; /* base is older than the object */
};

static void oplist_free(struct oplist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        proto_op_free(&l->v[i]);
    }
    free(l->v);
}

static int oplist_add(struct oplist *l, const struct proto_op *op)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct proto_op *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    proto_op_init(&l->v[l->n]);
    int rc = proto_op_copy(op, &l->v[l->n]);
    if (rc == 0) {
        l->n++;
    }
    return rc;
}

struct scan_ctx {
    struct oplist *l;
    const char *type;
    int64_t id;
    const char *field;
    int rc;
};

/* From the log: text entries of the field, updates that replaced it, and its create. */
static int scan_entry(void *ud, const struct db_audit *e)
{
    struct scan_ctx *s = ud;
    if (strcmp(e->type, s->type) != 0 || (e->id_str == NULL && e->id_int != s->id)) {
        return 0;
    }
    if (strcmp(e->kind, "create") == 0) {
        s->l->before_create = true;
        return 0;
    }
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)e->payload, e->payload_len, &off) ==
        MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *op = NULL;
        if (strcmp(e->kind, "text") == 0) {
            const msgpack_object *f = proto_mp_map_get(&u.data, "field");
            if (f && f->type == MSGPACK_OBJECT_STR && f->via.str.size == strlen(s->field) &&
                memcmp(f->via.str.ptr, s->field, f->via.str.size) == 0) {
                op = proto_mp_map_get(&u.data, "op");
            }
        } else if (strcmp(e->kind, "update") == 0) {
            op = proto_mp_map_get(proto_mp_map_get(&u.data, "ops"), s->field);
        }
        if (op) {
            struct proto_op o;
            proto_op_init(&o);
            /* An op the server stored may be [] (transformed away): decode accepts it. */
            if (op->type == MSGPACK_OBJECT_ARRAY && op->via.array.size == 0) {
                s->rc = 0;
            } else if ((s->rc = proto_op_decode(op, &o)) == 0) {
                s->rc = oplist_add(s->l, &o);
            }
            proto_op_free(&o);
        }
    }
    msgpack_unpacked_destroy(&u);
    return s->rc;
}

static int ops_after(struct srv *srv, struct srv_meeting *m, enum proto_type t, int64_t id,
                     int field, int64_t base, struct oplist *l)
{
    if (base + 1 >= m->ops_from) {
        /* Only the newest ops are after base: find where they start, from the end. */
        size_t first = m->ops_n;
        while (first > 0 && m->ops[(m->ops_head + first - 1) % m->ops_cap].seq > base) {
            first--;
        }
        for (size_t i = first; i < m->ops_n; i++) {
            const struct srv_textop *x = &m->ops[(m->ops_head + i) % m->ops_cap];
            if (x->type == t && x->id == id && x->field == field) {
                int rc = oplist_add(l, &x->op);
                if (rc != 0) {
                    return rc;
                }
            }
        }
        return 0;
    }
    struct scan_ctx s = {.l = l,
                         .type = proto_type_info(t)->name,
                         .id = id,
                         .field = proto_type_info(t)->fields[field].name};
    int rc = srv_hub_entries(srv, m, base, m->rec->seq, scan_entry, &s);
    return rc != 0 ? rc : s.rc;
}

static void bad(struct srv_req *req, const char *msg)
{
    srv_reply_error(req, PROTO_CODE_BAD_REQUEST, msg);
}

void srv_text_edit(struct srv_req *req)
{
    struct srv *srv = req->conn->srv;
    struct srv_meeting *m = req->m;
    enum proto_type t = req->p.t;
    int field = req->p.field_idx;
    int64_t base = req->p.base.i;
    struct proto_op op = req->p.ed; /* taken from the request: freed here */
    struct oplist applied = {0};
    char *text = NULL;
    size_t text_len = 0;
    int rc = 0;
    proto_op_init(&req->p.ed);

    struct srv_obj *o = srv_req_obj(req, m);
    if (o == NULL || !srv_req_unlocked(req, m, false)) {
        goto cleanup;
    }
    if (base < 0 || base > m->rec->seq || (o->created > 0 && base < o->created)) {
        bad(req, "base: older than the object or newer than the meeting's seq");
        goto cleanup;
    }
    rc = ops_after(srv, m, t, o->id, field, base, &applied);
    if (rc != 0) {
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot read the meeting's log");
        goto cleanup;
    }
    if (applied.before_create) {
        bad(req, "base: older than the object");
        goto cleanup;
    }
    for (size_t i = 0; i < applied.n; i++) {
        if (proto_op_transform(&op, &applied.v[i], PROTO_OP_LEFT, &op) != 0) {
            bad(req, "op: does not fit the text at base");
            goto cleanup;
        }
    }
    const struct srv_val *cur = &o->f[field];
    const char *old = cur->set && cur->s ? cur->s : "";
    size_t old_len = cur->set && cur->s ? cur->len : 0;
    rc = proto_op_apply(old, old_len, &op, srv->cfg.max_text, &text, &text_len);
    if (rc == PROTO_ETOOBIG) {
        srv_reply_error(req, PROTO_CODE_TOO_LARGE, "the text would pass its size limit");
        goto cleanup;
    }
    if (rc != 0) {
        bad(req, "op: does not fit the text at base");
        goto cleanup;
    }
    struct srv_change ch;
    msgpack_packer pk;
    srv_req_change_begin(req, m, "text", t, &ch, &pk);
    ch.id = o->id;
    ch.id_str = t == PROTO_T_MEETING ? m->rec->id : NULL;
    ch.text_field = field;
    ch.text = text;
    ch.text_len = text_len;
    text = NULL; /* the hub owns it now */
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "field");
    proto_pack_cstr(&pk, proto_type_info(t)->fields[field].name);
    proto_pack_cstr(&pk, "op");
    proto_op_encode(&op, &pk);
    int64_t seq = srv_hub_commit(srv, &ch);
    if (seq < 0) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "the edit could not be applied");
        goto cleanup;
    }
    srv_text_record(m, seq, t, o->id, field, &op);
    req->hold = srv_hub_hold(srv, m);
    struct proto_buf b;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 1);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, seq);
    srv_reply_finish(req, &b);
cleanup:
    free(text);
    oplist_free(&applied);
    proto_op_free(&op);
}
