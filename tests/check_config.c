#include "ramp/config.h"
#include "ramp/hash.h"
#include "ramp/rundir.h"
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* Each test works in its own directory holding data/ (a dataset directory for data.path) and
 * init.st (a file for init), and writes its configs there. */
typedef struct env {
    char dir[512];
    char data[600];
    char init[600];
} env;

static void env_open(env *t) {
    test_tmpdir(t->dir, sizeof t->dir, "config");
    snprintf(t->data, sizeof t->data, "%s/data", t->dir);
    snprintf(t->init, sizeof t->init, "%s/init.st", t->dir);
    ck_assert_int_eq(mkdir(t->data, 0700), 0);
    write_bytes(t->init, "", 0);
}

static void env_close(env *t) { remove_tree(t->dir); }

/* Writes the printf-formatted text to <dir>/<name> and puts the path in out. */
#define write_cfg(out, n, t, name, ...) write_text(out, n, (t)->dir, name, __VA_ARGS__)

static void load_ok(rc_config *c, const char *path) {
    rc_err e;
    ck_assert_msg(rc_config_load(c, path, &e) == 0, "%s", e.msg);
}

static void load_fails(const char *path, rc_err *e) {
    rc_config c;
    ck_assert_msg(rc_config_load(&c, path, e) == -1, "%s loaded without an error", path);
}

