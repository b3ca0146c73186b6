/* ramp-cl command line: parses arguments and dispatches to the commands. */
#include "config.h"
#include "ramp/bench.h"
#include "ramp/config.h"
#include "ramp/context.h"
#include "ramp/device.h"
#include "ramp/dist.h"
#include "ramp/eval.h"
#include "ramp/interrupt.h"
#include "ramp/pair.h"
#include "ramp/plot.h"
#include "ramp/rundir.h"
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
          "  -d, --device N      use OpenCL device N (see --list-devices; default 0); under\n"
          "                      mpirun, auto gives each process the device of its rank on\n"
          "                      its node, and N,N,... lists them by that rank\n"
          "  -l, --list-devices  list every OpenCL platform and device with its index\n"
          "  -q, --quiet         print only results and errors (no progress)\n"
          "  -v, --verbose       also report what the kernel cache did\n"
          "      --resume DIR    continue the run in DIR from its last checkpoint, with the\n"
          "                      config it was started with (bit-exact on the same device);\n"
          "                      an edited config.yaml is refused, but for the keys accepted\n"
          "      --accept KEY    with --resume: the change of KEY in config.yaml, one of\n"
          "                      eval.every, eval.n, eval.final_protocol, eval.final_n,\n"
          "                      output.checkpoint_every, output.checkpoint_minutes,\n"
          "                      data.eval_batch_size, data.path, init (repeat it per key)\n"
          "      --checkpoint F  eval: the checkpoint (default: the run's model.safetensors)\n"
          "      --protocol P    eval: fast (APGD-CE, an upper bound), full (APGD-CE + APGD-T,\n"
          "                      E-AT's) or standard (AutoAttack's: full + FAB-T + Square);\n"
          "                      default: the config's eval.final_protocol\n"
          "      --n N           eval: the first N test points (default: eval.final_n)\n"
          "      --model NAME    bench: only this model (small-cnn, preact-resnet18, wrn-28-10,\n"
          "                      wrn-34-10, wrn-34-20, wrn-70-16, dm-wrn-28-10, dm-wrn-34-20,\n"
          "                      dm-wrn-70-16) or all; default small-cnn and preact-resnet18\n"
          "      --batch N       bench: batch size (default 128)\n"
          "      --seconds S     bench: time each workload for at least S seconds (default 3,\n"
          "                      at most 86400)\n"
          "      --layers        bench: the device's FMA peak and each convolution's forward,\n"
          "                      data- and weight-gradient calls, with their share of the peak\n"
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

/* Options that belong to some commands only; given to another, they are an error, not ignored. */
enum {
    FOR_TRAIN = 1,
    FOR_RESUME = 2,
    FOR_EVAL = 4,
    FOR_PAIR = 8,
    FOR_PLOT = 16,
    FOR_BENCH = 32,
};
static const struct {
    const char *name;
    int commands;
    const char *owner;
} OWNED[] = {
    {"--accept", FOR_RESUME, "--resume"},
    {"--checkpoint", FOR_EVAL, "eval"},
    {"--protocol", FOR_EVAL, "eval"},
    {"--n", FOR_EVAL | FOR_PAIR, "eval and pair"},
    {"--linf", FOR_PAIR, "pair"},
    {"--l2", FOR_PAIR, "pair"},
    {"--l1", FOR_PAIR, "pair"},
    {"--write", FOR_PAIR, "pair"},
    {"-o", FOR_PLOT, "plot"},
    {"--output", FOR_PLOT, "plot"},
    {"--model", FOR_BENCH, "bench"},
    {"--batch", FOR_BENCH, "bench"},
    {"--seconds", FOR_BENCH, "bench"},
    {"--layers", FOR_BENCH, "bench"},
};
#define N_OWNED (sizeof OWNED / sizeof *OWNED)

