#include "ramp/checkpoint.h"
#include "ramp/hash.h"
#include "ramp/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_META 9

int rc_checkpoint_save(rc_ctx *ctx, rc_model *m, const rc_sgd *opt,
                       const rc_train_progress *progress, const char *path, rc_err *e) {
    int resume = opt && progress;
    int n_extra = resume ? progress->n_extra : 0;
    size_t cap = (size_t)m->n_params * 2 + 4 + (size_t)n_extra, n = 0;
    rc_st_tensor *t = calloc(cap, sizeof *t);
    float **bufs = calloc(cap, sizeof *bufs);
    char (*names)[128] = calloc(cap, sizeof *names);
    int64_t scalars[4];
    int r = -1;
    if (!t || !bufs || !names) {
        rc_err_set(e, "out of host memory saving %s", path);
        goto out;
    }
    for (int pass = 0; pass < 1 + resume; pass++) {
        for (int i = 0; i < m->n_params; i++) {
            rc_param *p = &m->params[i];
            if (pass == 1 && !p->grad) continue; /* momentum exists for trainable tensors only */
            rc_st_tensor *x = &t[n];
            snprintf(names[n], sizeof names[n], "%s%s", pass ? "train.momentum." : "", p->name);
            x->name = names[n];
            x->ndim = p->ndim;
            for (int d = 0; d < p->ndim; d++) x->shape[d] = p->shape[d];
            if (p->kind == RC_P_NUM_BATCHES) {
                x->dtype = RC_ST_I64;
                x->data = &m->bn_batches;
                n++;
                continue;
            }
            x->dtype = RC_ST_F32;
            if (!(bufs[n] = malloc(p->numel * sizeof(float)))) {
                rc_err_set(e, "out of host memory saving %s", path);
                goto out;
            }
            cl_mem src = p->val;
            size_t off = 0;
            if (pass == 1) src = m->momentum, off = p->offset * sizeof(float);
            if (rc_buffer_read(ctx, src, off, p->numel * sizeof(float), bufs[n], p->name, e))
                goto out;
            x->data = bufs[n];
            n++;
        }
    }
    if (resume) {
        const char *keys[] = {"train.epoch", "train.step", "train.sgd_steps", "train.bn_batches"};
        scalars[0] = progress->epoch, scalars[1] = progress->step, scalars[2] = opt->steps;
        scalars[3] = m->bn_batches;
        for (int i = 0; i < 4; i++)
            t[n++] = (rc_st_tensor){.name = keys[i], .dtype = RC_ST_I64, .data = &scalars[i]};
        for (int i = 0; i < n_extra; i++) {
            const rc_ckpt_blob *b = &progress->extra[i];
            rc_st_tensor *x = &t[n];
            *x = (rc_st_tensor){.name = b->name, .dtype = b->dtype, .ndim = 1,
                                .shape = {(int64_t)b->count}, .data = b->host};
            if (!b->host) {
                if (!(bufs[n] = malloc(b->count * sizeof(float)))) {
                    rc_err_set(e, "out of host memory saving %s", path);
                    goto out;
                }
                if (rc_buffer_read(ctx, b->dev, 0, b->count * sizeof(float), bufs[n], b->name, e))
                    goto out;
                x->data = bufs[n];
            }
            n++;
        }
    }
    char width[16], inc[16], ncls[16], isz[16], depth[16];
    snprintf(width, sizeof width, "%d", m->opts.width);
    snprintf(inc, sizeof inc, "%d", m->opts.in_channels);
    snprintf(ncls, sizeof ncls, "%d", m->opts.num_classes);
    snprintf(isz, sizeof isz, "%d", m->opts.input_size);
    snprintf(depth, sizeof depth, "%d", m->opts.depth);
    char digest[17];
    const char *mk[N_META + 2] = {"format", "format_version", "arch", "activation", "width",
                                  "in_channels", "num_classes", "input_size"};
    const char *mv[N_META + 2] = {RC_CHECKPOINT_FORMAT, RC_CHECKPOINT_VERSION,
                                  rc_arch_name(m->opts.arch),
                                  rc_activation_name(m->opts.activation), width, inc, ncls, isz};
    int n_meta = N_META - 1;
    if (rc_arch_is_wrn(m->opts.arch)) /* only the WideResNets have a depth */
        mk[n_meta] = "depth", mv[n_meta++] = depth;
    if (resume && progress->config) {
        rc_fnv1a64_hex(progress->config, digest);
        mk[n_meta] = "config", mv[n_meta++] = progress->config;
        mk[n_meta] = "config_digest", mv[n_meta++] = digest;
    }
    r = rc_st_write(path, t, n, mk, mv, n_meta, e); /* atomic, signals held */
out:
    for (size_t i = 0; bufs && i < cap; i++) free(bufs[i]);
    free(bufs);
    free(t);
    free(names);
    return r;
}