static int count_lines(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#define ck_has(msg, want)                                                                         \
    ck_assert_msg(strstr(msg, want) != NULL, "expected \"%s\" in:\n%s", want, msg)
#define ck_lacks(msg, unwanted)                                                                   \
    ck_assert_msg(strstr(msg, unwanted) == NULL, "did not expect \"%s\" in:\n%s", unwanted, msg)

/* The first five lines of most configs below: a valid model and an MNIST dataset in data/. */
#define HEAD "model:\n  arch: small-cnn\ndata:\n  dataset: mnist\n  path: %s\n"

/* <name> holding text must fail to load with want (and also, unless NULL) in the message, a
 * message of `lines` lines when lines > 0. */
static void file_fails(const env *t, const char *name, const char *text, const char *want,
                       const char *also, int lines) {
    char path[1024];
    rc_err e;
    write_cfg(path, sizeof path, t, name, "%s", text);
    load_fails(path, &e);
    ck_has(e.msg, want);
    if (also) ck_has(e.msg, also);
    if (lines) ck_assert_int_eq(count_lines(e.msg), lines);
}

/* file_fails for <name> holding HEAD and then body. */
static void fails_with(const env *t, const char *name, const char *body, const char *want,
                       int lines) {
    char text[4096];
    snprintf(text, sizeof text, HEAD "%s", t->data, body);
    file_fails(t, name, text, want, NULL, lines);
}

/* Every key, none at its default. */
static void write_full(char *out, size_t n, const env *t, const char *name) {
    write_cfg(out, n, t, name,
              "model:\n"
              "  arch: preact-resnet18\n"
              "  activation: relu\n"
              "  width: 32\n"
              "  in_channels: 3\n"
              "  num_classes: 12\n"
              "  input_size: 32\n"
              "data:\n"
              "  dataset: cifar10\n"
              "  path: %s\n"
              "  train_subset: 5000\n"
              "  augment: none\n"
              "  batch_size: 64\n"
              "  eval_batch_size: 100\n"
              "method: ramp\n"
              "threat_models:\n"
              "  - {norm: linf, eps: 8/255, steps: 5, eval_eps: 0.03}\n"
              "  - norm: l1\n"
              "    eps: 12\n"
              "    steps: 15\n"
              "  - {norm: l2, eps: 0.5}\n"
              "attack_norm: l2\n"
              "ramp:\n"
              "  pair: [l1, linf]\n"
              "  lambda: 5\n"
              "  beta: 0.25\n"
              "  gp: false\n"
              "  outer: trades\n"
              "  trades_beta: 3\n"
              "msd:\n"
              "  alpha_linf: 0.004\n"
              "  alpha_l2: 0.1\n"
              "  alpha_l1: 1/2\n"
              "  steps: 20\n"
              "optimizer:\n"
              "  lr: 0.1\n"
              "  momentum: 0.8\n"
              "  weight_decay: 0\n"
              "  nesterov: true\n"
              "  param_groups: split\n"
              "  lr_all_groups: true\n"
              "schedule:\n"
              "  name: static\n"
              "  epochs: 80\n"
              "  static_drop_epoch: 60\n"
              "init: %s\n"
              "seed: 12345678901\n"
              "eval:\n"
              "  every: 10\n"
              "  n: 100\n"
              "  final_protocol: fast\n"
              "  final_n: 10000\n"
              "output:\n"
              "  dir: %s/out\n"
              "  checkpoint_every: 5\n",
              t->data, t->init, t->dir);
}

START_TEST(full_config_sets_every_key) {
    env t;
    env_open(&t);
    char path[1024], want[1024];
    write_full(path, sizeof path, &t, "full.yaml");
    rc_config c;
    load_ok(&c, path);
    ck_assert_int_eq(c.model.arch, RC_ARCH_PREACT_RESNET18);
    ck_assert_int_eq(c.model.activation, RC_ACTIVATION_RELU);
    ck_assert_int_eq(c.model.width, 32);
    ck_assert_int_eq(c.model.in_channels, 3);
    ck_assert_int_eq(c.model.num_classes, 12);
    ck_assert_int_eq(c.model.input_size, 32);
    ck_assert_int_eq(c.data.dataset, RC_DATASET_CIFAR10);
    ck_assert_str_eq(c.data.path, t.data);
    ck_assert_int_eq(c.data.train_subset, 5000);
    ck_assert_int_eq(c.data.augment, RC_AUGMENT_NONE);
    ck_assert_int_eq(c.data.batch_size, 64);
    ck_assert_int_eq(c.data.eval_batch_size, 100);
    ck_assert_int_eq(c.method, RC_METHOD_RAMP);
    ck_assert_int_eq(c.n_threats, 3);
    ck_assert_int_eq(c.threats[0].norm, RC_NORM_LINF);
    ck_assert(c.threats[0].eps == 8.0 / 255);
    ck_assert_int_eq(c.threats[0].steps, 5);
    ck_assert(c.threats[0].eval_eps == 0.03);
    ck_assert_int_eq(c.threats[1].norm, RC_NORM_L1);
    ck_assert(c.threats[1].eps == 12 && c.threats[1].eval_eps == 12);
    ck_assert_int_eq(c.threats[1].steps, 15);
    ck_assert_int_eq(c.threats[2].norm, RC_NORM_L2);
    ck_assert(c.threats[2].eps == 0.5 && c.threats[2].eval_eps == 0.5);
    ck_assert_int_eq(c.threats[2].steps, 10);
    ck_assert_int_eq(c.attack_norm, RC_NORM_L2);
    ck_assert_int_eq(c.ramp.pair[0], RC_NORM_L1);
    ck_assert_int_eq(c.ramp.pair[1], RC_NORM_LINF);
    ck_assert(c.ramp.lambda == 5 && c.ramp.beta == 0.25);
    ck_assert(!c.ramp.gp && c.ramp.outer == RC_OUTER_TRADES && c.ramp.trades_beta == 3);
    ck_assert(c.msd.alpha_linf == 0.004 && c.msd.alpha_l2 == 0.1 && c.msd.alpha_l1 == 0.5);
    ck_assert_int_eq(c.msd.steps, 20);
    ck_assert(c.optimizer.lr == 0.1 && c.optimizer.momentum == 0.8);
    ck_assert(c.optimizer.weight_decay == 0);
    ck_assert(c.optimizer.nesterov && c.optimizer.lr_all_groups);
    /* Given explicitly, so init does not turn it into single. */
    ck_assert_int_eq(c.optimizer.param_groups, RC_PARAM_GROUPS_SPLIT);
    ck_assert_int_eq(c.schedule.name, RC_SCHEDULE_STATIC);
    ck_assert_int_eq(c.schedule.epochs, 80);
    ck_assert_int_eq(c.schedule.static_drop_epoch, 60);
    ck_assert_str_eq(c.init, t.init);
    ck_assert_uint_eq(c.seed, 12345678901ull);
    ck_assert_int_eq(c.eval.every, 10);
    ck_assert_int_eq(c.eval.n, 100);
    ck_assert_int_eq(c.eval.final_protocol, RC_FINAL_FAST);
    ck_assert_int_eq(c.eval.final_n, 10000);
    snprintf(want, sizeof want, "%s/out", t.dir);
    ck_assert_str_eq(c.output.dir, want);
    ck_assert_int_eq(c.output.checkpoint_every, 5);
    env_close(&t);
}
END_TEST

START_TEST(defaults_come_from_dataset_arch_and_init) {
    env t;
    env_open(&t);
    char path[1024];
    rc_config c;
    rc_err e;
    /* Fashion-MNIST needs no path: the Debian package's directory is the default. */
    write_cfg(path, sizeof path, &t, "minimal.yaml",
              "model:\n  arch: small-cnn\ndata:\n  dataset: fashion-mnist\n");
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist", &st) == 0) {
        load_ok(&c, path);
        ck_assert_str_eq(c.data.path, "/usr/share/datasets/fashion-mnist");
        ck_assert_int_eq(c.model.arch, RC_ARCH_SMALL_CNN);
        ck_assert_int_eq(c.model.activation, RC_ACTIVATION_RELU);
        ck_assert_int_eq(c.model.width, 32);
        ck_assert_int_eq(c.model.in_channels, 1);
        ck_assert_int_eq(c.model.num_classes, 10);
        ck_assert_int_eq(c.model.input_size, 28);
        ck_assert_int_eq(c.data.train_subset, 0);
        ck_assert_int_eq(c.data.augment, RC_AUGMENT_NONE);
        ck_assert_int_eq(c.data.batch_size, 128);
        ck_assert_int_eq(c.data.eval_batch_size, 256);
        ck_assert_int_eq(c.method, RC_METHOD_NATURAL);
        ck_assert_int_eq(c.n_threats, 0);
        ck_assert_int_eq(c.attack_norm, RC_NORM_NONE);
        ck_assert_int_eq(c.ramp.pair[0], RC_NORM_LINF); /* the paper's default pair */
        ck_assert_int_eq(c.ramp.pair[1], RC_NORM_L1);
        ck_assert(c.ramp.lambda == 1.5 && c.ramp.beta == 0.5);
        ck_assert(c.ramp.gp && c.ramp.outer == RC_OUTER_MAX && c.ramp.trades_beta == 6);
        ck_assert(c.msd.alpha_linf == 0.003 && c.msd.alpha_l2 == 0.05 && c.msd.alpha_l1 == 0.05);
        ck_assert_int_eq(c.msd.steps, 50);
        ck_assert(c.optimizer.lr == 0.05 && c.optimizer.momentum == 0.9);
        ck_assert(c.optimizer.weight_decay == 5e-4);
        ck_assert(!c.optimizer.nesterov && !c.optimizer.lr_all_groups);
        ck_assert_int_eq(c.optimizer.param_groups, RC_PARAM_GROUPS_SPLIT);
        ck_assert_int_eq(c.schedule.name, RC_SCHEDULE_PIECEWISE_FT);
        ck_assert_int_eq(c.schedule.epochs, 3);
        ck_assert_int_eq(c.schedule.static_drop_epoch, 70);
        ck_assert_str_eq(c.init, "");
        ck_assert_uint_eq(c.seed, 0);
        ck_assert_int_eq(c.eval.every, 1);
        ck_assert_int_eq(c.eval.n, 200);
        ck_assert_int_eq(c.eval.final_protocol, RC_FINAL_FULL);
        ck_assert_int_eq(c.eval.final_n, 1000);
        ck_assert_str_eq(c.output.dir, "runs/minimal");
        ck_assert_int_eq(c.output.checkpoint_every, 1);
    } else {
        load_fails(path, &e);
        ck_has(e.msg, "data.path: cannot access '/usr/share/datasets/fashion-mnist'");
        ck_has(e.msg, "dataset-fashion-mnist");
    }

    /* CIFAR-10 and PreAct ResNet-18: 3x32x32, crop-flip, softplus; fine-tuning: one group. */
    write_cfg(path, sizeof path, &t, "cifar.yml",
              "model: {arch: preact-resnet18}\n"
              "data: {dataset: cifar10, path: %s}\n"
              "method: at\n"
              "threat_models: [{norm: l1, eps: 12}]\n"
              "init: %s\n",
              t.data, t.init);
    load_ok(&c, path);
    ck_assert_int_eq(c.model.in_channels, 3);
    ck_assert_int_eq(c.model.input_size, 32);
    ck_assert_int_eq(c.data.augment, RC_AUGMENT_CROP_FLIP);
    ck_assert_int_eq(c.model.activation, RC_ACTIVATION_SOFTPLUS);
    ck_assert_int_eq(c.optimizer.param_groups, RC_PARAM_GROUPS_SINGLE);
    ck_assert_int_eq(c.attack_norm, RC_NORM_L1); /* the only threat model */
    ck_assert(c.threats[0].eval_eps == 12);
    ck_assert_int_eq(c.threats[0].steps, 10);
    ck_assert_str_eq(c.output.dir, "runs/cifar");

    /* "auto" is accepted where the default depends on other keys; a WRN gets relu and the
     * WRN-28-10 size. */
    write_cfg(path, sizeof path, &t, "wrn.yaml",
              "model: {arch: wrn}\n"
              "data: {dataset: cifar10, path: %s, augment: auto}\n"
              "optimizer: {param_groups: auto}\n"
              "ramp: {pair: auto}\n"
              "output:\n",
              t.data);
    load_ok(&c, path);
    ck_assert_int_eq(c.model.activation, RC_ACTIVATION_RELU);
    ck_assert_int_eq(c.model.depth, 28);
    ck_assert_int_eq(c.model.width, 10);
    ck_assert_int_eq(c.model.mean.n, 0);
    ck_assert_int_eq(c.data.augment, RC_AUGMENT_CROP_FLIP);
    ck_assert_int_eq(c.optimizer.param_groups, RC_PARAM_GROUPS_SPLIT);
    ck_assert_str_eq(c.output.dir, "runs/wrn");
    env_close(&t);
}
END_TEST

