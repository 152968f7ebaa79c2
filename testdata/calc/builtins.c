/* builtins.c - functions callable from calc expressions. */
#include "eval.h"

#include <stdio.h>
#include <string.h>

static long long iabs(long long v)
{
    return v < 0 ? -v : v;
}

static int b_abs(const long long *a, int n, long long *out, char *err, size_t el)
{
    (void)n; (void)err; (void)el;
    *out = iabs(a[0]);
    return 1;
}

static int b_min(const long long *a, int n, long long *out, char *err, size_t el)
{
    int i;
    (void)err; (void)el;
    *out = a[0];
    for (i = 1; i < n; i++)
        if (a[i] < *out)
            *out = a[i];
    return 1;
}

static int b_max(const long long *a, int n, long long *out, char *err, size_t el)
{
    int i;
    (void)err; (void)el;
    *out = a[0];
    for (i = 1; i < n; i++)
        if (a[i] > *out)
            *out = a[i];
    return 1;
}

static long long gcd2(long long x, long long y)
{
    x = iabs(x);
    y = iabs(y);
    while (y) {
        long long t = x % y;
        x = y;
        y = t;
    }
    return x;
}

static int b_gcd(const long long *a, int n, long long *out, char *err, size_t el)
{
    int i;
    (void)err; (void)el;
    *out = a[0];
    for (i = 1; i < n; i++)
        *out = gcd2(*out, a[i]);
    *out = iabs(*out);
    return 1;
}

static int b_lcm(const long long *a, int n, long long *out, char *err, size_t el)
{
    int i;
    (void)err; (void)el;
    *out = iabs(a[0]);
    for (i = 1; i < n; i++) {
        long long g = gcd2(*out, a[i]);
        *out = g ? *out / g * iabs(a[i]) : 0;
    }
    return 1;
}

static int b_fact(const long long *a, int n, long long *out, char *err, size_t el)
{
    long long i, r = 1;
    (void)n;
    if (a[0] < 0 || a[0] > 20) {
        snprintf(err, el, "fact: argument %lld out of range 0..20", a[0]);
        return 0;
    }
    for (i = 2; i <= a[0]; i++)
        r *= i;
    *out = r;
    return 1;
}

static int b_fib(const long long *a, int n, long long *out, char *err, size_t el)
{
    long long x = 0, y = 1, i;
    (void)n;
    if (a[0] < 0 || a[0] > 92) {
        snprintf(err, el, "fib: argument %lld out of range 0..92", a[0]);
        return 0;
    }
    for (i = 0; i < a[0]; i++) {
        long long t = x + y;
        x = y;
        y = t;
    }
    *out = x;
    return 1;
}

static int b_isqrt(const long long *a, int n, long long *out, char *err, size_t el)
{
    long long lo = 0, hi = 3037000499LL; /* floor(sqrt(LLONG_MAX)) */
    (void)n;
    if (a[0] < 0) {
        snprintf(err, el, "isqrt: negative argument");
        return 0;
    }
    while (lo < hi) {
        long long mid = lo + (hi - lo + 1) / 2;
        if (mid * mid <= a[0])
            lo = mid;
        else
            hi = mid - 1;
    }
    *out = lo;
    return 1;
}

static int b_clamp(const long long *a, int n, long long *out, char *err, size_t el)
{
    (void)n;
    if (a[1] > a[2]) {
        snprintf(err, el, "clamp: empty range %lld..%lld", a[1], a[2]);
        return 0;
    }
    *out = a[0] < a[1] ? a[1] : a[0] > a[2] ? a[2] : a[0];
    return 1;
}

static const builtin table[] = {
    { "abs",   1, 1,  b_abs },
    { "clamp", 3, 3,  b_clamp },
    { "fact",  1, 1,  b_fact },
    { "fib",   1, 1,  b_fib },
    { "gcd",   1, 16, b_gcd },
    { "isqrt", 1, 1,  b_isqrt },
    { "lcm",   1, 16, b_lcm },
    { "max",   1, 16, b_max },
    { "min",   1, 16, b_min },
};

#define NBUILTINS ((int)(sizeof(table) / sizeof(table[0])))

const builtin *builtin_lookup(const char *name)
{
    int lo = 0, hi = NBUILTINS - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(name, table[mid].name);
        if (c == 0)
            return &table[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

int builtin_count(void)
{
    return NBUILTINS;
}

const builtin *builtin_at(int i)
{
    return i >= 0 && i < NBUILTINS ? &table[i] : NULL;
}
