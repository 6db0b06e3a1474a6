/* srv_req.h - what every handler shares: the request, its decoded parameters, the replies,
 * and the checks of PROTOCOL.md section 10 (meeting, cid, role, object, lock, if_seq).
 *
 * The method table (srv_rpc.c) lists each method's parameters as struct srv_param. The
 * decoder (srv_req_decode) walks the params map once, answers bad_request naming the first
 * parameter that is missing or ill-typed, and fills req->p; srv_req_enter then does the
 * meeting checks. A handler starts with checked values and never reads params itself.
 */
#ifndef CONFER_SRV_REQ_H
#define CONFER_SRV_REQ_H

#include <stddef.h>

#include "proto_ot.h"
#include "srv_base.h"
#include "srv_hub.h"

#define SRV_CID_MAX    64
#define SRV_PARAMS_MAX 10 /* parameters one method may list */

/* What a parameter's value must be. A nil counts as absent, except for SRV_PT_MAP_NIL and
 * SRV_PT_WHERE, where it is a value. */
enum srv_ptype {
    SRV_PT_STR,       /* a string (valid UTF-8 without NUL) of at most max bytes (0: any) */
    SRV_PT_NAME,      /* an account or meeting name (proto_name_valid) */
    SRV_PT_ENUM,      /* a string among values */
    SRV_PT_INT,       /* an integer from min to max (a float never is one) */
    SRV_PT_BOOL,      /* true or false */
    SRV_PT_MAP,       /* a map */
    SRV_PT_MAP_NIL,   /* a map or nil (nil given explicitly: set, o->type nil) */
    SRV_PT_TYPE,      /* an object type name: fills p.t */
    SRV_PT_OBJID,     /* an object id: an integer, or for p.t meeting the meeting's id */
    SRV_PT_ID,        /* an integer or a string of at most max bytes (a filter) */
    SRV_PT_TEXTFIELD, /* the name of a text field of p.t: fills p.field_idx */
    SRV_PT_CID,       /* a string of 1 to SRV_CID_MAX bytes: fills req->cid */
    SRV_PT_OP,        /* a text op that does something: fills p.op (owned by the request) */
    SRV_PT_WHERE,     /* presence: {"type", "id", "field"?} or nil: fills p.where */
};

/* One decoded parameter. */
struct srv_pval {
    bool set;                /* present (and not nil, but for SRV_PT_MAP_NIL) */
    const msgpack_object *o; /* the value as sent; points into the message */
    const char *s;           /* string types: the bytes (not NUL-terminated) */
    size_t len;
    int64_t i; /* SRV_PT_INT, and ids given as integers */
    bool b;    /* SRV_PT_BOOL */
};

/* Where a connection is, as presence.set gives it. */
struct srv_where {
    bool present; /* false: nil (leave) */
    char type[10];
    int64_t id;
    char id_str[PROTO_NAME_MAX + 1]; /* "" when id is an integer */
    char field[16];
};

/* Every parameter any method takes, by name. A handler reads only those its table entry
 * lists; the others stay unset. */
struct srv_params {
    struct srv_pval meeting, type, id, field, fields, if_seq, base, op, user, role, password,
        remember, token, old, new_, at, since, until, limit, format, text, where, rapporteur, cid,
        known, mode, label, expires;
    enum proto_type t;  /* type, when given */
    int field_idx;      /* field, for SRV_PT_TEXTFIELD */
    struct proto_op ed; /* op, for SRV_PT_OP */
    struct srv_where wh;
};

/* One parameter of a method: its name, what it must be, and where it goes in srv_params.
 * hint says what is expected, for the messages "name: hint is required" and "name: must be
 * hint". */
struct srv_param {
    const char *name;
    enum srv_ptype type;
    bool optional;
    size_t off; /* offsetof(struct srv_params, ...) */
    const char *hint;
    int64_t min, max;          /* SRV_PT_INT bounds; SRV_PT_STR/SRV_PT_ID: max bytes */
    const char *const *values; /* SRV_PT_ENUM: NULL-terminated */
};

