/* YAML configuration: libyaml's document API gives every node its line and column, so each
 * problem can be reported where it is. Parsing and checking collect errors instead of stopping at
 * the first, and a value that failed to parse is marked so that later checks do not report it
 * again under another name.
 *
 * One table describes every key (path, type, place in rc_config, allowed range); the walker, the
 * range checks, the suggestions for misspelt keys and the printer all read it, so they cannot
 * disagree about the schema. */
#include "ramp/config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_ERRORS 20
/* A config is a few kilobytes, three levels deep: far larger or deeper input is refused before
 * libyaml, whose time grows with the square of the nesting, spends minutes on it. */
#define MAX_BYTES (1u << 20)
#define MAX_DEPTH 32
#define DEFAULT_STEPS 10
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define COUNT(a) (sizeof(a) / sizeof *(a))

/* Enum-typed fields are written through int pointers by the table-driven parser. */
_Static_assert(sizeof(rc_arch) == sizeof(int) && sizeof(rc_activation) == sizeof(int) &&
                   sizeof(rc_dataset_kind) == sizeof(int) && sizeof(rc_augment) == sizeof(int) &&
                   sizeof(rc_method) == sizeof(int) && sizeof(rc_norm) == sizeof(int) &&
                   sizeof(rc_param_groups) == sizeof(int) &&
                   sizeof(rc_schedule_kind) == sizeof(int) &&
                   sizeof(rc_final_protocol) == sizeof(int) &&
                   sizeof(rc_ramp_outer) == sizeof(int),
               "config enums must be int-sized");

/* ---- names ---------------------------------------------------------------------------------- */

static const char *const DATASET_NAMES[] = {"fashion-mnist", "mnist", "cifar10"};
static const char *const AUGMENT_NAMES[] = {"none", "crop-flip"};
static const char *const METHOD_NAMES[] = {"natural", "at",  "sat", "avg",
                                           "max",     "msd", "eat", "ramp"};
static const char *const PARAM_GROUPS_NAMES[] = {"single", "split"};
static const char *const SCHEDULE_NAMES[] = {"constant", "piecewise-ft", "static",
                                             "superconverge", "piecewise"};
static const char *const FINAL_PROTOCOL_NAMES[] = {"full", "fast", "none", "standard"};
static const char *const OUTER_NAMES[] = {"max", "trades"};

/* Image shape of each dataset, in rc_dataset_kind order; all have 10 classes. */
static const struct {
    int channels, size;
} DATASET_SHAPE[] = {{1, 28}, {1, 28}, {3, 32}};
#define DATASET_CLASSES 10

static const char *name_in(const char *const *names, size_t n, int v, const char *negative) {
    if (v < 0) return negative;
    return (size_t)v < n ? names[v] : "invalid";
}

const char *rc_dataset_kind_name(rc_dataset_kind d) {
    return name_in(DATASET_NAMES, COUNT(DATASET_NAMES), d, "unset");
}
const char *rc_augment_name(rc_augment a) {
    return name_in(AUGMENT_NAMES, COUNT(AUGMENT_NAMES), a, "auto");
}
const char *rc_method_name(rc_method m) {
    return name_in(METHOD_NAMES, COUNT(METHOD_NAMES), m, "invalid");
}
const char *rc_param_groups_name(rc_param_groups p) {
    return name_in(PARAM_GROUPS_NAMES, COUNT(PARAM_GROUPS_NAMES), p, "auto");
}
const char *rc_schedule_kind_name(rc_schedule_kind s) {
    return name_in(SCHEDULE_NAMES, COUNT(SCHEDULE_NAMES), s, "invalid");
}
const char *rc_final_protocol_name(rc_final_protocol p) {
    return name_in(FINAL_PROTOCOL_NAMES, COUNT(FINAL_PROTOCOL_NAMES), p, "invalid");
}

/* ---- the schema ----------------------------------------------------------------------------- */

typedef enum ftype {
    F_SECTION,
    F_INT,
    F_U64,
    F_DOUBLE,
    F_BOOL,
    F_STR,
    F_ENUM,
    F_THREATS,
    F_PAIR,
    F_NORMS,   /* train_norms: a list of distinct norms */
    F_CHANNELS /* an rc_channel_values: a list of one number per input channel */
} ftype;

typedef struct field {
    const char *path; /* "optimizer.lr"; the part before the dot is its section */
    ftype type;
    size_t off;  /* into rc_config, or into rc_threat for THREAT_FIELDS */
    size_t size; /* F_STR: capacity including the terminating NUL */
    const char *const *names;
    size_t n_names;
    bool auto_ok;  /* F_ENUM: "auto" is accepted and stored as -1 */
    bool required; /* must be given: an enum left negative or a number left 0 */
    bool zero_default; /* 0 and not in the file: resolved from another key, not checked here */
    bool omit_zero;    /* not printed when 0: a key only some architectures have */
    bool bounded;
    double lo, hi;
    bool lo_open, hi_open;
} field;

#define SECTION(p) {.path = p, .type = F_SECTION}
#define CFG(p, t, m, ...) {.path = p, .type = t, .off = offsetof(rc_config, m), __VA_ARGS__}
#define THR(p, t, m, ...) {.path = p, .type = t, .off = offsetof(rc_threat, m), __VA_ARGS__}
#define NAMES(a) .names = a, .n_names = COUNT(a)
#define GE(x) .bounded = true, .lo = (x), .hi = DBL_MAX
#define GT(x) .bounded = true, .lo = (x), .lo_open = true, .hi = DBL_MAX
#define IN(a, b) .bounded = true, .lo = (a), .hi = (b)
#define IN_OPEN_HI(a, b) .bounded = true, .lo = (a), .hi = (b), .hi_open = true

