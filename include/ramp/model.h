/* Models as a list of layers over device tensors, with PyTorch's state-dict names, shapes and
 * default initialisation. Parameters, their gradients and the optimiser's momentum each live in
 * one device arena (weight-decayed tensors first, then BN parameters and biases), so an optimiser
 * step is one launch per parameter group. Everything is allocated once for the largest batch. */
#ifndef RAMP_MODEL_H
#define RAMP_MODEL_H

#include "ramp/conv.h"
#include "ramp/names.h"
#include "ramp/rng.h"

#include <stdint.h>

typedef struct rc_model_opts {
    rc_arch arch;
    rc_activation activation; /* preact-resnet18 blocks (its head is always ReLU); every
                               * activation of a WideResNet */
    int width; /* base width: small-cnn 32, preact-resnet18 64; WideResNets' widen factor */
    int depth; /* WideResNets: 6n + 4 (n blocks per group); 0 for the others */
    int in_channels;
    int num_classes;
    int input_size; /* square inputs */
    /* (x - mean[c]) / std[c] before the first layer, as RobustBench's models normalise inside:
     * state-dict buffers `mu` and `sigma` [1,C,1,1] (RobustBench's wrappers), for dm-wrn `mean`
     * and `std` [C,1,1], which it always has (mean 0, std 1 when it does not normalise). */
    int normalize;
    float mean[RC_MAX_NORM_CHANNELS], std[RC_MAX_NORM_CHANNELS];
} rc_model_opts;

/* The defaults for an architecture (PyTorch reference widths, WRN-28-10, no normalisation). */
void rc_model_opts_default(rc_model_opts *o, rc_arch arch, int in_channels, int input_size);

/* Whether two option sets build the same model with the same input normalisation. */
int rc_model_opts_equal(const rc_model_opts *a, const rc_model_opts *b);

/* The state-dict names of an architecture's input normalisation buffers and their shape (its
 * ndim returned): "mu" and "sigma" [1,c,1,1], dm-wrn's "mean" and "std" [c,1,1]. */
int rc_model_norm_buffers(rc_arch a, int c, const char **mean, const char **std, int shape[4]);

/* "wrn-28-10", "dm-wrn-70-16", "preact-resnet18": the architecture with its depth and width. */
const char *rc_model_name(const rc_model_opts *o, char *buf, size_t n);

typedef enum rc_param_kind {
    RC_P_WEIGHT,    /* conv or linear weight: weight-decayed */
    RC_P_BIAS,      /* linear/conv bias: no decay when groups are split */
    RC_P_BN_WEIGHT, /* BN gamma: no decay when groups are split */
    RC_P_BN_BIAS,   /* BN beta */
    RC_P_RUNNING_MEAN,
    RC_P_RUNNING_VAR,
    RC_P_NUM_BATCHES, /* BN num_batches_tracked: an I64 scalar kept on the host */
    RC_P_BUFFER       /* the input mean and std: set from the options, never trained */
} rc_param_kind;

/* One state-dict entry. Trainable ones are views into the parameter/gradient arenas. */
typedef struct rc_param {
    char name[96];
    rc_param_kind kind;
    int ndim;
    int shape[4];
    size_t numel;
    int fan_in;    /* for default initialisation */
    size_t offset; /* floats into its arena (params or BN state) */
    cl_mem val, grad;
} rc_param;

typedef enum rc_op {
    RC_OP_CONV,
    RC_OP_BN,
    RC_OP_ACT,
    RC_OP_ADD,
    RC_OP_GAP,
    RC_OP_LINEAR,
    RC_OP_NORMALIZE /* (x - mean[c]) / std[c], params mean and std */
} rc_op;

