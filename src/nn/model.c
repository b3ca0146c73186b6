/* Model construction (small-cnn, PreAct ResNet-18, the WideResNets), buffers, initialisation,
 * forward, backward. */
#include "ramp/model.h"
#include "ramp/batchnorm.h"
#include "ramp/conv.h"
#include "ramp/dist.h"
#include "ramp/elementwise.h"
#include "ramp/launch.h"
#include "ramp/linear.h"
#include "ramp/loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rc_model_opts_default(rc_model_opts *o, rc_arch arch, int in_channels, int input_size) {
    memset(o, 0, sizeof *o);
    o->arch = arch;
    const rc_arch_defaults d = rc_arch_default(arch);
    o->activation = d.activation;
    o->width = d.width;
    o->depth = d.depth;
    o->in_channels = in_channels;
    o->num_classes = 10;
    o->input_size = input_size;
    o->normalize = arch == RC_ARCH_DM_WRN; /* with mean 0, std 1 */
    for (int c = 0; c < RC_MAX_NORM_CHANNELS; c++) o->std[c] = 1.0f;
}

int rc_model_opts_equal(const rc_model_opts *a, const rc_model_opts *b) {
    if (a->arch != b->arch || a->activation != b->activation || a->width != b->width ||
        a->depth != b->depth || a->in_channels != b->in_channels ||
        a->num_classes != b->num_classes || a->input_size != b->input_size ||
        a->normalize != b->normalize)
        return 0;
    for (int c = 0; a->normalize && c < a->in_channels && c < RC_MAX_NORM_CHANNELS; c++)
        if (a->mean[c] != b->mean[c] || a->std[c] != b->std[c]) return 0;
    return 1;
}

const char *rc_model_name(const rc_model_opts *o, char *buf, size_t n) {
    if (rc_arch_is_wrn(o->arch))
        snprintf(buf, n, "%s-%d-%d", rc_arch_name(o->arch), o->depth, o->width);
    else
        snprintf(buf, n, "%s", rc_arch_name(o->arch));
    return buf;
}

/* ---- construction --------------------------------------------------------------------------- */

#define GROW(arr, n, cap)                                                                         \
    do {                                                                                          \
        if ((n) == (cap)) {                                                                       \
            int c_ = (cap) ? 2 * (cap) : 32;                                                      \
            void *g_ = realloc(arr, (size_t)c_ * sizeof *(arr));                                  \
            if (!g_) return -1;                                                                   \
            (arr) = g_;                                                                           \
            (cap) = c_;                                                                           \
        }                                                                                         \
    } while (0)

static int new_tensor(rc_model *m, int c, int h, int w) {
    GROW(m->tensors, m->n_tensors, m->cap_tensors);
    m->tensors[m->n_tensors] = (rc_tensor){.c = c, .h = h, .w = w};
    return m->n_tensors++;
}

static int add_param(rc_model *m, const char *prefix, const char *name, rc_param_kind kind,
                     int ndim, const int *shape, int fan_in) {
    GROW(m->params, m->n_params, m->cap_params);
    rc_param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s%s", prefix, name);
    p->kind = kind;
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= (size_t)shape[i];
    }
    p->fan_in = fan_in;
    return m->n_params++;
}

static int add_conv_param(rc_model *m, const char *name, int oc, int ic, int k) {
    int shape[4] = {oc, ic, k, k};
    return add_param(m, name, "", RC_P_WEIGHT, 4, shape, ic * k * k);
}

/* BN entries in state-dict order; returns the index of `weight` (then bias, mean, var, count). */
static int add_bn_params(rc_model *m, const char *prefix, int c) {
    int first = add_param(m, prefix, "weight", RC_P_BN_WEIGHT, 1, &c, 0);
    if (first < 0 || add_param(m, prefix, "bias", RC_P_BN_BIAS, 1, &c, 0) < 0 ||
        add_param(m, prefix, "running_mean", RC_P_RUNNING_MEAN, 1, &c, 0) < 0 ||
        add_param(m, prefix, "running_var", RC_P_RUNNING_VAR, 1, &c, 0) < 0 ||
        add_param(m, prefix, "num_batches_tracked", RC_P_NUM_BATCHES, 0, NULL, 0) < 0)
        return -1;
    return first;
}

static int add_node(rc_model *m, rc_node nd) {
    GROW(m->nodes, m->n_nodes, m->cap_nodes);
    m->nodes[m->n_nodes++] = nd;
    return nd.out;
}

/* pad_after: rc_conv_shape_pad_after's extra zeros after the input */
static int node_conv(rc_model *m, int in, int pw, int stride, int pad, int pad_after) {
    if (in < 0) return -1;
    const rc_tensor *t = &m->tensors[in];
    const rc_param *w = &m->params[pw];
    rc_node nd = {.op = RC_OP_CONV, .in = in, .in2 = -1, .p = {pw, -1, -1, -1}};
    rc_conv_shape_init(&nd.conv, 0, t->c, t->h, t->w, w->shape[0], w->shape[2], stride, pad);
    rc_conv_shape_pad_after(&nd.conv, pad_after);
    nd.out = new_tensor(m, nd.conv.oc, nd.conv.oh, nd.conv.ow);
    return nd.out < 0 ? -1 : add_node(m, nd);
}

