/* fuzz_op.c - libFuzzer target: text ops as text.edit reads them (msgpack → op), applied
 * to a text and transformed against a second op from the same input.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iproto tests/fuzz/fuzz_op.c \
 *       proto/proto_*.c $(pkg-config --cflags --libs msgpack libsodium) -lm -o fuzz_op
 */
#include <stdint.h>
#include <stdlib.h>
#include <msgpack.h>

#include "proto_msgpack.h"
#include "proto_ot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char text[] = "The meeting agreed – ÉÜ 😀 to organise a drafting session.";
    size_t good = 0;
    if (proto_mp_check_seq(data, size, &good) != 0 && good == 0) {
        return 0;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    struct proto_op a, b, out;
    proto_op_init(&a);
    proto_op_init(&b);
    proto_op_init(&out);
    if (msgpack_unpack_next(&u, (const char *)data, good, &off) == MSGPACK_UNPACK_SUCCESS &&
        proto_op_decode(&u.data, &a) == 0) {
        char *res = NULL;
        size_t res_len = 0;
        if (proto_op_apply(text, sizeof(text) - 1, &a, 4096, &res, &res_len) == 0) {
            free(res);
        }
        if (msgpack_unpack_next(&u, (const char *)data, good, &off) == MSGPACK_UNPACK_SUCCESS &&
            proto_op_decode(&u.data, &b) == 0) {
            proto_op_transform(&a, &b, PROTO_OP_LEFT, &out);
            proto_op_compose(&a, &b, &out);
        }
    }
    proto_op_free(&a);
    proto_op_free(&b);
    proto_op_free(&out);
    msgpack_unpacked_destroy(&u);
    return 0;
}
