#include "ramp/hash.h"

#include <stdio.h>
#include <string.h>

uint64_t rc_fnv1a64(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void rc_fnv1a64_hex(const char *text, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)rc_fnv1a64(text, strlen(text), RC_FNV_SEED));
}