/* The FOR_* bit of a command (check and selftest own no option). */
static int command_bit(const char *command, int resume) {
    if (resume) return FOR_RESUME;
    return !strcmp(command, "eval")                                  ? FOR_EVAL
           : !strcmp(command, "pair")                                ? FOR_PAIR
           : !strcmp(command, "plot")                                ? FOR_PLOT
           : !strcmp(command, "bench")                               ? FOR_BENCH
           : strcmp(command, "check") && strcmp(command, "selftest") ? FOR_TRAIN
                                                                     : 0;
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

#define MAX_DEVICE_LIST 256

typedef struct cli {
    const rc_dist *dist;
    int device, verbose, quiet, list;
    int device_auto, n_devices, devices[MAX_DEVICE_LIST]; /* --device auto, or N,N,... */
    const char *command, *arg, *resume;
    rc_bench_opts bench;
    const char *checkpoint, *protocol;
    const char *pair_ckpt[3], *write;
    const char **accept; /* --accept keys (room for as many as arguments) */
    int n_accept;
    int n;
    const char **plot_dirs, *output; /* plot: its run directories (as many as arguments) */
    int n_plot_dirs;
} cli;

/* The device of this process: --device N, or under mpirun the entry of its node-local rank in
 * --device auto (the rank itself) or N,N,... */
static int choose_device(const cli *c, int *index, rc_err *e) {
    int lr = c->dist->local_rank;
    *index = c->device_auto ? lr : c->n_devices > 1 ? -1 : c->device;
    if (c->n_devices > 1) {
        if (lr >= c->n_devices)
            return rc_err_set(e, "--device lists %d devices, but this node runs more processes "
                                 "(node-local rank %d)", c->n_devices, lr);
        *index = c->devices[lr];
    }
    return 0;
}

/* Under mpirun, rank 0 says which device each process took; the others print only errors. */
static int report_ranks(const cli *c, const rc_ctx *ctx, int index, rc_err *e) {
    const rc_dist *d = c->dist;
    if (d->size == 1) return 0;
    char mine[320], host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(mine, sizeof mine, "rank %d on %s: device [%d] %s (%s class)", d->rank, host, index,
             ctx->dev.name, rc_device_class_name(ctx->cls));
    char *all = malloc((size_t)d->size * sizeof mine);
    if (!all) return rc_err_set(e, "out of host memory");
    int bad = rc_dist_allgather(d, mine, sizeof mine, all, e);
    if (!bad && d->rank == 0 && !c->quiet) {
        printf("ramp-cl: %d processes (MPI), data-parallel:\n", d->size);
        for (int r = 0; r < d->size; r++) printf("  %s\n", all + (size_t)r * sizeof mine);
        fflush(stdout);
    }
    free(all);
    return bad;
}

/* Commands that need a device. Returns the exit status. */
static int with_device(const cli *c, rc_err *e) {
    rc_config cfg;
    int is_eval = !strcmp(c->command, "eval"), is_pair = !strcmp(c->command, "pair");
    int is_train = !is_eval && !is_pair && strcmp(c->command, "selftest") &&
                   strcmp(c->command, "bench");
    rc_progress_mode show = rc_progress_mode_for(stdout, c->quiet || c->dist->rank > 0);
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
    int index;
    if (choose_device(c, &index, e)) return 1;
    if (rc_ctx_open(&ctx, index, e)) {
        if (c->dist->size > 1) rc_err_prefix(e, "rank %d (device %d): ", c->dist->rank, index);
        return 1;
    }
    ctx.dist = c->dist;
    int status = 0;
    if (report_ranks(c, &ctx, index, e)) {
        status = -1;
    } else if (!strcmp(c->command, "selftest")) {
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
        rc_run_opts o = {.progress = show, .resume = c->resume != NULL, .accept = c->accept,
                         .n_accept = c->n_accept};
        int r = rc_train_run(&ctx, &cfg, &o, e);
        status = r < 0 ? -1 : r > 0 ? 128 + r : 0; /* stopped by a signal: 130 / 143 */
    }
    if (status < 0 && c->dist->size > 1)
        rc_err_prefix(e, "rank %d (device [%d] %s): ", c->dist->rank, index, ctx.dev.name);
    rc_ctx_close(&ctx);
    if (c->verbose) print_cache_stats(&ctx);
    return status < 0 ? 1 : status;
}

/* Parse and run; plot_dirs and accept have room for every argument. Returns the exit status. */
static int run_cli(int argc, char **argv, const char **plot_dirs, const char **accept,
                   const rc_dist *dist) {
    cli c = {.dist = dist, .bench = {.model = NULL, .batch = 128, .min_seconds = 3.0}};
    rc_err e;
    rc_err_clear(&e);
    c.plot_dirs = plot_dirs;
    c.accept = accept;
    int owned_given[N_OWNED] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v;
        for (size_t k = 0; k < N_OWNED; k++)
            if (!strcmp(a, OWNED[k].name)) owned_given[k] = 1;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            char mpi[160];
            printf("%s, %s\n", PACKAGE_STRING, rc_dist_build(mpi, sizeof mpi));
            return 0;
        } else if (!strcmp(a, "-l") || !strcmp(a, "--list-devices")) {
            c.list = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c.quiet = 1;
        } else if (!strcmp(a, "--resume") && i + 1 < argc) {
            c.resume = argv[++i];
        } else if (!strcmp(a, "--accept") && i + 1 < argc) {
            const char *key = argv[++i];
            if (!rc_run_config_safe_key(key)) {
                char safe[256];
                rc_run_config_safe_keys(safe, sizeof safe);
                fprintf(stderr, "ramp-cl: --accept %s: only these keys may change on resume: "
                                "%s\n", key, safe);
                return 2;
            }
            c.accept[c.n_accept++] = key;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            c.verbose = 1;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--device") || !strncmp(a, "--device=", 9)) {
            const char *s = a[1] == '-' && a[8] == '=' ? a + 9 : i + 1 < argc ? argv[++i] : NULL;
            if (s && !strcmp(s, "auto")) {
                c.device_auto = 1;
                continue;
            }
            /* N, or N,N,... (one per node-local rank) */
            char item[32];
            c.n_devices = 0;
            for (const char *p = s; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
                size_t len = strcspn(p, ",");
                snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : 0), p);
                if (c.n_devices == MAX_DEVICE_LIST || parse_int(item, 0, INT_MAX, &v)) {
                    fprintf(stderr, "ramp-cl: --device needs a non-negative integer index, auto, "
                                    "or a list N,N,... of at most %d%s%s\n", MAX_DEVICE_LIST,
                            s ? ", got " : "", s ? s : "");
                    return 2;
                }
                c.devices[c.n_devices++] = (int)v;
            }
            if (!s) {
                fprintf(stderr, "ramp-cl: --device needs a non-negative integer index\n");
                return 2;
            }
            c.device = c.devices[0];
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
                fprintf(stderr, "ramp-cl: --n needs an integer from 1 to %d, got %s\n", INT_MAX,
                        argv[i]);
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
            const char *s = argv[++i];
            char *end;
            c.bench.min_seconds = strtod(s, &end);
            /* !(x <= max) also refuses NaN */
            if (end == s || *end || c.bench.min_seconds < 0 || !(c.bench.min_seconds <= 86400)) {
                fprintf(stderr, "ramp-cl: --seconds needs a number of seconds from 0 to 86400, "
                                "got %s\n", s);
                return 2;
            }
        } else if (!strcmp(a, "--layers")) {
            c.bench.layers = 1;
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
    int bit = command_bit(c.command, c.resume != NULL);
    for (size_t k = 0; k < N_OWNED; k++)
        if (owned_given[k] && !(OWNED[k].commands & bit)) {
            fprintf(stderr, "ramp-cl: %s is an option of %s only, not of %s\n", OWNED[k].name,
                    OWNED[k].owner,
                    c.resume           ? "--resume"
                    : bit == FOR_TRAIN ? "training"
                                       : c.command);
            return 2;
        }
    if (c.bench.model && !rc_bench_model_known(c.bench.model)) {
        char names[256];
        fprintf(stderr, "ramp-cl: --model must be one of %s; got %s\n",
                rc_bench_model_names(names, sizeof names), c.bench.model);
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
    if (status && e.msg[0]) {
        fprintf(stderr, "ramp-cl: error: %s\n", e.msg);
        rc_dist_abort(c.dist, status); /* the other processes may wait for this one */
    }
    return status;
}

int main(int argc, char **argv) {
    rc_dist dist;
    rc_err e;
    if (rc_dist_init(&dist, &argc, &argv, &e)) {
        fprintf(stderr, "ramp-cl: error: %s\n", e.msg);
        return 1;
    }
    /* under mpirun only rank 0 reports: the others print errors (stderr) only */
    if (dist.rank > 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "ramp-cl: error: rank %d: cannot silence its output: %s\n", dist.rank,
                strerror(errno));
        rc_dist_abort(&dist, 1);
        return 1;
    }
    const char **plot_dirs = malloc((size_t)argc * sizeof *plot_dirs);
    const char **accept = malloc((size_t)argc * sizeof *accept);
    int status = 1;
    if (plot_dirs && accept)
        status = run_cli(argc, argv, plot_dirs, accept, &dist);
    else
        fprintf(stderr, "ramp-cl: out of host memory\n");
    free(plot_dirs);
    free(accept);
    rc_dist_finish(&dist);
    return status;
}
