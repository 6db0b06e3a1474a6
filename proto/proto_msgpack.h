/* proto_msgpack.h - structural check of msgpack bytes before msgpack-c sees them.
 *
 * msgpack-c allocates count * sizeof(msgpack_object) for an array or map header before it
 * reads the elements, so 5 bytes (dd ff 00 00 00) would ask for ~96 GB. These checks walk
 * the headers first: nesting at most PROTO_MP_MAX_DEPTH, every array/map count at most
 * PROTO_MP_MAX_COUNT and at most the bytes remaining, every str/bin/ext length at most the
 * bytes remaining, and no byte that is not msgpack (0xc1).
 */
#ifndef CONFER_PROTO_MSGPACK_H
#define CONFER_PROTO_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MP_MAX_DEPTH 16
#define PROTO_MP_MAX_COUNT 4096

/* Checks that buf[0..len) starts with one whole, valid msgpack value; its length goes to
 * *value_len. Returns 0, PROTO_EAGAIN when the value is cut off at len, or PROTO_EINVAL
 * when it breaks a limit or holds a byte that is not msgpack. */
int proto_mp_check_one(const uint8_t *buf, size_t len, size_t *value_len);

/* Checks a sequence of values (a frame's plaintext). *good_len gets the length of the
 * longest prefix made of whole valid values. Returns 0 when that is all of buf (len > 0),
 * PROTO_EINVAL otherwise (empty input, a cut-off last value, bad bytes, broken limits). */
int proto_mp_check_seq(const uint8_t *buf, size_t len, size_t *good_len);

#endif
