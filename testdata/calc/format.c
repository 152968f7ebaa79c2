/* format.c - number and result formatting. */
#include "eval.h"

#include <string.h>

void fmt_grouped(strbuf *out, long long v)
{
    char digits[32];
    unsigned long long u;
    int n = 0, i;

    if (v < 0) {
        sb_putc(out, '-');
        u = 0ULL - (unsigned long long)v;
    } else {
        u = (unsigned long long)v;
    }
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (i = n - 1; i >= 0; i--) {
        sb_putc(out, digits[i]);
        if (i > 0 && i % 3 == 0)
            sb_putc(out, ',');
    }
}

void fmt_hex(strbuf *out, long long v)
{
    sb_printf(out, "0x%llx", (unsigned long long)v);
}

void fmt_binary(strbuf *out, long long v)
{
    unsigned long long u = (unsigned long long)v;
    int bit = 63;

    sb_puts(out, "0b");
    while (bit > 0 && !((u >> bit) & 1))
        bit--;
    for (; bit >= 0; bit--)
        sb_putc(out, (u >> bit) & 1 ? '1' : '0');
}

void fmt_result(strbuf *out, const eval_result *r)
{
    if (!r->ok) {
        sb_printf(out, "error: %s", r->error);
        return;
    }
    sb_printf(out, "%lld", r->value);
    if (r->value >= 1000 || r->value <= -1000) {
        sb_puts(out, " (");
        fmt_grouped(out, r->value);
        sb_putc(out, ')');
    }
}
