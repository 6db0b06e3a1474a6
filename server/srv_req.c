/* srv_req.c - the request helpers handlers share: replies, the parameter decoder, and the
 * checks of PROTOCOL.md section 10 in their order (malformed -> not a member -> repeated
 * cid -> role -> unknown object -> locked -> if_seq).
 */
#include "srv_req.h"

#include <string.h>

#include "proto_msgpack.h"
#include "srv_held.h"

/* ---- replies ---- */

static void send_reply(struct srv_req *req, const struct proto_buf *b)
{
    struct srv_conn *conn = req->conn;
    if (conn->unanswered > 0) {
        conn->unanswered--;
    }
    srv_held_send(conn, b->data, b->len, req->hold);
}

void srv_reply_error_data(struct srv_req *req, enum proto_code code, const char *message,
                          const char *data_key, int64_t data_value)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    proto_rpc_pack_error(&pk, req->msgid, code, message, data_key, data_value);
    send_reply(req, &b);
    proto_buf_free(&b, 0);
}

void srv_reply_error(struct srv_req *req, enum proto_code code, const char *message)
{
    srv_reply_error_data(req, code, message, NULL, 0);
}

void srv_reply_error_packed(struct srv_req *req, enum proto_code code, const char *message,
                            const struct proto_buf *data)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    /* [1, msgid, {"code", "message", "data"}, nil] */
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, PROTO_RPC_RESPONSE);
    msgpack_pack_uint32(&pk, req->msgid);
    msgpack_pack_map(&pk, 3);
    proto_pack_cstr(&pk, "code");
    proto_pack_cstr(&pk, proto_code_name(code));
    proto_pack_cstr(&pk, "message");
    proto_pack_cstr(&pk, message);
    proto_pack_cstr(&pk, "data");
    if (proto_buf_append(&b, data->data, data->len) < 0) {
        proto_buf_free(&b, 0);
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    msgpack_pack_nil(&pk);
    send_reply(req, &b);
    proto_buf_free(&b, 0);
}

void srv_reply_begin(struct srv_req *req, msgpack_packer *pk, struct proto_buf *buf)
{
    proto_buf_init(buf);
    msgpack_packer_init(pk, buf, proto_buf_msgpack_write);
    proto_rpc_pack_result(pk, req->msgid);
}

void srv_reply_finish(struct srv_req *req, struct proto_buf *buf)
{
    if (buf->len > PROTO_SEND_MAX) {
        proto_buf_free(buf, 0);
        srv_reply_error(req, PROTO_CODE_TOO_LARGE, "response over 16 MiB");
        return;
    }
    send_reply(req, buf);
    proto_buf_free(buf, 0);
}

void srv_reply_empty(struct srv_req *req)
{
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 0);
    srv_reply_finish(req, &b);
}

void srv_reply_bad(struct srv_req *req, const char *name, const char *why)
{
    char msg[320];
    snprintf(msg, sizeof(msg), "%s: %s", name, why);
    srv_reply_error(req, PROTO_CODE_BAD_REQUEST, msg);
}

/* ---- UTF-8 anywhere in a message ---- */

/* Valid UTF-8, NUL bytes allowed (they are valid UTF-8; the parameters that must not hold
 * one are checked by their type). */
static bool str_ok(const char *s, size_t len)
{
    while (len > 0) {
        const char *z = memchr(s, '\0', len);
        size_t n = z ? (size_t)(z - s) : len;
        if (!proto_utf8_valid(s, n)) {
            return false;
        }
        if (z == NULL) {
            break;
        }
        s += n + 1;
        len -= n + 1;
    }
    return true;
}

/* *near gets the key of the innermost map entry whose key or value is not UTF-8 (NULL when
 * o itself is the bad string), so that the answer can name it. */
static bool utf8_walk(const msgpack_object *o, int depth, const msgpack_object **near)
{
    /* proto_mp_check_* bounded the nesting already; this bound only keeps the stack safe. */
    if (depth > PROTO_MP_MAX_DEPTH + 1) {
        return false;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        return str_ok(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (!utf8_walk(&o->via.array.ptr[i], depth + 1, near)) {
                return false;
            }
        }
        return true;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (!utf8_walk(&kv->key, depth + 1, near)) {
                return false; /* a bad key: named by the entry around this map */
            }
            if (!utf8_walk(&kv->val, depth + 1, near)) {
                if (*near == NULL && kv->key.type == MSGPACK_OBJECT_STR) {
                    *near = &kv->key;
                }
                return false;
            }
        }
        return true;
    default:
        return true;
    }
}