/* Order matters: it is the order rc_config_print writes, and a section's keys follow it. */
static const field FIELDS[] = {
    SECTION("model"),
    CFG("model.arch", F_ENUM, model.arch, NAMES(rc_arch_names), .required = true),
    CFG("model.activation", F_ENUM, model.activation, NAMES(rc_activation_names)),
    CFG("model.width", F_INT, model.width, GE(1)),
    CFG("model.depth", F_INT, model.depth, .omit_zero = true),
    CFG("model.in_channels", F_INT, model.in_channels),
    CFG("model.num_classes", F_INT, model.num_classes),
    CFG("model.input_size", F_INT, model.input_size),
    CFG("model.mean", F_CHANNELS, model.mean),
    CFG("model.std", F_CHANNELS, model.std),
    SECTION("data"),
    CFG("data.dataset", F_ENUM, data.dataset, NAMES(DATASET_NAMES), .required = true),
    CFG("data.path", F_STR, data.path, .size = RC_CONFIG_PATH_MAX),
    CFG("data.train_subset", F_INT, data.train_subset, GE(0)),
    CFG("data.augment", F_ENUM, data.augment, NAMES(AUGMENT_NAMES), .auto_ok = true),
    CFG("data.batch_size", F_INT, data.batch_size, GE(1)),
    CFG("data.eval_batch_size", F_INT, data.eval_batch_size, GE(1)),
    CFG("method", F_ENUM, method, NAMES(METHOD_NAMES)),
    {.path = "threat_models", .type = F_THREATS},
    CFG("attack_norm", F_ENUM, attack_norm, NAMES(rc_norm_names)),
    {.path = "train_norms", .type = F_NORMS},
    SECTION("ramp"),
    {.path = "ramp.pair", .type = F_PAIR},
    SECTION("ramp.at_checkpoints"),
    CFG("ramp.at_checkpoints.linf", F_STR, ramp.at_checkpoints[RC_NORM_LINF],
        .size = RC_CONFIG_PATH_MAX),
    CFG("ramp.at_checkpoints.l2", F_STR, ramp.at_checkpoints[RC_NORM_L2],
        .size = RC_CONFIG_PATH_MAX),
    CFG("ramp.at_checkpoints.l1", F_STR, ramp.at_checkpoints[RC_NORM_L1],
        .size = RC_CONFIG_PATH_MAX),
    CFG("ramp.lambda", F_DOUBLE, ramp.lambda, GE(0)),
    CFG("ramp.beta", F_DOUBLE, ramp.beta, IN(0, 1)),
    CFG("ramp.gp", F_BOOL, ramp.gp),
    CFG("ramp.outer", F_ENUM, ramp.outer, NAMES(OUTER_NAMES)),
    CFG("ramp.trades_beta", F_DOUBLE, ramp.trades_beta, GE(0)),
    SECTION("msd"),
    CFG("msd.alpha_linf", F_DOUBLE, msd.alpha_linf, GT(0)),
    CFG("msd.alpha_l2", F_DOUBLE, msd.alpha_l2, GT(0)),
    CFG("msd.alpha_l1", F_DOUBLE, msd.alpha_l1, GT(0)),
    CFG("msd.steps", F_INT, msd.steps, GE(1)),
    SECTION("optimizer"),
    CFG("optimizer.lr", F_DOUBLE, optimizer.lr, GT(0)),
    CFG("optimizer.momentum", F_DOUBLE, optimizer.momentum, IN_OPEN_HI(0, 1)),
    CFG("optimizer.weight_decay", F_DOUBLE, optimizer.weight_decay, GE(0)),
    CFG("optimizer.nesterov", F_BOOL, optimizer.nesterov),
    CFG("optimizer.param_groups", F_ENUM, optimizer.param_groups, NAMES(PARAM_GROUPS_NAMES),
        .auto_ok = true),
    CFG("optimizer.lr_all_groups", F_BOOL, optimizer.lr_all_groups),
    SECTION("schedule"),
    CFG("schedule.name", F_ENUM, schedule.name, NAMES(SCHEDULE_NAMES)),
    CFG("schedule.epochs", F_INT, schedule.epochs, GE(1)),
    CFG("schedule.static_drop_epoch", F_INT, schedule.static_drop_epoch, GE(0)),
    CFG("init", F_STR, init, .size = RC_CONFIG_PATH_MAX),
    CFG("seed", F_U64, seed),
    SECTION("eval"),
    CFG("eval.every", F_INT, eval.every, GE(0)),
    CFG("eval.n", F_INT, eval.n, GE(1)),
    CFG("eval.final_protocol", F_ENUM, eval.final_protocol, NAMES(FINAL_PROTOCOL_NAMES)),
    CFG("eval.final_n", F_INT, eval.final_n, GE(1)),
    SECTION("output"),
    CFG("output.dir", F_STR, output.dir, .size = RC_CONFIG_PATH_MAX),
    CFG("output.checkpoint_every", F_INT, output.checkpoint_every, GE(0)),
    CFG("output.checkpoint_minutes", F_DOUBLE, output.checkpoint_minutes, GE(0)),
};

/* The keys of one threat_models entry. */
static const field THREAT_FIELDS[] = {
    THR("norm", F_ENUM, norm, NAMES(rc_norm_names), .required = true),
    THR("eps", F_DOUBLE, eps, GT(0), .required = true),
    THR("steps", F_INT, steps, GE(1)),
    THR("eval_eps", F_DOUBLE, eval_eps, GT(0), .zero_default = true),
};

/* One element of ramp.pair or train_norms, written at offset 0 of the element. */
static const field LIST_NORM = {.path = "", .type = F_ENUM, NAMES(rc_norm_names)};
/* One number of an rc_channel_values list. */
static const field LIST_NUMBER = {.path = "", .type = F_DOUBLE};

#define N_FIELDS COUNT(FIELDS)
#define N_THREAT_FIELDS COUNT(THREAT_FIELDS)
enum { T_NORM, T_EPS, T_STEPS, T_EVAL_EPS }; /* indexes into THREAT_FIELDS */

/* ---- error collection ----------------------------------------------------------------------- */

/* Where a value was written. line 0: not in the file (a default, or a config built in code). */
typedef struct loc {
    int line, col;
    bool bad; /* given but unparseable: already reported, later checks skip it */
} loc;

/* One problem, kept until the end so that the report can be in file order. */
typedef struct problem {
    int line, col;
    char text[1280]; /* room for a message naming a path of RC_CONFIG_PATH_MAX */
} problem;

typedef struct ctx {
    rc_err *e;
    const char *file; /* NULL for rc_config_finalize on a config built in code */
    int n_errors;
    problem errors[MAX_ERRORS];
    const yaml_document_t *doc;
    loc f[N_FIELDS]; /* sections: the key; other fields: the value */
    loc t[RC_MAX_THREATS][N_THREAT_FIELDS];
    loc t_entry[RC_MAX_THREATS];
    int t_pos[RC_MAX_THREATS]; /* position in the YAML list, for messages */
    loc pair[2];
    loc train_norms[RC_MAX_THREATS];
    char stem[256]; /* output.dir default: runs/<stem> */
} ctx;

__attribute__((format(printf, 4, 5))) static void add_error(ctx *c, loc at, const char *path,
                                                            const char *fmt, ...) {
    if (++c->n_errors > MAX_ERRORS) return;
    problem *p = &c->errors[c->n_errors - 1];
    p->line = at.line;
    p->col = at.col;
    size_t cap = sizeof p->text, len = 0;
    if (path && *path) len = (size_t)snprintf(p->text, cap, "%s: ", path);
    if (len >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->text + len, cap - len, fmt, ap);
    va_end(ap);
}

/* Joins the problems into e->msg, those without a position first, then in file order. */
static int close_errors(ctx *c) {
    if (c->n_errors == 0) return 0;
    int n = c->n_errors < MAX_ERRORS ? c->n_errors : MAX_ERRORS;
    for (int i = 1; i < n; i++) { /* insertion sort: stable, so ties keep the order found */
        problem p = c->errors[i];
        int j = i;
        for (; j > 0 && (c->errors[j - 1].line > p.line ||
                         (c->errors[j - 1].line == p.line && c->errors[j - 1].col > p.col));
             j--)
            c->errors[j] = c->errors[j - 1];
        c->errors[j] = p;
    }
    char *m = c->e->msg;
    size_t cap = sizeof c->e->msg, len = 0;
    m[0] = '\0';
    for (int i = 0; i < n && len < cap; i++) {
        const problem *p = &c->errors[i];
        const char *sep = i ? "\n" : "";
        if (c->file && p->line)
            len += (size_t)snprintf(m + len, cap - len, "%s%s:%d:%d: %s", sep, c->file, p->line,
                                    p->col, p->text);
        else if (c->file)
            len += (size_t)snprintf(m + len, cap - len, "%s%s: %s", sep, c->file, p->text);
        else
            len += (size_t)snprintf(m + len, cap - len, "%s%s", sep, p->text);
    }
    if (c->n_errors > MAX_ERRORS && len < cap)
        snprintf(m + len, cap - len, "\n(%d more errors not shown)", c->n_errors - MAX_ERRORS);
    return -1;
}

/* ---- did you mean --------------------------------------------------------------------------- */