static int node_same_shape(rc_model *m, rc_op op, int in, int in2, const int *p,
                           rc_activation act) {
    if (in < 0 || (op == RC_OP_ADD && in2 < 0)) return -1;
    const rc_tensor *t = &m->tensors[in];
    rc_node nd = {.op = op, .in = in, .in2 = in2, .act = act, .p = {-1, -1, -1, -1}};
    if (p) memcpy(nd.p, p, sizeof nd.p);
    nd.out = new_tensor(m, t->c, t->h, t->w);
    return nd.out < 0 ? -1 : add_node(m, nd);
}

static int node_bn(rc_model *m, int in, int pbn) {
    int p[4] = {pbn, pbn + 1, pbn + 2, pbn + 3};
    return node_same_shape(m, RC_OP_BN, in, -1, p, RC_ACTIVATION_RELU);
}

static int node_act(rc_model *m, int in, rc_activation a) {
    return node_same_shape(m, RC_OP_ACT, in, -1, NULL, a);
}

static int node_add(rc_model *m, int a, int b) {
    return node_same_shape(m, RC_OP_ADD, a, b, NULL, RC_ACTIVATION_RELU);
}

static int node_gap(rc_model *m, int in) {
    if (in < 0) return -1;
    rc_node nd = {.op = RC_OP_GAP, .in = in, .in2 = -1, .p = {-1, -1, -1, -1}};
    nd.out = new_tensor(m, m->tensors[in].c, 1, 1);
    return nd.out < 0 ? -1 : add_node(m, nd);
}

int rc_model_norm_buffers(rc_arch a, int c, const char **mean, const char **std, int shape[4]) {
    if (a == RC_ARCH_DM_WRN) {
        *mean = "mean", *std = "std";
        shape[0] = c, shape[1] = shape[2] = 1;
        return 3;
    }
    *mean = "mu", *std = "sigma";
    shape[0] = shape[2] = shape[3] = 1, shape[1] = c;
    return 4;
}

/* The input normalisation of the options on the input tensor x, with its buffers named and
 * shaped as the reference models have them. Returns the tensor the network reads. */
static int add_normalize(rc_model *m, int x) {
    const rc_model_opts *o = &m->opts;
    if (x < 0 || !o->normalize) return x;
    const char *mean, *std;
    int shape[4];
    int nd = rc_model_norm_buffers(o->arch, o->in_channels, &mean, &std, shape);
    int pm = add_param(m, mean, "", RC_P_BUFFER, nd, shape, 0);
    int ps = add_param(m, std, "", RC_P_BUFFER, nd, shape, 0);
    if (pm < 0 || ps < 0) return -1;
    const int p[4] = {pm, ps, -1, -1};
    return node_same_shape(m, RC_OP_NORMALIZE, x, -1, p, RC_ACTIVATION_RELU);
}

/* Linear over the flattened input (NCHW order), with bias. Params registered here. */
static int node_linear(rc_model *m, int in, const char *prefix, int out_features) {
    if (in < 0) return -1;
    const rc_tensor *t = &m->tensors[in];
    int in_features = t->c * t->h * t->w;
    int ws[2] = {out_features, in_features};
    char name[96];
    snprintf(name, sizeof name, "%sweight", prefix);
    int pw = add_param(m, name, "", RC_P_WEIGHT, 2, ws, in_features);
    snprintf(name, sizeof name, "%sbias", prefix);
    int pb = add_param(m, name, "", RC_P_BIAS, 1, &out_features, in_features);
    if (pw < 0 || pb < 0) return -1;
    rc_node nd = {.op = RC_OP_LINEAR, .in = in, .in2 = -1, .p = {pw, pb, -1, -1}};
    nd.out = new_tensor(m, out_features, 1, 1);
    return nd.out < 0 ? -1 : add_node(m, nd);
}

/* A linear classifier on the flattened input: optimal attacks have closed forms (tests). */
static int build_linear(rc_model *m) {
    const rc_model_opts *o = &m->opts;
    int x = add_normalize(m, new_tensor(m, o->in_channels, o->input_size, o->input_size));
    return x < 0 ? -1 : node_linear(m, x, "linear.", o->num_classes);
}

static int build_small_cnn(rc_model *m) {
    const rc_model_opts *o = &m->opts;
    int w = o->width;
    int x = add_normalize(m, new_tensor(m, o->in_channels, o->input_size, o->input_size));
    int c1 = add_conv_param(m, "conv1.weight", w, o->in_channels, 3);
    int b1 = add_bn_params(m, "bn1.", w);
    int c2 = add_conv_param(m, "conv2.weight", 2 * w, w, 3);
    int b2 = add_bn_params(m, "bn2.", 2 * w);
    int c3 = add_conv_param(m, "conv3.weight", 4 * w, 2 * w, 3);
    int b3 = add_bn_params(m, "bn3.", 4 * w);
    if (x < 0 || c1 < 0 || b1 < 0 || c2 < 0 || b2 < 0 || c3 < 0 || b3 < 0) return -1;
    int t = node_act(m, node_bn(m, node_conv(m, x, c1, 1, 1, 0), b1), RC_ACTIVATION_RELU);
    t = node_act(m, node_bn(m, node_conv(m, t, c2, 2, 1, 0), b2), RC_ACTIVATION_RELU);
    t = node_act(m, node_bn(m, node_conv(m, t, c3, 2, 1, 0), b3), RC_ACTIVATION_RELU);
    return node_linear(m, t, "linear.", o->num_classes);
}

