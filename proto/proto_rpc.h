/* proto_rpc.h - msgpack-RPC with named parameters (PROTOCOL.md section 4).
 *
 *   request       [0, msgid, method, params]   client -> server, params a map
 *   response      [1, msgid, error, result]    error nil, or {"code", "message", "data"?}
 *   notification  [2, method, params]          server -> client only
 *
 * Decoding works on msgpack_object trees that msgpack-c built from bytes already checked by
 * proto_mp_check_*. Nothing is copied: decoded pointers point into the object tree and live
 * as long as its zone. Encoding helpers write the message head; the caller packs the rest.
 */
#ifndef CONFER_PROTO_RPC_H
#define CONFER_PROTO_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "proto_err.h"

enum proto_rpc_kind {
    PROTO_RPC_REQUEST = 0,
    PROTO_RPC_RESPONSE = 1,
    PROTO_RPC_NOTIFY = 2,
};

struct proto_rpc_msg {
    enum proto_rpc_kind kind;
    uint32_t msgid;     /* request, response */
    const char *method; /* request, notification (not NUL-terminated) */
    size_t method_len;
    const msgpack_object *params; /* request, notification: a map */
    const msgpack_object *error;  /* response: NULL on success, else the error map */
    const msgpack_object *result; /* response: the result (may be nil) */
};

/* Decodes one message. Returns 0 or PROTO_EINVAL (wrong shape or types, method not valid
 * UTF-8, params not a map, error neither nil nor a map with string code and message);
 * on failure m->msgid still holds element 1 when it is a uint32, else 0, so the caller can
 * answer bad_request with it. */
int proto_rpc_decode(const msgpack_object *o, struct proto_rpc_msg *m);

/* True when the method name equals the NUL-terminated name. */
bool proto_rpc_method_is(const struct proto_rpc_msg *m, const char *name);

/* Map lookup by string key; NULL when map is not a map or the key is absent. With a
 * repeated key the first wins. */
const msgpack_object *proto_mp_map_get(const msgpack_object *map, const char *key);

/* Typed parameter helpers. Each returns 0 and sets the outputs when the key is present and
 * well typed; PROTO_ENOTFOUND when absent or nil; PROTO_EINVAL when present with the wrong
 * type (a float is never an integer, a str must be valid UTF-8 without NUL). */
int proto_param_str(const msgpack_object *params, const char *key, const char **s, size_t *len);
int proto_param_bin(const msgpack_object *params, const char *key, const uint8_t **p, size_t *len);
int proto_param_bool(const msgpack_object *params, const char *key, bool *out);
int proto_param_i64(const msgpack_object *params, const char *key, int64_t *out);
int proto_param_u64(const msgpack_object *params, const char *key, uint64_t *out);
int proto_param_map(const msgpack_object *params, const char *key, const msgpack_object **out);
int proto_param_array(const msgpack_object *params, const char *key, const msgpack_object **out);

/* Copies a str parameter into a NUL-terminated buffer of cap bytes. Returns 0,
 * PROTO_ENOTFOUND, PROTO_EINVAL (wrong type) or PROTO_ETOOBIG (len >= cap). */
int proto_param_strcpy(const msgpack_object *params, const char *key, char *out, size_t cap);

/* Packs a NUL-terminated string. */
int proto_pack_cstr(msgpack_packer *pk, const char *s);

/* Packs a string of len bytes. */
int proto_pack_str(msgpack_packer *pk, const char *s, size_t len);

/* Packs "[0, msgid, method," ; the caller then packs the params map. */
int proto_rpc_pack_request(msgpack_packer *pk, uint32_t msgid, const char *method);

/* Packs "[1, msgid, nil," ; the caller then packs the result. */
int proto_rpc_pack_result(msgpack_packer *pk, uint32_t msgid);

/* Packs a whole error response [1, msgid, {"code", "message"}, nil]. When data_key is not
 * NULL, the error map also holds "data": {data_key: data_value}. */
int proto_rpc_pack_error(msgpack_packer *pk, uint32_t msgid, enum proto_code code,
                         const char *message, const char *data_key, int64_t data_value);

/* Packs "[2, method," ; the caller then packs the params map. */
int proto_rpc_pack_notify(msgpack_packer *pk, const char *method);

#endif