START_TEST(unknown_keys_suggest_the_intended_one) {
    env t;
    env_open(&t);
    char path[1024];
    rc_err e;
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD /* lines 1-5 */
              "optimizer:\n"
              "  lr: 0.1\n"
              "  learning_rate: 0.1\n"
              "  lrr: 0.2\n"
              "  wd: 0\n"
              "  momentun: 0.5\n"
              "  epochs: 3\n"
              "sed: 1\n"
              "lr: 0.3\n"
              "threat_models:\n"
              "  - {norm: linf, epsilon: 0.1}\n"
              "completely_unrelated: 1\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:8:3: unknown key 'learning_rate' in optimizer (did you mean 'lr'?)");
    ck_has(e.msg, "cfg.yaml:9:3: unknown key 'lrr' in optimizer (did you mean 'lr'?)");
    ck_has(e.msg, "cfg.yaml:10:3: unknown key 'wd' in optimizer (did you mean 'weight_decay'?)");
    ck_has(e.msg, "cfg.yaml:11:3: unknown key 'momentun' in optimizer (did you mean 'momentum'?)");
    ck_has(e.msg, "cfg.yaml:12:3: unknown key 'epochs' in optimizer "
                  "(did you mean 'schedule.epochs'?)");
    ck_has(e.msg, "cfg.yaml:13:1: unknown key 'sed' at the top level (did you mean 'seed'?)");
    ck_has(e.msg,
           "cfg.yaml:14:1: unknown key 'lr' at the top level (did you mean 'optimizer.lr'?)");
    ck_has(e.msg, "cfg.yaml:16:18: unknown key 'epsilon' in threat_models[0] "
                  "(did you mean 'eps'?)");
    /* Last in file order, and nothing close enough to suggest. */
    const char *last = "cfg.yaml:17:1: unknown key 'completely_unrelated' at the top level";
    ck_assert_msg(strlen(e.msg) > strlen(last) &&
                      !strcmp(e.msg + strlen(e.msg) - strlen(last), last),
                  "expected the last line to be \"%s\" in:\n%s", last, e.msg);
    /* The entry's eps is missing too: reported at the entry. */
    ck_has(e.msg, "cfg.yaml:16:5: threat_models[0].eps: required: a number > 0");
    ck_assert_int_eq(count_lines(e.msg), 10);

    /* Transpositions, case and '-' for '_' count as near misses. */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              "model:\n  arhc: small-cnn\ndata:\n  Batch-Size: 3\n");
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:2:3: unknown key 'arhc' in model (did you mean 'arch'?)");
    ck_has(e.msg, "cfg.yaml:4:3: unknown key 'Batch-Size' in data (did you mean 'batch_size'?)");
    /* The required key is reported at its section. */
    ck_has(e.msg, "cfg.yaml:1:1: model.arch: required: one of small-cnn, preact-resnet18, wrn, "
                  "dm-wrn, linear");
    ck_has(e.msg, "cfg.yaml:3:1: data.dataset: required: one of fashion-mnist, mnist, cifar10");
    env_close(&t);
}
END_TEST

START_TEST(wrong_types_name_position_and_value) {
    env t;
    env_open(&t);
    char path[1024];
    rc_err e;
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD
              "optimizer:\n"
              "  lr: fast\n"
              "  nesterov: maybe\n"
              "threat_models:\n"
              "  - {norm: linf, eps: 0.1, steps: 2.5}\n"
              "  - [l2, 0.5]\n"
              "ramp:\n"
              "  lambda: [1, 2]\n"
              "  pair: linf\n"
              "seed: -1\n"
              "schedule:\n"
              "  name: {a: 1}\n"
              "  epochs:\n"
              "eval: fast\n"
              "init: {x: 1}\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:7:7: optimizer.lr: expected a number, got 'fast'");
    ck_has(e.msg, "cfg.yaml:8:13: optimizer.nesterov: expected true or false, got 'maybe'");
    ck_has(e.msg, "cfg.yaml:10:35: threat_models[0].steps: expected an integer, got '2.5'");
    ck_has(e.msg, "cfg.yaml:11:5: threat_models[1]: expected a mapping like "
                  "{norm: linf, eps: 8/255}, got a list");
    ck_has(e.msg, "cfg.yaml:13:11: ramp.lambda: expected a number, got a list");
    ck_has(e.msg, "cfg.yaml:14:9: ramp.pair: expected auto or a list of two norms like "
                  "[linf, l1], got 'linf'");
    ck_has(e.msg, "cfg.yaml:15:7: seed: expected a non-negative integer, got '-1'");
    ck_has(e.msg, "cfg.yaml:17:9: schedule.name: expected one of constant, piecewise-ft, static, "
                  "superconverge, piecewise, got a mapping");
    ck_has(e.msg, "cfg.yaml:18:10: schedule.epochs: expected an integer, got nothing");
    ck_has(e.msg, "cfg.yaml:19:7: eval: expected a mapping of keys, got 'fast'");
    ck_has(e.msg, "cfg.yaml:20:7: init: expected a string, got a mapping");
    /* Values that failed to parse are not reported a second time by the range checks. */
    ck_assert_int_eq(count_lines(e.msg), 11);
    env_close(&t);
}
END_TEST

START_TEST(out_of_range_values_are_errors) {
    env t;
    env_open(&t);
    char path[1024];
    rc_err e;
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD
              "  batch_size: 0\n"
              "method: ramp\n"
              "threat_models:\n"
              "  - {norm: linf, eps: 0}\n"
              "  - {norm: l2, eps: -1, steps: 0}\n"
              "  - {norm: linf, eps: 8}\n"
              "ramp:\n"
              "  pair: [l1, l1]\n"
              "  lambda: -0.5\n"
              "  beta: 1.5\n"
              "optimizer:\n"
              "  momentum: 1\n"
              "  lr: 0\n"
              "schedule: {name: cosine, epochs: 0}\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:6:15: data.batch_size: must be >= 1, got 0");
    ck_has(e.msg, "cfg.yaml:9:23: threat_models[0].eps: must be > 0, got 0");
    ck_has(e.msg, "cfg.yaml:10:21: threat_models[1].eps: must be > 0, got -1");
    ck_has(e.msg, "cfg.yaml:10:32: threat_models[1].steps: must be >= 1, got 0");
    ck_has(e.msg, "cfg.yaml:11:12: threat_models[2].norm: duplicate norm linf "
                  "(already in threat_models[0])");
    ck_has(e.msg, "cfg.yaml:11:23: threat_models[2].eps: a linf radius of 8 is more than the "
                  "whole pixel range [0, 1]; radii are in pixel units, e.g. 8/255");
    ck_has(e.msg, "cfg.yaml:13:14: ramp.pair: q and r must differ, got [l1, l1]");
    ck_has(e.msg, "cfg.yaml:14:11: ramp.lambda: must be >= 0, got -0.5");
    ck_has(e.msg, "cfg.yaml:15:9: ramp.beta: must be in [0, 1], got 1.5");
    ck_has(e.msg, "cfg.yaml:17:13: optimizer.momentum: must be in [0, 1), got 1");
    ck_has(e.msg, "cfg.yaml:18:7: optimizer.lr: must be > 0, got 0");
    ck_has(e.msg, "cfg.yaml:19:18: schedule.name: unknown value 'cosine' (allowed: constant, "
                  "piecewise-ft, static, superconverge, piecewise)");
    ck_has(e.msg, "cfg.yaml:19:34: schedule.epochs: must be >= 1, got 0");
    /* RAMP's outer loss and the MSD section. */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "ramp: {outer: trade, trades_beta: -1}\n"
                   "msd: {alpha_linf: 0, alpha_l2: -0.1, alpha_l1: x, steps: 0}\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:6:15: ramp.outer: unknown value 'trade' (did you mean 'trades'? "
                  "allowed: max, trades)");
    ck_has(e.msg, "cfg.yaml:6:35: ramp.trades_beta: must be >= 0, got -1");
    ck_has(e.msg, "cfg.yaml:7:19: msd.alpha_linf: must be > 0, got 0");
    ck_has(e.msg, "cfg.yaml:7:32: msd.alpha_l2: must be > 0, got -0.1");
    ck_has(e.msg, "cfg.yaml:7:48: msd.alpha_l1: expected a number, got 'x'");
    ck_has(e.msg, "cfg.yaml:7:58: msd.steps: must be >= 1, got 0");
    ck_assert_int_eq(count_lines(e.msg), 6);
    /* An unknown value gets a suggestion when one is close. */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              "model: {arch: preact-resnet-18, activation: tanh}\n"
              "data: {dataset: Fashion-MNIST, augment: flip}\n");
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:1:15: model.arch: unknown value 'preact-resnet-18' (did you mean "
                  "'preact-resnet18'? allowed: small-cnn, preact-resnet18, wrn, dm-wrn, linear)");
    ck_has(e.msg, "cfg.yaml:1:45: model.activation: unknown value 'tanh' (allowed: softplus, "
                  "relu, silu)");
    ck_has(e.msg, "cfg.yaml:2:17: data.dataset: unknown value 'Fashion-MNIST' (did you mean "
                  "'fashion-mnist'? allowed: fashion-mnist, mnist, cifar10)");
    ck_has(e.msg, "cfg.yaml:2:41: data.augment: unknown value 'flip' (did you mean 'crop-flip'? "
                  "allowed: auto, none, crop-flip)");
    ck_assert_int_eq(count_lines(e.msg), 4);
    env_close(&t);
}
END_TEST