/* A pre-activation residual block: h = act(bn1(x)); out = conv2(act(bn2(conv1(h)))) + shortcut,
 * the shortcut a 1x1 convolution of h (not of x) where the block has one, else x. The PreAct
 * ResNet-18 of RAMP and E-AT (fast_models.py), RobustBench's WideResNet (wide_resnet.py: its
 * equalInOut branches compute the same) and DeepMind's (dm_wide_resnet.py) differ in the
 * state-dict names, in when there is a shortcut and in DeepMind's padding. */
typedef struct block_kind {
    const char *bn1, *conv1, *bn2, *conv2, *shortcut; /* after the block's prefix */
    int shortcut_on_stride; /* a projection also where only the stride changes the shape */
    int same_pad;           /* stride-2 conv1 on h padded (0, 1, 0, 1), not 1 all round */
} block_kind;

static const block_kind PREACT_BLOCK = {
    "bn1.", "conv1.weight", "bn2.", "conv2.weight", "shortcut.0.weight", 1, 0};
static const block_kind WRN_BLOCK = {
    "bn1.", "conv1.weight", "bn2.", "conv2.weight", "convShortcut.weight", 0, 0};
static const block_kind DM_BLOCK = {
    "batchnorm_0.", "conv_0.weight", "batchnorm_1.", "conv_1.weight", "shortcut.weight", 0, 1};

/* Params registered in PyTorch's order: bn1, conv1, bn2, conv2, shortcut. */
static int preact_block(rc_model *m, const block_kind *k, int x, const char *prefix, int out_c,
                        int stride) {
    int in_c = m->tensors[x].c;
    char name[96];
    snprintf(name, sizeof name, "%s%s", prefix, k->bn1);
    int b1 = add_bn_params(m, name, in_c);
    snprintf(name, sizeof name, "%s%s", prefix, k->conv1);
    int c1 = add_conv_param(m, name, out_c, in_c, 3);
    snprintf(name, sizeof name, "%s%s", prefix, k->bn2);
    int b2 = add_bn_params(m, name, out_c);
    snprintf(name, sizeof name, "%s%s", prefix, k->conv2);
    int c2 = add_conv_param(m, name, out_c, out_c, 3);
    int sc = -1;
    if ((k->shortcut_on_stride && stride != 1) || in_c != out_c) {
        snprintf(name, sizeof name, "%s%s", prefix, k->shortcut);
        if ((sc = add_conv_param(m, name, out_c, in_c, 1)) < 0) return -1;
    }
    if (b1 < 0 || c1 < 0 || b2 < 0 || c2 < 0) return -1;
    rc_activation a = m->opts.activation;
    int h = node_act(m, node_bn(m, x, b1), a);
    int shortcut = sc >= 0 ? node_conv(m, h, sc, stride, 0, 0) : x;
    int same = k->same_pad && stride == 2;
    int t = node_conv(m, h, c1, stride, same ? 0 : 1, same);
    t = node_conv(m, node_act(m, node_bn(m, t, b2), a), c2, 1, 1, 0);
    return node_add(m, t, shortcut);
}

/* The residual networks: [normalisation,] a 3x3 stem convolution, groups of pre-activation
 * blocks (the first of each with the group's stride), then BN, activation, global average
 * pooling and a linear classifier. (The WideResNets' avg_pool2d(8) on their 8x8 map of a 32x32
 * input is the global average.) */
typedef struct resnet_kind {
    const block_kind *block;
    const char *stem, *block_fmt, *head_bn, *head_fc; /* block_fmt: "%d" group, "%d" block */
    int first_group;                                  /* the first group's number in names */
    int head_relu; /* ReLU in the head whatever the blocks use (PreAct ResNet-18) */
} resnet_kind;

static const resnet_kind PREACT_RESNET = {
    &PREACT_BLOCK, "conv1.weight", "layer%d.%d.", "bn.", "linear.", 1, 1};
static const resnet_kind WRN = {&WRN_BLOCK, "conv1.weight", "block%d.layer.%d.", "bn1.", "fc.", 1,
                                0};
static const resnet_kind DM_WRN = {
    &DM_BLOCK, "init_conv.weight", "layer.%d.block.%d.", "batchnorm.", "logits.", 0, 0};

static int build_resnet(rc_model *m, const resnet_kind *k, int stem_c, int groups,
                        const int *widths, const int *strides, int blocks) {
    const rc_model_opts *o = &m->opts;
    int x = add_normalize(m, new_tensor(m, o->in_channels, o->input_size, o->input_size));
    int c1 = add_conv_param(m, k->stem, stem_c, o->in_channels, 3);
    if (x < 0 || c1 < 0) return -1;
    int t = node_conv(m, x, c1, 1, 1, 0);
    for (int g = 0; g < groups; g++)
        for (int b = 0; b < blocks; b++) {
            char prefix[48];
            snprintf(prefix, sizeof prefix, k->block_fmt, g + k->first_group, b);
            t = preact_block(m, k->block, t, prefix, widths[g], b == 0 ? strides[g] : 1);
            if (t < 0) return -1;
        }
    int bn = add_bn_params(m, k->head_bn, m->tensors[t].c);
    if (bn < 0) return -1;
    t = node_act(m, node_bn(m, t, bn), k->head_relu ? RC_ACTIVATION_RELU : o->activation);
    return node_linear(m, node_gap(m, t), k->head_fc, o->num_classes);
}

static int build_preact_resnet18(rc_model *m) {
    int w = m->opts.width;
    const int widths[4] = {w, 2 * w, 4 * w, 8 * w}, strides[4] = {1, 2, 2, 2};
    return build_resnet(m, &PREACT_RESNET, w, 4, widths, strides, 2);
}

