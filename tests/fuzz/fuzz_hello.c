/* fuzz_hello.c - libFuzzer target: hello payloads as the server and the client read them.
 * The first byte picks the side; the rest is the payload.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iproto tests/fuzz/fuzz_hello.c \
 *       proto/proto_*.c $(pkg-config --cflags --libs msgpack libsodium) -lm -o fuzz_hello
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "proto_channel.h"
#include "proto_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t seed[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    struct proto_hostkey host;
    struct proto_client_hs hs;
    struct proto_keys keys;
    uint8_t out[256];
    uint8_t host_pk[PROTO_KEY_BYTES];
    size_t out_len = 0;
    int rc = 0;

    if (size < 1 || sodium_init() < 0) {
        return 0;
    }
    if (data[0] & 1) {
        crypto_sign_seed_keypair(host.pk, host.sk, seed);
        rc = proto_hs_server_answer(&host, data + 1, size - 1, out, sizeof(out), &out_len, &keys);
        if ((rc == 0 || rc == PROTO_EVERSION) != (out_len > 0) || out_len > sizeof(out)) {
            abort();
        }
    } else {
        /* A fixed client whose hello is whatever; the signature cannot match anyway. */
        memset(&hs, 0, sizeof(hs));
        crypto_kx_seed_keypair(hs.pk, hs.sk, seed);
        memcpy(hs.hello, "\x81\xa1v\x01", 4);
        hs.hello_len = 4;
        rc = proto_hs_client_finish(&hs, data + 1, size - 1, host_pk, &keys);
        if (rc == 0 || !sodium_is_zero(hs.sk, sizeof(hs.sk))) {
            abort();
        }
    }
    return 0;
}
