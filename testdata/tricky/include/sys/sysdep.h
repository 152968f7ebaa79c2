/* Found through -isystem: a system header, so no warnings from here. */
#ifndef SYSDEP_H
#define SYSDEP_H
static inline int sysdep_unused_param(int a, int b) { return a; }
#define SYSDEP_WIDTH 64
#endif
