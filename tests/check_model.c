/* Both models against PyTorch: logits, loss, input and parameter gradients after a train-mode
 * forward/backward, every state-dict entry after one SGD step (BN running statistics included),
 * and eval-mode logits and input gradient. The fixtures are made by tests/fixtures/make_fixtures.py
 * (float64 PyTorch rounded to float32); the tolerance is 1e-4 of each tensor's largest value. */
#include "testutil.h"
#include "ramp/checkpoint.h"
#include "ramp/hash.h"
#include "ramp/loss.h"
#include "ramp/model.h"
#include "ramp/optim.h"
#include "ramp/safetensors.h"

#include <math.h>

#define PARITY_TOL 1e-4

static int meta_int(const rc_st_file *f, const char *key) {
    const char *v = rc_st_meta(f, key);
    ck_assert_msg(v != NULL, "fixture lacks metadata %s", key);
    return atoi(v);
}

static float *fixture_f32(const rc_st_file *f, const char *name, size_t *n) {
    const rc_st_entry *en = rc_st_find(f, name);
    ck_assert_msg(en != NULL, "fixture lacks %s", name);
    ck_assert_int_eq(en->dtype, RC_ST_F32);
    float *v = malloc(en->nbytes);
    memcpy(v, en->data, en->nbytes);
    *n = en->nbytes / 4;
    return v;
}

static void compare(const char *what, const float *got, const float *want, size_t n) {
    double maxref = 0, maxdiff = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        maxref = fmax(maxref, fabs(want[i]));
        double d = fabs((double)got[i] - want[i]);
        if (d > maxdiff) maxdiff = d, worst = i;
    }
    double rel = maxdiff / fmax(maxref, 1e-12);
    ck_assert_msg(rel <= PARITY_TOL, "%s: max |diff| %.3g at [%zu] (got %.8g, PyTorch %.8g), %.3g "
                                     "of the largest value %.3g",
                  what, maxdiff, worst, got[worst], want[worst], rel, maxref);
}

static void compare_device(rc_ctx *ctx, const char *what, cl_mem buf, const rc_st_file *f,
                           const char *key) {
    size_t n;
    float *want = fixture_f32(f, key, &n);
    float *got = malloc(n * 4);
    download(ctx, buf, got, n);
    compare(what, got, want, n);
    free(got);
    free(want);
}

static void load_params(rc_ctx *ctx, rc_model *m, const rc_st_file *f) {
    rc_err e;
    for (int i = 0; i < m->n_params; i++) {
        rc_param *p = &m->params[i];
        char key[160];
        snprintf(key, sizeof key, "param.%s", p->name);
        if (p->kind == RC_P_NUM_BATCHES) {
            int64_t v;
            ck_assert_msg(rc_st_get_i64(f, key, 0, NULL, &v, &e) == 0, "%s", e.msg);
            m->bn_batches = v;
            continue;
        }
        int64_t shape[4];
        for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
        float *v = malloc(p->numel * 4);
        ck_assert_msg(rc_st_get_f32(f, key, p->ndim, shape, v, &e) == 0, "%s", e.msg);
        ck_assert_msg(rc_param_write(ctx, p, v, &e) == 0, "%s", e.msg);
        free(v);
    }
}