/* Lower case with '-' as '_', so "Batch-Size" matches "batch_size" and "cifar-10" "cifar10". */
static void normalize(const char *s, char *out, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++) out[i] = s[i] == '-' ? '_' : (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

/* Optimal string alignment distance: Levenshtein plus adjacent transpositions ("arhc"), which
 * are the commonest typo. */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return INT_MAX;
    int d[65][65];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/* "learning_rate" -> "lr", "weight_decay" -> "wd"; empty for a single word. */
static void initials(const char *s, char *out, size_t n) {
    size_t k = 0;
    if (strchr(s, '_'))
        for (size_t i = 0; s[i] && k + 1 < n; i++)
            if (i == 0 || s[i - 1] == '_') out[k++] = s[i];
    out[k] = '\0';
}

/* The candidate the word most likely meant, or NULL: the closest within edit distance 2 (1 for
 * words under 4 letters, where 2 edits reach almost anything), else an abbreviation by initials
 * either way ("learning_rate" for "lr"), else a prefix ("epsilon" for "eps") or, from 3 letters,
 * a part ("resnet" for "preact-resnet18") either way. */
static const char *suggest(const char *word, const char *const *cands, size_t n) {
    char w[72], wi[72], cn[72], ci[72];
    normalize(word, w, sizeof w);
    initials(w, wi, sizeof wi);
    const char *best = NULL;
    int best_d = strlen(w) >= 4 ? 3 : 2;
    for (size_t i = 0; i < n; i++) {
        normalize(cands[i], cn, sizeof cn);
        int d = edit_distance(w, cn);
        if (d < best_d) best_d = d, best = cands[i];
    }
    if (best) return best;
    for (size_t i = 0; i < n; i++) {
        normalize(cands[i], cn, sizeof cn);
        initials(cn, ci, sizeof ci);
        if ((*wi && strcmp(wi, cn) == 0) || (*ci && strcmp(ci, w) == 0)) return cands[i];
    }
    for (size_t i = 0; i < n; i++) {
        normalize(cands[i], cn, sizeof cn);
        size_t lw = strlen(w), lc = strlen(cn), k = lw < lc ? lw : lc;
        if (k >= 2 && strncmp(w, cn, k) == 0) return cands[i];
        if (k >= 3 && (lw < lc ? strstr(cn, w) : strstr(w, cn))) return cands[i];
    }
    return NULL;
}

/* ---- scalars -------------------------------------------------------------------------------- */

static const char *leaf(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

static const char *text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static bool is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = text(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static loc loc_of(const yaml_node_t *n) {
    return (loc){.line = (int)n->start_mark.line + 1, .col = (int)n->start_mark.column + 1};
}

/* What a node is, for "expected X, got Y": a scalar's first 60 or so characters, escaped. */
static const char *describe(const yaml_node_t *n, char *buf, size_t sz) {
    if (n->type == YAML_MAPPING_NODE) return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE) return "a list";
    if (is_null(n)) return "nothing";
    char shown[64];
    snprintf(buf, sz, "'%s'", rc_err_text(shown, sizeof shown, text(n)));
    return buf;
}

static void join_names(const char *const *names, size_t n, char *buf, size_t sz) {
    buf[0] = '\0';
    for (size_t i = 0, len = 0; i < n && len < sz; i++)
        len += (size_t)snprintf(buf + len, sz - len, "%s%s", i ? ", " : "", names[i]);
}

/* What parsing a number gave: a value, text that is no number, or a number the type cannot
 * hold (reported as such, not as "expected a number"). */
typedef enum { NUM_OK, NUM_SYNTAX, NUM_RANGE } num_status;

static num_status parse_int(const char *s, long long lo, long long hi, long long *out) {
    const char *p = s + (*s == '+' || *s == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p)) return NUM_SYNTAX;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno || v < lo || v > hi) return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

/* Decimal or exponent notation only: strtod alone would also take "inf", "nan" and hex. */
static num_status parse_plain_number(const char *s, double *out) {
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s) || !strpbrk(s, "0123456789"))
        return NUM_SYNTAX;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end) return NUM_SYNTAX;
    if (errno == ERANGE || !isfinite(v)) return NUM_RANGE; /* 1e400, and 1e-400 (underflow) */
    *out = v;
    return NUM_OK;
}

/* A number, or a fraction "a/b" of two numbers: radii are usually written as 8/255. */
static num_status parse_number(const char *s, double *out) {
    const char *slash = strchr(s, '/');
    if (!slash) return parse_plain_number(s, out);
    char num[64], den[64];
    size_t nl = (size_t)(slash - s);
    if (nl >= sizeof num || strlen(slash + 1) >= sizeof den) return NUM_SYNTAX;
    memcpy(num, s, nl);
    num[nl] = '\0';
    strcpy(den, slash + 1);
    double a, b;
    num_status st = parse_plain_number(num, &a);
    if (st == NUM_OK) st = parse_plain_number(den, &b);
    if (st != NUM_OK) return st;
    if (b == 0) return NUM_SYNTAX;
    *out = a / b;
    return isfinite(*out) && (*out != 0 || a == 0) ? NUM_OK : NUM_RANGE;
}

static bool parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < COUNT(yes); i++) {
        if (!strcasecmp(s, yes[i])) return *out = true, true;
        if (!strcasecmp(s, no[i])) return *out = false, true;
    }
    return false;
}

/* Parse one scalar value into base+f->off. On failure report it and mark it bad. */
static void parse_value(ctx *c, const field *f, const yaml_node_t *v, void *base,
                        const char *path, loc *mark) {
    char got[80], allowed[256];
    void *dst = (char *)base + f->off;
    bool scalar = v->type == YAML_SCALAR_NODE && !is_null(v);
    const char *s = scalar ? text(v) : "";
    *mark = loc_of(v);
    if (scalar && strlen(s) != v->data.scalar.length) {
        add_error(c, *mark, path, "contains a NUL character");
        mark->bad = true;
        return;
    }
    long long iv;
    double dv;
    bool bv;
    num_status st;
    switch (f->type) {
    case F_STR:
        if (v->type != YAML_SCALAR_NODE) {
            add_error(c, *mark, path, "expected a string, got %s", describe(v, got, sizeof got));
        } else if (strlen(s) >= f->size) {
            add_error(c, *mark, path, "longer than %zu bytes", f->size - 1);
        } else {
            strcpy(dst, s); /* null leaves "": the default */
            return;
        }
        break;
    case F_INT:
        st = scalar ? parse_int(s, INT_MIN, INT_MAX, &iv) : NUM_SYNTAX;
        if (st == NUM_OK) {
            *(int *)dst = (int)iv;
            return;
        }
        if (st == NUM_RANGE)
            add_error(c, *mark, path, "%s is out of range (an integer from %d to %d)",
                      describe(v, got, sizeof got), INT_MIN, INT_MAX);
        else
            add_error(c, *mark, path, "expected an integer, got %s", describe(v, got, sizeof got));
        break;
    case F_U64:
        if (scalar && *s && strspn(s, "0123456789") == strlen(s)) {
            errno = 0;
            unsigned long long u = strtoull(s, NULL, 10);
            if (errno == 0) {
                *(uint64_t *)dst = u;
                return;
            }
            add_error(c, *mark, path, "%s is out of range (at most %" PRIu64 ")",
                      describe(v, got, sizeof got), UINT64_MAX);
            break;
        }
        add_error(c, *mark, path, "expected a non-negative integer, got %s",
                  describe(v, got, sizeof got));
        break;
    case F_DOUBLE:
        st = scalar ? parse_number(s, &dv) : NUM_SYNTAX;
        if (st == NUM_OK) {
            *(double *)dst = dv;
            return;
        }
        if (st == NUM_RANGE)
            add_error(c, *mark, path, "%s is out of range (a double: 0, or a magnitude from "
                      "%.1e to %.1e)", describe(v, got, sizeof got), DBL_MIN, DBL_MAX);
        else
            add_error(c, *mark, path, "expected a number, got %s", describe(v, got, sizeof got));
        break;
    case F_BOOL:
        if (scalar && parse_bool(s, &bv)) {
            *(bool *)dst = bv;
            return;
        }
        add_error(c, *mark, path, "expected true or false, got %s", describe(v, got, sizeof got));
        break;
    case F_ENUM:
        join_names(f->names, f->n_names, allowed, sizeof allowed);
        if (!scalar) {
            add_error(c, *mark, path, "expected one of %s%s, got %s", f->auto_ok ? "auto, " : "",
                      allowed, describe(v, got, sizeof got));
            break;
        }
        if (f->auto_ok && !strcmp(s, "auto")) {
            *(int *)dst = -1;
            return;
        }
        for (size_t i = 0; i < f->n_names; i++)
            if (!strcmp(s, f->names[i])) {
                *(int *)dst = (int)i;
                return;
            }
        const char *mean = suggest(s, f->names, f->n_names);
        char hint[96] = "";
        if (mean) snprintf(hint, sizeof hint, "did you mean '%s'? ", mean);
        add_error(c, *mark, path, "unknown value %s (%sallowed: %s%s)",
                  describe(v, got, sizeof got), hint, f->auto_ok ? "auto, " : "", allowed);
        break;
    default:
        break; /* structured fields are parsed by their own functions */
    }
    mark->bad = true;
}

