/* The names shared by the config, the model and the attacks: architectures, activations and
 * threat-model norms, their printed names, and each architecture's defaults. Kept apart from
 * ramp/config.h so that code that only needs these does not depend on the YAML config. */
#ifndef RAMP_NAMES_H
#define RAMP_NAMES_H

/* Negative members mark a value not given yet (the config resolves them). */
typedef enum rc_arch {
    RC_ARCH_UNSET = -1,
    RC_ARCH_SMALL_CNN,
    RC_ARCH_PREACT_RESNET18,
    RC_ARCH_WRN,    /* WideResNet-depth-width (Zagoruyko & Komodakis; RobustBench wide_resnet.py) */
    RC_ARCH_DM_WRN, /* DeepMind's WideResNet (Gowal et al.; RobustBench dm_wide_resnet.py) */
    RC_ARCH_LINEAR  /* one fully connected layer on the flattened input: tests, sanity checks */
} rc_arch;
#define RC_ARCH_COUNT 5

typedef enum rc_activation {
    RC_ACTIVATION_AUTO = -1,
    RC_ACTIVATION_SOFTPLUS,
    RC_ACTIVATION_RELU,
    RC_ACTIVATION_SILU /* x * sigmoid(x): DeepMind's Swish */
} rc_activation;
#define RC_ACTIVATION_COUNT 3

/* Input normalisation inside a model (model.mean, model.std): up to this many channels. */
#define RC_MAX_NORM_CHANNELS 4

/* In the reference's evaluation order (Linf, L2, L1). RC_NORM_NONE: attack_norm not given, or
 * both ramp.pair entries for "auto" (left for the trainer to choose). */
typedef enum rc_norm { RC_NORM_NONE = -1, RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1 } rc_norm;
#define RC_NORM_COUNT 3

/* Indexed by the enums above (the config's parser reads values by these names). */
extern const char *const rc_arch_names[RC_ARCH_COUNT];
extern const char *const rc_activation_names[RC_ACTIVATION_COUNT];
extern const char *const rc_norm_names[RC_NORM_COUNT];

/* "unset", "auto", "none" for the negative members; "invalid" out of range. */
const char *rc_arch_name(rc_arch a);
const char *rc_activation_name(rc_activation a);
const char *rc_norm_name(rc_norm n);

/* The architecture or activation called `s` (as rc_*_name writes it); -1 for an unknown name. */
int rc_arch_from_name(const char *s, rc_arch *out);
int rc_activation_from_name(const char *s, rc_activation *out);

/* Whether an architecture is a WideResNet (it has a depth). */
int rc_arch_is_wrn(rc_arch a);

/* What an architecture uses when the config does not say: its activation, its width (the
 * reference's: small-cnn 32-64-128, PreAct ResNet-18 64, a WideResNet's widen factor 10) and
 * depth (WideResNets 28, the others 0). The one table both the config and
 * rc_model_opts_default read. */
typedef struct rc_arch_defaults {
    rc_activation activation;
    int width;
    int depth;
} rc_arch_defaults;
rc_arch_defaults rc_arch_default(rc_arch a);

#endif
