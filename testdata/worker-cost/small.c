/* A small translation unit (scripts/worker-cost.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef IT
#define IT 0
#endif

int small_unit(const char *s)
{
    char *copy = malloc(strlen(s) + 16);
    if (!copy)
        return -1;
    sprintf(copy, "%s-%d", s, IT);
    int n = (int)strlen(copy);
    free(copy);
    return n;
}
