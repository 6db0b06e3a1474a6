/* testutil.h - helpers shared by the cmocka tests. */
#ifndef CONFER_TESTUTIL_H
#define CONFER_TESTUTIL_H

#include <stddef.h>

/* Makes a fresh temporary directory (mode 0700) and returns its malloc'd path. */
char *tu_tmpdir(void);

/* Removes a directory tree (best effort) and frees path. */
void tu_rmtree(char *path);

/* Reads a whole file from the test data folder ($CONFER_TEST_DATA); *len gets its size.
 * Returns a malloc'd NUL-terminated buffer or NULL. */
char *tu_read_data(const char *name, size_t *len);

#endif