bool srv_req_utf8_ok(const msgpack_object *o)
{
    const msgpack_object *near = NULL;
    return utf8_walk(o, 0, &near);
}

/* ---- the decoder ---- */

static bool is_str(const msgpack_object *v)
{
    return v->type == MSGPACK_OBJECT_STR && proto_utf8_valid(v->via.str.ptr, v->via.str.size);
}

/* An integer that fits int64 (a float never is one). */
static bool get_int(const msgpack_object *v, int64_t *out)
{
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return true;
    }
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX) {
        *out = (int64_t)v->via.u64;
        return true;
    }
    return false;
}

static bool wrong(struct srv_req *req, const struct srv_param *sp)
{
    char why[256];
    snprintf(why, sizeof(why), "must be %s", sp->hint);
    srv_reply_bad(req, sp->name, why);
    return false;
}

static bool decode_where(struct srv_req *req, const msgpack_object *v)
{
    struct srv_where *w = &req->p.wh;
    static const char shape[] = "{\"type\", \"id\", \"field\"} or nil is required";
    memset(w, 0, sizeof(*w));
    if (v->type == MSGPACK_OBJECT_NIL) {
        return true;
    }
    if (v->type != MSGPACK_OBJECT_MAP ||
        proto_param_strcpy(v, "type", w->type, sizeof(w->type)) != 0 ||
        proto_type_find(w->type, strlen(w->type)) == PROTO_T_COUNT) {
        srv_reply_bad(req, "where", shape);
        return false;
    }
    if (proto_param_i64(v, "id", &w->id) != 0 &&
        proto_param_strcpy(v, "id", w->id_str, sizeof(w->id_str)) != 0) {
        srv_reply_bad(req, "where.id", "an object id is required");
        return false;
    }
    int rc = proto_param_strcpy(v, "field", w->field, sizeof(w->field));
    if (rc != 0 && rc != PROTO_ENOTFOUND) {
        srv_reply_bad(req, "where.field", "must be a field name");
        return false;
    }
    w->present = true;
    return true;
}

/* Checks one listed parameter (v: its value, NULL when absent) and fills its slot. */
static bool decode_one(struct srv_req *req, const struct srv_param *sp, const msgpack_object *v)
{
    struct srv_params *p = &req->p;
    struct srv_pval *pv = (struct srv_pval *)((char *)p + sp->off);
    bool nil_ok = sp->type == SRV_PT_MAP_NIL || sp->type == SRV_PT_WHERE;
    if (v != NULL && v->type == MSGPACK_OBJECT_NIL && !nil_ok) {
        v = NULL;
    }
    if (v == NULL) {
        if (!sp->optional) {
            char why[256];
            snprintf(why, sizeof(why), "required (%s)", sp->hint);
            srv_reply_bad(req, sp->name, why);
            return false;
        }
        return true;
    }
    pv->o = v;
    if (v->type == MSGPACK_OBJECT_STR) {
        pv->s = v->via.str.ptr;
        pv->len = v->via.str.size;
    }
    switch (sp->type) {
    case SRV_PT_STR:
        if (!is_str(v) || (sp->max > 0 && pv->len > (size_t)sp->max)) {
            return wrong(req, sp);
        }
        break;
    case SRV_PT_NAME:
        if (!is_str(v) || !proto_name_valid(pv->s, pv->len)) {
            return wrong(req, sp);
        }
        break;
    case SRV_PT_ENUM: {
        bool known = false;
        for (const char *const *e = sp->values; is_str(v) && *e && !known; e++) {
            known = strlen(*e) == pv->len && memcmp(*e, pv->s, pv->len) == 0;
        }
        if (!known) {
            return wrong(req, sp);
        }
        break;
    }
    case SRV_PT_INT:
        if (!get_int(v, &pv->i) || pv->i < sp->min || pv->i > sp->max) {
            return wrong(req, sp);
        }
        break;
    case SRV_PT_BOOL:
        if (v->type != MSGPACK_OBJECT_BOOLEAN) {
            return wrong(req, sp);
        }
        pv->b = v->via.boolean;
        break;
    case SRV_PT_MAP:
        if (v->type != MSGPACK_OBJECT_MAP) {
            return wrong(req, sp);
        }
        break;
    case SRV_PT_MAP_NIL:
        if (v->type != MSGPACK_OBJECT_MAP && v->type != MSGPACK_OBJECT_NIL) {
            return wrong(req, sp);
        }
        break;
    case SRV_PT_TYPE:
        p->t = is_str(v) ? proto_type_find(pv->s, pv->len) : PROTO_T_COUNT;
        if (p->t == PROTO_T_COUNT) {
            return wrong(req, sp);
        }
        break;
    case SRV_PT_OBJID:
        /* The table lists type before id, so p.t is known here. */
        if (p->t == PROTO_T_MEETING) {
            if (!is_str(v)) {
                srv_reply_bad(req, sp->name,
                              "must be the meeting's id (a string) for type meeting");
                return false;
            }
        } else if (!get_int(v, &pv->i)) {
            srv_reply_bad(req, sp->name, "must be an object id (an integer)");
            return false;
        }
        break;
    case SRV_PT_ID:
        if (!get_int(v, &pv->i) && !(is_str(v) && pv->len <= (size_t)sp->max)) {
            return wrong(req, sp);
        }
        break;
    case SRV_PT_TEXTFIELD: {
        int idx = is_str(v) ? proto_field_find(p->t, pv->s, pv->len) : -1;
        if (idx < 0 || proto_type_info(p->t)->fields[idx].kind != PROTO_F_TEXT) {
            return wrong(req, sp);
        }
        p->field_idx = idx;
        break;
    }
    case SRV_PT_CID:
        if (!is_str(v) || pv->len == 0 || pv->len > SRV_CID_MAX) {
            return wrong(req, sp);
        }
        memcpy(req->cid, pv->s, pv->len);
        req->cid[pv->len] = '\0';
        break;
    case SRV_PT_OP:
        if (proto_op_decode(v, &p->ed) != 0) {
            return wrong(req, sp);
        }
        if (proto_op_is_noop(&p->ed)) {
            srv_reply_bad(req, sp->name, "does nothing");
            return false;
        }
        break;
    case SRV_PT_WHERE:
        if (!decode_where(req, v)) {
            return false;
        }
        break;
    }
    pv->set = true;
    return true;
}

