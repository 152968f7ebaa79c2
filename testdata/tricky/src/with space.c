#include <string.h>

size_t spaced_name_length(const char *s) { return strlen(s) + sizeof(__FILE__); }
