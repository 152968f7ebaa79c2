/* A template header, included once per element type as CPython's stringlib
 * headers are: each entry has different text (T, FN), and the line table of
 * code inlined from several entries must match a local build. */
static inline long
FN(count)(const T *p, long n, T c)
{
    long hits = 0, unused_in_header;
    for (long i = 0; i < n; i++)
        hits += p[i] == c;
    return hits;
}

#if TMPL_WIDE
static inline long
FN(last)(const T *p, long n, T c)
{
    for (long i = n - 1; i >= 0; i--)
        if (p[i] == c)
            return i;
    return -1;
}
#endif