bool srv_req_decode(struct srv_req *req, const struct srv_param *const *params)
{
    const msgpack_object *found[SRV_PARAMS_MAX] = {0};
    const msgpack_object *map = req->params;
    size_t n = 0;
    while (n < SRV_PARAMS_MAX && params[n] != NULL) {
        n++;
    }
    req->p.t = PROTO_T_COUNT;
    req->p.field_idx = -1;
    req->cid[0] = '\0';
    /* One walk over the map: every key and value is checked for UTF-8 (read or not), and
     * the first value of each listed name is kept. */
    for (uint32_t i = 0; map && i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            continue; /* not a name: ignored like any unknown key */
        }
        const char *k = kv->key.via.str.ptr;
        size_t klen = kv->key.via.str.size;
        if (!str_ok(k, klen)) {
            srv_reply_bad(req, "params", "a key is not valid UTF-8");
            return false;
        }
        const msgpack_object *near = NULL;
        if (!utf8_walk(&kv->val, 1, &near)) {
            /* Name the innermost key around the fault (a field's name inside "fields"). The
             * name goes into the answer: cut it between code points, and at a NUL. */
            const char *nk = near ? near->via.str.ptr : k;
            size_t nlen = near ? near->via.str.size : klen;
            const char *z = nlen ? memchr(nk, '\0', nlen) : NULL;
            size_t cut = z ? (size_t)(z - nk) : nlen;
            cut = cut < 60 ? cut : 60;
            while (cut > 0 && cut < nlen && ((unsigned char)nk[cut] & 0xc0) == 0x80) {
                cut--;
            }
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)cut, cut ? nk : "");
            srv_reply_bad(req, name[0] ? name : "params", "not valid UTF-8");
            return false;
        }
        for (size_t j = 0; j < n; j++) {
            if (found[j] == NULL && strlen(params[j]->name) == klen &&
                memcmp(params[j]->name, k, klen) == 0) {
                found[j] = &kv->val;
                break;
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        if (!decode_one(req, params[j], found[j])) {
            return false;
        }
    }
    return true;
}

void srv_req_free(struct srv_req *req)
{
    proto_op_free(&req->p.ed);
    proto_op_init(&req->p.ed);
}

/* ---- meeting, cid, role ---- */

bool srv_meeting_final(const struct srv_meeting *m)
{
    const struct srv_val *v = &m->rec->meeting.f[proto_field_find(PROTO_T_MEETING, "status", 6)];
    return v->set && v->len == 5 && memcmp(v->s, "final", 5) == 0;
}

