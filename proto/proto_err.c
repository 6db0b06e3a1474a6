/* proto_err.c - error descriptions and the wire error codes of PROTOCOL.md section 4. */
#include <string.h>

#include "proto_err.h"

const char *proto_strerror(int err)
{
    switch (err) {
    case PROTO_OK:
        return "success";
    case PROTO_EINVAL:
        return "malformed input or bad argument";
    case PROTO_ENOMEM:
        return "out of memory";
    case PROTO_ETOOBIG:
        return "over a size limit";
    case PROTO_EAGAIN:
        return "need more input";
    case PROTO_ECRYPTO:
        return "signature, key exchange or decryption failed";
    case PROTO_EVERSION:
        return "unsupported protocol version";
    case PROTO_EIO:
        return "input/output error";
    case PROTO_ENOTFOUND:
        return "not found";
    case PROTO_ECONFLICT:
        return "conflict";
    case PROTO_EDB:
        return "database error";
    case PROTO_ECLOSED:
        return "connection closed";
    case PROTO_ETIMEDOUT:
        return "timed out";
    case PROTO_EPERM:
        return "not allowed";
    case PROTO_EBUSY:
        return "busy, try later";
    default:
        return "unknown error";
    }
}

/* Indexed by enum proto_code; the order must follow the enum. */
static const char *const code_names[PROTO_CODE_COUNT] = {
    "bad_request", "unauthenticated", "forbidden",    "not_found",   "conflict",
    "locked",      "too_large",       "rate_limited", "unavailable", "internal",
};

const char *proto_code_name(enum proto_code code)
{
    /* An out-of-range code is a bug on our side; "internal" is the honest answer. */
    if ((int)code < 0 || code >= PROTO_CODE_COUNT) {
        return "internal";
    }
    return code_names[code];
}

int proto_code_parse(const char *s, size_t len)
{
    if (s == NULL) {
        return -1;
    }
    for (int i = 0; i < PROTO_CODE_COUNT; i++) {
        if (strlen(code_names[i]) == len && memcmp(code_names[i], s, len) == 0) {
            return i;
        }
    }
    return -1;
}