/* WideResNet-depth-k: a 16-channel stem, groups of 16k, 32k and 64k channels, (depth - 4) / 6
 * blocks each. */
static int build_wrn(rc_model *m, const resnet_kind *k) {
    int w = m->opts.width;
    const int widths[3] = {16 * w, 32 * w, 64 * w}, strides[3] = {1, 2, 2};
    return build_resnet(m, k, 16, 3, widths, strides, (m->opts.depth - 4) / 6);
}

/* ---- buffers -------------------------------------------------------------------------------- */

static int trainable(rc_param_kind k) {
    return k == RC_P_WEIGHT || k == RC_P_BIAS || k == RC_P_BN_WEIGHT || k == RC_P_BN_BIAS;
}

static int sub_buffer(cl_mem parent, size_t off, size_t n, cl_mem *out, const char *name,
                      rc_err *e) {
    cl_buffer_region r = {off * sizeof(float), n * sizeof(float)};
    cl_int s;
    *out = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &s);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clCreateSubBuffer", s, "tensor %s, %zu floats at %zu", name, n, off);
    return 0;
}

/* A view takes base's parameter and state buffers (retained, so freeing is uniform). */
static int share_params(rc_model *m, rc_model *base) {
    cl_mem *mine[] = {&m->arena, &m->grads, &m->momentum, &m->state};
    cl_mem theirs[] = {base->arena, base->grads, base->momentum, base->state};
    for (int i = 0; i < 4; i++) {
        clRetainMemObject(theirs[i]);
        *mine[i] = theirs[i];
    }
    m->n_train = base->n_train, m->n_decay = base->n_decay, m->n_state = base->n_state;
    for (int i = 0; i < m->n_params; i++) {
        rc_param *p = &m->params[i];
        const rc_param *q = &base->params[i];
        p->offset = q->offset;
        if ((p->val = q->val)) clRetainMemObject(p->val);
        if ((p->grad = q->grad)) clRetainMemObject(p->grad);
    }
    return 0;
}

/* Parameter, gradient, momentum and BN state arenas, and each tensor's view into them. */
static int alloc_params(rc_ctx *ctx, rc_model *m, rc_err *e) {
    size_t align = ctx->dev.base_addr_align / sizeof(float);
    if (align < 1) align = 1;
#define ALIGN_UP(x) (((x) + align - 1) / align * align)
    /* Weight-decayed tensors first, so each parameter group is one contiguous range. */
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < m->n_params; i++) {
            rc_param *p = &m->params[i];
            if (!trainable(p->kind) || (p->kind == RC_P_WEIGHT) != (pass == 0)) continue;
            p->offset = off;
            off = ALIGN_UP(off + p->numel);
        }
        if (pass == 0) m->n_decay = off;
    }
    m->n_train = off;
    off = 0;
    for (int i = 0; i < m->n_params; i++) {
        rc_param *p = &m->params[i];
        if (p->kind != RC_P_RUNNING_MEAN && p->kind != RC_P_RUNNING_VAR) continue;
        p->offset = off;
        off = ALIGN_UP(off + p->numel);
    }
    m->n_state = off;
#undef ALIGN_UP
    size_t nt = m->n_train ? m->n_train : 1, ns = m->n_state ? m->n_state : 1;
    if (rc_buffer_create(ctx, nt * 4, "parameters", &m->arena, e) ||
        rc_buffer_create(ctx, nt * 4, "parameter gradients", &m->grads, e) ||
        rc_buffer_create(ctx, nt * 4, "momentum", &m->momentum, e) ||
        rc_buffer_create(ctx, ns * 4, "BN running statistics", &m->state, e) ||
        rc_fill(ctx, m->arena, 0, nt, 0.0f, e) || rc_fill(ctx, m->grads, 0, nt, 0.0f, e) ||
        rc_fill(ctx, m->momentum, 0, nt, 0.0f, e) || rc_fill(ctx, m->state, 0, ns, 0.0f, e))
        return -1;
    for (int i = 0; i < m->n_params; i++) {
        rc_param *p = &m->params[i];
        if (trainable(p->kind)) {
            if (sub_buffer(m->arena, p->offset, p->numel, &p->val, p->name, e) ||
                sub_buffer(m->grads, p->offset, p->numel, &p->grad, p->name, e))
                return -1;
        } else if (p->kind == RC_P_BUFFER) {
            if (rc_buffer_create(ctx, p->numel * 4, p->name, &p->val, e)) return -1;
        } else if (p->kind != RC_P_NUM_BATCHES) {
            if (sub_buffer(m->state, p->offset, p->numel, &p->val, p->name, e)) return -1;
        }
    }
    for (int i = 0; i < m->n_nodes; i++) {
        const rc_node *nd = &m->nodes[i];
        if (nd->op == RC_OP_NORMALIZE &&
            (rc_param_write(ctx, &m->params[nd->p[0]], m->opts.mean, e) ||
             rc_param_write(ctx, &m->params[nd->p[1]], m->opts.std, e)))
            return -1;
    }
    return 0;
}