/* The model a fixture describes: its metadata, and its normalisation buffers' values. */
static void fixture_opts(const rc_st_file *f, rc_model_opts *o) {
    rc_arch arch;
    ck_assert(rc_arch_from_name(rc_st_meta(f, "arch"), &arch) == 0);
    rc_model_opts_default(o, arch, meta_int(f, "in_channels"), meta_int(f, "input_size"));
    o->width = meta_int(f, "width");
    o->num_classes = meta_int(f, "num_classes");
    if (rc_st_meta(f, "depth")) o->depth = meta_int(f, "depth");
    ck_assert(rc_activation_from_name(rc_st_meta(f, "activation"), &o->activation) == 0);
    const char *mean, *std;
    int shape[4];
    int nd = rc_model_norm_buffers(arch, o->in_channels, &mean, &std, shape);
    char key[2][32];
    snprintf(key[0], sizeof key[0], "param.%s", mean);
    snprintf(key[1], sizeof key[1], "param.%s", std);
    o->normalize = rc_st_find(f, key[0]) != NULL;
    int64_t want[4];
    for (int d = 0; d < nd; d++) want[d] = shape[d];
    rc_err e;
    for (int i = 0; o->normalize && i < 2; i++)
        ck_assert_msg(rc_st_get_f32(f, key[i], nd, want, i ? o->std : o->mean, &e) == 0, "%s",
                      e.msg);
}

static void run_fixture(const char *name, const char *save_to) {
    char path[1024];
    rc_st_file f;
    rc_err e;
    ck_assert_msg(rc_st_open(&f, fixture_path(name, path, sizeof path), &e) == 0, "%s", e.msg);
    rc_model_opts o;
    fixture_opts(&f, &o);
    /* the WideResNet fixtures hold no parameter gradients and no SGD step (their size) */
    const int stepped = rc_st_meta(&f, "sgd_step") == NULL;
    int n = meta_int(&f, "batch"), k = o.num_classes;

    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    ck_assert_msg(rc_model_create(&ctx, &m, &o, n, &e) == 0, "%s", e.msg);
    /* every state-dict entry of the fixture exists in the model and vice versa */
    size_t n_param_keys = 0;
    for (size_t i = 0; i < rc_st_count(&f); i++)
        if (!strncmp(rc_st_entry_at(&f, i)->name, "param.", 6)) {
            n_param_keys++;
            ck_assert_msg(rc_model_param(&m, rc_st_entry_at(&f, i)->name + 6) != NULL,
                          "model lacks %s", rc_st_entry_at(&f, i)->name + 6);
        }
    ck_assert_int_eq(n_param_keys, m.n_params);
    load_params(&ctx, &m, &f);

    size_t nx;
    float *x = fixture_f32(&f, "input.x", &nx);
    int64_t y64[64];
    int32_t y[64];
    int64_t yshape[1] = {n};
    ck_assert_msg(rc_st_get_i64(&f, "input.y", 1, yshape, y64, &e) == 0, "%s", e.msg);
    for (int i = 0; i < n; i++) y[i] = (int32_t)y64[i];
    cl_mem labels = dev_from_bytes(&ctx, y, sizeof(int32_t) * n);
    cl_mem loss = dev_buf(&ctx, (size_t)n), correct = dev_buf(&ctx, (size_t)n);
    upload(&ctx, rc_model_input(&m), x, nx);

    /* train mode: forward, loss, backward */
    ck_assert_msg(rc_model_forward(&ctx, &m, 1, n, &e) == 0, "%s", e.msg);
    compare_device(&ctx, "train logits", rc_model_logits(&m), &f, "train.logits");
    ck_assert_msg(rc_ce_forward_backward(&ctx, n, k, rc_model_logits(&m), labels, loss, correct,
                                         rc_model_logits_grad(&m), &e) == 0,
                  "%s", e.msg);
    float losses[64], mean = 0;
    download(&ctx, loss, losses, (size_t)n);
    for (int i = 0; i < n; i++) mean += losses[i] / n;
    size_t one;
    float *want_loss = fixture_f32(&f, "train.loss", &one);
    compare("train loss", &mean, want_loss, 1);
    free(want_loss);
    ck_assert_msg(rc_model_backward(&ctx, &m, 1, n, 1, 1, &e) == 0, "%s", e.msg);
    compare_device(&ctx, "train input gradient", rc_model_input_grad(&m), &f, "train.grad_x");
    for (int i = 0; i < m.n_params && stepped; i++) {
        rc_param *p = &m.params[i];
        if (!p->grad) continue;
        char key[160];
        snprintf(key, sizeof key, "train.grad.%s", p->name);
        compare_device(&ctx, key, p->grad, &f, key);
    }

    /* one SGD step: every state-dict entry afterwards */
    rc_sgd opt;
    rc_sgd_init(&opt, 0.9f, 5e-4f, 0, 0, 1);
    if (stepped) ck_assert_msg(rc_sgd_step(&ctx, &opt, &m, 0.1f, &e) == 0, "%s", e.msg);
    for (int i = 0; i < m.n_params && stepped; i++) {
        rc_param *p = &m.params[i];
        char key[160];
        snprintf(key, sizeof key, "after.%s", p->name);
        if (p->kind == RC_P_NUM_BATCHES) {
            int64_t v;
            ck_assert_msg(rc_st_get_i64(&f, key, 0, NULL, &v, &e) == 0, "%s", e.msg);
            ck_assert_int_eq(m.bn_batches, v);
            continue;
        }
        compare_device(&ctx, key, p->val, &f, key);
    }

    if (save_to) {
        rc_train_progress progress = {.epoch = 1, .step = 1, .config = "model:\n  width: 8\n"};
        ck_assert_msg(rc_checkpoint_save(&ctx, &m, &opt, &progress, save_to, &e) == 0, "%s",
                      e.msg);
    }

    /* eval mode on the stepped model: what attacks see */
    upload(&ctx, rc_model_input(&m), x, nx);
    ck_assert_msg(rc_model_forward(&ctx, &m, 0, n, &e) == 0, "%s", e.msg);
    compare_device(&ctx, "eval logits", rc_model_logits(&m), &f, "eval.logits");
    ck_assert(rc_ce_forward_backward(&ctx, n, k, rc_model_logits(&m), labels, loss, correct,
                                     rc_model_logits_grad(&m), &e) == 0);
    ck_assert_msg(rc_model_backward(&ctx, &m, 0, n, 0, 1, &e) == 0, "%s", e.msg);
    compare_device(&ctx, "eval input gradient", rc_model_input_grad(&m), &f, "eval.grad_x");

    free(x);
    clReleaseMemObject(labels);
    clReleaseMemObject(loss);
    clReleaseMemObject(correct);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
    rc_st_close(&f);
}

