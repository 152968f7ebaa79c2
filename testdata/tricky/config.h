/* Force-included with a separate-word -include. */
#define TRICKY_CONFIG 1
#define TRICKY_SCALE(x) ((x) * 3)