/* Activations and their gradients for max_batch images, layer scratch and the workspace. */
static int alloc_activations(rc_ctx *ctx, rc_model *m, rc_err *e) {
    size_t B = (size_t)m->max_batch;
    for (int i = 0; i < m->n_tensors; i++) {
        rc_tensor *t = &m->tensors[i];
        size_t n = B * (size_t)t->c * t->h * t->w, ng = n;
        for (int k = 0; k < m->n_nodes; k++) /* a fused convolution's padded output gradient */
            if (m->nodes[k].fuse && m->nodes[k].out == i) {
                rc_grad_layout l;
                rc_conv_shape s = m->nodes[k].conv;
                s.n = m->max_batch;
                if (rc_conv_dz_layout(ctx, &s, &l, e)) return -1;
                if (B * (size_t)l.n_stride > ng) ng = B * (size_t)l.n_stride;
            }
        char what[64];
        snprintf(what, sizeof what, "activation %d (%dx%dx%dx%d)", i, m->max_batch, t->c, t->h,
                 t->w);
        if (rc_buffer_create(ctx, n * 4, what, &t->val, e) ||
            rc_buffer_create(ctx, ng * 4, what, &t->grad, e))
            return -1;
    }
    size_t col = 1, z = 1, part = 1;
    for (int i = 0; i < m->n_nodes; i++) {
        rc_node *nd = &m->nodes[i];
        if (nd->op == RC_OP_CONV) {
            rc_conv_shape s = nd->conv;
            s.n = m->max_batch;
            size_t c, zz;
            rc_conv_workspace_need(&s, &c, &zz);
            if (c > col) col = c;
            if (zz > z) z = zz;
        } else if (nd->op == RC_OP_BN) {
            size_t c = (size_t)m->tensors[nd->in].c;
            if (c * B > part) part = c * B;
            if (rc_buffer_create(ctx, c * 4, "BN batch mean", &nd->bn_mean, e) ||
                rc_buffer_create(ctx, c * 4, "BN batch inverse std", &nd->bn_invstd, e) ||
                rc_buffer_create(ctx, c * 4, "BN weight gradient", &nd->bn_dgamma, e) ||
                rc_buffer_create(ctx, c * 4, "BN bias gradient", &nd->bn_dbeta, e))
                return -1;
        }
    }
    if (rc_workspace_alloc(ctx, &m->ws, col, z, e) ||
        rc_buffer_create(ctx, part * 4, "BN scratch", &m->bn_part_a, e) ||
        rc_buffer_create(ctx, part * 4, "BN scratch", &m->bn_part_b, e))
        return -1;
    return 0;
}

/* Which backward writes must add to their input gradient: a tensor read by several layers gets
 * its first gradient written (in reverse order) and the rest added. */
static void plan_accumulation(rc_model *m) {
    char *written = calloc((size_t)m->n_tensors, 1);
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        rc_node *nd = &m->nodes[i];
        nd->acc_in = written[nd->in];
        written[nd->in] = 1;
        if (nd->in2 >= 0) {
            nd->acc_in2 = written[nd->in2];
            written[nd->in2] = 1;
        }
    }
    free(written);
}

/* Eval mode on the implicit-GEMM convolution (CPU devices): a convolution followed by batch norm
 * and ReLU, whose intermediate tensors nothing else reads, runs as one kernel (the intermediates
 * are then not written). In backward, a convolution that is the only reader of such a block's
 * output writes the block's convolution-output gradient itself (the BN and ReLU backward in its
 * epilogue); otherwise one element-wise kernel does. Those gradients are kept in the layout the
 * convolution's backward reads (rc_conv_dz_layout). The fused path computes input gradients
 * only (what attacks need). */
static int plan_fusion(rc_ctx *ctx, rc_model *m, rc_err *e) {
    int *readers = calloc((size_t)m->n_tensors, sizeof *readers);
    if (!readers) return rc_err_set(e, "out of host memory planning model %s",
                                    rc_arch_name(m->opts.arch));
    for (int i = 0; i < m->n_nodes; i++) {
        rc_node *nd = &m->nodes[i];
        readers[nd->in]++;
        if (nd->in2 >= 0) readers[nd->in2]++;
        nd->fuse = nd->dz_written = 0;
        nd->into = -1;
    }
    int r = 0;
    for (int i = 0; i + 2 < m->n_nodes && r >= 0; i++) {
        rc_node *c = &m->nodes[i], *b = c + 1, *a = c + 2;
        if (c->op != RC_OP_CONV || b->op != RC_OP_BN || b->in != c->out || a->op != RC_OP_ACT ||
            a->act != RC_ACTIVATION_RELU || a->in != b->out || readers[c->out] != 1 ||
            readers[b->out] != 1)
            continue;
        rc_conv_shape s = c->conv;
        s.n = m->max_batch;
        c->fuse = (r = rc_conv_implicit_ok(ctx, &s, 0, e)) > 0;
    }
    /* a fused convolution that reads a fused block's output (its only reader) and whose data
     * gradient is an implicit GEMM writes that block's gradient */
    for (int k = 0; k < m->n_nodes && r >= 0; k++) {
        rc_node *nd = &m->nodes[k];
        if (!nd->fuse || readers[nd->in] != 1) continue;
        for (int h = 0; h < k; h++) {
            if (!m->nodes[h].fuse || m->nodes[h + 2].out != nd->in) continue;
            rc_conv_shape s = nd->conv;
            s.n = m->max_batch;
            if ((r = rc_conv_implicit_ok(ctx, &s, 1, e)) > 0) {
                nd->into = h;
                m->nodes[h].dz_written = 1;
            }
        }
    }
    free(readers);
    return r < 0 ? -1 : 0;
}