/* Loads `path`, prints it, loads the print and checks that both structs and both prints agree. */
static void check_round_trip(const env *t, const char *path) {
    rc_config a, b;
    load_ok(&a, path);
    char *text = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    FILE *f = open_memstream(&text, &len);
    rc_config_print(f, &a);
    fclose(f);
    char printed[1024];
    write_cfg(printed, sizeof printed, t, "printed.yaml", "%s", text);
    load_ok(&b, printed);
    f = open_memstream(&again, &len2);
    rc_config_print(f, &b);
    fclose(f);
    ck_assert_str_eq(text, again);
    ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "structs differ after a round trip of:\n%s",
                  text);
    free(text);
    free(again);
}

/* Two threat models, l1 and linf, as a config line. */
#define TWO "threat_models: [{norm: l1, eps: 12}, {norm: linf, eps: 0.1}]\n"

START_TEST(method_needs_matching_threat_models) {
    env t;
    env_open(&t);
    char path[1024];
    rc_err e;
    rc_config c;
    /* after HEAD; the message; its number of lines (0: not checked) */
    static const struct {
        const char *body, *want;
        int lines;
    } bad[] = {
        {"method: at\n",
         "cfg.yaml:6:9: method: 'at' trains against threat models: add threat_models", 1},
        {"method: eat\nthreat_models: [{norm: l1, eps: 12}]\n",
         "cfg.yaml:6:9: method: 'eat' combines several threat models, but threat_models lists "
         "only l1",
         0},
        {"method: at\nthreat_models: [{norm: l1, eps: 12}, {norm: l2, eps: 1}]\n",
         "cfg.yaml:6:9: attack_norm: method at attacks one norm: set attack_norm to one of l1, l2",
         0},
        {"method: at\nthreat_models: [{norm: l1, eps: 12}]\nattack_norm: linf\n",
         "cfg.yaml:8:14: attack_norm: linf is not in threat_models (l1)", 0},
        {"method: ramp\nthreat_models: [{norm: l1, eps: 12}, {norm: linf, eps: 8/255}]\n"
         "ramp: {pair: [linf, l2]}\n",
         "cfg.yaml:8:21: ramp.pair[1]: l2 is not in threat_models (l1, linf)", 1},
        /* avg combines at least two threat models; msd needs all three norms. */
        {"method: avg\nthreat_models: [{norm: l2, eps: 1}]\n",
         "cfg.yaml:6:9: method: 'avg' combines several threat models, but threat_models lists "
         "only l2",
         0},
        {"method: msd\nthreat_models: [{norm: l2, eps: 1}, {norm: linf, eps: 0.1}]\n",
         "cfg.yaml:6:9: method: 'msd' steps in linf, l2 and l1 at once and needs all three in "
         "threat_models; l1 missing",
         1},
        {"method: msd\nthreat_models: [{norm: l2, eps: 1}, {norm: l2, eps: 0.1}]\n",
         "method: 'msd' steps in linf, l2 and l1 at once and needs all three in threat_models; "
         "linf and l1 missing",
         0},
        /* E-AT draws between linf and l1 unless train_norms says otherwise; train_norms is
         * for sat and eat only, names threat models, at least two, no repeats. */
        {"method: eat\nthreat_models: [{norm: l2, eps: 1}, {norm: l1, eps: 12}]\n",
         "cfg.yaml:6:9: method: 'eat' draws between linf and l1 as the published E-AT, but "
         "threat_models lists l2, l1: add the missing one, or name the norms to draw from in "
         "train_norms",
         1},
        {"method: ramp\n" TWO "train_norms: [linf, l1]\n",
         "cfg.yaml:8:14: train_norms: used only by methods sat and eat, not ramp", 1},
        {"method: eat\n" TWO "train_norms: [l2, l1]\n",
         "cfg.yaml:8:15: train_norms[0]: l2 is not in threat_models (l1, linf)", 1},
        {"method: sat\n" TWO "train_norms: [l1, l1]\n",
         "cfg.yaml:8:19: train_norms[1]: l1 is listed twice", 1},
        {"method: eat\n" TWO "train_norms: [l1]\n",
         "cfg.yaml:8:14: train_norms: eat draws among at least two norms; to train against one, "
         "use method at",
         1},
        {"method: eat\n" TWO "train_norms: l1\n",
         "cfg.yaml:8:14: train_norms: expected a list of one to 3 norms like [linf, l1], got", 1},
        {"method: eat\n" TWO "train_norms: [l1, l3]\n",
         "cfg.yaml:8:19: train_norms[1]: unknown value 'l3'", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        fails_with(&t, "cfg.yaml", bad[i].body, bad[i].want, bad[i].lines);
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: msd\nthreat_models: [{norm: l2, eps: 1}, {norm: l1, eps: 12},\n"
                   "  {norm: linf, eps: 8/255}]\nmsd: {steps: 7}\n",
              t.data);
    load_ok(&c, path);
    ck_assert_int_eq(c.method, RC_METHOD_MSD);
    ck_assert_int_eq(c.msd.steps, 7);
    ck_assert_int_eq(c.n_train_norms, 0); /* not a drawing method */
    /* E-AT's default: linf and l1 of the three, in threat_models' order; SAT: all three */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: eat\nthreat_models: [{norm: l2, eps: 1}, {norm: l1, eps: 12},\n"
                   "  {norm: linf, eps: 8/255}]\n",
              t.data);
    load_ok(&c, path);
    ck_assert_int_eq(c.n_train_norms, 2);
    ck_assert(c.train_norms[0] == RC_NORM_L1 && c.train_norms[1] == RC_NORM_LINF);
    check_round_trip(&t, path);
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: sat\nthreat_models: [{norm: l2, eps: 1}, {norm: l1, eps: 12},\n"
                   "  {norm: linf, eps: 8/255}]\n",
              t.data);
    load_ok(&c, path);
    ck_assert_int_eq(c.n_train_norms, 3);
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: eat\nthreat_models: [{norm: l2, eps: 1}, {norm: l1, eps: 12},\n"
                   "  {norm: linf, eps: 8/255}]\ntrain_norms: [l2, linf, l1]\n",
              t.data);
    load_ok(&c, path);
    ck_assert_int_eq(c.n_train_norms, 3);
    ck_assert(c.train_norms[0] == RC_NORM_L2 && c.train_norms[2] == RC_NORM_L1);
    check_round_trip(&t, path);

    /* pair auto: the heuristic needs l_p-AT checkpoints of two norms in threat_models, and
     * chooses init itself; at_checkpoints mean nothing with a given pair. */
#define THREE "threat_models: [{norm: l1, eps: 12}, {norm: linf, eps: 0.1}, {norm: l2, eps: 1}]\n"
    fails_with(&t, "cfg.yaml", "method: ramp\n" THREE "ramp: {pair: auto}\n",
               "cfg.yaml:8:14: ramp.pair: auto chooses the pair from l_p-AT models: give "
               "ramp.at_checkpoints for at least two norms, or the pair [q, r]",
               0);
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: ramp\n" THREE "ramp:\n  pair: auto\n"
                   "  at_checkpoints: {linf: %s, l1: %s/missing.st}\ninit: %s\n",
              t.data, t.init, t.dir, t.init);
    load_fails(path, &e);
    ck_has(e.msg, "ramp.at_checkpoints.l1: cannot access");
    ck_has(e.msg, "init: with ramp.pair: auto the run starts from q's AT checkpoint; remove init");
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: ramp\nthreat_models: [{norm: l1, eps: 12}, {norm: linf, eps: 0.1}]\n"
                   "ramp:\n  pair: auto\n  at_checkpoints: {linf: %s, l2: %s, l1: %s}\n",
              t.data, t.init, t.init, t.init);
    load_fails(path, &e);
    ck_has(e.msg, "ramp.at_checkpoints.l2: l2 is not in threat_models (l1, linf)");
    ck_assert_int_eq(count_lines(e.msg), 1);
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: ramp\n" THREE "ramp:\n  pair: [linf, l1]\n  at_checkpoints: {l2: %s}\n",
              t.data, t.init);
    load_fails(path, &e);
    ck_has(e.msg,
           "ramp.at_checkpoints.l2: used only with ramp.pair: auto (the pair is [linf, l1])");
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: ramp\n" THREE
                   "ramp:\n  pair: auto\n  at_checkpoints: {linf: %s, l2: %s}\n",
              t.data, t.init, t.init);
    load_ok(&c, path);
    ck_assert_int_eq(c.ramp.pair[0], RC_NORM_NONE);
    ck_assert_str_eq(c.ramp.at_checkpoints[RC_NORM_L2], t.init);
    ck_assert_str_eq(c.ramp.at_checkpoints[RC_NORM_L1], "");
