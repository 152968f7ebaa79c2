/* util.h - small helpers shared by the calc test project. */
#ifndef CALC_UTIL_H
#define CALC_UTIL_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrndup(const char *s, size_t n);
char *xstrdup(const char *s);
void die(const char *fmt, ...);
unsigned long hash_string(const char *s);

#endif