static int check_opts(const rc_model_opts *o, int max_batch, rc_err *e) {
    char name[64];
    rc_model_name(o, name, sizeof name);
    if (o->arch < 0 || o->arch >= RC_ARCH_COUNT || max_batch < 1 || o->width < 1 ||
        o->in_channels < 1 || o->num_classes < 2 || o->input_size < 4)
        return rc_err_set(e,
                          "model %s: invalid options (batch %d, width %d, in_channels %d, "
                          "num_classes %d, input_size %d)",
                          name, max_batch, o->width, o->in_channels, o->num_classes, o->input_size);
    if (rc_arch_is_wrn(o->arch) ? o->depth < 10 || (o->depth - 4) % 6 : o->depth != 0)
        return rc_err_set(e,
                          "model %s: depth %d; a WideResNet's depth is 6n + 4 (10, 16, 22, "
                          "28, 34, ...), other architectures have none (0)",
                          name, o->depth);
    /* its stride-2 convolutions (padded after) and 1x1 shortcuts agree on even sizes only */
    if (o->arch == RC_ARCH_DM_WRN && o->input_size % 4)
        return rc_err_set(e, "model %s: input size %d; DeepMind's WideResNet needs a multiple of 4",
                          name, o->input_size);
    if (o->arch == RC_ARCH_DM_WRN && !o->normalize)
        return rc_err_set(e,
                          "model %s: DeepMind's WideResNet always normalises its input "
                          "(buffers mean and std; 0 and 1 for none)",
                          name);
    if (o->normalize && o->in_channels > RC_MAX_NORM_CHANNELS)
        return rc_err_set(e, "model %s: input normalisation of %d channels; at most %d", name,
                          o->in_channels, RC_MAX_NORM_CHANNELS);
    for (int c = 0; o->normalize && c < o->in_channels; c++)
        if (!(o->std[c] > 0) || !isfinite(o->std[c]) || !isfinite(o->mean[c]))
            return rc_err_set(e,
                              "model %s: input normalisation of channel %d by mean %g, std %g; "
                              "the std must be positive",
                              name, c, o->mean[c], o->std[c]);
    return 0;
}

static int model_create(rc_ctx *ctx, rc_model *m, const rc_model_opts *o, int max_batch,
                        rc_model *base, rc_err *e) {
    memset(m, 0, sizeof *m);
    m->base = base;
    m->opts = *o;
    m->max_batch = max_batch;
    if (check_opts(o, max_batch, e)) return -1;
    int r = o->arch == RC_ARCH_SMALL_CNN ? build_small_cnn(m)
            : o->arch == RC_ARCH_LINEAR  ? build_linear(m)
            : o->arch == RC_ARCH_WRN     ? build_wrn(m, &WRN)
            : o->arch == RC_ARCH_DM_WRN  ? build_wrn(m, &DM_WRN)
                                         : build_preact_resnet18(m);
    if (r < 0) {
        rc_model_free(m);
        char name[64];
        return rc_err_set(e, "out of host memory building model %s",
                          rc_model_name(o, name, sizeof name));
    }
    plan_accumulation(m);
    if (plan_fusion(ctx, m, e) || (base ? share_params(m, base) : alloc_params(ctx, m, e)) ||
        alloc_activations(ctx, m, e)) {
        rc_model_free(m);
        char name[64];
        return rc_err_prefix(e, "allocating model %s for batch %d: ",
                             rc_model_name(o, name, sizeof name), max_batch);
    }
    return 0;
}

int rc_model_create(rc_ctx *ctx, rc_model *m, const rc_model_opts *o, int max_batch, rc_err *e) {
    return model_create(ctx, m, o, max_batch, NULL, e);
}

int rc_model_create_view(rc_ctx *ctx, rc_model *view, rc_model *base, rc_err *e) {
    return model_create(ctx, view, &base->opts, base->max_batch, base, e);
}

static void release(cl_mem *b) {
    if (*b) clReleaseMemObject(*b);
    *b = NULL;
}

void rc_model_free(rc_model *m) {
    for (int i = 0; i < m->n_params; i++) {
        release(&m->params[i].val);
        release(&m->params[i].grad);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        release(&m->tensors[i].val);
        release(&m->tensors[i].grad);
    }
    for (int i = 0; i < m->n_nodes; i++) {
        release(&m->nodes[i].bn_mean);
        release(&m->nodes[i].bn_invstd);
        release(&m->nodes[i].bn_dgamma);
        release(&m->nodes[i].bn_dbeta);
    }
    release(&m->arena);
    release(&m->grads);
    release(&m->momentum);
    release(&m->state);
    release(&m->bn_part_a);
    release(&m->bn_part_b);
    rc_workspace_free(&m->ws);
    free(m->params);
    free(m->nodes);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}

/* ---- access --------------------------------------------------------------------------------- */

cl_mem rc_model_input(const rc_model *m) { return m->tensors[0].val; }
cl_mem rc_model_input_grad(const rc_model *m) { return m->tensors[0].grad; }
cl_mem rc_model_logits(const rc_model *m) { return m->tensors[m->n_tensors - 1].val; }
cl_mem rc_model_logits_grad(const rc_model *m) { return m->tensors[m->n_tensors - 1].grad; }