#undef THREE

    /* A list of the wrong length. */
    fails_with(&t, "cfg.yaml", "ramp: {pair: [linf, l2, l1]}\n",
               "cfg.yaml:6:14: ramp.pair: expected two norms [q, r], got 3", 0);

    /* The same pair is fine for a method that does not use it, and natural needs no threats. */
    write_cfg(path, sizeof path, &t, "cfg.yaml", HEAD "ramp: {pair: [linf, l2]}\n", t.data);
    load_ok(&c, path);
    ck_assert_int_eq(c.ramp.pair[1], RC_NORM_L2);
    env_close(&t);
}
END_TEST

START_TEST(paths_must_exist) {
    env t;
    env_open(&t);
    char path[1024], want[1400];
    rc_err e;
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              "model: {arch: small-cnn}\n"
              "data:\n"
              "  dataset: mnist\n"
              "  path: %s/nope\n"
              "init: %s/missing.st\n",
              t.dir, t.dir);
    load_fails(path, &e);
    snprintf(want, sizeof want, "cfg.yaml:4:9: data.path: cannot access '%s/nope': No such file",
             t.dir);
    ck_has(e.msg, want);
    snprintf(want, sizeof want, "cfg.yaml:5:7: init: cannot access '%s/missing.st': No such file",
             t.dir);
    ck_has(e.msg, want);

    /* The wrong kind of file each. */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              "model: {arch: small-cnn}\ndata: {dataset: mnist, path: %s}\ninit: %s\n", t.init,
              t.data);
    load_fails(path, &e);
    snprintf(want, sizeof want, "cfg.yaml:2:30: data.path: '%s' is not a directory", t.init);
    ck_has(e.msg, want);
    snprintf(want, sizeof want, "cfg.yaml:3:7: init: '%s' is not a regular file", t.data);
    ck_has(e.msg, want);

    /* Only Fashion-MNIST has a default directory. */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              "model: {arch: small-cnn}\ndata:\n  dataset: cifar10\n");
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:3:12: data.path: required for cifar10: the directory holding its "
                  "data_batch_*.bin files");
    /* The dataset decides the input shape. */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              "model: {arch: small-cnn, in_channels: 3, input_size: 32, num_classes: 5}\n"
              "data: {dataset: mnist, path: %s}\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:1:39: model.in_channels: mnist images have 1 channel(s), got 3");
    ck_has(e.msg, "cfg.yaml:1:54: model.input_size: mnist images are 28x28 pixels, got 32");
    ck_has(e.msg, "cfg.yaml:1:71: model.num_classes: mnist has 10 classes, got 5");
    env_close(&t);
}
END_TEST

START_TEST(malformed_and_empty_files) {
    env t;
    env_open(&t);
    char path[1024], want[1200];
    rc_err e;
    static const struct {
        const char *name, *text, *want, *also;
    } bad[] = {
        {"bad.yaml", "model:\n  arch: [small-cnn\n",
         "bad.yaml:3:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
         "sequence at line 2, column 9)", NULL},
        {"tab.yaml", "model:\n\tarch: small-cnn\n",
         "tab.yaml:2:1: invalid YAML: found character that cannot start any token", NULL},
        {"alias.yaml", "model: *m\n", "alias.yaml:1:8: invalid YAML: found undefined alias", NULL},
        {"empty.yaml", "", "empty.yaml: the file holds no settings", NULL},
        {"comments.yaml", "# nothing yet\n\n", "comments.yaml: the file holds no settings", NULL},
        {"list.yaml", "- model\n- data\n",
         "list.yaml:1:1: the top level must be a mapping of keys (model:, data:, ...), got a "
         "list", NULL},
        {"scalar.yaml", "small-cnn\n", "scalar.yaml:1:1: the top level must be a mapping",
         "got 'small-cnn'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        file_fails(&t, bad[i].name, bad[i].text, bad[i].want, bad[i].also, 0);
    fails_with(&t, "two.yaml", "---\nseed: 1\n",
               "two.yaml:7:1: a second YAML document; a config file holds exactly one", 0);
    fails_with(&t, "dup.yaml", "seed: 1\nseed: 2\n",
               "dup.yaml:7:1: duplicate key 'seed' at the top level (first at line 6)", 0);

    load_fails(t.data, &e);
    snprintf(want, sizeof want, "%s: cannot open: Is a directory", t.data);
    ck_assert_str_eq(e.msg, want);
    snprintf(path, sizeof path, "%s/absent.yaml", t.dir);
    load_fails(path, &e);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    ck_assert_str_eq(e.msg, want);
    env_close(&t);
}
END_TEST

START_TEST(all_errors_are_reported_together_in_file_order) {
    env t;
    env_open(&t);
    char path[1024];
    rc_err e;
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              "model:\n"
              "  arch: small-cnn\n"
              "  width: 0\n"
              "data:\n"
              "  dataset: mnist\n"
              "  path: %s\n"
              "  batchsize: 64\n"
              "optimizer: {lr: fast}\n"
              "eval: {every: -1}\n",
              t.data);
    load_fails(path, &e);
    const char *want[] = {
        "cfg.yaml:3:10: model.width: must be >= 1, got 0",
        "cfg.yaml:7:3: unknown key 'batchsize' in data (did you mean 'batch_size'?)",
        "cfg.yaml:8:17: optimizer.lr: expected a number, got 'fast'",
        "cfg.yaml:9:15: eval.every: must be >= 0, got -1",
    };
    const char *prev = e.msg;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const char *at = strstr(e.msg, want[i]);
        ck_assert_msg(at != NULL && at >= prev, "expected \"%s\" in order in:\n%s", want[i],
                      e.msg);
        prev = at;
    }
    ck_assert_int_eq(count_lines(e.msg), 4);

    /* More than 20: the first 20 and a count of the rest. */
    char text[4096] = "model: {arch: small-cnn}\ndata: {dataset: mnist}\n";
    for (int i = 0; i < 25; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "bogus%d: 1\n", i);
    write_cfg(path, sizeof path, &t, "many.yaml", "%s", text);
    load_fails(path, &e);
    /* 25 unknown keys and the missing data.path. */
    ck_assert_int_eq(count_lines(e.msg), 21);
    ck_has(e.msg, "\n(6 more errors not shown)");
    ck_has(e.msg, "many.yaml:3:1: unknown key 'bogus0' at the top level");
    env_close(&t);
}
END_TEST