/* Context of one request being answered. */
struct srv_req {
    struct srv_conn *conn;
    uint32_t msgid;
    const msgpack_object *params;
    uint64_t hold;             /* the response waits until this batch is durable (0: no wait) */
    struct srv_params p;       /* filled by srv_req_decode */
    struct srv_meeting *m;     /* filled by srv_req_enter: the meeting, checked */
    enum srv_role role;        /* the caller's role in m */
    enum srv_role need;        /* the role the method table asks for (srv_rpc.c) */
    char cid[SRV_CID_MAX + 1]; /* the request's cid, "" when none */
};

/* ---- replies: each queues one whole response and counts the request as answered ---- */

void srv_reply_error(struct srv_req *req, enum proto_code code, const char *message);
void srv_reply_error_data(struct srv_req *req, enum proto_code code, const char *message,
                          const char *data_key, int64_t data_value);
/* An error whose data is data (one packed msgpack map). */
void srv_reply_error_packed(struct srv_req *req, enum proto_code code, const char *message,
                            const struct proto_buf *data);
/* Starts a success response in pk (a packer over a scratch buffer): the caller packs the
 * result, then calls srv_reply_finish. */
void srv_reply_begin(struct srv_req *req, msgpack_packer *pk, struct proto_buf *buf);
void srv_reply_finish(struct srv_req *req, struct proto_buf *buf);
/* An empty map result. */
void srv_reply_empty(struct srv_req *req);
/* bad_request with the message "name: why". */
void srv_reply_bad(struct srv_req *req, const char *name, const char *why);

/* ---- decoding ---- */

/* True when every string and map key in o, at any depth, is valid UTF-8 (NUL allowed). */
bool srv_req_utf8_ok(const msgpack_object *o);

/* Checks req->params against the NULL-terminated list params (at most SRV_PARAMS_MAX) and
 * fills req->p (and req->cid). Every string or key of params must be valid UTF-8, read or not.
 * Answers bad_request naming the parameter and returns false when something does not fit.
 * srv_req_free frees what it filled. */
bool srv_req_decode(struct srv_req *req, const struct srv_param *const *params);

/* Frees what srv_req_decode filled (the op). */
void srv_req_free(struct srv_req *req);

/* The checks every meeting method shares, in the order of section 10: the meeting of
 * p.meeting exists and the caller is a member (else not_found), a repeated cid is answered
 * with its first result, the caller's role is at least need (else forbidden). Sets req->m
 * and req->role; returns false when it answered. */
bool srv_req_enter(struct srv_req *req, enum srv_role need);

/* ---- checks of a change ---- */

/* True when the meeting's status is final. */
bool srv_meeting_final(const struct srv_meeting *m);

/* Answers a request whose cid the user already used in m with the first result; returns
 * true when it answered. */
bool srv_cid_repeat(struct srv_req *req, struct srv_meeting *m, const char *cid);

/* The object that p.t and p.id name in m; answers not_found and returns NULL when there is
 * none. */
struct srv_obj *srv_req_obj(struct srv_req *req, struct srv_meeting *m);

/* Checks the final lock for a change (status_only: the change sets exactly the meeting's
 * status, which a final meeting accepts). Answers locked and returns false. */
bool srv_req_unlocked(struct srv_req *req, struct srv_meeting *m, bool status_only);

/* Checks p.if_seq, when given, against the object's seq. Answers conflict with data.seq
 * and returns false. */
bool srv_req_if_seq(struct srv_req *req, const struct srv_obj *o);

/* Starts a change of m made by the request's connection, with the request's cid: pk then
 * packs the change's payload into ch->payload, one map. */
void srv_req_change_begin(struct srv_req *req, struct srv_meeting *m, const char *kind,
                          enum proto_type t, struct srv_change *ch, msgpack_packer *pk);

#endif