/* ---- the tree walk -------------------------------------------------------------------------- */

static void walk_map(ctx *c, const yaml_node_t *map, const field *tab, size_t ntab, loc *marks,
                     const char *sect, const char *prefix, void *base);

static const yaml_node_t *node(const ctx *c, int index) {
    return yaml_document_get_node((yaml_document_t *)c->doc, index);
}

static void unknown_key(ctx *c, const char *key, loc at, const field *tab, size_t ntab,
                        const char *sect, const char *where) {
    const char *here[N_FIELDS];
    size_t n = 0, sl = strlen(sect);
    for (size_t i = 0; i < ntab; i++) {
        const char *p = tab[i].path;
        bool in_sect = sl ? !strncmp(p, sect, sl) && p[sl] == '.' && !strchr(p + sl + 1, '.')
                          : !strchr(p, '.');
        if (in_sect) here[n++] = leaf(p);
    }
    const char *mean = suggest(key, here, n);
    char hint[160] = "";
    if (mean) {
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", mean);
    } else if (tab == FIELDS) {
        /* The right key in the wrong section: "epochs" under optimizer. */
        char k[72], l[72];
        normalize(key, k, sizeof k);
        for (size_t i = 0; i < ntab && !*hint; i++) {
            normalize(leaf(tab[i].path), l, sizeof l);
            if (tab[i].type != F_SECTION && !strcmp(k, l))
                snprintf(hint, sizeof hint, strchr(tab[i].path, '.')
                                                ? " (did you mean '%s'?)"
                                                : " (did you mean '%s' at the top level?)",
                         tab[i].path);
        }
    }
    char shown[RC_CONFIG_PATH_MAX];
    add_error(c, at, NULL, "unknown key '%s' %s%s", rc_err_text(shown, sizeof shown, key), where,
              hint);
}

static void parse_threats(ctx *c, const yaml_node_t *v, rc_config *cfg, loc *mark) {
    char got[80];
    if (is_null(v)) return;
    if (v->type != YAML_SEQUENCE_NODE) {
        add_error(c, loc_of(v), "threat_models",
                  "expected a list of entries like {norm: linf, eps: 8/255}, got %s",
                  describe(v, got, sizeof got));
        mark->bad = true;
        return;
    }
    int pos = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, pos++) {
        const yaml_node_t *item = node(c, *it);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "threat_models[%d]", pos);
        if (item->type != YAML_MAPPING_NODE) {
            add_error(c, loc_of(item), prefix,
                      "expected a mapping like {norm: linf, eps: 8/255}, got %s",
                      describe(item, got, sizeof got));
            mark->bad = true;
            continue;
        }
        if (cfg->n_threats == RC_MAX_THREATS) {
            add_error(c, loc_of(item), prefix,
                      "more than %d entries: each norm may appear once", RC_MAX_THREATS);
            mark->bad = true;
            continue;
        }
        int k = cfg->n_threats++;
        cfg->threats[k] = (rc_threat){.norm = RC_NORM_NONE, .steps = DEFAULT_STEPS};
        c->t_entry[k] = loc_of(item);
        c->t_pos[k] = pos;
        strcat(prefix, ".");
        walk_map(c, item, THREAT_FIELDS, N_THREAT_FIELDS, c->t[k], "", prefix, &cfg->threats[k]);
    }
}

static void parse_pair(ctx *c, const yaml_node_t *v, rc_config *cfg, loc *mark) {
    char got[80];
    *mark = loc_of(v);
    cfg->ramp.pair[0] = cfg->ramp.pair[1] = RC_NORM_NONE;
    if (v->type == YAML_SCALAR_NODE && !strcmp(text(v), "auto")) return;
    if (v->type != YAML_SEQUENCE_NODE) {
        add_error(c, *mark, "ramp.pair",
                  "expected auto or a list of two norms like [linf, l1], got %s",
                  describe(v, got, sizeof got));
        mark->bad = true;
        return;
    }
    long n = v->data.sequence.items.top - v->data.sequence.items.start;
    if (n != 2) {
        add_error(c, *mark, "ramp.pair", "expected two norms [q, r], got %ld", n);
        mark->bad = true;
        return;
    }
    for (int i = 0; i < 2; i++)
        parse_value(c, &LIST_NORM, node(c, v->data.sequence.items.start[i]), &cfg->ramp.pair[i],
                    i ? "ramp.pair[1]" : "ramp.pair[0]", &c->pair[i]);
}

static void parse_train_norms(ctx *c, const yaml_node_t *v, rc_config *cfg, loc *mark) {
    char got[80];
    *mark = loc_of(v);
    cfg->n_train_norms = 0;
    long n = v->type == YAML_SEQUENCE_NODE
                 ? v->data.sequence.items.top - v->data.sequence.items.start
                 : 0;
    if (v->type != YAML_SEQUENCE_NODE || n < 1 || n > RC_MAX_THREATS) {
        add_error(c, *mark, "train_norms", "expected a list of one to %d norms like [linf, l1], "
                  "got %s", RC_MAX_THREATS, describe(v, got, sizeof got));
        mark->bad = true;
        return;
    }
    for (int i = 0; i < (int)n; i++) {
        char path[32];
        snprintf(path, sizeof path, "train_norms[%d]", i);
        parse_value(c, &LIST_NORM, node(c, v->data.sequence.items.start[i]),
                    &cfg->train_norms[i], path, &c->train_norms[i]);
        mark->bad |= c->train_norms[i].bad;
    }
    cfg->n_train_norms = (int)n;
}

static void parse_channels(ctx *c, const field *f, const yaml_node_t *v, rc_config *cfg,
                           const char *path, loc *mark) {
    char got[80];
    rc_channel_values *dst = (rc_channel_values *)((char *)cfg + f->off);
    *mark = loc_of(v);
    dst->n = 0;
    long n = v->type == YAML_SEQUENCE_NODE
                 ? v->data.sequence.items.top - v->data.sequence.items.start
                 : 0;
    if (n > RC_MAX_NORM_CHANNELS) snprintf(got, sizeof got, "%ld numbers", n);
    if (v->type != YAML_SEQUENCE_NODE || n < 1 || n > RC_MAX_NORM_CHANNELS) {
        add_error(c, *mark, path,
                  "expected a list of one number per input channel (at most %d), like [0.4914, "
                  "0.4822, 0.4465], got %s",
                  RC_MAX_NORM_CHANNELS,
                  n > RC_MAX_NORM_CHANNELS ? got : describe(v, got, sizeof got));
        mark->bad = true;
        return;
    }
    for (int i = 0; i < (int)n && !mark->bad; i++) {
        char item[176];
        loc m;
        snprintf(item, sizeof item, "%s[%d]", path, i);
        parse_value(c, &LIST_NUMBER, node(c, v->data.sequence.items.start[i]), &dst->v[i], item,
                    &m);
        mark->bad = m.bad;
    }
    dst->n = (int)n;
}

/* sect: the section whose keys this mapping holds ("" for the top level or a threat entry);
 * prefix: put before a key's path in messages ("threat_models[1]."). */
