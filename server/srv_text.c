/* srv_text.c - text.edit: co-editing of text fields with the ops of PROTOCOL.md section 6.
 *
 * An edit names the seq its text reflects (base). The server transforms it, in seq order,
 * over every op applied to the same field after base (ShareDB's rule: transform(op,
 * applied, left)), applies it, and enters it as a change. Recent ops are kept in a window
 * per meeting (srv_window.h); an edit older than the window reads the ops from the audit log off
 * the loop (srv_read.h) and then takes the ops that arrived meanwhile from the window.
 */
#include "srv_text.h"

#include "srv_hub.h"
#include "srv_read.h"
#include "srv_req.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

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

static void bad(struct srv_req *req, const char *msg)
{
    srv_reply_error(req, PROTO_CODE_BAD_REQUEST, msg);
}

/* An edit in progress, copied out of its request: it may wait for a read of the log off
 * the loop and then carry on with the record as it is by then. */
struct edit {
    char meeting[PROTO_NAME_MAX + 1];
    char user[PROTO_NAME_MAX + 1];
    char cid[65];       /* "" when none */
    enum srv_role need; /* the role the method table asks for */
    enum proto_type t;
    int field;
    int64_t id; /* 0 for the meeting itself */
    int64_t base;
    struct proto_op op;
    /* every op of the field with base < seq <= upto, oldest first */
    struct oplist applied;
    int64_t upto;
    int64_t read_to; /* a job reads the log over (upto, read_to] */
    int rounds;
};

/* A log read that the window moved past again and again gives up after this many. */
#define EDIT_ROUNDS 4

static struct edit *edit_new(void)
{
    struct edit *e = calloc(1, sizeof(*e));
    if (e) {
        proto_op_init(&e->op);
    }
    return e;
}

static void edit_free(void *ud)
{
    struct edit *e = ud;
    if (e) {
        oplist_free(&e->applied);
        proto_op_free(&e->op);
        free(e);
    }
}

static struct scan_ctx scan_of(struct edit *e)
{
    return (struct scan_ctx){.l = &e->applied,
                             .type = proto_type_info(e->t)->name,
                             .id = e->id,
                             .field = proto_type_info(e->t)->fields[e->field].name};
}

/* On the pool: the ops of the field over (upto, read_to] from the log. */
static int edit_read(struct db *db, void *ud)
{
    struct edit *e = ud;
    struct scan_ctx s = scan_of(e);
    int rc = db_audit_range(db, e->meeting, e->upto, e->read_to, scan_entry, &s);
    if (rc == 0 && s.rc == 0) {
        e->upto = e->read_to;
    }
    return rc != 0 ? rc : s.rc;
}

static void edit_resume(struct srv_req *req, int rc, void *ud);

static const struct srv_read_ops edit_ops = {NULL, edit_read, edit_resume, edit_free};

/* Adds to e->applied the ops after e->upto that memory holds: the window when it reaches
 * back far enough, else the entries not yet durable when only those are left. Returns 0
 * when e->applied is complete, 1 when the log must be read first (up to e->read_to). */
static int collect(struct srv_meeting *m, struct edit *e)
{
    if (e->upto + 1 >= m->win.from) {
        /* Only the newest ops are after upto: find where they start, from the end. */
        const struct srv_window *w = &m->win;
        size_t first = w->n;
        while (first > 0 && w->ops[(w->head + first - 1) % w->cap].seq > e->upto) {
            first--;
        }
        for (size_t i = first; i < w->n; i++) {
            const struct srv_textop *x = &w->ops[(w->head + i) % w->cap];
            if (x->type == e->t && x->id == e->id && x->field == e->field) {
                int rc = oplist_add(&e->applied, &x->op);
                if (rc != 0) {
                    return rc;
                }
            }
        }
        e->upto = m->rec->seq;
        return 0;
    }
    if (m->committed_seq <= e->upto) {
        struct scan_ctx s = scan_of(e);
        for (struct srv_entry *p = m->pending; p && s.rc == 0; p = p->next) {
            if (p->a.seq > e->upto) {
                scan_entry(&s, &p->a);
            }
        }
        e->upto = m->rec->seq;
        return s.rc;
    }
    e->read_to = m->committed_seq;
    return 1;
}

/* Checks the edit against the record as it is now, gathers the ops it must be transformed
 * over (reading the log off the loop when the window does not reach back to them: the
 * request then finishes in edit_resume), transforms, applies and commits it. Takes e. */
