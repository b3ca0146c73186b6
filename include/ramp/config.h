/* The run configuration: a YAML file (configs/README.md documents every key) parsed into a flat
 * struct with every default resolved, so the rest of the program never sees a missing value.
 *
 * Loading validates everything it can before any work starts and reports all problems at once,
 * each as "file:line:column: key.path: message" on its own line. */
#ifndef RAMP_CONFIG_H
#define RAMP_CONFIG_H

#include "ramp/error.h"
#include "ramp/names.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define RC_CONFIG_PATH_MAX 1024
/* One threat model per norm at most. */
#define RC_MAX_THREATS 3

/* Negative members mark a value not given yet; rc_config_finalize replaces every one of them
 * except where noted. */
typedef enum rc_dataset_kind {
    RC_DATASET_UNSET = -1,
    RC_DATASET_FASHION_MNIST,
    RC_DATASET_MNIST,
    RC_DATASET_CIFAR10
} rc_dataset_kind;

typedef enum rc_augment { RC_AUGMENT_AUTO = -1, RC_AUGMENT_NONE, RC_AUGMENT_CROP_FLIP } rc_augment;

typedef enum rc_method {
    RC_METHOD_NATURAL,
    RC_METHOD_AT,
    RC_METHOD_SAT,
    RC_METHOD_AVG,
    RC_METHOD_MAX,
    RC_METHOD_MSD,
    RC_METHOD_EAT,
    RC_METHOD_RAMP
} rc_method;

/* RAMP's outer loss: the MAX term (RAMP.py --max), or the TRADES variant of the WRN-28-10 run
 * (RAMP_wide_resnet.py). */
typedef enum rc_ramp_outer { RC_OUTER_MAX, RC_OUTER_TRADES } rc_ramp_outer;

typedef enum rc_param_groups {
    RC_PARAM_GROUPS_AUTO = -1,
    RC_PARAM_GROUPS_SINGLE,
    RC_PARAM_GROUPS_SPLIT
} rc_param_groups;

typedef enum rc_schedule_kind {
    RC_SCHEDULE_CONSTANT,
    RC_SCHEDULE_PIECEWISE_FT,
    RC_SCHEDULE_STATIC,
    RC_SCHEDULE_SUPERCONVERGE,
    RC_SCHEDULE_PIECEWISE
} rc_schedule_kind;

typedef enum rc_final_protocol {
    RC_FINAL_FULL,
    RC_FINAL_FAST,
    RC_FINAL_NONE,
    RC_FINAL_STANDARD /* AutoAttack's standard version */
} rc_final_protocol;

typedef struct rc_threat {
    rc_norm norm;
    double eps;      /* training radius in pixel units (images in [0, 1]) */
    int steps;       /* iterations of the training attack */
    double eval_eps; /* evaluation radius; 0 before finalize means "same as eps" */
} rc_threat;

/* A list of numbers, one per input channel (model.mean, model.std); n 0: not given. */
typedef struct rc_channel_values {
    int n;
    double v[RC_MAX_NORM_CHANNELS];
} rc_channel_values;