typedef struct rc_node {
    rc_op op;
    int in, in2, out;          /* tensor indices (in2: second addend) */
    int acc_in, acc_in2;       /* backward adds into the input gradient (set by rc_model_build) */
    int p[4];                  /* params: conv w,b | bn gamma,beta,rmean,rvar | linear w,b */
    rc_conv_shape conv;        /* batch set per call */
    rc_activation act;
    cl_mem bn_mean, bn_invstd; /* batch statistics kept for backward */
    cl_mem bn_dgamma, bn_dbeta; /* this pass's BN parameter gradients (dx needs them unsummed) */
    /* Eval-mode fusion on the implicit-GEMM convolution (see plan_fusion in src/nn/model.c):
     * `fuse` marks a convolution that runs with the batch norm and ReLU after it as one kernel,
     * `into` >= 0 a convolution whose data gradient goes straight to the output gradient of the
     * fused convolution `into` (its BN and ReLU backward applied), `dz_written` a fused
     * convolution whose output gradient that consumer writes. */
    int fuse, into, dz_written;
} rc_node;

/* An activation tensor [batch][c][h][w] and its gradient. Tensor 0 is the model's input. */
typedef struct rc_tensor {
    int c, h, w;
    cl_mem val, grad;
} rc_tensor;

typedef struct rc_model {
    rc_model_opts opts;
    int max_batch;
    rc_param *params;
    int n_params, cap_params;
    rc_node *nodes;
    int n_nodes, cap_nodes;
    rc_tensor *tensors;
    int n_tensors, cap_tensors;
    size_t n_train;       /* floats in the parameter arena (including alignment padding) */
    size_t n_decay;       /* floats of its weight-decayed prefix */
    size_t n_state;       /* floats in the BN state arena */
    cl_mem arena, grads, momentum, state;
    rc_workspace ws;
    cl_mem bn_part_a, bn_part_b; /* BN reduction scratch, shared */
    int64_t bn_batches;          /* num_batches_tracked of every BN layer */
    int fused;                   /* the last forward ran the fused eval-mode layers */
    struct rc_model *base;       /* a view: parameters and BN state are base's (see below) */
} rc_model;

/* Build the layer list and allocate every device buffer for batches up to max_batch. */
int rc_model_create(rc_ctx *ctx, rc_model *m, const rc_model_opts *o, int max_batch, rc_err *e);
void rc_model_free(rc_model *m);

/* A second set of activations over the same parameters, gradients and BN running statistics
 * as `base`: losses that combine several forward passes (RAMP's three) keep each pass's
 * activations for its backward. Train-mode forwards of a view count in base's bn_batches. */
int rc_model_create_view(rc_ctx *ctx, rc_model *view, rc_model *base, rc_err *e);

/* What a backward does with the parameter gradients. */
enum { RC_GRAD_NONE = 0, RC_GRAD_WRITE = 1, RC_GRAD_ADD = 2 };

/* PyTorch's default initialisation (U(±1/sqrt(fan_in)) for weights and biases; BN 1, 0, 0, 1);
 * wrn's convolutions N(0, 2 / fan_out) and classifier bias 0, as its reference initialises them. */
int rc_model_init(rc_ctx *ctx, rc_model *m, uint64_t seed, rc_err *e);

/* The input tensor (write images here) and the logits [batch][num_classes]. */
cl_mem rc_model_input(const rc_model *m);
cl_mem rc_model_logits(const rc_model *m);
cl_mem rc_model_logits_grad(const rc_model *m);
cl_mem rc_model_input_grad(const rc_model *m);

/* Forward pass of `n` <= max_batch images; train mode uses and updates BN batch statistics. */
int rc_model_forward(rc_ctx *ctx, rc_model *m, int train, int n, rc_err *e);
/* Backward from the logits gradient (rc_model_logits_grad). `params` (RC_GRAD_*) writes or adds
 * to the parameter gradients; `input` writes the input gradient. `train` must match the
 * forward's mode. */
int rc_model_backward(rc_ctx *ctx, rc_model *m, int train, int n, int params, int input,
                      rc_err *e);

/* Look a state-dict entry up by name; NULL if there is none. */
rc_param *rc_model_param(rc_model *m, const char *name);
/* Copy a state-dict entry between host and device (floats; not for num_batches_tracked). */
int rc_param_write(rc_ctx *ctx, const rc_param *p, const float *src, rc_err *e);
int rc_param_read(rc_ctx *ctx, const rc_param *p, float *dst, rc_err *e);

/* Multiply-add count of one forward pass per image (for GFLOP/s figures). */
double rc_model_forward_flops(const rc_model *m);

#endif