START_TEST(small_cnn_matches_pytorch) { run_fixture("small-cnn.safetensors", NULL); }
END_TEST
START_TEST(preact_resnet18_matches_pytorch) { run_fixture("preact-resnet18.safetensors", NULL); }
END_TEST
START_TEST(preact_resnet18_relu_28x28_matches_pytorch) {
    run_fixture("preact-resnet18-relu-28.safetensors", NULL);
}
END_TEST
/* RobustBench's WideResNet normalising inside (mu, sigma) and DeepMind's with Swish */
START_TEST(wrn_matches_pytorch) { run_fixture("wrn-10-1.safetensors", NULL); }
END_TEST
START_TEST(dm_wrn_matches_pytorch) { run_fixture("dm-wrn-10-1.safetensors", NULL); }
END_TEST

/* A checkpoint saved after the step reloads into a fresh model with the same eval logits, the
 * same momentum and step counters; damaged or mismatched files are refused, naming the file.
 * (tests/fixtures/make_fixtures.py check-checkpoint loads such a file in PyTorch with
 * load_state_dict(strict=True) and compares the logits.) */
START_TEST(checkpoint_round_trip) {
    char dir[1024], path[1100], cut[1100], fx[1024];
    test_tmpdir(dir, sizeof dir, "ckpt");
    snprintf(path, sizeof path, "%s/small-cnn-after.safetensors", dir);
    run_fixture("small-cnn.safetensors", path);

    rc_model_opts o;
    rc_err e;
    ck_assert_msg(rc_checkpoint_read_opts(path, &o, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(o.arch, RC_ARCH_SMALL_CNN);
    ck_assert_int_eq(o.width, 8);
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    ck_assert_msg(rc_model_create(&ctx, &m, &o, 4, &e) == 0, "%s", e.msg);
    rc_sgd opt;
    rc_sgd_init(&opt, 0.9f, 5e-4f, 0, 0, 1);
    rc_train_progress progress = {0};
    ck_assert_msg(rc_checkpoint_load(&ctx, &m, &opt, &progress, path, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(opt.steps, 1);
    ck_assert_int_eq(progress.epoch, 1);
    /* the run's config comes back with its digest, for a resume to compare */
    char digest[17];
    rc_fnv1a64_hex("model:\n  width: 8\n", digest);
    ck_assert_str_eq(progress.saved_config, "model:\n  width: 8\n");
    ck_assert_str_eq(progress.saved_digest, digest);
    free(progress.saved_config);
    ck_assert_int_eq(m.bn_batches, 4);
    rc_st_file f;
    ck_assert(rc_st_open(&f, fixture_path("small-cnn.safetensors", fx, sizeof fx), &e) == 0);
    size_t nx;
    float *x = fixture_f32(&f, "input.x", &nx);
    upload(&ctx, rc_model_input(&m), x, nx);
    ck_assert_msg(rc_model_forward(&ctx, &m, 0, 4, &e) == 0, "%s", e.msg);
    compare_device(&ctx, "reloaded eval logits", rc_model_logits(&m), &f, "eval.logits");
    free(x);
    rc_st_close(&f);

    /* a truncated copy is refused with the file's name */
    size_t n;
    char *buf = read_file(path, &n);
    ck_assert_uint_gt(n, 100);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", dir);
    write_bytes(cut, buf, n - 100);
    free(buf);
    ck_assert_int_eq(rc_checkpoint_load(&ctx, &m, NULL, NULL, cut, &e), -1);
    ck_assert_msg(strstr(e.msg, cut) != NULL, "%s", e.msg);

    /* a model of another width is refused before any tensor is copied */
    rc_model other;
    o.width = 16;
    ck_assert_msg(rc_model_create(&ctx, &other, &o, 4, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(rc_checkpoint_load(&ctx, &other, NULL, NULL, path, &e), -1);
    ck_assert_msg(strstr(e.msg, "width 8") != NULL, "%s", e.msg);
    rc_model_free(&other);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* A checkpoint holding a NaN weight or a negative BN variance (a diverged run's, a damaged file)
 * is refused, naming the tensor, however it is loaded. */
static void expect_refused(rc_ctx *ctx, rc_model *m, const char *path, const char *name,
                           float value, const char *want) {
    rc_err e;
    rc_param *p = rc_model_param(m, name);
    ck_assert_ptr_nonnull(p);
    float *v = malloc(p->numel * sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert(rc_param_read(ctx, p, v, &e) == 0);
    float keep = v[1];
    v[1] = value;
    ck_assert(rc_param_write(ctx, p, v, &e) == 0);
    ck_assert_msg(rc_checkpoint_save(ctx, m, NULL, NULL, path, &e) == 0, "%s", e.msg);
    v[1] = keep;
    ck_assert(rc_param_write(ctx, p, v, &e) == 0);
    free(v);
    ck_assert_int_eq(rc_checkpoint_load(ctx, m, NULL, NULL, path, &e), -1);
    ck_assert_msg(strstr(e.msg, want) != NULL, "%s", e.msg);
}

START_TEST(checkpoint_refuses_unusable_values) {
    char dir[1024], path[1100];
    test_tmpdir(dir, sizeof dir, "ckpt-bad");
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    rc_model_opts o;
    rc_err e;
    rc_model_opts_default(&o, RC_ARCH_SMALL_CNN, 1, 28);
    o.width = 4;
    ck_assert_msg(rc_model_create(&ctx, &m, &o, 2, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_model_init(&ctx, &m, 1, &e) == 0, "%s", e.msg);
    expect_refused(&ctx, &m, path, "conv1.weight", NAN, "tensor conv1.weight: element 1 is NaN");
    expect_refused(&ctx, &m, path, "linear.bias", INFINITY, "linear.bias: element 1 is infinite");
    rc_param *var = NULL;
    for (int i = 0; i < m.n_params && !var; i++)
        if (m.params[i].kind == RC_P_RUNNING_VAR) var = &m.params[i];
    ck_assert_ptr_nonnull(var);
    char want[160];
    snprintf(want, sizeof want, "tensor %s: element 1 is -0.5, a negative variance", var->name);
    expect_refused(&ctx, &m, path, var->name, -0.5f, want);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* ---- finite differences through whole models ------------------------------------------------
 * L = sum(logits * r) for a fixed random r; the backward's parameter and input gradients (train
 * mode, batch statistics) against central differences at a few coordinates of every trainable
 * tensor and of the input. Smooth activations, so that no difference straddles a kink. What the
 * PyTorch fixtures of the WideResNets do not hold (their parameter gradients) is checked here. */

static double model_objective(rc_ctx *ctx, rc_model *m, const float *x, size_t nx, const float *r,
                              size_t nr) {
    rc_err e;
    upload(ctx, rc_model_input(m), x, nx);
    ck_assert_msg(rc_model_forward(ctx, m, 1,
                                   (int)(nx / ((size_t)m->opts.in_channels * m->opts.input_size *
                                               m->opts.input_size)),
                                   &e) == 0,
                  "%s", e.msg);
    float *z = malloc(nr * sizeof *z);
    download(ctx, rc_model_logits(m), z, nr);
    double s = 0;
    for (size_t i = 0; i < nr; i++) s += (double)z[i] * r[i];
    free(z);
    return s;
}

/* err: |fd - g| relative to max(|fd|, 0.1 * the tensor's gradient rms, 1e-3) */
static void check_partial(const char *what, size_t i, double g, double fd, double rms) {
    double err = fabs(fd - g) / fmax(fabs(fd), fmax(0.1 * rms, 1e-3));
    ck_assert_msg(err < 3e-2, "%s[%zu]: analytic %.6g, finite difference %.6g (rel err %.3g)", what,
                  i, g, fd, err);
}

static double rms_of(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s / (double)n);
}

static void fd_model(const rc_model_opts *o, int n) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    rc_err e;
    ck_assert_msg(rc_model_create(&ctx, &m, o, n, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_model_init(&ctx, &m, 7, &e) == 0, "%s", e.msg);
    const size_t nx = (size_t)n * o->in_channels * o->input_size * o->input_size;
    const size_t nr = (size_t)n * o->num_classes;
    float *x = malloc(nx * sizeof *x), *r = malloc(nr * sizeof *r);
    unsigned seed = 11;
    for (size_t i = 0; i < nx; i++) x[i] = urand(&seed, 0, 1);
    for (size_t i = 0; i < nr; i++) r[i] = urand(&seed, -1, 1);
    model_objective(&ctx, &m, x, nx, r, nr);
    upload(&ctx, rc_model_logits_grad(&m), r, nr);
    ck_assert_msg(rc_model_backward(&ctx, &m, 1, n, RC_GRAD_WRITE, 1, &e) == 0, "%s", e.msg);
    const float h = 1e-2f;
    float *gx = malloc(nx * sizeof *gx);
    download(&ctx, rc_model_input_grad(&m), gx, nx);
    double rms = rms_of(gx, nx);
    for (size_t k = 0; k < 12; k++) {
        size_t i = k * (nx - 1) / 11;
        float v = x[i];
        x[i] = v + h;
        double fp = model_objective(&ctx, &m, x, nx, r, nr);
        x[i] = v - h;
        double fm = model_objective(&ctx, &m, x, nx, r, nr);
        x[i] = v;
        check_partial("input", i, gx[i], (fp - fm) / (2.0 * h), rms);
    }
    for (int t = 0; t < m.n_params; t++) {
        rc_param *p = &m.params[t];
        if (!p->grad) continue;
        float *v = malloc(p->numel * sizeof *v), *g = malloc(p->numel * sizeof *g);
        ck_assert_msg(rc_param_read(&ctx, p, v, &e) == 0, "%s", e.msg);
        ck_assert_msg(rc_buffer_read(&ctx, p->grad, 0, p->numel * 4, g, p->name, &e) == 0, "%s",
                      e.msg);
        rms = rms_of(g, p->numel);
        for (size_t k = 0; k < 3; k++) {
            size_t i = k * (p->numel - 1) / 2;
            float v0 = v[i];
            double f[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                v[i] = v0 + (sgn ? -h : h);
                ck_assert(rc_param_write(&ctx, p, v, &e) == 0);
                f[sgn] = model_objective(&ctx, &m, x, nx, r, nr);
            }
            v[i] = v0;
            ck_assert(rc_param_write(&ctx, p, v, &e) == 0);
            check_partial(p->name, i, g[i], (f[0] - f[1]) / (2.0 * h), rms);
        }
        free(v);
        free(g);
    }
    free(x);
    free(r);
    free(gx);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}

static void small_wrn(rc_model_opts *o, rc_arch arch, rc_activation act) {
    rc_model_opts_default(o, arch, 3, 8);
    o->depth = 10, o->width = 1, o->activation = act;
    o->normalize = 1;
    const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2471f, 0.2435f, 0.2616f};
    memcpy(o->mean, mean, sizeof mean);
    memcpy(o->std, std, sizeof std);
}

START_TEST(wrn_gradients_match_finite_differences) {
    rc_model_opts o;
    small_wrn(&o, RC_ARCH_WRN, RC_ACTIVATION_SOFTPLUS);
    fd_model(&o, 4);
}
END_TEST

START_TEST(dm_wrn_gradients_match_finite_differences) {
    rc_model_opts o;
    small_wrn(&o, RC_ARCH_DM_WRN, RC_ACTIVATION_SILU);
    fd_model(&o, 4);
}
END_TEST

/* A WideResNet's checkpoint carries its depth and input normalisation: read back as the same
 * options and weights; a model normalising otherwise, or not at all, is refused naming both. */
START_TEST(wrn_checkpoint_round_trip) {
    char dir[1024], path[1100];
    test_tmpdir(dir, sizeof dir, "ckpt-wrn");
    snprintf(path, sizeof path, "%s/dm.safetensors", dir);
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m, back;
    rc_model_opts o, r;
    rc_err e;
    small_wrn(&o, RC_ARCH_DM_WRN, RC_ACTIVATION_SILU);
    ck_assert_msg(rc_model_create(&ctx, &m, &o, 2, &e) == 0 && rc_model_init(&ctx, &m, 5, &e) == 0,
                  "%s", e.msg);
    ck_assert_msg(rc_checkpoint_save(&ctx, &m, NULL, NULL, path, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_checkpoint_read_opts(path, &r, &e) == 0, "%s", e.msg);
    ck_assert(rc_model_opts_equal(&o, &r));
    ck_assert_int_eq(r.depth, 10);
    ck_assert(r.normalize && r.std[2] == 0.2616f);
    ck_assert_msg(rc_model_create(&ctx, &back, &r, 2, &e) == 0 &&
                      rc_checkpoint_load(&ctx, &back, NULL, NULL, path, &e) == 0,
                  "%s", e.msg);
    const rc_param *a = rc_model_param(&m, "layer.1.block.0.conv_0.weight");
    const rc_param *b = rc_model_param(&back, "layer.1.block.0.conv_0.weight");
    float *va = malloc(a->numel * 4), *vb = malloc(a->numel * 4);
    ck_assert(rc_param_read(&ctx, a, va, &e) == 0 && rc_param_read(&ctx, b, vb, &e) == 0);
    ck_assert(memcmp(va, vb, a->numel * 4) == 0);
    free(va);
    free(vb);
    rc_model_free(&back);
    r.mean[0] = 0.5f;
    ck_assert_msg(rc_model_create(&ctx, &back, &r, 2, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(rc_checkpoint_load(&ctx, &back, NULL, NULL, path, &e), -1);
    ck_assert_msg(strstr(e.msg, "checkpoint is dm-wrn-10-1 (activation silu, 3 input channels, 10 "
                                "classes, inputs normalised by mean (0.491400003, ") &&
                      strstr(e.msg, "but the model is dm-wrn-10-1 (activation silu, 3 input "
                                    "channels, 10 classes, inputs normalised by mean (0.5, "),
                  "%s", e.msg);
    rc_model_free(&back);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* Reference shapes: the full-size models have PyTorch's parameter counts. */
static size_t count(rc_model *m, int trainable_only) {
    size_t s = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].kind != RC_P_NUM_BATCHES && (!trainable_only || m->params[i].grad))
            s += m->params[i].numel;
    return s;
}

START_TEST(full_size_parameter_counts) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    rc_model_opts o;
    rc_err e;
    rc_model_opts_default(&o, RC_ARCH_PREACT_RESNET18, 3, 32);
    ck_assert_msg(rc_model_create(&ctx, &m, &o, 1, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.n_params, 107);
    ck_assert_uint_eq(count(&m, 1), 11172170);
    ck_assert_uint_eq(count(&m, 0) - count(&m, 1), 7808);
    ck_assert_str_eq(m.params[0].name, "conv1.weight");
    ck_assert_str_eq(m.params[1].name, "layer1.0.bn1.weight");
    ck_assert_ptr_nonnull(rc_model_param(&m, "layer2.0.shortcut.0.weight"));
    ck_assert_ptr_null(rc_model_param(&m, "layer1.0.shortcut.0.weight"));
    ck_assert_str_eq(m.params[m.n_params - 1].name, "linear.bias");
    rc_model_free(&m);
    rc_model_opts_default(&o, RC_ARCH_SMALL_CNN, 1, 28);
    ck_assert_msg(rc_model_create(&ctx, &m, &o, 1, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.n_params, 20);
    rc_param *lw = rc_model_param(&m, "linear.weight");
    ck_assert_int_eq(lw->shape[1], 6272);
    rc_model_free(&m);

    /* WRN-28-10 of both kinds: RobustBench's state dicts (155 and 157 entries) */
    rc_model_opts_default(&o, RC_ARCH_WRN, 3, 32);
    ck_assert_msg(rc_model_create(&ctx, &m, &o, 1, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.n_params, 155);
    ck_assert_uint_eq(count(&m, 1), 36479194);
    ck_assert_uint_eq(count(&m, 0) - count(&m, 1), 17952);
    ck_assert_ptr_nonnull(rc_model_param(&m, "block1.layer.0.convShortcut.weight"));
    ck_assert_ptr_null(rc_model_param(&m, "block1.layer.1.convShortcut.weight"));
    ck_assert_ptr_nonnull(rc_model_param(&m, "block3.layer.3.bn2.num_batches_tracked"));
    ck_assert_str_eq(m.params[m.n_params - 1].name, "fc.bias");
    /* its initialisation: convolutions N(0, 2 / fan_out), the classifier's bias 0 */
    ck_assert_msg(rc_model_init(&ctx, &m, 3, &e) == 0, "%s", e.msg);
    rc_param *w = rc_model_param(&m, "block1.layer.0.conv1.weight"),
             *b = rc_model_param(&m, "fc.bias");
    float *v = malloc(w->numel * sizeof *v), bias[10];
    ck_assert(rc_param_read(&ctx, w, v, &e) == 0 && rc_param_read(&ctx, b, bias, &e) == 0);
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < w->numel; i++) s1 += v[i], s2 += (double)v[i] * v[i];
    double mean = s1 / w->numel, sd = sqrt(s2 / w->numel - mean * mean), want = sqrt(2.0 / 1440);
    ck_assert_msg(fabs(mean) < 0.03 * want && fabs(sd / want - 1) < 0.02,
                  "conv1 of 160x16x3x3: mean %g, std %g, want 0 and %g", mean, sd, want);
    for (int i = 0; i < 10; i++) ck_assert(bias[i] == 0.0f);
    free(v);
    rc_model_free(&m);
    rc_model_opts_default(&o, RC_ARCH_DM_WRN, 3, 32);
    ck_assert_msg(rc_model_create(&ctx, &m, &o, 1, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.n_params, 157);
    ck_assert_uint_eq(count(&m, 1), 36479194);
    ck_assert_str_eq(m.params[0].name, "mean");
    ck_assert_int_eq(m.params[0].ndim, 3);
    ck_assert_ptr_nonnull(rc_model_param(&m, "layer.2.block.0.shortcut.weight"));
    ck_assert_ptr_nonnull(rc_model_param(&m, "layer.0.block.3.batchnorm_1.running_var"));
    ck_assert_str_eq(m.params[m.n_params - 1].name, "logits.bias");
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* Options a model cannot be built with are refused with what is wrong. */
START_TEST(invalid_options_are_refused) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    rc_model_opts o;
    rc_err e;
    rc_model_opts_default(&o, RC_ARCH_WRN, 3, 32);
    o.depth = 30;
    ck_assert_int_eq(rc_model_create(&ctx, &m, &o, 1, &e), -1);
    ck_assert_msg(strstr(e.msg, "wrn-30-10: depth 30; a WideResNet's depth is 6n + 4"), "%s",
                  e.msg);
    rc_model_opts_default(&o, RC_ARCH_DM_WRN, 3, 30);
    ck_assert_int_eq(rc_model_create(&ctx, &m, &o, 1, &e), -1);
    ck_assert_msg(strstr(e.msg, "input size 30; DeepMind's WideResNet needs a multiple of 4"), "%s",
                  e.msg);
    rc_model_opts_default(&o, RC_ARCH_DM_WRN, 3, 32);
    o.normalize = 0;
    ck_assert_int_eq(rc_model_create(&ctx, &m, &o, 1, &e), -1);
    ck_assert_msg(strstr(e.msg, "always normalises its input"), "%s", e.msg);
    rc_model_opts_default(&o, RC_ARCH_PREACT_RESNET18, 3, 32);
    o.normalize = 1, o.std[1] = 0;
    ck_assert_int_eq(rc_model_create(&ctx, &m, &o, 1, &e), -1);
    ck_assert_msg(strstr(e.msg, "channel 1 by mean 0, std 0; the std must be positive"), "%s",
                  e.msg);
    o.normalize = 0, o.depth = 28;
    ck_assert_int_eq(rc_model_create(&ctx, &m, &o, 1, &e), -1);
    ck_assert_msg(strstr(e.msg, "depth 28"), "%s", e.msg);
    rc_ctx_close(&ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, small_cnn_matches_pytorch);
    tcase_add_test(tc, preact_resnet18_matches_pytorch);
    tcase_add_test(tc, preact_resnet18_relu_28x28_matches_pytorch);
    tcase_add_test(tc, wrn_matches_pytorch);
    tcase_add_test(tc, dm_wrn_matches_pytorch);
    tcase_add_test(tc, wrn_gradients_match_finite_differences);
    tcase_add_test(tc, dm_wrn_gradients_match_finite_differences);
    tcase_add_test(tc, full_size_parameter_counts);
    tcase_add_test(tc, invalid_options_are_refused);
    tcase_add_test(tc, checkpoint_round_trip);
    tcase_add_test(tc, checkpoint_refuses_unusable_values);
    tcase_add_test(tc, wrn_checkpoint_round_trip);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