START_TEST(print_reads_back_identically) {
    env t;
    env_open(&t);
    char path[1024];
    write_full(path, sizeof path, &t, "full.yaml");
    check_round_trip(&t, path);
    write_cfg(path, sizeof path, &t, "small.yaml",
              HEAD "method: max\n"
                   "threat_models:\n"
                   "  - {norm: linf, eps: 0.1, eval_eps: 2/255}\n"
                   "  - {norm: l2, eps: 1e-3}\n"
                   "optimizer: {weight_decay: 1/3, lr: 123456789.125}\n",
              t.data);
    check_round_trip(&t, path);

    /* Paths with characters YAML treats specially survive quoting. */
    char odd[1024];
    snprintf(odd, sizeof odd, "%s/we\"ird: #dir\\ x", t.dir);
    ck_assert_int_eq(mkdir(odd, 0700), 0);
    write_cfg(path, sizeof path, &t, "odd.yaml",
              "model: {arch: small-cnn}\n"
              "data: {dataset: mnist, path: '%s/we\"ird: #dir\\ x'}\n"
              "output: {dir: \"tab\\there\"}\n",
              t.dir);
    rc_config c;
    load_ok(&c, path);
    ck_assert_str_eq(c.data.path, odd);
    ck_assert_str_eq(c.output.dir, "tab\there");
    check_round_trip(&t, path);

    /* The printed text is the documented YAML. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    rc_config_print(f, &c);
    fclose(f);
    ck_has(text, "\nmodel:\n  arch: small-cnn\n  activation: relu\n");
    ck_has(text, "\nthreat_models: []\n");
    ck_has(text, "\nramp:\n  pair: [linf, l1]\n  at_checkpoints:\n    linf: \"\"\n");
    ck_has(text, "\n  weight_decay: 0.0005\n");
    ck_has(text, "\n  dir: \"tab\\x09here\"\n");
    ck_lacks(text, "attack_norm");
    free(text);
    env_close(&t);
}
END_TEST

/* The WideResNets' depth (28 unless given, 6n + 4, theirs alone) and the input normalisation
 * (both lists or neither, one value per channel, std > 0; dm-wrn mean 0 and std 1 without). */
START_TEST(depth_and_input_normalisation) {
    env t;
    env_open(&t);
    char path[1024];
    rc_config c;
    write_cfg(path, sizeof path, &t, "dm.yaml",
              "model: {arch: dm-wrn}\ndata: {dataset: cifar10, path: %s}\n", t.data);
    load_ok(&c, path);
    ck_assert_int_eq(c.model.depth, 28);
    ck_assert_int_eq(c.model.activation, RC_ACTIVATION_SILU);
    ck_assert_int_eq(c.model.mean.n, 3);
    ck_assert_int_eq(c.model.std.n, 3);
    ck_assert(c.model.mean.v[2] == 0 && c.model.std.v[2] == 1);
    check_round_trip(&t, path);
    write_cfg(path, sizeof path, &t, "wrn.yaml",
              "model:\n  arch: wrn\n  depth: 34\n  width: 20\n  mean: [0.4914, 0.4822, 0.4465]\n"
              "  std: [0.2471, 0.2435, 0.2616]\ndata: {dataset: cifar10, path: %s}\n",
              t.data);
    load_ok(&c, path);
    ck_assert_int_eq(c.model.depth, 34);
    ck_assert_int_eq(c.model.width, 20);
    ck_assert(c.model.mean.n == 3 && c.model.mean.v[1] == 0.4822 && c.model.std.v[2] == 0.2616);
    check_round_trip(&t, path);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    rc_config_print(f, &c);
    fclose(f);
    ck_has(text, "\n  depth: 34\n");
    ck_has(text, "\n  mean: [0.4914, 0.4822, 0.4465]\n  std: [0.2471, 0.2435, 0.2616]\n");
    free(text);
    /* other architectures print no depth and no normalisation they do not have */
    write_cfg(path, sizeof path, &t, "small.yaml", HEAD, t.data);
    load_ok(&c, path);
    f = open_memstream(&text, &len);
    rc_config_print(f, &c);
    fclose(f);
    ck_lacks(text, "depth");
    ck_lacks(text, "mean");
    free(text);

    file_fails(&t, "bad-depth.yaml", "model: {arch: wrn, depth: 30}\ndata: {dataset: mnist}\n",
               "bad-depth.yaml:1:27: model.depth: a WideResNet's depth is 6n + 4", NULL, 0);
    char text2[2048];
    snprintf(text2, sizeof text2,
             "model: {arch: small-cnn, depth: 28, mean: [0.5], std: [0, 1]}\n"
             "data: {dataset: mnist, path: %s}\n",
             t.data);
    file_fails(&t, "other.yaml", text2,
               "other.yaml:1:33: model.depth: only the WideResNets (wrn, dm-wrn) have a depth, "
               "not small-cnn",
               "other.yaml:1:55: model.std: 2 value(s) for 1 input channel(s)", 2);
    snprintf(text2, sizeof text2,
             "model: {arch: preact-resnet18, mean: [0.5, 0.5, 0.5], std: [1, 0, 1]}\n"
             "data: {dataset: cifar10, path: %s}\n",
             t.data);
    file_fails(&t, "zero.yaml", text2, "zero.yaml:1:60: model.std: value 1 must be > 0, got 0",
               NULL, 1);
    snprintf(text2, sizeof text2,
             "model: {arch: wrn, mean: [0.5, 0.5, 0.5]}\ndata: {dataset: cifar10, path: %s}\n",
             t.data);
    file_fails(&t, "half.yaml", text2,
               "half.yaml:1:26: model.mean: input normalisation needs both model.mean and "
               "model.std",
               NULL, 1);
    file_fails(&t, "list.yaml",
               "model: {arch: wrn, mean: 0.5, std: [1, 2, 3, 4, 5]}\ndata: {dataset: mnist}\n",
               "list.yaml:1:26: model.mean: expected a list of one number per input channel (at "
               "most 4), like [0.4914, 0.4822, 0.4465], got '0.5'",
               "list.yaml:1:36: model.std: expected a list of one number per input channel (at "
               "most 4), like [0.4914, 0.4822, 0.4465], got 5 numbers",
               0);
    file_fails(&t, "item.yaml", "model: {arch: wrn, mean: [a], std: [1]}\ndata: {dataset: mnist}\n",
               "item.yaml:1:27: model.mean[0]: expected a number, got 'a'", NULL, 0);
    env_close(&t);
}
END_TEST

START_TEST(fractions_are_numbers) {
    env t;
    env_open(&t);
    char path[1024];
    rc_config c;
    rc_err e;
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "method: avg\n"
                   "threat_models:\n"
                   "  - {norm: linf, eps: 8/255, eval_eps: 16/255}\n"
                   "  - {norm: l2, eps: 1/2}\n"
                   "  - {norm: l1, eps: 24/2.0}\n"
                   "optimizer: {lr: 1/10, weight_decay: 5e-4}\n",
              t.data);
    load_ok(&c, path);
    ck_assert(c.threats[0].eps == 8.0 / 255);
    ck_assert(c.threats[0].eval_eps == 16.0 / 255);
    ck_assert(c.threats[1].eps == 0.5);
    ck_assert(c.threats[2].eps == 12);
    ck_assert(c.optimizer.lr == 1.0 / 10);
    ck_assert(c.optimizer.weight_decay == 5e-4);

    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "threat_models:\n"
                   "  - {norm: linf, eps: 8/0}\n"
                   "  - {norm: l2, eps: 8/}\n"
                   "  - {norm: l1, eps: 1/2/3}\n"
                   "optimizer: {lr: inf, momentum: 0x1p-1, weight_decay: nan}\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "threat_models[0].eps: expected a number, got '8/0'");
    ck_has(e.msg, "threat_models[1].eps: expected a number, got '8/'");
    ck_has(e.msg, "threat_models[2].eps: expected a number, got '1/2/3'");
    ck_has(e.msg, "optimizer.lr: expected a number, got 'inf'");
    ck_has(e.msg, "optimizer.momentum: expected a number, got '0x1p-1'");
    ck_has(e.msg, "optimizer.weight_decay: expected a number, got 'nan'");
    ck_assert_int_eq(count_lines(e.msg), 6);
    env_close(&t);
}
END_TEST