static void edit_run(struct srv_req *req, struct edit *e)
{
    struct srv *srv = req->conn->srv;
    struct srv_meeting *m = srv_hub_find(srv, e->meeting, strlen(e->meeting));
    enum srv_role role = m ? srv_hub_role(m, e->user) : SRV_ROLE_NONE;
    if (m == NULL || role == SRV_ROLE_NONE) {
        srv_reply_error(req, PROTO_CODE_NOT_FOUND,
                        "no such meeting, or you are not a member of it: ask its rapporteur");
        goto cleanup;
    }
    if (role < e->need) {
        srv_reply_error(req, PROTO_CODE_FORBIDDEN, "your role in this meeting does not allow it");
        goto cleanup;
    }
    if (e->rounds > 0 && srv_cid_repeat(req, m, e->cid)) {
        goto cleanup; /* the same cid came through another connection while the log was read */
    }
    struct srv_obj *o = srv_rec_find(m->rec, e->t, e->id);
    if (o == NULL) {
        srv_reply_error(req, PROTO_CODE_NOT_FOUND, "no such object in this meeting");
        goto cleanup;
    }
    if (srv_meeting_final(m)) {
        srv_reply_error(req, PROTO_CODE_LOCKED,
                        "the meeting is final: only its rapporteur may reopen it (status draft)");
        goto cleanup;
    }
    if (e->base < 0 || e->base > m->rec->seq || (o->created > 0 && e->base < o->created)) {
        bad(req, "base: older than the object or newer than the meeting's seq");
        goto cleanup;
    }
    int rc = collect(m, e);
    if (rc == 1) {
        if (++e->rounds > EDIT_ROUNDS) {
            srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "the meeting changes too fast: retry");
            goto cleanup;
        }
        srv_read_submit(req, &edit_ops, e); /* answers when refused */
        return;
    }
    if (rc != 0) {
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot read the meeting's log");
        goto cleanup;
    }
    if (e->applied.before_create) {
        bad(req, "base: older than the object");
        goto cleanup;
    }
    for (size_t i = 0; i < e->applied.n; i++) {
        if (proto_op_transform(&e->op, &e->applied.v[i], PROTO_OP_LEFT, &e->op) != 0) {
            bad(req, "op: does not fit the text at base");
            goto cleanup;
        }
    }
    rc = srv_apply_text_fits(&o->f[e->field], &e->op, srv->cfg.max_text);
    if (rc == PROTO_ETOOBIG) {
        srv_reply_error(req, PROTO_CODE_TOO_LARGE, "the text would pass its size limit");
        goto cleanup;
    }
    if (rc != 0) {
        bad(req, "op: does not fit the text at base");
        goto cleanup;
    }
    struct srv_change ch = {.m = m,
                            .user = req->conn->user,
                            .cid = e->cid[0] ? e->cid : NULL,
                            .kind = "text",
                            .type = e->t,
                            .id = o->id,
                            .id_str = e->t == PROTO_T_MEETING ? m->rec->id : NULL,
                            .author = req->conn};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ch.payload, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    proto_pack_cstr(&pk, "field");
    proto_pack_cstr(&pk, proto_type_info(e->t)->fields[e->field].name);
    proto_pack_cstr(&pk, "op");
    proto_op_encode(&e->op, &pk);
    /* The hub applies the entry with srv_apply_text, as a replay of it would. */
    int64_t seq = srv_hub_commit(srv, &ch);
    if (seq == PROTO_EDB) {
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE,
                        "the server cannot read this meeting's record from its database: "
                        "try again later");
        goto cleanup;
    }
    if (seq < 0) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "the edit could not be applied");
        goto cleanup;
    }
    srv_window_add(&m->win, seq, e->t, o->id, e->field, &e->op);
    req->hold = srv_hub_hold(srv, m);
    struct proto_buf b;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 1);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, seq);
    srv_reply_finish(req, &b);
cleanup:
    edit_free(e);
}

/* Back on the loop after a read of the log: the record may have moved on meanwhile, so
 * every check runs again before the edit is applied. */
static void edit_resume(struct srv_req *req, int rc, void *ud)
{
    struct edit *e = ud;
    if (rc != 0) {
        srv_reply_error(req, PROTO_CODE_UNAVAILABLE, "cannot read the meeting's log");
        return;
    }
    /* The job frees its ud after this returns: the edit goes on in a copy it owns. */
    struct edit *n = edit_new();
    if (n == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    proto_op_free(&n->op);
    *n = *e;
    memset(e, 0, sizeof(*e));
    proto_op_init(&e->op);
    edit_run(req, n);
}

void srv_text_edit(struct srv_req *req)
{
    /* Parameters, membership, cid and role were checked by the decoder (srv_req.h). */
    struct srv_meeting *m = req->m;
    struct srv_obj *o = srv_req_obj(req, m);
    if (o == NULL) {
        return;
    }
    struct edit *e = edit_new();
    if (e == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    snprintf(e->meeting, sizeof(e->meeting), "%s", m->rec->id);
    snprintf(e->user, sizeof(e->user), "%s", req->conn->user);
    snprintf(e->cid, sizeof(e->cid), "%s", req->cid);
    e->need = req->need;
    e->t = req->p.t;
    e->field = req->p.field_idx;
    e->id = o->id;
    e->base = e->upto = req->p.base.i;
    proto_op_free(&e->op);
    e->op = req->p.ed; /* taken from the request */
    proto_op_init(&req->p.ed);
    edit_run(req, e);
}