static void walk_map(ctx *c, const yaml_node_t *map, const field *tab, size_t ntab, loc *marks,
                     const char *sect, const char *prefix, void *base) {
    char where[64], got[80];
    if (*sect)
        snprintf(where, sizeof where, "in %s", sect);
    else if (*prefix)
        snprintf(where, sizeof where, "in %.*s", (int)strlen(prefix) - 1, prefix);
    else
        snprintf(where, sizeof where, "at the top level");
    const yaml_node_pair_t *start = map->data.mapping.pairs.start;
    for (const yaml_node_pair_t *p = start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            add_error(c, loc_of(k), NULL, "keys must be plain names, got %s %s",
                      describe(k, got, sizeof got), where);
            continue;
        }
        const char *key = text(k);
        const yaml_node_pair_t *dup = NULL;
        for (const yaml_node_pair_t *q = start; q < p && !dup; q++) {
            const yaml_node_t *qk = node(c, q->key);
            if (qk->type == YAML_SCALAR_NODE && !strcmp(text(qk), key)) dup = q;
        }
        if (dup) {
            char shown[RC_CONFIG_PATH_MAX];
            add_error(c, loc_of(k), NULL, "duplicate key '%s' %s (first at line %d)",
                      rc_err_text(shown, sizeof shown, key), where,
                      loc_of(node(c, dup->key)).line);
            continue;
        }
        char full[128];
        snprintf(full, sizeof full, *sect ? "%s.%s" : "%s%s", sect, key);
        const field *f = NULL;
        for (size_t i = 0; i < ntab && !f; i++)
            if (!strcmp(tab[i].path, full)) f = &tab[i];
        if (!f) {
            unknown_key(c, key, loc_of(k), tab, ntab, sect, where);
            continue;
        }
        loc *mark = &marks[f - tab];
        char path[160];
        snprintf(path, sizeof path, "%s%s", prefix, f->path);
        switch (f->type) {
        case F_SECTION:
            *mark = loc_of(k);
            if (v->type == YAML_MAPPING_NODE)
                walk_map(c, v, tab, ntab, marks, f->path, prefix, base);
            else if (!is_null(v)) { /* "ramp:" alone is an empty section */
                add_error(c, loc_of(v), path, "expected a mapping of keys, got %s",
                          describe(v, got, sizeof got));
                mark->bad = true; /* its required keys are missing for the same reason */
            }
            break;
        case F_THREATS:
            *mark = loc_of(k);
            parse_threats(c, v, base, mark);
            break;
        case F_PAIR:
            parse_pair(c, v, base, mark);
            break;
        case F_NORMS:
            parse_train_norms(c, v, base, mark);
            break;
        case F_CHANNELS:
            parse_channels(c, f, v, base, path, mark);
            break;
        default:
            parse_value(c, f, v, base, path, mark);
        }
    }
}

/* ---- resolution and checks ------------------------------------------------------------------ */

static int field_index(const char *path) {
    for (size_t i = 0; i < N_FIELDS; i++)
        if (!strcmp(FIELDS[i].path, path)) return (int)i;
    return -1;
}

static loc at(const ctx *c, const char *path) { return c->f[field_index(path)]; }