struct cid_hit {
    bool found;
    int64_t seq;
    bool has_id;
    int64_t id;
};

static int cid_found(void *ud, const struct db_audit *e)
{
    struct cid_hit *h = ud;
    h->found = true;
    h->seq = e->seq;
    h->has_id = strcmp(e->kind, "create") == 0 && e->id_str == NULL;
    h->id = e->id_int;
    return 0;
}

bool srv_cid_repeat(struct srv_req *req, struct srv_meeting *m, const char *cid)
{
    if (cid[0] == '\0') {
        return false;
    }
    struct srv *srv = req->conn->srv;
    struct cid_hit h = {0};
    for (struct srv_entry *e = m->pending; e; e = e->next) {
        if (e->a.cid && strcmp(e->a.cid, cid) == 0 && strcmp(e->a.user, req->conn->user) == 0) {
            cid_found(&h, &e->a);
            req->hold = e->batch;
            break;
        }
    }
    if (!h.found) {
        db_audit_find_cid(srv->db, m->rec->id, req->conn->user, cid, cid_found, &h);
    }
    if (!h.found) {
        return false;
    }
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, h.has_id ? 2 : 1);
    if (h.has_id) {
        proto_pack_cstr(&pk, "id");
        msgpack_pack_int64(&pk, h.id);
    }
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, h.seq);
    srv_reply_finish(req, &b);
    return true;
}

bool srv_req_enter(struct srv_req *req, enum srv_role need)
{
    struct srv *srv = req->conn->srv;
    if (!req->p.meeting.set) {
        srv_reply_bad(req, "meeting", "required (a meeting id, a string)");
        return false;
    }
    struct srv_meeting *m = srv_hub_find(srv, req->p.meeting.s, req->p.meeting.len);
    enum srv_role role = m ? srv_hub_role(m, req->conn->user) : SRV_ROLE_NONE;
    if (m == NULL || role == SRV_ROLE_NONE) {
        /* Existence is not revealed to those who are not members. */
        srv_reply_error(req, PROTO_CODE_NOT_FOUND,
                        "no such meeting, or you are not a member of it: ask its rapporteur");
        return false;
    }
    /* A repeated cid gets its first result whatever the caller may do now. */
    if (srv_cid_repeat(req, m, req->cid)) {
        return false;
    }
    if (role < need) {
        srv_reply_error(req, PROTO_CODE_FORBIDDEN, "your role in this meeting does not allow it");
        return false;
    }
    req->m = m;
    req->role = role;
    return true;
}

/* ---- object, lock, if_seq, change ---- */

struct srv_obj *srv_req_obj(struct srv_req *req, struct srv_meeting *m)
{
    struct srv_obj *o = NULL;
    if (req->p.t == PROTO_T_MEETING) {
        size_t n = strlen(m->rec->id);
        bool same = req->p.id.len == n && memcmp(req->p.id.s, m->rec->id, n) == 0;
        o = same ? &m->rec->meeting : NULL;
    } else if (req->p.t != PROTO_T_COUNT) {
        o = srv_rec_find(m->rec, req->p.t, req->p.id.i);
    }
    if (o == NULL) {
        srv_reply_error(req, PROTO_CODE_NOT_FOUND, "no such object in this meeting");
    }
    return o;
}

bool srv_req_unlocked(struct srv_req *req, struct srv_meeting *m, bool status_only)
{
    if (!srv_meeting_final(m) || status_only) {
        return true;
    }
    srv_reply_error(req, PROTO_CODE_LOCKED,
                    "the meeting is final: only its rapporteur may reopen it (status draft)");
    return false;
}

bool srv_req_if_seq(struct srv_req *req, const struct srv_obj *o)
{
    if (req->p.if_seq.set && req->p.if_seq.i != o->seq) {
        srv_reply_error_data(req, PROTO_CODE_CONFLICT, "the object changed since if_seq", "seq",
                             o->seq);
        return false;
    }
    return true;
}

void srv_req_change_begin(struct srv_req *req, struct srv_meeting *m, const char *kind,
                          enum proto_type t, struct srv_change *ch, msgpack_packer *pk)
{
    *ch = (struct srv_change){.m = m,
                              .user = req->conn->user,
                              .cid = req->cid[0] ? req->cid : NULL,
                              .kind = kind,
                              .type = t,
                              .author = req->conn};
    msgpack_packer_init(pk, &ch->payload, proto_buf_msgpack_write);
}
