/* Both models against PyTorch: logits, loss, input and parameter gradients after a train-mode
 * forward/backward, every state-dict entry after one SGD step (BN running statistics included),
 * and eval-mode logits and input gradient. The fixtures are made by tests/fixtures/make_fixtures.py
 * (float64 PyTorch rounded to float32); the tolerance is 1e-4 of each tensor's largest value. */
#include "testutil.h"
#include "ramp/checkpoint.h"
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
        rc_train_progress progress = {.epoch = 1, .step = 1};
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
    rc_train_progress progress;
    ck_assert_msg(rc_checkpoint_load(&ctx, &m, &opt, &progress, path, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(opt.steps, 1);
    ck_assert_int_eq(progress.epoch, 1);
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
    tcase_add_test(tc, full_size_parameter_counts);
    tcase_add_test(tc, checkpoint_round_trip);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
