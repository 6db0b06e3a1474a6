/* proto_err.h - error codes shared by every confer module.
 *
 * Functions that can fail return int: 0 on success or one of the negative PROTO_E* codes
 * below. Errors of libuv, SQLite and msgpack-c are translated where they enter our code.
 * The wire error codes of PROTOCOL.md section 4 are a separate enum, proto_code.
 */
#ifndef CONFER_PROTO_ERR_H
#define CONFER_PROTO_ERR_H

#include <stddef.h>

enum {
    PROTO_OK = 0,
    PROTO_EINVAL = -1,    /* malformed input or bad argument */
    PROTO_ENOMEM = -2,    /* allocation failed */
    PROTO_ETOOBIG = -3,   /* over a size limit */
    PROTO_EAGAIN = -4,    /* need more input */
    PROTO_ECRYPTO = -5,   /* signature, key exchange or decryption failed */
    PROTO_EVERSION = -6,  /* peer does not speak our protocol version */
    PROTO_EIO = -7,       /* socket or file error */
    PROTO_ENOTFOUND = -8, /* no such thing */
    PROTO_ECONFLICT = -9, /* unique key taken, or if_seq mismatch */
    PROTO_EDB = -10,      /* database error */
    PROTO_ECLOSED = -11,  /* peer closed the connection */
    PROTO_ETIMEDOUT = -12,
    PROTO_EPERM = -13, /* not allowed */
    PROTO_EBUSY = -14, /* resource busy, try later */
};

/* Returns a static English description of a PROTO_E* code. */
const char *proto_strerror(int err);

/* Wire error codes (PROTOCOL.md section 4). */
enum proto_code {
    PROTO_CODE_BAD_REQUEST = 0,
    PROTO_CODE_UNAUTHENTICATED,
    PROTO_CODE_FORBIDDEN,
    PROTO_CODE_NOT_FOUND,
    PROTO_CODE_CONFLICT,
    PROTO_CODE_LOCKED,
    PROTO_CODE_TOO_LARGE,
    PROTO_CODE_RATE_LIMITED,
    PROTO_CODE_UNAVAILABLE,
    PROTO_CODE_INTERNAL,
    PROTO_CODE_COUNT
};

/* Returns the wire string of a code, e.g. "bad_request". */
const char *proto_code_name(enum proto_code code);

/* Parses a wire code string of len bytes; returns the code or -1 when unknown. */
int proto_code_parse(const char *s, size_t len);

#endif
