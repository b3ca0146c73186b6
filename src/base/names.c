#include "ramp/names.h"

#include <stddef.h>
#include <string.h>

const char *const rc_arch_names[RC_ARCH_COUNT] = {"small-cnn", "preact-resnet18", "wrn", "dm-wrn",
                                                  "linear"};
const char *const rc_activation_names[RC_ACTIVATION_COUNT] = {"softplus", "relu", "silu"};
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

/* The index of `s` in names[n], or -1. */
static int index_of(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

int rc_arch_from_name(const char *s, rc_arch *out) {
    int i = index_of(rc_arch_names, RC_ARCH_COUNT, s);
    if (i >= 0) *out = (rc_arch)i;
    return i < 0 ? -1 : 0;
}

int rc_activation_from_name(const char *s, rc_activation *out) {
    int i = index_of(rc_activation_names, RC_ACTIVATION_COUNT, s);
    if (i >= 0) *out = (rc_activation)i;
    return i < 0 ? -1 : 0;
}

int rc_arch_is_wrn(rc_arch a) { return a == RC_ARCH_WRN || a == RC_ARCH_DM_WRN; }

rc_arch_defaults rc_arch_default(rc_arch a) {
    /* Indexed by rc_arch. linear takes what the config has always resolved it to (relu, 64); the
     * WideResNets are WRN-28-10, with the activation of their published models (Carmon et al.:
     * ReLU; Gowal et al.: Swish). */
    static const rc_arch_defaults table[RC_ARCH_COUNT] = {
        [RC_ARCH_SMALL_CNN] = {RC_ACTIVATION_RELU, 32, 0},
        [RC_ARCH_PREACT_RESNET18] = {RC_ACTIVATION_SOFTPLUS, 64, 0},
        [RC_ARCH_WRN] = {RC_ACTIVATION_RELU, 10, 28},
        [RC_ARCH_DM_WRN] = {RC_ACTIVATION_SILU, 10, 28},
        [RC_ARCH_LINEAR] = {RC_ACTIVATION_RELU, 64, 0},
    };
    if (a < 0 || a >= RC_ARCH_COUNT) return (rc_arch_defaults){RC_ACTIVATION_AUTO, -1, 0};
    return table[a];
}
