/* ramp-cl command line: parses arguments and dispatches to the commands. */
#include "config.h"
#include "ramp/bench.h"
#include "ramp/config.h"
#include "ramp/context.h"
#include "ramp/device.h"
#include "ramp/eval.h"
#include "ramp/interrupt.h"
#include "ramp/pair.h"
#include "ramp/plot.h"
#include "ramp/selftest.h"
#include "ramp/train.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fputs("Usage: ramp-cl [OPTION]... CONFIG.yaml      train as the config says\n"
          "       ramp-cl [OPTION]... --resume RUN_DIR  continue a stopped run\n"
          "       ramp-cl [OPTION]... COMMAND [ARG]\n"
          "Robust training against several l_p adversaries at once, on any OpenCL device.\n"
          "\n"
          "Commands:\n"
          "  check CONFIG.yaml   validate a config and print it with every default resolved\n"
          "  eval CONFIG.yaml    robust evaluation of a checkpoint: clean, per-norm and union\n"
          "                      accuracy (--checkpoint, --protocol fast|full|standard, --n)\n"
          "  pair CONFIG.yaml    choose RAMP's key tradeoff pair from l_inf-, l_2- and l_1-AT\n"
          "                      checkpoints (--linf F --l2 F --l1 F, --n, --write OUT.yaml)\n"
          "  plot RUN_DIR...     draw the training curves and final evaluation bars of runs\n"
          "                      into one SVG (-o; a PNG beside it where rsvg-convert is on PATH)\n"
          "  bench               images/s and GFLOP/s of training, forward and attack steps\n"
          "                      for each model (--model, --batch, --seconds)\n"
          "  selftest            run a CLBlast SGEMM, ramp-cl's GEMM and a ramp-cl kernel on\n"
          "                      the device and compare them with the host (also: --selftest)\n"
          "\n"
          "Options:\n"
          "  -d, --device N      use OpenCL device N (see --list-devices; default 0)\n"
          "  -l, --list-devices  list every OpenCL platform and device with its index\n"
          "  -q, --quiet         print only results and errors (no progress)\n"
          "  -v, --verbose       also report what the kernel cache did\n"
          "      --resume DIR    continue the run in DIR from its last checkpoint, with the\n"
          "                      config it was started with (bit-exact on the same device)\n"
          "      --checkpoint F  eval: the checkpoint (default: the run's model.safetensors)\n"
          "      --protocol P    eval: fast (APGD-CE, an upper bound), full (APGD-CE + APGD-T,\n"
          "                      E-AT's) or standard (AutoAttack's: full + FAB-T + Square);\n"
          "                      default: the config's eval.final_protocol\n"
          "      --n N           eval: the first N test points (default: eval.final_n)\n"
          "      --model NAME    bench: only this model (small-cnn or preact-resnet18)\n"
          "      --batch N       bench: batch size (default 128)\n"
          "      --seconds S     bench: time each workload for at least S seconds (default 3)\n"
          "  -o, --output F      plot: the SVG to write (default: RUN_DIR/plot.svg for one run,\n"
          "                      runs-plot.svg in the working directory for several)\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       show the version and exit\n"
          "\n"
          "Environment:\n"
          "  RAMP_CL_CACHE_DIR   compiled-kernel cache (default $XDG_CACHE_HOME/ramp-cl)\n"
          "  RAMP_CL_NO_CACHE    set to 1 to compile kernels on every run\n"
          "  RAMP_CL_KERNEL_DIR  read kernels from this directory instead of the built-in ones\n"
          "\n"
          "Signals: SIGINT or SIGTERM during training finish the current step, write a\n"
          "checkpoint and exit with 130 or 143; a second signal exits at once.\n"
          "\n"
          "See ramp-cl(1) for details.\n",
          f);
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int list_devices(rc_err *e) {
    rc_device_desc *list;
    int n;
    if (rc_devices_enumerate(&list, &n, e)) return -1;
    for (int i = 0; i < n; i++) rc_device_print(stdout, &list[i]);
    free(list);
    return 0;
}

static void print_cache_stats(const rc_ctx *ctx) {
    fflush(stdout);
    fprintf(stderr,
            "ramp-cl: kernel cache %s: %d built from source, %d loaded, %d rejected, %d written\n",
            ctx->cache_dir[0] ? ctx->cache_dir : "(disabled)", ctx->stats.source_builds,
            ctx->stats.cache_hits, ctx->stats.cache_rejects, ctx->stats.cache_writes);
}

typedef struct cli {
    int device, verbose, quiet, list;
    const char *command, *arg, *resume;
    rc_bench_opts bench;
    const char *checkpoint, *protocol;
    const char *pair_ckpt[3], *write;
    int n;
    const char **plot_dirs, *output; /* plot: its run directories (as many as arguments) */
    int n_plot_dirs;
} cli;

