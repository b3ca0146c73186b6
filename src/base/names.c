#include "ramp/names.h"

#include <stddef.h>
#include <string.h>

const char *const rc_arch_names[RC_ARCH_COUNT] = {"small-cnn", "preact-resnet18", "wrn-28-10",
                                                  "linear"};
const char *const rc_activation_names[RC_ACTIVATION_COUNT] = {"softplus", "relu"};
const char *const rc_norm_names[RC_NORM_COUNT] = {"linf", "l2", "l1"};

static const char *name_in(const char *const *names, size_t n, int v, const char *negative) {
    if (v < 0) return negative;
    return (size_t)v < n ? names[v] : "invalid";
}

const char *rc_arch_name(rc_arch a) { return name_in(rc_arch_names, RC_ARCH_COUNT, a, "unset"); }
const char *rc_activation_name(rc_activation a) {
    return name_in(rc_activation_names, RC_ACTIVATION_COUNT, a, "auto");
}
const char *rc_norm_name(rc_norm n) { return name_in(rc_norm_names, RC_NORM_COUNT, n, "none"); }

int rc_arch_from_name(const char *s, rc_arch *out) {
    for (rc_arch a = RC_ARCH_SMALL_CNN; a <= RC_ARCH_LINEAR; a++)
        if (s && !strcmp(s, rc_arch_name(a))) {
            *out = a;
            return 0;
        }
    return -1;
}

rc_arch_defaults rc_arch_default(rc_arch a) {
    /* Indexed by rc_arch. linear and wrn-28-10 take what the config has always resolved them to
     * (relu; widths 64 and 10). */
    static const rc_arch_defaults table[RC_ARCH_COUNT] = {
        [RC_ARCH_SMALL_CNN] = {RC_ACTIVATION_RELU, 32},
        [RC_ARCH_PREACT_RESNET18] = {RC_ACTIVATION_SOFTPLUS, 64},
        [RC_ARCH_WRN_28_10] = {RC_ACTIVATION_RELU, 10},
        [RC_ARCH_LINEAR] = {RC_ACTIVATION_RELU, 64},
    };
    if (a < 0 || a >= RC_ARCH_COUNT) return (rc_arch_defaults){RC_ACTIVATION_AUTO, -1};
    return table[a];
}
