#include <stddef.h>
#include <stdint.h>

#define WIDEN(x) ((uint64_t)(x) * UINT64_C(0x9E3779B97F4A7C15))
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct { size_t n; uint64_t v[8]; } bag;

uint64_t columns_mix(const bag *b) { uint64_t h = WIDEN(b->n); for (size_t i = 0; i < LEN(b->v); i++) h ^= WIDEN(b->v[i]) >> (i & 7); return h; }

size_t columns_len(void) { static const int table[] = { 1, 2, 3, 4, 5 }; size_t n = LEN(table); return n + SIZE_MAX / SIZE_MAX; }
