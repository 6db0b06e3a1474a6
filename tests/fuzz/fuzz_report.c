/* fuzz_report.c - libFuzzer target: report.import's parser on arbitrary text, and the text
 * export of whatever it accepted.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iproto -Iserver/record \
 *       tests/fuzz/fuzz_report.c server/record/srv_report.c server/record/srv_rec.c \
 *       proto/proto_*.c $(pkg-config --cflags --libs msgpack libsodium) -lm -o fuzz_report
 */
#include <stdint.h>
#include <stdlib.h>

#include "srv_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct srv_rec *rec = NULL;
    char err[256];
    if (srv_report_import((const char *)data, size, &rec, err, sizeof(err)) == 0) {
        struct proto_buf out = {0};
        srv_report_export(rec, SRV_REPORT_TEXT, 1, "00", &out);
        proto_buf_free(&out, 0);
    }
    srv_rec_free(rec);
    return 0;
}