static void fmt_double(char *buf, size_t n, double v) {
    /* The shortest text that reads back as the same double: 0.05, not 0.050000000000000003,
     * and 10, not 1e+01. */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* "> 0", ">= 1", "in [0, 1)" */
static const char *bound_text(const field *f, char *buf, size_t n) {
    if (f->hi == DBL_MAX)
        snprintf(buf, n, "%s %g", f->lo_open ? ">" : ">=", f->lo);
    else
        snprintf(buf, n, "in %c%g, %g%c", f->lo_open ? '(' : '[', f->lo, f->hi,
                 f->hi_open ? ')' : ']');
    return buf;
}

/* Required values and numeric ranges, for FIELDS or one threat entry. parent: where to point
 * when a required key is missing and its section is not in the file either. */
static void check_fields(ctx *c, const field *tab, size_t ntab, const loc *marks, const void *base,
                         const char *prefix, loc parent) {
    for (size_t i = 0; i < ntab; i++) {
        const field *f = &tab[i];
        const void *src = (const char *)base + f->off;
        char path[160], num[32], allowed[256], range[64];
        snprintf(path, sizeof path, "%s%s", prefix, f->path);
        if (marks[i].bad || (f->type != F_ENUM && f->type != F_INT && f->type != F_DOUBLE))
            continue;
        if (f->required && !marks[i].line &&
            (f->type == F_ENUM ? *(const int *)src < 0 : *(const double *)src == 0)) {
            loc where = parent;
            if (tab == FIELDS) {
                char sect[32];
                snprintf(sect, sizeof sect, "%.*s", (int)(leaf(f->path) - f->path - 1), f->path);
                where = at(c, sect);
                if (where.bad) continue;
            }
            if (f->type == F_ENUM) {
                join_names(f->names, f->n_names, allowed, sizeof allowed);
                add_error(c, where, path, "required: one of %s", allowed);
            } else {
                add_error(c, where, path, "required: a number %s",
                          bound_text(f, range, sizeof range));
            }
            continue;
        }
        if (f->type == F_ENUM) {
            /* Only a config built in code can hold a number that names nothing. */
            int v = *(const int *)src;
            if (v < -1 || v >= (int)f->n_names) add_error(c, marks[i], path, "invalid value %d", v);
            continue;
        }
        double v = f->type == F_INT ? *(const int *)src : *(const double *)src;
        if (!f->bounded || (f->zero_default && v == 0 && !marks[i].line)) continue;
        /* Written so that NaN fails too. */
        bool ok = (f->lo_open ? v > f->lo : v >= f->lo) && (f->hi_open ? v < f->hi : v <= f->hi);
        if (ok) continue;
        fmt_double(num, sizeof num, v);
        add_error(c, marks[i], path, "must be %s, got %s", bound_text(f, range, sizeof range), num);
    }
}

static void norms_listed(const rc_config *cfg, char *buf, size_t sz) {
    const char *names[RC_MAX_THREATS];
    for (int i = 0; i < cfg->n_threats; i++) names[i] = rc_norm_name(cfg->threats[i].norm);
    join_names(names, (size_t)cfg->n_threats, buf, sz);
}

static void check_path(ctx *c, loc where, const char *key, const char *p, bool dir,
                       const char *note) {
    struct stat st;
    int failed = stat(p, &st) != 0, err = errno;
    char shown[RC_CONFIG_PATH_MAX];
    rc_err_text(shown, sizeof shown, p);
    if (failed)
        add_error(c, where, key, "cannot access '%s': %s%s", shown, strerror(err), note);
    else if (dir && !S_ISDIR(st.st_mode))
        add_error(c, where, key, "'%s' is not a directory", shown);
    else if (!dir && !S_ISREG(st.st_mode))
        add_error(c, where, key, "'%s' is not a regular file", shown);
}

static void resolve_data(ctx *c, rc_config *cfg) {
    static const char *const model_keys[] = {"model.in_channels", "model.input_size"};
    loc ds = at(c, "data.dataset");
    if (cfg->data.dataset < 0) return;
    const char *name = rc_dataset_kind_name(cfg->data.dataset);
    int want[2] = {DATASET_SHAPE[cfg->data.dataset].channels,
                   DATASET_SHAPE[cfg->data.dataset].size};
    int *have[2] = {&cfg->model.in_channels, &cfg->model.input_size};
    for (int i = 0; i < 2; i++) {
        loc m = at(c, model_keys[i]);
        if (m.bad) continue;
        if (*have[i] == 0 && !m.line)
            *have[i] = want[i];
        else if (*have[i] != want[i] && i == 0)
            add_error(c, m, model_keys[i], "%s images have %d channel(s), got %d", name, want[i],
                      *have[i]);
        else if (*have[i] != want[i])
            add_error(c, m, model_keys[i], "%s images are %dx%d pixels, got %d", name, want[i],
                      want[i], *have[i]);
    }
    loc nc = at(c, "model.num_classes");
    if (!nc.bad && cfg->model.num_classes < DATASET_CLASSES)
        add_error(c, nc, "model.num_classes", "%s has %d classes, got %d", name, DATASET_CLASSES,
                  cfg->model.num_classes);
    if (cfg->data.augment == RC_AUGMENT_AUTO)
        cfg->data.augment =
            cfg->data.dataset == RC_DATASET_CIFAR10 ? RC_AUGMENT_CROP_FLIP : RC_AUGMENT_NONE;
    if (!cfg->data.path[0] && !at(c, "data.path").bad) {
        if (cfg->data.dataset == RC_DATASET_FASHION_MNIST) {
            strcpy(cfg->data.path, FASHION_MNIST_DIR);
            check_path(c, ds, "data.path", cfg->data.path, true,
                       " (the default for fashion-mnist: install the Debian package "
                       "dataset-fashion-mnist or set data.path)");
        } else {
            add_error(c, ds, "data.path", "required for %s: the directory holding its %s files",
                      name,
                      cfg->data.dataset == RC_DATASET_CIFAR10 ? "data_batch_*.bin"
                                                              : "*-ubyte[.gz]");
        }
    }
}

static void check_threats(ctx *c, rc_config *cfg) {
    for (int i = 0; i < cfg->n_threats; i++) {
        rc_threat *t = &cfg->threats[i];
        const loc *m = c->t[i];
        char prefix[32];
        if (!c->t_entry[i].line) c->t_pos[i] = i;
        snprintf(prefix, sizeof prefix, "threat_models[%d].", c->t_pos[i]);
        check_fields(c, THREAT_FIELDS, N_THREAT_FIELDS, m, t, prefix, c->t_entry[i]);
        if (t->eval_eps == 0 && !m[T_EVAL_EPS].line) t->eval_eps = t->eps;
        if (m[T_NORM].bad || t->norm < 0) continue;
        /* Images are in [0, 1]: an l_inf radius above 1 is surely in 0..255 units. */
        const int radius_key[2] = {T_EPS, T_EVAL_EPS};
        const double radius[2] = {t->eps, t->eval_eps};
        for (int r = 0; r < 2 && t->norm == RC_NORM_LINF; r++)
            if (!m[radius_key[r]].bad && radius[r] > 1 && (r == 0 || radius[1] != radius[0]))
                add_error(c, m[radius_key[r]], NULL,
                          "%s%s: a linf radius of %g is more than the whole pixel range [0, 1]; "
                          "radii are in pixel units, e.g. 8/255",
                          prefix, THREAT_FIELDS[radius_key[r]].path, radius[r]);
        for (int j = 0; j < i; j++)
            if (cfg->threats[j].norm == t->norm)
                add_error(c, m[T_NORM], NULL,
                          "%snorm: duplicate norm %s (already in threat_models[%d])", prefix,
                          rc_norm_name(t->norm), c->t_pos[j]);
    }
}

/* train_norms: given, each in threat_models, at least two and no repeats, for sat and eat only;
 * not given, sat draws from every threat model and eat from linf and l1, as the published E-AT
 * (fra31/robust-finetuning train.py, RAMP's eat_train.py: l_2 is evaluated, never trained on). */
static void check_train_norms(ctx *c, rc_config *cfg, loc tm, const char *norms) {
    loc tn = at(c, "train_norms");
    bool draws = cfg->method == RC_METHOD_SAT || cfg->method == RC_METHOD_EAT;
    if (tn.bad || tm.bad || at(c, "method").bad) return;
    if (cfg->n_train_norms && !draws) {
        add_error(c, tn, "train_norms", "used only by methods sat and eat, not %s",
                  rc_method_name(cfg->method));
        return;
    }
    if (!draws || cfg->n_threats < 2) return; /* check_method reported it */
    if (!cfg->n_train_norms) {
        for (int i = 0; i < cfg->n_threats; i++) {
            rc_norm p = cfg->threats[i].norm;
            if (cfg->method == RC_METHOD_SAT || p == RC_NORM_LINF || p == RC_NORM_L1)
                cfg->train_norms[cfg->n_train_norms++] = p;
        }
        if (cfg->n_train_norms < 2)
            add_error(c, at(c, "method"), "method",
                      "'eat' draws between linf and l1 as the published E-AT, but threat_models "
                      "lists %s: add the missing one, or name the norms to draw from in "
                      "train_norms",
                      norms);
        return;
    }
    for (int i = 0; i < cfg->n_train_norms; i++) {
        char path[32];
        snprintf(path, sizeof path, "train_norms[%d]", i);
        if (rc_config_find_threat(cfg, cfg->train_norms[i]) < 0)
            add_error(c, c->train_norms[i], path, "%s is not in threat_models (%s)",
                      rc_norm_name(cfg->train_norms[i]), norms);
        for (int j = 0; j < i; j++)
            if (cfg->train_norms[j] == cfg->train_norms[i])
                add_error(c, c->train_norms[i], path, "%s is listed twice",
                          rc_norm_name(cfg->train_norms[i]));
    }
    if (cfg->n_train_norms < 2)
        add_error(c, tn, "train_norms",
                  "%s draws among at least two norms; to train against one, use method at",
                  rc_method_name(cfg->method));
}

static void check_method(ctx *c, rc_config *cfg) {
    char norms[64];
    norms_listed(cfg, norms, sizeof norms);
    loc mm = at(c, "method"), tm = at(c, "threat_models");
    const char *method = rc_method_name(cfg->method);
    if (!tm.bad && cfg->method != RC_METHOD_NATURAL) {
        if (cfg->n_threats == 0)
            add_error(c, mm, "method",
                      "'%s' trains against threat models: add threat_models, e.g. "
                      "- {norm: linf, eps: 8/255}",
                      method);
        else if (cfg->method != RC_METHOD_AT && cfg->n_threats < 2)
            add_error(c, mm, "method",
                      "'%s' combines several threat models, but threat_models lists only %s",
                      method, norms);
        else if (cfg->method == RC_METHOD_MSD) {
            /* every step of MSD tries all three norms: each needs its radius */
            char missing[64] = "";
            bool unread = false;
            for (int i = 0; i < cfg->n_threats; i++) unread |= c->t[i][T_NORM].bad;
            for (rc_norm p = RC_NORM_LINF; p <= RC_NORM_L1 && !unread; p++)
                if (rc_config_find_threat(cfg, p) < 0)
                    snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                             *missing ? " and " : "", rc_norm_name(p));
            if (*missing)
                add_error(c, mm, "method",
                          "'msd' steps in linf, l2 and l1 at once and needs all three in "
                          "threat_models; %s missing",
                          missing);
        }
    }
    loc an = at(c, "attack_norm");
    if (cfg->method == RC_METHOD_AT && !an.bad && !tm.bad && cfg->n_threats > 0) {
        if (cfg->attack_norm == RC_NORM_NONE && cfg->n_threats == 1)
            cfg->attack_norm = cfg->threats[0].norm;
        else if (cfg->attack_norm == RC_NORM_NONE)
            add_error(c, mm, "attack_norm",
                      "method at attacks one norm: set attack_norm to one of %s", norms);
        else if (rc_config_find_threat(cfg, cfg->attack_norm) < 0)
            add_error(c, an, "attack_norm", "%s is not in threat_models (%s)",
                      rc_norm_name(cfg->attack_norm), norms);
    }
    check_train_norms(c, cfg, tm, norms);
    const rc_norm *pair = cfg->ramp.pair;
    loc pm = at(c, "ramp.pair");
    if (pm.bad || c->pair[0].bad || c->pair[1].bad) return;
    if ((pair[0] < 0) != (pair[1] < 0)) {
        add_error(c, pm, "ramp.pair", "set both norms [q, r], or auto");
    } else if (pair[0] >= 0 && pair[0] == pair[1]) {
        add_error(c, c->pair[1], "ramp.pair", "q and r must differ, got [%s, %s]",
                  rc_norm_name(pair[0]), rc_norm_name(pair[1]));
    } else if (pair[0] >= 0 && cfg->method == RC_METHOD_RAMP && !tm.bad) {
        for (int i = 0; i < 2; i++)
            if (rc_config_find_threat(cfg, pair[i]) < 0)
                add_error(c, c->pair[i], i ? "ramp.pair[1]" : "ramp.pair[0]",
                          "%s is not in threat_models (%s)", rc_norm_name(pair[i]), norms);
    }
    /* pair: auto runs the paper's heuristic on l_p-AT models before training (paper Sec. 4.1) */
    int n_at = 0;
    for (rc_norm p = RC_NORM_LINF; p <= RC_NORM_L1; p++) {
        char key[64];
        snprintf(key, sizeof key, "ramp.at_checkpoints.%s", rc_norm_name(p));
        const char *ck = cfg->ramp.at_checkpoints[p];
        if (!ck[0]) continue;
        n_at++;
        loc where = at(c, key);
        if (pair[0] >= 0)
            add_error(c, where, key, "used only with ramp.pair: auto (the pair is [%s, %s])",
                      rc_norm_name(pair[0]), rc_norm_name(pair[1]));
        else if (!tm.bad && rc_config_find_threat(cfg, p) < 0)
            add_error(c, where, key, "%s is not in threat_models (%s)", rc_norm_name(p), norms);
        else
            check_path(c, where, key, ck, false, "");
    }
    if (pair[0] < 0 && cfg->method == RC_METHOD_RAMP) {
        if (n_at < 2)
            add_error(c, pm, "ramp.pair",
                      "auto chooses the pair from l_p-AT models: give ramp.at_checkpoints for at "
                      "least two norms, or the pair [q, r]");
        if (cfg->init[0])
            add_error(c, at(c, "init"), "init",
                      "with ramp.pair: auto the run starts from q's AT checkpoint; remove init");
    }
}