START_TEST(shipped_example_config_loads) {
    const char *src = getenv("RAMP_CL_SRCDIR");
    if (!src || !*src) {
        fprintf(stderr, "check_config: RAMP_CL_SRCDIR not set, not loading configs/*.yaml\n");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/natural-fmnist.yaml", src);
    rc_config c;
    rc_err e;
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist", &st) != 0) {
        /* Without the dataset installed, that must be the only complaint. */
        ck_assert_int_eq(rc_config_load(&c, path, &e), -1);
        ck_has(e.msg, "data.path: cannot access '/usr/share/datasets/fashion-mnist'");
        ck_assert_int_eq(count_lines(e.msg), 1);
        return;
    }
    load_ok(&c, path);
    ck_assert_int_eq(c.model.arch, RC_ARCH_SMALL_CNN);
    ck_assert_int_eq(c.data.dataset, RC_DATASET_FASHION_MNIST);
    ck_assert_int_eq(c.method, RC_METHOD_NATURAL);
    ck_assert_int_eq(c.schedule.name, RC_SCHEDULE_CONSTANT);
    ck_assert_int_eq(c.schedule.epochs, 1);
    ck_assert_int_eq(c.data.batch_size, 128);
    ck_assert_str_eq(c.output.dir, "runs/natural-fmnist");
}
END_TEST

