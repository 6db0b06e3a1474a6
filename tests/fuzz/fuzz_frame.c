/* fuzz_frame.c - libFuzzer target: the frame reader fed in pieces.
 * Byte 0 sets the limit, byte 1 the piece size; the rest is the stream.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iproto tests/fuzz/fuzz_frame.c \
 *       proto/proto_*.c $(pkg-config --cflags --libs msgpack libsodium) -lm -o fuzz_frame
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto_err.h"
#include "proto_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_reader r;
    uint32_t max = 0;
    size_t piece = 0;
    size_t pos = 2;
    int rc = 0;

    if (size < 2) {
        return 0;
    }
    max = (uint32_t)data[0] * 16 + 1;
    piece = (size_t)data[1] % 64 + 1;
    proto_reader_init(&r, max);
    while (pos < size && rc >= 0) {
        size_t n = size - pos < piece ? size - pos : piece;
        uint8_t *p = NULL;
        size_t room = 0;
        const uint8_t *payload = NULL;
        uint32_t len = 0;

        /* Alternate between the two ways of feeding the reader. */
        if ((pos / piece) % 2 == 0) {
            if (proto_reader_push(&r, data + pos, n) != 0) {
                abort();
            }
        } else {
            rc = proto_reader_space(&r, piece, &p, &room);
            if (rc < 0) {
                break;
            }
            if (room == 0 || room > PROTO_FRAME_HDR + (size_t)max) {
                abort();
            }
            n = n < room ? n : room;
            memcpy(p, data + pos, n);
            proto_reader_commit(&r, n);
        }
        pos += n;
        while ((rc = proto_reader_next(&r, &payload, &len)) == 1) {
            if (len == 0 || len > max) {
                abort();
            }
            /* The payload must be readable in full. */
            volatile uint8_t sink = payload[0] ^ payload[len - 1];
            (void)sink;
        }
        if (rc == 0 && r.len == r.off && r.buf != NULL) {
            abort(); /* nothing held, yet memory kept */
        }
    }
    proto_reader_free(&r);
    return 0;
}
