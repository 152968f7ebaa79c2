/* hashtab.c - linear-probing hash table with tombstones. */
#include "hashtab.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define HT_MIN_CAP 8

void ht_init(hashtab *ht)
{
    ht->slots = NULL;
    ht->cap = 0;
    ht->count = 0;
    ht->used = 0;
}

void ht_free(hashtab *ht)
{
    size_t i;
    for (i = 0; i < ht->cap; i++)
        free(ht->slots[i].key);
    free(ht->slots);
    ht_init(ht);
}

static ht_entry *find_slot(ht_entry *slots, size_t cap, const char *key)
{
    size_t mask = cap - 1;
    size_t i = hash_string(key) & mask;
    ht_entry *first_tomb = NULL;

    for (;;) {
        ht_entry *e = &slots[i];
        if (e->key == NULL) {
            if (!e->tombstone)
                return first_tomb ? first_tomb : e;
            if (!first_tomb)
                first_tomb = e;
        } else if (strcmp(e->key, key) == 0) {
            return e;
        }
        i = (i + 1) & mask;
    }
}

static void rehash(hashtab *ht, size_t new_cap)
{
    ht_entry *old = ht->slots;
    size_t old_cap = ht->cap;
    size_t i;

    ht->slots = xcalloc(new_cap, sizeof(ht_entry));
    ht->cap = new_cap;
    ht->used = ht->count;
    for (i = 0; i < old_cap; i++) {
        if (old[i].key) {
            ht_entry *e = find_slot(ht->slots, new_cap, old[i].key);
            e->key = old[i].key;
            e->value = old[i].value;
        }
    }
    free(old);
}

int ht_get(const hashtab *ht, const char *key, long long *out)
{
    ht_entry *e;
    if (ht->cap == 0)
        return 0;
    e = find_slot(ht->slots, ht->cap, key);
    if (!e->key)
        return 0;
    if (out)
        *out = e->value;
    return 1;
}

void ht_set(hashtab *ht, const char *key, long long value)
{
    ht_entry *e;
    if (ht->cap == 0)
        rehash(ht, HT_MIN_CAP);
    else if ((ht->used + 1) * 4 > ht->cap * 3)
        rehash(ht, ht->count * 2 + 1 > ht->cap / 2 ? ht->cap * 2 : ht->cap);

    e = find_slot(ht->slots, ht->cap, key);
    if (e->key) {
        e->value = value;
        return;
    }
    if (!e->tombstone)
        ht->used++;
    e->key = xstrdup(key);
    e->value = value;
    e->tombstone = 0;
    ht->count++;
}

int ht_remove(hashtab *ht, const char *key)
{
    ht_entry *e;
    if (ht->cap == 0)
        return 0;
    e = find_slot(ht->slots, ht->cap, key);
    if (!e->key)
        return 0;
    free(e->key);
    e->key = NULL;
    e->tombstone = 1;
    ht->count--;
    return 1;
}

size_t ht_count(const hashtab *ht)
{
    return ht->count;
}

static int cmp_entry_ptr(const void *a, const void *b)
{
    const ht_entry *x = *(const ht_entry *const *)a;
    const ht_entry *y = *(const ht_entry *const *)b;
    return strcmp(x->key, y->key);
}

void ht_foreach_sorted(const hashtab *ht, ht_visit_fn fn, void *ctx)
{
    ht_entry **list;
    size_t i, n = 0;

    if (ht->count == 0)
        return;
    list = xmalloc(ht->count * sizeof(*list));
    for (i = 0; i < ht->cap; i++)
        if (ht->slots[i].key)
            list[n++] = &ht->slots[i];
    qsort(list, n, sizeof(*list), cmp_entry_ptr);
    for (i = 0; i < n; i++)
        fn(list[i]->key, list[i]->value, ctx);
    free(list);
}