static int meta_int(const rc_st_file *f, const char *key, int *out, rc_err *e) {
    const char *v = rc_st_meta(f, key);
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < 1 || x > 1 << 20)
        return rc_err_set(e, "%s: metadata %s missing or not a positive integer", f->path, key);
    *out = (int)x;
    return 0;
}

/* The input normalisation: the architecture's mean and std buffers, both or neither (dm-wrn
 * always both). */
static int norm_from_tensors(const rc_st_file *f, rc_model_opts *o, rc_err *e) {
    const char *mean, *std;
    int shape[4];
    int nd = rc_model_norm_buffers(o->arch, o->in_channels, &mean, &std, shape);
    int have_mean = rc_st_find(f, mean) != NULL, have_std = rc_st_find(f, std) != NULL;
    o->normalize = have_mean || have_std;
    if (!o->normalize && o->arch != RC_ARCH_DM_WRN) return 0;
    if (!have_mean || !have_std)
        return rc_err_set(e,
                          "%s: %s needs both input normalisation tensors %s and %s; %s is "
                          "missing",
                          f->path, rc_arch_name(o->arch), mean, std, have_mean ? std : mean);
    if (o->in_channels > RC_MAX_NORM_CHANNELS)
        return rc_err_set(e, "%s: input normalisation of %d channels; ramp-cl has at most %d",
                          f->path, o->in_channels, RC_MAX_NORM_CHANNELS);
    int64_t want[4];
    for (int d = 0; d < nd; d++) want[d] = shape[d];
    return rc_st_get_f32(f, mean, nd, want, o->mean, e) ||
           rc_st_get_f32(f, std, nd, want, o->std, e);
}

static int opts_from_meta(const rc_st_file *f, rc_model_opts *o, rc_err *e) {
    memset(o, 0, sizeof *o);
    const char *fmt = rc_st_meta(f, "format"), *ver = rc_st_meta(f, "format_version");
    if (!fmt || strcmp(fmt, RC_CHECKPOINT_FORMAT))
        return rc_err_set(e, "%s: not a ramp-cl checkpoint (metadata format is %s)", f->path,
                          fmt ? fmt : "missing");
    if (!ver || strcmp(ver, RC_CHECKPOINT_VERSION))
        return rc_err_set(e, "%s: checkpoint format version %s, this ramp-cl reads %s", f->path,
                          ver ? ver : "missing", RC_CHECKPOINT_VERSION);
    const char *arch = rc_st_meta(f, "arch"), *act = rc_st_meta(f, "activation");
    if (rc_arch_from_name(arch, &o->arch))
        return rc_err_set(e, "%s: unknown arch %s", f->path, arch ? arch : "(missing)");
    if (rc_activation_from_name(act, &o->activation))
        return rc_err_set(e, "%s: unknown activation %s", f->path, act ? act : "(missing)");
    return meta_int(f, "width", &o->width, e) || meta_int(f, "in_channels", &o->in_channels, e) ||
           meta_int(f, "num_classes", &o->num_classes, e) ||
           meta_int(f, "input_size", &o->input_size, e) ||
           (rc_arch_is_wrn(o->arch) && meta_int(f, "depth", &o->depth, e)) ||
           norm_from_tensors(f, o, e);
}

/* "wrn-28-10 (activation relu, 3 input channels, 10 classes, inputs normalised by mean
 * (0.4914, 0.4822, 0.4465) and std (0.2471, 0.2435, 0.2616))", "small-cnn width 8 (...)" */
static const char *describe(const rc_model_opts *o, char *buf, size_t n) {
    char name[64], width[32] = "", norm[160] = "";
    if (!rc_arch_is_wrn(o->arch)) snprintf(width, sizeof width, " width %d", o->width);
    for (int pass = 0; o->normalize && pass < 2; pass++) {
        const float *v = pass ? o->std : o->mean;
        size_t k = strlen(norm);
        snprintf(norm + k, sizeof norm - k, pass ? ") and std (" : ", inputs normalised by mean (");
        for (int c = 0; c < o->in_channels && c < RC_MAX_NORM_CHANNELS; c++) {
            k = strlen(norm);
            snprintf(norm + k, sizeof norm - k, "%s%.9g", c ? ", " : "", v[c]);
        }
    }
    snprintf(buf, n, "%s%s (activation %s, %d input channels, %d classes%s%s)",
             rc_model_name(o, name, sizeof name), width, rc_activation_name(o->activation),
             o->in_channels, o->num_classes, norm, o->normalize ? ")" : "");
    return buf;
}

int rc_checkpoint_read_opts(const char *path, rc_model_opts *o, rc_err *e) {
    rc_st_file f;
    if (rc_st_open(&f, path, e)) return -1;
    int r = opts_from_meta(&f, o, e);
    rc_st_close(&f);
    return r;
}