START_TEST(finalize_checks_configs_built_in_code) {
    env t;
    env_open(&t);
    rc_config c, again;
    rc_err e;
    rc_config_defaults(&c);
    c.model.arch = RC_ARCH_SMALL_CNN;
    c.data.dataset = RC_DATASET_MNIST;
    snprintf(c.data.path, sizeof c.data.path, "%s", t.data);
    c.method = RC_METHOD_RAMP;
    c.n_threats = 2;
    c.threats[0] = (rc_threat){.norm = RC_NORM_LINF, .eps = 0.3, .steps = 5};
    c.threats[1] = (rc_threat){.norm = RC_NORM_L1, .eps = 10, .steps = 15, .eval_eps = 12};
    c.ramp.pair[0] = RC_NORM_LINF;
    c.ramp.pair[1] = RC_NORM_L1;
    ck_assert_msg(rc_config_finalize(&c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c.model.in_channels, 1);
    ck_assert_int_eq(c.model.input_size, 28);
    ck_assert_int_eq(c.data.augment, RC_AUGMENT_NONE);
    ck_assert(c.threats[0].eval_eps == 0.3 && c.threats[1].eval_eps == 12);
    ck_assert_str_eq(c.output.dir, "runs/run");
    /* A second finalize changes nothing. */
    again = c;
    ck_assert_msg(rc_config_finalize(&again, &e) == 0, "%s", e.msg);
    ck_assert(memcmp(&c, &again, sizeof c) == 0);

    /* Errors carry no position, only the key. */
    c.data.batch_size = 0;
    c.threats[1].norm = RC_NORM_LINF;
    c.threats[0].eps = NAN;
    c.ramp.pair[1] = RC_NORM_NONE;
    c.method = (rc_method)42;
    ck_assert_int_eq(rc_config_finalize(&c, &e), -1);
    ck_has(e.msg, "method: invalid value 42");
    ck_has(e.msg, "data.batch_size: must be >= 1, got 0");
    ck_has(e.msg, "threat_models[0].eps: must be > 0, got nan");
    ck_has(e.msg, "threat_models[1].norm: duplicate norm linf (already in threat_models[0])");
    ck_has(e.msg, "ramp.pair: set both norms [q, r], or auto");
    ck_assert_msg(e.msg[0] == 'd', "%s", e.msg);

    rc_config_defaults(&c);
    ck_assert_int_eq(rc_config_finalize(&c, &e), -1);
    ck_has(e.msg, "model.arch: required: one of small-cnn, preact-resnet18, wrn, dm-wrn");
    ck_has(e.msg, "data.dataset: required");
    ck_assert_int_eq(count_lines(e.msg), 2);
    env_close(&t);
}
END_TEST

START_TEST(names_and_threat_lookup) {
    ck_assert_str_eq(rc_norm_name(RC_NORM_LINF), "linf");
    ck_assert_str_eq(rc_norm_name(RC_NORM_L2), "l2");
    ck_assert_str_eq(rc_norm_name(RC_NORM_L1), "l1");
    ck_assert_str_eq(rc_norm_name(RC_NORM_NONE), "none");
    ck_assert_str_eq(rc_arch_name(RC_ARCH_WRN), "wrn");
    ck_assert_str_eq(rc_arch_name(RC_ARCH_DM_WRN), "dm-wrn");
    rc_activation act;
    ck_assert(rc_activation_from_name("silu", &act) == 0 && act == RC_ACTIVATION_SILU);
    ck_assert_int_eq(rc_activation_from_name("swish", &act), -1);
    ck_assert_str_eq(rc_arch_name(RC_ARCH_UNSET), "unset");
    ck_assert_str_eq(rc_activation_name(RC_ACTIVATION_SOFTPLUS), "softplus");
    ck_assert_str_eq(rc_dataset_kind_name(RC_DATASET_CIFAR10), "cifar10");
    ck_assert_str_eq(rc_augment_name(RC_AUGMENT_CROP_FLIP), "crop-flip");
    ck_assert_str_eq(rc_augment_name(RC_AUGMENT_AUTO), "auto");
    ck_assert_str_eq(rc_method_name(RC_METHOD_MSD), "msd");
    ck_assert_str_eq(rc_method_name(RC_METHOD_RAMP), "ramp");
    ck_assert_str_eq(rc_param_groups_name(RC_PARAM_GROUPS_SPLIT), "split");
    ck_assert_str_eq(rc_schedule_kind_name(RC_SCHEDULE_SUPERCONVERGE), "superconverge");
    ck_assert_str_eq(rc_final_protocol_name(RC_FINAL_NONE), "none");
    ck_assert_str_eq(rc_final_protocol_name(RC_FINAL_STANDARD), "standard");
    ck_assert_str_eq(rc_method_name((rc_method)99), "invalid");
    rc_config c;
    rc_config_defaults(&c);
    c.n_threats = 2;
    c.threats[0].norm = RC_NORM_L1;
    c.threats[1].norm = RC_NORM_LINF;
    ck_assert_int_eq(rc_config_find_threat(&c, RC_NORM_L1), 0);
    ck_assert_int_eq(rc_config_find_threat(&c, RC_NORM_LINF), 1);
    ck_assert_int_eq(rc_config_find_threat(&c, RC_NORM_L2), -1);
}
END_TEST

/* Found by tests/fuzz: text from the file went into messages as it was, so a folded multi-line
 * scalar or a quoted "\n" made one problem look like several lines (and an escape sequence
 * reached the terminal). Each problem is one line now, the text shown escaped. */
START_TEST(file_text_in_messages_is_escaped) {
    env t;
    env_open(&t);
    char path[1024];
    rc_err e;
    write_cfg(path, sizeof path, &t, "ml.yaml",
              HEAD "method: natural\n"
                   "schedule:\n  name: one\n    two\n\n    three\n"
                   "\"bad\\nkey\\e[2J\": 1\n"
                   "init: \"/no\\twhere\\n\"\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "ml.yaml:8:9: schedule.name: unknown value 'one two\\nthree' (allowed: ");
    ck_has(e.msg, "ml.yaml:12:1: unknown key 'bad\\nkey\\x1b[2J' at the top level");
    ck_has(e.msg, "ml.yaml:13:7: init: cannot access '/no\\twhere\\n': No such file");
    ck_assert_int_eq(count_lines(e.msg), 3);
    ck_assert_ptr_null(strchr(e.msg, '\x1b'));
    env_close(&t);
}
END_TEST

/* rc_config_load_buffer, which rc_config_load and the fuzzer use: the text needs no terminator
 * (only len bytes are read) and loads as the same file does. */
START_TEST(load_buffer_reads_exactly_len_bytes) {
    env t;
    env_open(&t);
    char path[1024], text[2048];
    int len = snprintf(text, sizeof text, HEAD "seed: 12345", t.data);
    write_cfg(path, sizeof path, &t, "run.yaml", HEAD "seed: 12\n", t.data);
    rc_config from_file, from_text;
    rc_err e;
    load_ok(&from_file, path);
    ck_assert_msg(rc_config_load_buffer(&from_text, path, text, (size_t)len - 3, &e) == 0, "%s",
                  e.msg);
    ck_assert_int_eq(from_text.seed, 12);
    ck_assert_str_eq(from_text.output.dir, "runs/run");
    ck_assert_int_eq(memcmp(&from_file, &from_text, sizeof from_file), 0);
    ck_assert_int_eq(rc_config_load_buffer(&from_text, "mem.yaml", text, 0, &e), -1);
    ck_has(e.msg, "mem.yaml: the file holds no settings");
    env_close(&t);
}
END_TEST

START_TEST(other_checks) {
    env t;
    env_open(&t);
    char path[1024];
    rc_err e;
    rc_config c;
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "optimizer: {momentum: 0, nesterov: true}\n"
                   "threat_models: [{norm: linf, eps: 0.1, eval_eps: 4}]\n"
                   "model: {arch: wrn}\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "cfg.yaml:6:36: optimizer.nesterov: needs momentum > 0");
    ck_has(e.msg, "cfg.yaml:7:50: threat_models[0].eval_eps: a linf radius of 4 is more than");
    ck_has(e.msg, "cfg.yaml:8:1: duplicate key 'model' at the top level (first at line 1)");
    ck_assert_int_eq(count_lines(e.msg), 3);

    /* Booleans in the YAML 1.1 spellings, an empty section, null strings and a long seed. */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "ramp: {gp: off}\n"
                   "optimizer: {nesterov: ON, lr_all_groups: Yes}\n"
                   "eval:\n"
                   "init: ~\n"
                   "seed: 18446744073709551615\n",
              t.data);
    load_ok(&c, path);
    ck_assert(!c.ramp.gp && c.optimizer.nesterov && c.optimizer.lr_all_groups);
    ck_assert_str_eq(c.init, "");
    ck_assert_uint_eq(c.seed, UINT64_MAX);
    ck_assert_int_eq(c.eval.n, 200);

    /* numbers the type cannot hold are out of range, not "expected a number" */
    write_cfg(path, sizeof path, &t, "cfg.yaml",
              HEAD "seed: 18446744073709551616\neval: {n: 99999999999}\n"
                   "optimizer: {lr: 1e-400, momentum: 1e400, weight_decay: 1e300/1e-300}\n",
              t.data);
    load_fails(path, &e);
    ck_has(e.msg, "seed: '18446744073709551616' is out of range (at most 18446744073709551615)");
    ck_has(e.msg, "eval.n: '99999999999' is out of range (an integer from -2147483648 to "
                  "2147483647)");
    ck_has(e.msg, "optimizer.lr: '1e-400' is out of range");
    ck_has(e.msg, "optimizer.momentum: '1e400' is out of range");
    ck_has(e.msg, "optimizer.weight_decay: '1e300/1e-300' is out of range");
    env_close(&t);
}
END_TEST

/* What a resume compares: the resolved config as checkpoints record it. Changes are listed key by
 * key (list entries too); only safe keys pass, and only when accepted by name. */
START_TEST(resume_config_changes) {
    env t;
    env_open(&t);
    char path[1200];
    rc_config a, b;
    rc_err e;
    write_cfg(path, sizeof path, &t, "a.yaml",
              HEAD "method: max\nthreat_models:\n  - {norm: linf, eps: 0.1}\n"
                   "  - {norm: l1, eps: 10}\noutput: {dir: runs/a}\n",
              t.data);
    load_ok(&a, path);
    b = a;
    snprintf(b.output.dir, sizeof b.output.dir, "elsewhere"); /* not part of the record */
    char *ta = rc_run_config_text(&a), *tb = rc_run_config_text(&b), digest[17];
    ck_assert_ptr_nonnull(ta);
    ck_assert_ptr_nonnull(tb);
    rc_fnv1a64_hex(ta, digest);
    ck_assert_str_eq(ta, tb);
    free(tb);
    b.n_threats = 1;
    b.optimizer.lr = 0.1;
    b.eval.final_n = 50;
    tb = rc_run_config_text(&b);
    const char *accept[] = {"eval.final_n"};
    ck_assert_int_eq(rc_run_config_check(ta, digest, tb, accept, 1, 1, &e), -1);
    ck_has(e.msg, "threat_models[1]: {norm: l1, eps: 10, steps: 10, eval_eps: 10} -> (none)");
    ck_has(e.msg, "optimizer.lr: 0.05 -> 0.1");
    ck_lacks(e.msg, "eval.final_n: 1000 -> 50"); /* accepted */
    ck_has(e.msg, "train on in a new run with init:");
    free(tb);
    b = a;
    b.eval.final_n = 50;
    b.output.checkpoint_minutes = 5;
    tb = rc_run_config_text(&b);
    const char *both[] = {"eval.final_n", "output.checkpoint_minutes"};
    ck_assert_int_eq(rc_run_config_check(ta, digest, tb, both, 1, 1, &e), -1);
    ck_has(e.msg, "output.checkpoint_minutes: 30 -> 5");
    ck_has(e.msg, "accept each with --accept KEY");
    ck_assert_msg(rc_run_config_check(ta, digest, tb, both, 2, 1, &e) == 0, "%s", e.msg);
    ck_assert(!rc_run_config_safe_key("schedule.epochs") && rc_run_config_safe_key("init"));
    free(ta);
    free(tb);
    env_close(&t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, full_config_sets_every_key);
    tcase_add_test(tc, resume_config_changes);
    tcase_add_test(tc, defaults_come_from_dataset_arch_and_init);
    tcase_add_test(tc, unknown_keys_suggest_the_intended_one);
    tcase_add_test(tc, wrong_types_name_position_and_value);
    tcase_add_test(tc, out_of_range_values_are_errors);
    tcase_add_test(tc, method_needs_matching_threat_models);
    tcase_add_test(tc, paths_must_exist);
    tcase_add_test(tc, malformed_and_empty_files);
    tcase_add_test(tc, all_errors_are_reported_together_in_file_order);
    tcase_add_test(tc, print_reads_back_identically);
    tcase_add_test(tc, fractions_are_numbers);
    tcase_add_test(tc, depth_and_input_normalisation);
    tcase_add_test(tc, shipped_example_config_loads);
    tcase_add_test(tc, finalize_checks_configs_built_in_code);
    tcase_add_test(tc, names_and_threat_lookup);
    tcase_add_test(tc, other_checks);
    tcase_add_test(tc, file_text_in_messages_is_escaped);
    tcase_add_test(tc, load_buffer_reads_exactly_len_bytes);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