/* The WideResNets' depth and the input normalisation, once in_channels is known. */
static void check_model(ctx *c, rc_config *cfg) {
    const rc_arch a = cfg->model.arch;
    const char *name = rc_arch_name(a);
    loc dl = at(c, "model.depth"), ml = at(c, "model.mean"), sl = at(c, "model.std");
    int *depth = &cfg->model.depth;
    if (a < 0 || at(c, "model.arch").bad) return;
    if (!dl.bad && !rc_arch_is_wrn(a) && *depth != 0)
        add_error(c, dl, "model.depth", "only the WideResNets (wrn, dm-wrn) have a depth, not %s",
                  name);
    else if (!dl.bad && rc_arch_is_wrn(a) && *depth == 0 && !dl.line)
        *depth = rc_arch_default(a).depth;
    else if (!dl.bad && rc_arch_is_wrn(a) && (*depth < 10 || (*depth - 4) % 6))
        add_error(c, dl, "model.depth",
                  "a WideResNet's depth is 6n + 4 (10, 16, 22, ..., 70), got %d", *depth);
    rc_channel_values *mean = &cfg->model.mean, *std = &cfg->model.std;
    const int channels = cfg->model.in_channels;
    if (ml.bad || sl.bad || channels < 1) return;
    if (!mean->n != !std->n) {
        add_error(c, mean->n ? ml : sl, mean->n ? "model.mean" : "model.std",
                  "input normalisation needs both model.mean and model.std");
        return;
    }
    if (!mean->n && a == RC_ARCH_DM_WRN && channels <= RC_MAX_NORM_CHANNELS) {
        /* its mean and std buffers without normalising */
        mean->n = std->n = channels;
        for (int i = 0; i < channels; i++) mean->v[i] = 0, std->v[i] = 1;
    }
    for (int k = 0; k < 2 && mean->n; k++) {
        const rc_channel_values *l = k ? std : mean;
        const char *key = k ? "model.std" : "model.mean";
        if (l->n != channels) {
            add_error(c, k ? sl : ml, key, "%d value(s) for %d input channel(s)", l->n, channels);
            continue;
        }
        for (int i = 0; i < l->n; i++)
            if (!isfinite(l->v[i]) || (k && !(l->v[i] > 0))) {
                char num[32];
                fmt_double(num, sizeof num, l->v[i]);
                add_error(c, k ? sl : ml, key, "value %d must be %s, got %s", i,
                          k ? "> 0" : "finite", num);
            }
    }
}

static void finalize(ctx *c, rc_config *cfg) {
    /* Each architecture's own width; without an arch (already an error) 64, which passes the
     * width check so that only the missing arch is reported. */
    if (cfg->model.width == -1)
        cfg->model.width = cfg->model.arch >= 0 ? rc_arch_default(cfg->model.arch).width : 64;
    check_fields(c, FIELDS, N_FIELDS, c->f, cfg, "", (loc){0});
    resolve_data(c, cfg);
    check_model(c, cfg);
    if (cfg->data.path[0] && at(c, "data.path").line)
        check_path(c, at(c, "data.path"), "data.path", cfg->data.path, true, "");
    if (cfg->model.activation == RC_ACTIVATION_AUTO && cfg->model.arch >= 0)
        cfg->model.activation = rc_arch_default(cfg->model.arch).activation;
    /* From scratch the reference exempts BN and biases from weight decay; fine-tuning does not. */
    if (cfg->optimizer.param_groups == RC_PARAM_GROUPS_AUTO)
        cfg->optimizer.param_groups =
            cfg->init[0] ? RC_PARAM_GROUPS_SINGLE : RC_PARAM_GROUPS_SPLIT;
    if (cfg->init[0]) check_path(c, at(c, "init"), "init", cfg->init, false, "");
    loc nv = at(c, "optimizer.nesterov");
    if (cfg->optimizer.nesterov && cfg->optimizer.momentum == 0 && !nv.bad)
        add_error(c, nv, "optimizer.nesterov", "needs momentum > 0");
    check_threats(c, cfg);
    check_method(c, cfg);
    if (!cfg->output.dir[0]) snprintf(cfg->output.dir, sizeof cfg->output.dir, "runs/%s", c->stem);
}

/* ---- public --------------------------------------------------------------------------------- */

void rc_config_defaults(rc_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->model.arch = RC_ARCH_UNSET;
    cfg->model.activation = RC_ACTIVATION_AUTO;
    cfg->model.width = -1; /* per architecture, in finalize */
    cfg->model.num_classes = 10;
    cfg->data.dataset = RC_DATASET_UNSET;
    cfg->data.augment = RC_AUGMENT_AUTO;
    cfg->data.batch_size = 128;
    cfg->data.eval_batch_size = 256;
    cfg->method = RC_METHOD_NATURAL;
    cfg->attack_norm = RC_NORM_NONE;
    cfg->ramp.pair[0] = RC_NORM_LINF, cfg->ramp.pair[1] = RC_NORM_L1; /* the paper's default */
    cfg->ramp.lambda = 1.5;
    cfg->ramp.beta = 0.5;
    cfg->ramp.gp = true;
    cfg->ramp.outer = RC_OUTER_MAX;
    cfg->ramp.trades_beta = 6;
    /* the defaults of robust_union's msd_v0 (Maini et al. 2020) */
    cfg->msd.alpha_linf = 0.003;
    cfg->msd.alpha_l2 = 0.05;
    cfg->msd.alpha_l1 = 0.05;
    cfg->msd.steps = 50;
    cfg->optimizer.lr = 0.05;
    cfg->optimizer.momentum = 0.9;
    cfg->optimizer.weight_decay = 5e-4;
    cfg->optimizer.param_groups = RC_PARAM_GROUPS_AUTO;
    cfg->schedule.name = RC_SCHEDULE_PIECEWISE_FT;
    cfg->schedule.epochs = 3;
    cfg->schedule.static_drop_epoch = 70;
    cfg->eval.every = 1;
    cfg->eval.n = 200;
    cfg->eval.final_protocol = RC_FINAL_FULL;
    cfg->eval.final_n = 1000;
    cfg->output.checkpoint_every = 1;
    cfg->output.checkpoint_minutes = 30;
}

int rc_config_find_threat(const rc_config *cfg, rc_norm norm) {
    for (int i = 0; i < cfg->n_threats; i++)
        if (cfg->threats[i].norm == norm) return i;
    return -1;
}

int rc_config_finalize(rc_config *cfg, rc_err *e) {
    ctx c = {.e = e};
    strcpy(c.stem, "run");
    rc_err_clear(e);
    finalize(&c, cfg);
    return close_errors(&c);
}

