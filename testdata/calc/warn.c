/* warn.c - DELIBERATELY produces exactly one compiler warning.
 *
 * gridcc tests build this file to check that compiler diagnostics printed on
 * a *successful* compile (here: -Wunused-variable, enabled by -Wall) reach
 * the user's terminal, whether the compile ran locally or on a grid worker.
 * Do not "fix" the warning.  See README.md.
 */
#include "eval.h"

/* A tiny order-sensitive checksum used by the test runner. */
unsigned warn_checksum(const char *s)
{
    unsigned h = 5381;
    int unused_on_purpose;  /* <- the deliberate warning */

    while (*s)
        h = h * 33u + (unsigned char)*s++;
    return h;
}
