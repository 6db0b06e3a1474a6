/* fuzz_mp_rpc.c - libFuzzer target: a frame's plaintext through the structural check,
 * msgpack-c and the RPC decoder, as the server and the client handle it.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iproto tests/fuzz/fuzz_mp_rpc.c \
 *       proto/proto_*.c $(pkg-config --cflags --libs msgpack libsodium) -lm -o fuzz_mp_rpc
 */
#include <stdint.h>
#include <stdlib.h>
#include <msgpack.h>

#include "proto_err.h"
#include "proto_msgpack.h"
#include "proto_rpc.h"

/* Reads every typed parameter helper on one map, the way handlers do. */
static void read_params(const msgpack_object *params)
{
    static const char *const keys[] = {"meeting", "id", "seq", "op", "fields", "remember", ""};
    const char *s = NULL;
    const uint8_t *p = NULL;
    size_t len = 0;
    bool b = false;
    int64_t i = 0;
    uint64_t u = 0;
    const msgpack_object *o = NULL;
    char buf[16];

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        (void)proto_param_str(params, keys[k], &s, &len);
        (void)proto_param_bin(params, keys[k], &p, &len);
        (void)proto_param_bool(params, keys[k], &b);
        (void)proto_param_i64(params, keys[k], &i);
        (void)proto_param_u64(params, keys[k], &u);
        (void)proto_param_map(params, keys[k], &o);
        (void)proto_param_array(params, keys[k], &o);
        (void)proto_param_strcpy(params, keys[k], buf, sizeof(buf));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t good = 0;
    size_t vlen = 0;
    size_t pos = 0;
    int rc = proto_mp_check_seq(data, size, &good);

    if (good > size || (rc == 0 && good != size) || (rc != 0 && rc != PROTO_EINVAL)) {
        abort();
    }
    rc = proto_mp_check_one(data, size, &vlen);
    if (rc == 0 && (vlen == 0 || vlen > size)) {
        abort();
    }
    /* Every value the check passed must be something msgpack-c parses to the same end. */
    while (pos < good) {
        msgpack_unpacked u;
        struct proto_rpc_msg m;
        size_t off = pos;

        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, (const char *)data, good, &off) != MSGPACK_UNPACK_SUCCESS ||
            proto_mp_check_one(data + pos, good - pos, &vlen) != 0 || off != pos + vlen) {
            abort();
        }
        if (proto_rpc_decode(&u.data, &m) == 0) {
            if (m.params != NULL) {
                read_params(m.params);
            }
            if (m.error != NULL) {
                read_params(m.error);
            }
            (void)proto_rpc_method_is(&m, "ping");
        }
        msgpack_unpacked_destroy(&u);
        pos = off;
    }
    return 0;
}
