#define T unsigned char
#define FN(x) u8_##x
#define TMPL_WIDE 0
#include "tmpl.h"
#undef T
#undef FN
#undef TMPL_WIDE
#define T unsigned int
#define FN(x) u32_##x
#define TMPL_WIDE 1
#include "tmpl.h"

long count_any(int wide, const void *p, long n, unsigned c)
{
    if (wide)
        return u32_count(p, n, c) + u32_last(p, n, c);
    return u8_count(p, n, (unsigned char)c);
}
