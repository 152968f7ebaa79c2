#include <sysdep.h>
#include "quoted.h"

#ifndef TRICKY_CONFIG
#error "-include config.h was not applied"
#endif

const char *feature_greeting(void) { return QUOTED_GREETING; }

int feature_flags(void)
{
    int flags = 0;
#ifdef __OPTIMIZE__
    flags |= 1;
#endif
#ifdef __AVX2__
    flags |= 2;
#endif
#ifdef _REENTRANT
    flags |= 4;
#endif
    return flags + TRICKY_SCALE(SYSDEP_WIDTH) + sysdep_unused_param(1, 2);
}