rc_param *rc_model_param(rc_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

int rc_param_write(rc_ctx *ctx, const rc_param *p, const float *src, rc_err *e) {
    return rc_buffer_write(ctx, p->val, 0, p->numel * sizeof(float), src, p->name, e);
}

int rc_param_read(rc_ctx *ctx, const rc_param *p, float *dst, rc_err *e) {
    return rc_buffer_read(ctx, p->val, 0, p->numel * sizeof(float), dst, p->name, e);
}

int rc_model_init(rc_ctx *ctx, rc_model *m, uint64_t seed, rc_err *e) {
    rc_rng rng;
    rc_rng_seed(&rng, seed, 0x1417);
    /* RobustBench's and RAMP's WideResNet (wide_resnet.py) draw convolutions from
     * N(0, 2 / (k * k * out_channels)) and zero the classifier's bias */
    const int he = m->opts.arch == RC_ARCH_WRN;
    for (int i = 0; i < m->n_params; i++) {
        rc_param *p = &m->params[i];
        if (p->kind == RC_P_NUM_BATCHES || p->kind == RC_P_BUFFER) continue;
        float *v = malloc(p->numel * sizeof *v);
        if (!v) return rc_err_set(e, "out of host memory initialising %s", p->name);
        float bound = p->fan_in > 0 ? 1.0f / sqrtf((float)p->fan_in) : 0.0f;
        const int he_conv = he && p->kind == RC_P_WEIGHT && p->ndim == 4;
        const double sd = he_conv ? sqrt(2.0 / (p->shape[0] * p->shape[2] * p->shape[3])) : 0;
        for (size_t k = 0; k < p->numel; k++) {
            switch (p->kind) {
            case RC_P_WEIGHT:
                v[k] = he_conv ? (float)(sd * rc_rng_normal(&rng))
                               : (2.0f * rc_rng_uniform(&rng) - 1.0f) * bound;
                break;
            case RC_P_BIAS:
                v[k] = he ? 0.0f : (2.0f * rc_rng_uniform(&rng) - 1.0f) * bound;
                break;
            case RC_P_BN_WEIGHT:
            case RC_P_RUNNING_VAR: v[k] = 1.0f; break;
            default: v[k] = 0.0f; break;
            }
        }
        int r = rc_param_write(ctx, p, v, e);
        free(v);
        if (r) return -1;
    }
    m->bn_batches = 0;
    return 0;
}

double rc_model_forward_flops(const rc_model *m) {
    double f = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const rc_node *nd = &m->nodes[i];
        if (nd->op == RC_OP_CONV)
            f += 2.0 * nd->conv.oc * nd->conv.oh * nd->conv.ow * nd->conv.c * nd->conv.kh *
                 nd->conv.kw;
        else if (nd->op == RC_OP_LINEAR)
            f += 2.0 * m->params[nd->p[0]].numel;
    }
    return f;
}

/* ---- forward and backward ------------------------------------------------------------------- */

static rc_bn_buffers bn_buffers(const rc_model *m, const rc_node *nd) {
    return (rc_bn_buffers){.gamma = m->params[nd->p[0]].val,
                           .beta = m->params[nd->p[1]].val,
                           .running_mean = m->params[nd->p[2]].val,
                           .running_var = m->params[nd->p[3]].val,
                           .mean = nd->bn_mean,
                           .invstd = nd->bn_invstd,
                           .part_a = m->bn_part_a,
                           .part_b = m->bn_part_b};
}

static size_t numel(const rc_tensor *t, int n) { return (size_t)n * t->c * t->h * t->w; }

int rc_model_forward(rc_ctx *ctx, rc_model *m, int train, int n, rc_err *e) {
    if (n < 1 || n > m->max_batch)
        return rc_err_set(e, "forward of %d images, but the model was allocated for at most %d", n,
                          m->max_batch);
    m->fused = !train;
    for (int i = 0; i < m->n_nodes; i++) {
        rc_node *nd = &m->nodes[i];
        const rc_tensor *in = &m->tensors[nd->in], *out = &m->tensors[nd->out];
        int r = 0;
        switch (nd->op) {
        case RC_OP_CONV: {
            rc_conv_shape s = nd->conv;
            s.n = n;
            if (m->fused && nd->fuse) {
                /* this convolution, its batch norm and its ReLU (nodes i + 1, i + 2) */
                rc_bn_buffers b = bn_buffers(m, nd + 1);
                r = rc_conv_implicit_forward(ctx, &s, in->val, m->params[nd->p[0]].val, &b,
                                             m->tensors[nd[2].out].val, e);
                if (r) return rc_err_prefix(e, "forward layers %d-%d: ", i, i + 2);
                i += 2;
                continue;
            }
            r = rc_conv_forward(ctx, &s, in->val, m->params[nd->p[0]].val, NULL, out->val, &m->ws,
                                e);
            break;
        }
        case RC_OP_BN: {
            rc_bn_buffers b = bn_buffers(m, nd);
            r = rc_bn_forward(ctx, train, n, in->c, in->h * in->w, in->val, out->val, &b, e);
            break;
        }
        case RC_OP_ACT: r = rc_act_forward(ctx, nd->act, numel(in, n), in->val, out->val, e); break;
        case RC_OP_ADD:
            r = rc_add_forward(ctx, numel(in, n), in->val, m->tensors[nd->in2].val, out->val, e);
            break;
        case RC_OP_GAP: r = rc_gap_forward(ctx, n, in->c, in->h * in->w, in->val, out->val, e); break;
        case RC_OP_NORMALIZE:
            r = rc_normalize_forward(ctx, n, in->c, in->h * in->w, in->val, m->params[nd->p[0]].val,
                                     m->params[nd->p[1]].val, out->val, e);
            break;
        case RC_OP_LINEAR:
            r = rc_linear_forward(ctx, n, in->c * in->h * in->w, out->c, in->val,
                                  m->params[nd->p[0]].val, m->params[nd->p[1]].val, out->val, e);
            break;
        }
        if (r) return rc_err_prefix(e, "forward layer %d: ", i);
    }
    if (train) (m->base ? m->base : m)->bn_batches++;
    return 0;
}