/* A diverged run's NaN, or a variance below 0, would make every result of the model wrong. */
static int check_values(const char *path, const char *key, const float *v, size_t n, int variance,
                        rc_err *e) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return rc_err_set(e, "%s: tensor %s: element %zu is %s: not a usable model (from a "
                                 "run that diverged?)",
                              path, key, i, isnan(v[i]) ? "NaN" : "infinite");
        if (variance && v[i] < 0)
            return rc_err_set(e, "%s: tensor %s: element %zu is %g, a negative variance: not a "
                                 "usable model",
                              path, key, i, (double)v[i]);
    }
    return 0;
}

static int get_scalar(const rc_st_file *f, const char *key, int64_t *v, rc_err *e) {
    return rc_st_get_i64(f, key, 0, NULL, v, e);
}

int rc_checkpoint_load(rc_ctx *ctx, rc_model *m, rc_sgd *opt, rc_train_progress *progress,
                       const char *path, rc_err *e) {
    rc_st_file f;
    if (rc_st_open(&f, path, e)) return -1;
    int r = -1;
    float *buf = NULL;
    rc_model_opts o;
    if (opts_from_meta(&f, &o, e)) goto out;
    /* the input size changes no tensor: a model may run on other sizes than it was saved at */
    o.input_size = m->opts.input_size;
    if (!rc_model_opts_equal(&o, &m->opts)) {
        char have[400], want[400];
        rc_err_set(e, "%s: checkpoint is %s but the model is %s", path,
                   describe(&o, have, sizeof have), describe(&m->opts, want, sizeof want));
        goto out;
    }
    /* Every tensor must be known: a stray one means the file is for some other model. */
    for (size_t i = 0; i < rc_st_count(&f); i++) {
        const char *name = rc_st_entry_at(&f, i)->name;
        if (strncmp(name, "train.", 6) && !rc_model_param(m, name)) {
            rc_err_set(e, "%s: tensor %s does not belong to model %s", path, name,
                       rc_arch_name(m->opts.arch));
            goto out;
        }
    }
    int64_t bn_batches = 0;
    int seen_bn = 0;
    for (int pass = 0; pass < 1 + (opt != NULL); pass++) {
        for (int i = 0; i < m->n_params; i++) {
            rc_param *p = &m->params[i];
            char key[160];
            snprintf(key, sizeof key, "%s%s", pass ? "train.momentum." : "", p->name);
            int64_t shape[4];
            for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
            if (p->kind == RC_P_NUM_BATCHES) {
                if (pass) continue;
                int64_t v;
                if (rc_st_get_i64(&f, key, 0, NULL, &v, e)) goto out;
                bn_batches = seen_bn++ ? (v > bn_batches ? v : bn_batches) : v;
                continue;
            }
            if (pass && !p->grad) continue;
            free(buf);
            if (!(buf = malloc(p->numel * sizeof(float)))) {
                rc_err_set(e, "out of host memory loading %s", path);
                goto out;
            }
            if (rc_st_get_f32(&f, key, p->ndim, shape, buf, e) ||
                check_values(path, key, buf, p->numel, !pass && p->kind == RC_P_RUNNING_VAR, e))
                goto out;
            if (pass == 0 ? rc_param_write(ctx, p, buf, e)
                          : rc_buffer_write(ctx, m->momentum, p->offset * sizeof(float),
                                            p->numel * sizeof(float), buf, key, e))
                goto out;
        }
    }
    m->bn_batches = bn_batches;
    if (opt) {
        int64_t steps;
        if (get_scalar(&f, "train.sgd_steps", &steps, e)) goto out;
        opt->steps = (long)steps;
    }
    if (progress && (get_scalar(&f, "train.epoch", &progress->epoch, e) ||
                     get_scalar(&f, "train.step", &progress->step, e)))
        goto out;
    if (progress) {
        const char *config = rc_st_meta(&f, "config"), *digest = rc_st_meta(&f, "config_digest");
        progress->saved_config = NULL;
        if (config && digest) {
            if (!(progress->saved_config = strdup(config))) {
                rc_err_set(e, "out of host memory loading %s", path);
                goto out;
            }
            snprintf(progress->saved_digest, sizeof progress->saved_digest, "%s", digest);
        }
    }
    for (int i = 0; progress && i < progress->n_extra; i++) {
        const rc_ckpt_blob *b = &progress->extra[i];
        int64_t shape[1] = {(int64_t)b->count};
        free(buf);
        if (!(buf = malloc(b->count * 8 + 8))) {
            rc_err_set(e, "out of host memory loading %s", path);
            goto out;
        }
        void *dst = b->host ? b->host : buf;
        if ((b->dtype == RC_ST_I64 ? rc_st_get_i64(&f, b->name, 1, shape, dst, e)
                                   : rc_st_get_f32(&f, b->name, 1, shape, dst, e)) ||
            (!b->host && rc_buffer_write(ctx, b->dev, 0, b->count * sizeof(float), buf, b->name,
                                         e)))
            goto out;
    }
    r = 0;
out:
    free(buf);
    rc_st_close(&f);
    return r;
}