/* Commands that need a device. Returns the exit status. */
static int with_device(const cli *c, rc_err *e) {
    rc_config cfg;
    int is_eval = !strcmp(c->command, "eval"), is_pair = !strcmp(c->command, "pair");
    int is_train = !is_eval && !is_pair && strcmp(c->command, "selftest") &&
                   strcmp(c->command, "bench");
    rc_progress_mode show = rc_progress_mode_for(stdout, c->quiet);
    /* A config is validated completely before any device work starts. */
    if ((is_train || is_eval || is_pair) &&
        rc_config_load(&cfg, is_train ? c->command : c->arg, e))
        return 1;
    if (c->resume) { /* the run directory may have moved since: it is where the run lives */
        if (strlen(c->resume) >= sizeof cfg.output.dir) {
            rc_err_set(e, "--resume: directory name too long");
            return 1;
        }
        strcpy(cfg.output.dir, c->resume);
    }
    /* eval: --protocol, else eval.final_protocol (fast when that is none) */
    rc_protocol protocol = RC_PROTOCOL_FAST;
    const char *pname = c->protocol ? c->protocol : rc_final_protocol_name(cfg.eval.final_protocol);
    if (is_eval && rc_protocol_from_name(pname, &protocol)) protocol = RC_PROTOCOL_FAST;
    rc_ctx ctx;
    if (rc_ctx_open(&ctx, c->device, e)) return 1;
    int status = 0;
    if (!strcmp(c->command, "selftest")) {
        rc_selftest_result r;
        if (rc_selftest(&ctx, stdout, &r, e)) status = -1;
        else {
            printf("selftest: %s\n", r.passed ? "PASS" : "FAIL");
            status = r.passed ? 0 : 1;
        }
    } else if (!strcmp(c->command, "bench")) {
        status = rc_bench_run(&ctx, &c->bench, e) ? -1 : 0;
    } else if (is_pair) {
        status = rc_pair_run(&ctx, &cfg, c->pair_ckpt, c->n > 0 ? c->n : cfg.eval.final_n,
                             c->write, e) ? -1 : 0;
    } else if (is_eval) {
        status = rc_eval_run(&ctx, &cfg, c->checkpoint, protocol, c->n, show, e) ? -1 : 0;
    } else {
        rc_run_opts o = {.progress = show, .resume = c->resume != NULL};
        int r = rc_train_run(&ctx, &cfg, &o, e);
        status = r < 0 ? -1 : r > 0 ? 128 + r : 0; /* stopped by a signal: 130 / 143 */
    }
    rc_ctx_close(&ctx);
    if (c->verbose) print_cache_stats(&ctx);
    return status < 0 ? 1 : status;
}