int rc_model_backward(rc_ctx *ctx, rc_model *m, int train, int n, int params, int input,
                      rc_err *e) {
    const int fused = !train && m->fused;
    if (fused && params)
        return rc_err_set(e, "backward: parameter gradients after an eval-mode forward are not "
                             "supported (its fused layers keep no intermediate tensors)");
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        rc_node *nd = &m->nodes[i];
        const rc_tensor *in = &m->tensors[nd->in], *out = &m->tensors[nd->out];
        cl_mem dx = nd->in == 0 && !input ? NULL : in->grad;
        const rc_param *w = nd->p[0] >= 0 ? &m->params[nd->p[0]] : NULL;
        const rc_param *b = nd->p[1] >= 0 ? &m->params[nd->p[1]] : NULL;
        int r = 0;
        if (fused && nd->op == RC_OP_ACT && i >= 2 && m->nodes[i - 2].fuse) {
            /* the ReLU and batch norm of a fused block: the convolution's output gradient */
            rc_node *head = &m->nodes[i - 2];
            rc_bn_buffers bb = bn_buffers(m, nd - 1);
            rc_conv_shape s = head->conv;
            rc_grad_layout l;
            s.n = n;
            if (!head->dz_written &&
                (rc_conv_dz_layout(ctx, &s, &l, e) ||
                 rc_bn_relu_backward_eval(ctx, n, out->c, out->h, out->w, out->val, out->grad,
                                          m->tensors[head->out].grad, &l, &bb, e)))
                return rc_err_prefix(e, "backward layers %d-%d: ", i - 1, i);
            i--;
            continue;
        }
        switch (nd->op) {
        case RC_OP_CONV: {
            rc_conv_shape s = nd->conv;
            s.n = n;
            if (fused && nd->fuse) {
                /* dz in out->grad as rc_conv_dz_layout says; dx straight to the fused block that
                 * produced the input, if any */
                rc_bn_buffers mb;
                rc_grad_layout l = rc_layout_nchw(in->c, in->h, in->w);
                int acc = nd->acc_in;
                if (nd->into >= 0) {
                    rc_conv_shape hs = m->nodes[nd->into].conv;
                    hs.n = n;
                    mb = bn_buffers(m, &m->nodes[nd->into + 1]);
                    dx = m->tensors[m->nodes[nd->into].out].grad, acc = 0;
                    if (rc_conv_dz_layout(ctx, &hs, &l, e)) return -1;
                }
                if (dx)
                    r = rc_conv_backward_dz(ctx, &s, in->val, w->val, out->grad, dx, &l, acc,
                                            nd->into >= 0 ? &mb : NULL, &m->ws, e);
                break;
            }
            if (!dx && !params) break;
            r = rc_conv_backward(ctx, &s, in->val, w->val, out->grad, dx, nd->acc_in,
                                 params ? w->grad : NULL, NULL, params == RC_GRAD_ADD, &m->ws, e);
            break;
        }
        case RC_OP_BN: {
            rc_bn_buffers bb = bn_buffers(m, nd);
            /* train-mode dx needs this pass's dgamma and dbeta: computed into the node's own
             * buffers even when the parameters are frozen, then written or added */
            r = rc_bn_backward(ctx, train, n, in->c, in->h * in->w, in->val, out->grad, dx,
                               nd->acc_in, nd->bn_dgamma, nd->bn_dbeta, &bb, e);
            /* split across processes, dgamma and dbeta already cover the whole batch: rank 0
             * alone adds them to the gradients that are summed over the processes */
            if (!r && train && params && rc_dist_rank(ctx->dist) == 0)
                r = rc_grad_pass(ctx, w->numel, nd->bn_dgamma, w->grad, params == RC_GRAD_ADD, e) ||
                    rc_grad_pass(ctx, b->numel, nd->bn_dbeta, b->grad, params == RC_GRAD_ADD, e);
            else if (!r && train && params == RC_GRAD_WRITE)
                r = rc_fill(ctx, w->grad, 0, w->numel, 0.0f, e) ||
                    rc_fill(ctx, b->grad, 0, b->numel, 0.0f, e);
            break;
        }
        case RC_OP_ACT:
            if (dx) r = rc_act_backward(ctx, nd->act, numel(in, n), in->val, out->grad, dx,
                                        nd->acc_in, e);
            break;
        case RC_OP_ADD:
            r = rc_grad_pass(ctx, numel(in, n), out->grad, dx, nd->acc_in, e) ||
                rc_grad_pass(ctx, numel(in, n), out->grad, m->tensors[nd->in2].grad,
                             nd->acc_in2, e);
            break;
        case RC_OP_GAP:
            if (dx) r = rc_gap_backward(ctx, n, in->c, in->h * in->w, out->grad, dx, nd->acc_in, e);
            break;
        case RC_OP_NORMALIZE:
            if (dx)
                r = rc_normalize_backward(ctx, n, in->c, in->h * in->w, b->val, out->grad, dx,
                                          nd->acc_in, e);
            break;
        case RC_OP_LINEAR:
            r = rc_linear_backward(ctx, n, in->c * in->h * in->w, out->c, in->val, w->val,
                                   out->grad, dx, nd->acc_in, params ? w->grad : NULL,
                                   params ? b->grad : NULL, params == RC_GRAD_ADD, e);
            break;
        }
        if (r) return rc_err_prefix(e, "backward layer %d: ", i);
    }
    return 0;
}
