/* hashtab.h - string-keyed open-addressing hash table of long long values. */
#ifndef CALC_HASHTAB_H
#define CALC_HASHTAB_H

#include <stddef.h>

typedef struct ht_entry {
    char *key;          /* NULL: empty slot */
    long long value;
    int tombstone;
} ht_entry;

typedef struct hashtab {
    ht_entry *slots;
    size_t cap;         /* always a power of two */
    size_t count;       /* live entries */
    size_t used;        /* live entries + tombstones */
} hashtab;

typedef void (*ht_visit_fn)(const char *key, long long value, void *ctx);

void ht_init(hashtab *ht);
void ht_free(hashtab *ht);
int ht_get(const hashtab *ht, const char *key, long long *out);
void ht_set(hashtab *ht, const char *key, long long value);
int ht_remove(hashtab *ht, const char *key);
size_t ht_count(const hashtab *ht);
void ht_foreach_sorted(const hashtab *ht, ht_visit_fn fn, void *ctx);

#endif
