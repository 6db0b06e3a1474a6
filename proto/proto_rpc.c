/* proto_rpc.c - msgpack-RPC decoding, typed parameters and message heads (PROTOCOL.md
 * sections 4 and 10). */
#include <string.h>

#include "proto_rpc.h"
#include "proto_util.h"

static bool is_uint32(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= UINT32_MAX;
}

static bool is_str(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR && proto_utf8_valid(o->via.str.ptr, o->via.str.size);
}

/* error of a response: nil, or a map whose "code" and "message" are strings. */
static int decode_error(const msgpack_object *e, struct proto_rpc_msg *m)
{
    const msgpack_object *code = NULL;
    const msgpack_object *message = NULL;

    if (e->type == MSGPACK_OBJECT_NIL) {
        m->error = NULL;
        return 0;
    }
    if (e->type != MSGPACK_OBJECT_MAP) {
        return PROTO_EINVAL;
    }
    code = proto_mp_map_get(e, "code");
    message = proto_mp_map_get(e, "message");
    if (code == NULL || message == NULL || !is_str(code) || !is_str(message)) {
        return PROTO_EINVAL;
    }
    m->error = e;
    return 0;
}

static int decode(const msgpack_object *o, struct proto_rpc_msg *m)
{
    const msgpack_object *el = NULL;
    uint32_t n = 0;

    if (o->type != MSGPACK_OBJECT_ARRAY) {
        return PROTO_EINVAL;
    }
    el = o->via.array.ptr;
    n = o->via.array.size;
    /* Recovered first, so that whatever is wrong later, the answer can carry it. */
    if (n >= 2 && is_uint32(&el[1])) {
        m->msgid = (uint32_t)el[1].via.u64;
    }
    if (n < 1 || el[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return PROTO_EINVAL;
    }
    switch (el[0].via.u64) {
    case PROTO_RPC_REQUEST: /* [0, msgid, method, params] */
        if (n != 4 || !is_uint32(&el[1]) || !is_str(&el[2]) || el[3].type != MSGPACK_OBJECT_MAP) {
            return PROTO_EINVAL;
        }
        m->kind = PROTO_RPC_REQUEST;
        m->method = el[2].via.str.ptr;
        m->method_len = el[2].via.str.size;
        m->params = &el[3];
        return 0;
    case PROTO_RPC_RESPONSE: /* [1, msgid, error, result] */
        if (n != 4 || !is_uint32(&el[1])) {
            return PROTO_EINVAL;
        }
        m->kind = PROTO_RPC_RESPONSE;
        m->result = &el[3];
        return decode_error(&el[2], m);
    case PROTO_RPC_NOTIFY: /* [2, method, params] */
        if (n != 3 || !is_str(&el[1]) || el[2].type != MSGPACK_OBJECT_MAP) {
            return PROTO_EINVAL;
        }
        m->kind = PROTO_RPC_NOTIFY;
        m->method = el[1].via.str.ptr;
        m->method_len = el[1].via.str.size;
        m->params = &el[2];
        return 0;
    default:
        return PROTO_EINVAL;
    }
}

int proto_rpc_decode(const msgpack_object *o, struct proto_rpc_msg *m)
{
    uint32_t msgid = 0;
    int rc = 0;

    memset(m, 0, sizeof(*m));
    if (o == NULL) {
        return PROTO_EINVAL;
    }
    rc = decode(o, m);
    if (rc < 0) {
        /* Half-filled pointers must not be mistaken for a message. */
        msgid = m->msgid;
        memset(m, 0, sizeof(*m));
        m->msgid = msgid;
    }
    return rc;
}

bool proto_rpc_method_is(const struct proto_rpc_msg *m, const char *name)
{
    size_t n = strlen(name);

    return m->method != NULL && m->method_len == n && memcmp(m->method, name, n) == 0;
}

const msgpack_object *proto_mp_map_get(const msgpack_object *map, const char *key)
{
    size_t klen = 0;

    if (map == NULL || map->type != MSGPACK_OBJECT_MAP || key == NULL) {
        return NULL;
    }
    klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            (klen == 0 || memcmp(k->via.str.ptr, key, klen) == 0)) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

/* The value of key, or NULL when absent or nil: nil means "not given" everywhere. */
static const msgpack_object *param(const msgpack_object *params, const char *key)
{
    const msgpack_object *v = proto_mp_map_get(params, key);

    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        return NULL;
    }
    return v;
}

int proto_param_str(const msgpack_object *params, const char *key, const char **s, size_t *len)
{
    const msgpack_object *v = param(params, key);

    if (v == NULL) {
        return PROTO_ENOTFOUND;
    }
    if (!is_str(v)) {
        return PROTO_EINVAL;
    }
    /* An empty str may come with a NULL pointer; callers get a real one. */
    *s = v->via.str.size > 0 ? v->via.str.ptr : "";
    *len = v->via.str.size;
    return 0;
}

int proto_param_bin(const msgpack_object *params, const char *key, const uint8_t **p, size_t *len)
{
    const msgpack_object *v = param(params, key);

    if (v == NULL) {
        return PROTO_ENOTFOUND;
    }
    if (v->type != MSGPACK_OBJECT_BIN) {
        return PROTO_EINVAL;
    }
    *p = v->via.bin.size > 0 ? (const uint8_t *)v->via.bin.ptr : (const uint8_t *)"";
    *len = v->via.bin.size;
    return 0;
}