/* Parse and run; plot_dirs has room for every argument. Returns the exit status. */
static int run_cli(int argc, char **argv, const char **plot_dirs) {
    cli c = {.bench = {.model = NULL, .batch = 128, .min_seconds = 3.0}};
    rc_err e;
    rc_err_clear(&e);
    c.plot_dirs = plot_dirs;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            printf("%s\n", PACKAGE_STRING);
            return 0;
        } else if (!strcmp(a, "-l") || !strcmp(a, "--list-devices")) {
            c.list = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c.quiet = 1;
        } else if (!strcmp(a, "--resume") && i + 1 < argc) {
            c.resume = argv[++i];
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            c.verbose = 1;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--device") || !strncmp(a, "--device=", 9)) {
            const char *s = a[1] == '-' && a[8] == '=' ? a + 9 : i + 1 < argc ? argv[++i] : NULL;
            if (!s || parse_int(s, 0, INT_MAX, &v)) {
                fprintf(stderr, "ramp-cl: --device needs a non-negative integer index%s%s\n",
                        s ? ", got " : "", s ? s : "");
                return 2;
            }
            c.device = (int)v;
        } else if ((!strcmp(a, "--linf") || !strcmp(a, "--l2") || !strcmp(a, "--l1")) &&
                   i + 1 < argc) {
            c.pair_ckpt[!strcmp(a, "--linf") ? RC_NORM_LINF
                        : !strcmp(a, "--l2") ? RC_NORM_L2 : RC_NORM_L1] = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            c.output = argv[++i];
        } else if (!strcmp(a, "--write") && i + 1 < argc) {
            c.write = argv[++i];
        } else if (!strcmp(a, "--checkpoint") && i + 1 < argc) {
            c.checkpoint = argv[++i];
        } else if (!strcmp(a, "--protocol") && i + 1 < argc) {
            c.protocol = argv[++i];
            rc_protocol p;
            if (rc_protocol_from_name(c.protocol, &p)) {
                fprintf(stderr, "ramp-cl: --protocol must be fast, full or standard, got %s\n",
                        c.protocol);
                return 2;
            }
        } else if (!strcmp(a, "--n") && i + 1 < argc) {
            if (parse_int(argv[++i], 1, INT_MAX, &v)) {
                fprintf(stderr, "ramp-cl: --n needs a positive integer\n");
                return 2;
            }
            c.n = (int)v;
        } else if (!strcmp(a, "--model") && i + 1 < argc) {
            c.bench.model = argv[++i];
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 65536, &v)) {
                fprintf(stderr, "ramp-cl: --batch needs an integer from 1 to 65536\n");
                return 2;
            }
            c.bench.batch = (int)v;
        } else if (!strcmp(a, "--seconds") && i + 1 < argc) {
            char *end;
            c.bench.min_seconds = strtod(argv[++i], &end);
            if (*end || c.bench.min_seconds < 0) {
                fprintf(stderr, "ramp-cl: --seconds needs a non-negative number\n");
                return 2;
            }
        } else if (!strcmp(a, "--selftest")) {
            c.command = "selftest";
        } else if (a[0] == '-') {
            fprintf(stderr, "ramp-cl: unknown option %s (see ramp-cl --help)\n", a);
            return 2;
        } else if (!c.command) {
            c.command = a;
        } else if (!strcmp(c.command, "plot")) {
            c.plot_dirs[c.n_plot_dirs++] = a;
        } else if (!c.arg && (!strcmp(c.command, "check") || !strcmp(c.command, "eval") ||
                              !strcmp(c.command, "pair"))) {
            c.arg = a;
        } else {
            fprintf(stderr, "ramp-cl: unexpected argument %s after %s\n", a, c.command);
            return 2;
        }
    }
    if (c.list) {
        if (list_devices(&e)) {
            fprintf(stderr, "ramp-cl: error: %s\n", e.msg);
            return 1;
        }
        if (!c.command) return 0;
    }
    char resume_config[PATH_MAX];
    if (c.resume) { /* the run's resolved config, as written when it started */
        if (c.command) {
            fprintf(stderr, "ramp-cl: --resume takes the run directory only; it uses the "
                            "run's own config.yaml, got also %s\n", c.command);
            return 2;
        }
        snprintf(resume_config, sizeof resume_config, "%s/config.yaml", c.resume);
        if (access(resume_config, R_OK) != 0) {
            fprintf(stderr, "ramp-cl: error: --resume %s: cannot read %s: %s (not a run "
                            "directory?)\n", c.resume, resume_config, strerror(errno));
            return 1;
        }
        c.command = resume_config;
    }
    if (!c.command) {
        usage(stderr);
        return 2;
    }
    if (c.bench.model && strcmp(c.bench.model, "small-cnn") &&
        strcmp(c.bench.model, "preact-resnet18")) {
        fprintf(stderr, "ramp-cl: --model must be small-cnn or preact-resnet18, got %s\n",
                c.bench.model);
        return 2;
    }
    if (!strcmp(c.command, "check")) {
        if (!c.arg) {
            fprintf(stderr, "ramp-cl: check needs a config file\n");
            return 2;
        }
        rc_config cfg;
        if (rc_config_load(&cfg, c.arg, &e)) {
            fprintf(stderr, "ramp-cl: error: %s\n", e.msg);
            return 1;
        }
        rc_config_print(stdout, &cfg);
        return 0;
    }
    if (!strcmp(c.command, "plot")) {
        if (!c.n_plot_dirs) {
            fprintf(stderr, "ramp-cl: plot needs at least one run directory\n");
            return 2;
        }
        if (rc_plot_runs(c.plot_dirs, c.n_plot_dirs, c.output, stdout, &e)) {
            fprintf(stderr, "ramp-cl: error: %s\n", e.msg);
            return 1;
        }
        return 0;
    }
    if ((!strcmp(c.command, "eval") || !strcmp(c.command, "pair")) && !c.arg) {
        fprintf(stderr, "ramp-cl: %s needs a config file (its data and threat_models)\n",
                c.command);
        return 2;
    }
    int known = !strcmp(c.command, "selftest") || !strcmp(c.command, "bench") ||
                !strcmp(c.command, "eval") || !strcmp(c.command, "pair");
    size_t len = strlen(c.command);
    int yaml = len > 5 && (!strcmp(c.command + len - 5, ".yaml") ||
                           !strcmp(c.command + len - 4, ".yml"));
    if (!known && !yaml) {
        fprintf(stderr, "ramp-cl: unknown command %s (see ramp-cl --help)\n", c.command);
        return 2;
    }
    rc_interrupt_install();
    int status = with_device(&c, &e);
    if (status && e.msg[0]) fprintf(stderr, "ramp-cl: error: %s\n", e.msg);
    return status;
}

int main(int argc, char **argv) {
    const char **plot_dirs = malloc((size_t)argc * sizeof *plot_dirs);
    if (!plot_dirs) {
        fprintf(stderr, "ramp-cl: out of host memory\n");
        return 1;
    }
    int status = run_cli(argc, argv, plot_dirs);
    free(plot_dirs);
    return status;
}