typedef struct rc_config {
    struct {
        rc_arch arch;
        rc_activation activation;
        int width;
        int depth;       /* WideResNets; 0 before finalize: 28; stays 0 for the others */
        int in_channels; /* 0 before finalize: from the dataset */
        int num_classes;
        int input_size; /* 0 before finalize: from the dataset */
        /* input normalisation inside the model, both or neither (dm-wrn: mean 0, std 1 when
         * neither is given) */
        rc_channel_values mean, std;
    } model;
    struct {
        rc_dataset_kind dataset;
        char path[RC_CONFIG_PATH_MAX]; /* "" before finalize: the dataset's default */
        int train_subset;              /* first k training points; 0 = all */
        rc_augment augment;
        int batch_size;
        int eval_batch_size;
    } data;
    rc_method method;
    rc_threat threats[RC_MAX_THREATS];
    int n_threats;
    rc_norm attack_norm; /* method at: the attacked norm; RC_NORM_NONE otherwise */
    /* methods sat and eat: the norms a batch's attack is drawn from (resolved: sat all threat
     * models, eat linf and l1 as the published E-AT); n_train_norms 0 for other methods */
    rc_norm train_norms[RC_MAX_THREATS];
    int n_train_norms;
    struct {
        rc_norm pair[2]; /* [q, r] (source, target); both RC_NORM_NONE for auto */
        /* pair auto: the l_p-AT checkpoint of each norm ("" = none), indexed by rc_norm */
        char at_checkpoints[3][RC_CONFIG_PATH_MAX];
        double lambda;
        double beta;
        bool gp;
        rc_ramp_outer outer;
        double trades_beta; /* outer trades: weight of KL(p_clean || p_best) */
    } ramp;
    /* method msd (robust_union's msd_v0): step sizes per norm and iterations; radii from
     * threat_models */
    struct {
        double alpha_linf, alpha_l2, alpha_l1;
        int steps;
    } msd;
    struct {
        double lr;
        double momentum;
        double weight_decay;
        bool nesterov;
        rc_param_groups param_groups;
        bool lr_all_groups; /* false: the schedule updates only group 0, as the reference does */
    } optimizer;
    struct {
        rc_schedule_kind name;
        int epochs;
        int static_drop_epoch;
    } schedule;
    char init[RC_CONFIG_PATH_MAX]; /* checkpoint to start from; "" = from scratch */
    uint64_t seed;
    struct {
        int every; /* epochs between in-training evaluations; 0 = never */
        int n;
        rc_final_protocol final_protocol;
        int final_n;
    } eval;
    struct {
        char dir[RC_CONFIG_PATH_MAX]; /* "" before finalize: runs/<config name> */
        int checkpoint_every;      /* epochs between checkpoints */
        double checkpoint_minutes; /* also mid-epoch after this long; 0 = only at epoch ends */
    } output;
} rc_config;

/* Every default that does not depend on other keys; the rest stay unset for finalize. Zeroes the
 * whole struct first, so two configs with equal settings compare equal with memcmp. */
void rc_config_defaults(rc_config *cfg);

/* Defaults, then the file, then rc_config_finalize. On failure e->msg holds every problem found
 * (up to 20, one per line, each "path:line:column: key.path: message") and *cfg is unspecified. */
int rc_config_load(rc_config *cfg, const char *path, rc_err *e);
/* rc_config_load on the file's text already in memory (len bytes, no terminator needed), which
 * rc_config_load reads and hands to it. `path` names the file in messages and gives output.dir
 * its default. */
int rc_config_load_buffer(rc_config *cfg, const char *path, const char *text, size_t len,
                          rc_err *e);

/* Resolve what depends on other keys (in_channels, input_size, data.path, augment, activation,
 * param_groups, eval_eps, attack_norm when there is a single threat model, output.dir, which
 * becomes runs/run for a config not read from a file) and check every value and every
 * combination, including that data.path and init exist. Errors as for rc_config_load, without
 * file positions. Calling it again on a finalized config changes nothing. */
int rc_config_finalize(rc_config *cfg, rc_err *e);

/* The config as YAML that rc_config_load reads back into an identical struct; its first line is
 * RC_CONFIG_PRINT_HEADER (how a run tells its own config.yaml from a user's). */
#define RC_CONFIG_PRINT_HEADER "# ramp-cl configuration with every default resolved"
void rc_config_print(FILE *f, const rc_config *cfg);

/* Index into cfg->threats of the threat model for `norm`, or -1. */
int rc_config_find_threat(const rc_config *cfg, rc_norm norm);

/* The names used in the YAML file; "auto", "unset" or "none" for the negative members. */
const char *rc_dataset_kind_name(rc_dataset_kind d);
const char *rc_augment_name(rc_augment a);
const char *rc_method_name(rc_method m);
const char *rc_param_groups_name(rc_param_groups p);
const char *rc_schedule_kind_name(rc_schedule_kind s);
const char *rc_final_protocol_name(rc_final_protocol p);

#endif