static int yaml_error(rc_err *e, const char *file, const yaml_parser_t *p) {
    if (p->error == YAML_MEMORY_ERROR) return rc_err_set(e, "%s: out of memory reading YAML", file);
    if (p->error == YAML_READER_ERROR)
        return rc_err_set(e, "%s: invalid YAML: %s (at byte %zu)", file, p->problem,
                          p->problem_offset);
    char context[160] = "";
    if (p->context)
        snprintf(context, sizeof context, " (%s at line %zu, column %zu)", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    return rc_err_set(e, "%s:%zu:%zu: invalid YAML: %s%s", file, p->problem_mark.line + 1,
                      p->problem_mark.column + 1, p->problem ? p->problem : "syntax error",
                      context);
}

/* The checked and resolved parts of loading, once the file is a YAML mapping. */
static int load_tree(rc_config *cfg, const char *path, const yaml_document_t *doc,
                     const yaml_node_t *root, rc_err *e) {
    ctx c = {.e = e, .file = path, .doc = doc};
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(c.stem, sizeof c.stem, "%s", base);
    size_t n = strlen(c.stem);
    if (n > 5 && !strcmp(c.stem + n - 5, ".yaml"))
        c.stem[n - 5] = '\0';
    else if (n > 4 && !strcmp(c.stem + n - 4, ".yml"))
        c.stem[n - 4] = '\0';
    walk_map(&c, root, FIELDS, N_FIELDS, c.f, "", "", cfg);
    finalize(&c, cfg);
    return close_errors(&c);
}

/* Refuse nesting deeper than MAX_DEPTH, reading events only as far as that depth. */
static int check_depth(const char *path, const char *text, size_t len, rc_err *e) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return rc_err_set(e, "%s: out of memory starting the YAML parser", path);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) break; /* the loader reports syntax errors */
        yaml_event_type_t type = ev.type;
        depth += type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT;
        depth -= type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT;
        if (depth > MAX_DEPTH)
            rc = rc_err_set(e, "%s:%zu:%zu: nested more than %d levels deep; a config has 3", path,
                            ev.start_mark.line + 1, ev.start_mark.column + 1, MAX_DEPTH);
        yaml_event_delete(&ev);
        if (rc || type == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&parser);
    return rc;
}

int rc_config_load_buffer(rc_config *cfg, const char *path, const char *text, size_t len,
                          rc_err *e) {
    rc_config_defaults(cfg);
    rc_err_clear(e);
    if (len > MAX_BYTES)
        return rc_err_set(e, "%s: larger than %u KiB; a config is a few kilobytes", path,
                          MAX_BYTES >> 10);
    if (check_depth(path, text, len, e)) return -1;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return rc_err_set(e, "%s: out of memory starting the YAML parser", path);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t doc, next;
    int rc = -1;
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_error(e, path, &parser);
        goto out_parser;
    }
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc_err_set(e, "%s: the file holds no settings; a config needs at least model.arch and "
                      "data.dataset", path);
        goto out_doc;
    }
    if (!yaml_parser_load(&parser, &next)) {
        yaml_error(e, path, &parser);
        goto out_doc;
    }
    const yaml_node_t *second = yaml_document_get_root_node(&next);
    bool more = second != NULL;
    if (more)
        rc_err_set(e, "%s:%zu:%zu: a second YAML document; a config file holds exactly one",
                   path, second->start_mark.line + 1, second->start_mark.column + 1);
    yaml_document_delete(&next);
    if (more) goto out_doc;
    if (root->type != YAML_MAPPING_NODE) {
        char got[80];
        rc_err_set(e, "%s:%zu:%zu: the top level must be a mapping of keys (model:, data:, ...), "
                      "got %s",
                   path, root->start_mark.line + 1, root->start_mark.column + 1,
                   describe(root, got, sizeof got));
        goto out_doc;
    }
    rc = load_tree(cfg, path, &doc, root, e);
out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    return rc;
}

int rc_config_load(rc_config *cfg, const char *path, rc_err *e) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return rc_err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st; /* fopen opens a directory; reading it would be a vague libyaml error */
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);
        return rc_err_set(e, "%s: cannot open: %s", path, strerror(EISDIR));
    }
    /* The whole file, read in growing steps: it may be a pipe with no size. */
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t grown_cap = cap ? 2 * cap : 4096;
            char *grown = realloc(text, grown_cap);
            if (!grown) {
                free(text);
                fclose(fp);
                return rc_err_set(e, "%s: out of memory reading it", path);
            }
            text = grown;
            cap = grown_cap;
        }
        size_t got = fread(text + len, 1, cap - len, fp);
        len += got;
        if (got == 0 || len > MAX_BYTES) break; /* the buffer load refuses it */
    }
    int failed = ferror(fp), err = errno;
    fclose(fp);
    int rc = failed ? rc_err_set(e, "%s: cannot read: %s", path, strerror(err))
                    : rc_config_load_buffer(cfg, path, text, len, e);
    free(text);
    return rc;
}

/* ---- printing ------------------------------------------------------------------------------- */

static void print_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Prints "key: value" for a scalar field, or nothing for an enum that is unset and has no name
 * to print. */
static void print_field(FILE *f, const field *fd, const void *base, const char *indent,
                        const char *sep) {
    const void *src = (const char *)base + fd->off;
    char num[32];
    if (fd->type == F_ENUM && *(const int *)src < 0 && !fd->auto_ok) return;
    if (fd->omit_zero && *(const int *)src == 0) return;
    const rc_channel_values *list = src;
    if (fd->type == F_CHANNELS && !list->n) return;
    fprintf(f, "%s%s: ", indent, leaf(fd->path));
    switch (fd->type) {
    case F_INT: fprintf(f, "%d", *(const int *)src); break;
    case F_U64: fprintf(f, "%" PRIu64, *(const uint64_t *)src); break;
    case F_DOUBLE:
        fmt_double(num, sizeof num, *(const double *)src);
        fputs(num, f);
        break;
    case F_BOOL: fputs(*(const bool *)src ? "true" : "false", f); break;
    case F_STR: print_string(f, src); break;
    case F_ENUM: fputs(name_in(fd->names, fd->n_names, *(const int *)src, "auto"), f); break;
    case F_CHANNELS:
        for (int i = 0; i < list->n; i++) {
            fmt_double(num, sizeof num, list->v[i]);
            fprintf(f, "%s%s", i ? ", " : "[", num);
        }
        fputs("]", f);
        break;
    default: break;
    }
    fputs(sep, f);
}

void rc_config_print(FILE *f, const rc_config *cfg) {
    fputs(RC_CONFIG_PRINT_HEADER "\n", f);
    for (size_t i = 0; i < N_FIELDS; i++) {
        const field *fd = &FIELDS[i];
        int depth = 0; /* nesting: two spaces per level */
        for (const char *d = fd->path; (d = strchr(d, '.')); d++) depth++;
        char indent[16];
        snprintf(indent, sizeof indent, "%*s", 2 * depth, "");
        switch (fd->type) {
        case F_SECTION: fprintf(f, "%s%s:\n", indent, leaf(fd->path)); break;
        case F_THREATS:
            fputs(cfg->n_threats ? "threat_models:\n" : "threat_models: []\n", f);
            for (int t = 0; t < cfg->n_threats; t++) {
                fputs("  - {", f);
                for (size_t k = 0; k < N_THREAT_FIELDS; k++)
                    print_field(f, &THREAT_FIELDS[k], &cfg->threats[t], "",
                                k + 1 < N_THREAT_FIELDS ? ", " : "");
                fputs("}\n", f);
            }
            break;
        case F_NORMS:
            if (!cfg->n_train_norms) break;
            fputs("train_norms: [", f);
            for (int t = 0; t < cfg->n_train_norms; t++)
                fprintf(f, "%s%s", t ? ", " : "", rc_norm_name(cfg->train_norms[t]));
            fputs("]\n", f);
            break;
        case F_PAIR:
            if (cfg->ramp.pair[0] < 0 || cfg->ramp.pair[1] < 0)
                fprintf(f, "%spair: auto\n", indent);
            else
                fprintf(f, "%spair: [%s, %s]\n", indent, rc_norm_name(cfg->ramp.pair[0]),
                        rc_norm_name(cfg->ramp.pair[1]));
            break;
        default: print_field(f, fd, cfg, indent, "\n");
        }
    }
}