int proto_param_bool(const msgpack_object *params, const char *key, bool *out)
{
    const msgpack_object *v = param(params, key);

    if (v == NULL) {
        return PROTO_ENOTFOUND;
    }
    if (v->type != MSGPACK_OBJECT_BOOLEAN) {
        return PROTO_EINVAL;
    }
    *out = v->via.boolean;
    return 0;
}

/* Only the two integer types count: PROTOCOL.md section 10 makes 3.0 a bad_request. */
int proto_param_i64(const msgpack_object *params, const char *key, int64_t *out)
{
    const msgpack_object *v = param(params, key);

    if (v == NULL) {
        return PROTO_ENOTFOUND;
    }
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return 0;
    }
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX) {
        *out = (int64_t)v->via.u64;
        return 0;
    }
    return PROTO_EINVAL;
}

int proto_param_u64(const msgpack_object *params, const char *key, uint64_t *out)
{
    const msgpack_object *v = param(params, key);

    if (v == NULL) {
        return PROTO_ENOTFOUND;
    }
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return PROTO_EINVAL;
    }
    *out = v->via.u64;
    return 0;
}

int proto_param_map(const msgpack_object *params, const char *key, const msgpack_object **out)
{
    const msgpack_object *v = param(params, key);

    if (v == NULL) {
        return PROTO_ENOTFOUND;
    }
    if (v->type != MSGPACK_OBJECT_MAP) {
        return PROTO_EINVAL;
    }
    *out = v;
    return 0;
}

int proto_param_array(const msgpack_object *params, const char *key, const msgpack_object **out)
{
    const msgpack_object *v = param(params, key);

    if (v == NULL) {
        return PROTO_ENOTFOUND;
    }
    if (v->type != MSGPACK_OBJECT_ARRAY) {
        return PROTO_EINVAL;
    }
    *out = v;
    return 0;
}

int proto_param_strcpy(const msgpack_object *params, const char *key, char *out, size_t cap)
{
    const char *s = NULL;
    size_t len = 0;
    int rc = proto_param_str(params, key, &s, &len);

    if (rc < 0) {
        return rc;
    }
    if (len >= cap) {
        return PROTO_ETOOBIG;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

/* msgpack-c returns what the write callback returned; ours fail only for lack of memory. */
static int packed(int rc)
{
    return rc == 0 ? 0 : PROTO_ENOMEM;
}

int proto_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    return packed(msgpack_pack_str_with_body(pk, len > 0 ? s : "", len));
}

int proto_pack_cstr(msgpack_packer *pk, const char *s)
{
    if (s == NULL) {
        s = "";
    }
    return proto_pack_str(pk, s, strlen(s));
}

/* "[kind, msgid," of a four-element request or response. */
static int pack_head(msgpack_packer *pk, enum proto_rpc_kind kind, uint32_t msgid)
{
    return packed(msgpack_pack_array(pk, 4) || msgpack_pack_uint8(pk, (uint8_t)kind) ||
                  msgpack_pack_uint32(pk, msgid));
}

int proto_rpc_pack_request(msgpack_packer *pk, uint32_t msgid, const char *method)
{
    int rc = pack_head(pk, PROTO_RPC_REQUEST, msgid);

    return rc < 0 ? rc : proto_pack_cstr(pk, method);
}

int proto_rpc_pack_result(msgpack_packer *pk, uint32_t msgid)
{
    int rc = pack_head(pk, PROTO_RPC_RESPONSE, msgid);

    return rc < 0 ? rc : packed(msgpack_pack_nil(pk));
}

int proto_rpc_pack_error(msgpack_packer *pk, uint32_t msgid, enum proto_code code,
                         const char *message, const char *data_key, int64_t data_value)
{
    int rc = pack_head(pk, PROTO_RPC_RESPONSE, msgid);

    if (rc < 0) {
        return rc;
    }
    /* {"code": str, "message": str, "data": {data_key: data_value}?} */
    if (packed(msgpack_pack_map(pk, data_key != NULL ? 3 : 2)) < 0 ||
        proto_pack_cstr(pk, "code") < 0 || proto_pack_cstr(pk, proto_code_name(code)) < 0 ||
        proto_pack_cstr(pk, "message") < 0 || proto_pack_cstr(pk, message) < 0) {
        return PROTO_ENOMEM;
    }
    if (data_key != NULL &&
        (proto_pack_cstr(pk, "data") < 0 || packed(msgpack_pack_map(pk, 1)) < 0 ||
         proto_pack_cstr(pk, data_key) < 0 || packed(msgpack_pack_int64(pk, data_value)) < 0)) {
        return PROTO_ENOMEM;
    }
    return packed(msgpack_pack_nil(pk)); /* result */
}

int proto_rpc_pack_notify(msgpack_packer *pk, const char *method)
{
    int rc = packed(msgpack_pack_array(pk, 3) || msgpack_pack_uint8(pk, PROTO_RPC_NOTIFY));

    return rc < 0 ? rc : proto_pack_cstr(pk, method);
}
