/* Reading a run directory's records back (see ramp/runlog.h). */
#include "ramp/runlog.h"
#include "ramp/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The eval reports are a few kilobytes per thousand points; anything far larger is not one. */
#define EVAL_FILE_MAX (64u << 20)

static const char *const FIELD_KEYS[RC_LOG_FIELDS] = {
    [RC_LOG_TRAIN_LOSS] = "train_loss",
    [RC_LOG_TRAIN_ACC] = "train_acc",
    [RC_LOG_CLEAN_ACC] = "clean_acc",
    [RC_LOG_LR] = "lr",
    [RC_LOG_EPOCH_TIME] = "epoch_time_s",
    [RC_LOG_EVAL_N] = "eval_n",
    [RC_LOG_NORM_ACC + RC_NORM_LINF] = "linf_acc",
    [RC_LOG_NORM_ACC + RC_NORM_L2] = "l2_acc",
    [RC_LOG_NORM_ACC + RC_NORM_L1] = "l1_acc",
    [RC_LOG_UNION_ACC] = "union_acc",
    [RC_LOG_GP_COS_MEAN] = "gp_cos",
};

const char *rc_log_field_key(int field) {
    return field >= 0 && field < RC_LOG_FIELDS ? FIELD_KEYS[field] : "?";
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* 1 if path names an existing file (of any kind: opening it reports the rest), 0 if nothing is
 * there, -1 with the message set on any other failure. */
static int exists(const char *path, rc_err *e) {
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    if (errno == ENOENT) return 0;
    return rc_err_set(e, "%s: %s", path, strerror(errno));
}

/* ---- metrics.jsonl --------------------------------------------------------------------------- */

/* The value of a field: a number, or null (left missing). gp_cos is an array of numbers whose
 * mean is kept; an empty array is missing too. */
static int parse_field(rc_json *j, int field, rc_log_epoch *ep) {
    if (rc_json_null(j)) return 0;
    if (field != RC_LOG_GP_COS_MEAN) {
        if (rc_json_number(j, &ep->value[field])) return -1;
        ep->has[field] = 1;
        return 0;
    }
    if (rc_json_expect(j, '[')) return -1;
    double sum = 0;
    long n = 0;
    int r = rc_json_accept(j, ']') ? 0 : 1;
    while (r == 1) {
        double v;
        if (rc_json_number(j, &v)) return -1;
        sum += v;
        n++;
        r = rc_json_more(j, ']');
    }
    if (r < 0) return -1;
    if (n) {
        ep->value[field] = sum / (double)n;
        ep->has[field] = 1;
    }
    return 0;
}

/* One line: an object with an integer epoch >= 1 and any of the fields; each key at most once. */
static int parse_epoch(rc_json *j, rc_log_epoch *ep) {
    memset(ep, 0, sizeof *ep);
    unsigned char seen[RC_LOG_FIELDS] = {0};
    int seen_epoch = 0;
    if (rc_json_expect(j, '{')) return -1;
    int r = rc_json_accept(j, '}') ? 0 : 1;
    while (r == 1) {
        rc_json_skip_ws(j);
        const unsigned char *at = j->p;
        char *key;
        if (rc_json_string(j, &key)) return -1;
        int field = 0;
        while (field < RC_LOG_FIELDS && strcmp(key, FIELD_KEYS[field]) != 0) field++;
        int is_epoch = strcmp(key, "epoch") == 0;
        if ((is_epoch && seen_epoch) || (field < RC_LOG_FIELDS && seen[field])) {
            j->p = at;
            rc_json_error(j, "field \"%s\" given twice", key);
            free(key);
            return -1;
        }
        free(key);
        if (rc_json_expect(j, ':')) return -1;
        rc_json_skip_ws(j);
        at = j->p;
        if (is_epoch) {
            j->context = "epoch";
            int64_t v;
            if (rc_json_int(j, &v)) return -1;
            if (v < 1 || v > 1000000) {
                j->p = at;
                return rc_json_error(j, "%lld is not from 1 to 1000000", (long long)v);
            }
            ep->epoch = (int)v;
            seen_epoch = 1;
        } else if (field < RC_LOG_FIELDS) {
            j->context = FIELD_KEYS[field];
            if (parse_field(j, field, ep)) return -1;
            seen[field] = 1;
        } else if (rc_json_skip_value(j)) {
            return -1;
        }
        j->context = NULL;
        r = rc_json_more(j, '}');
    }
    if (r < 0) return -1;
    rc_json_skip_ws(j);
    if (j->p < j->end) return rc_json_unexpected(j, "the end of the line after the object");
    if (!seen_epoch) {
        j->p = j->start;
        return rc_json_error(j, "the record has no \"epoch\"");
    }
    return 0;
}

static int only_spaces(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

static int read_metrics(rc_run_log *r, const char *path, rc_err *e) {
    FILE *f = fopen(path, "r");
    if (!f) return rc_err_set(e, "cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t line_cap = 0, cap = 0;
    long lineno = 0;
    int status = -1, prev_epoch = 0;
    ssize_t len;
    r->first_line = 1;
    errno = 0;
    while ((len = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n') len--; /* a place at the end is on this line */
        if (only_spaces(line, (size_t)len)) continue;
        rc_json j;
        rc_json_init(&j, line, (size_t)len, path, e);
        j.line = lineno;
        j.end_name = "the line";
        j.nonfinite = 1;
        rc_log_epoch ep;
        if (parse_epoch(&j, &ep)) goto out;
        if (ep.epoch <= prev_epoch) { /* a new training run appended to the file */
            r->n_epochs = 0;
            r->n_runs_in_file++;
            r->first_line = lineno;
        }
        if (r->n_runs_in_file == 0) r->n_runs_in_file = 1;
        prev_epoch = ep.epoch;
        if (r->n_epochs == cap) {
            cap = cap ? 2 * cap : 64;
            rc_log_epoch *grown = realloc(r->epochs, cap * sizeof *grown);
            if (!grown) {
                rc_err_set(e, "%s:%ld: out of host memory", path, lineno);
                goto out;
            }
            r->epochs = grown;
        }
        r->epochs[r->n_epochs++] = ep;
        errno = 0;
    }
    if (ferror(f)) {
        rc_err_set(e, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    status = 0;
out:
    free(line);
    fclose(f);
    return status;
}

/* ---- eval-*.json ----------------------------------------------------------------------------- */

/* A string field into a fixed buffer: longer values are an error. */
static int parse_short_string(rc_json *j, char *out, size_t cap, const char *field) {
    rc_json_skip_ws(j);
    const unsigned char *at = j->p;
    char *s;
    if (rc_json_string(j, &s)) return -1;
    size_t n = strlen(s);
    if (n < cap) memcpy(out, s, n + 1);
    free(s);
    if (n >= cap) {
        j->p = at;
        return rc_json_error(j, "\"%s\" is longer than %zu characters", field, cap - 1);
    }
    return 0;
}

static int parse_number_or_null(rc_json *j, double *out) {
    *out = NAN;
    return rc_json_null(j) ? 0 : rc_json_number(j, out);
}

/* {"norm": name, "eps": number, "robust_acc": number, ...} */
static int parse_eval_norm(rc_json *j, rc_log_eval *ev) {
    rc_json_skip_ws(j);
    if (ev->n_norms == RC_MAX_THREATS)
        return rc_json_error(j, "more than %d norms", RC_MAX_THREATS);
    rc_log_norm *nm = &ev->norms[ev->n_norms];
    nm->name[0] = '\0';
    nm->eps = nm->acc = NAN;
    if (rc_json_expect(j, '{')) return -1;
    int r = rc_json_accept(j, '}') ? 0 : 1;
    while (r == 1) {
        char *key;
        if (rc_json_string(j, &key)) return -1;
        int bad = rc_json_expect(j, ':') ||
                  (!strcmp(key, "norm")         ? parse_short_string(j, nm->name, sizeof nm->name,
                                                                     "norm")
                   : !strcmp(key, "eps")        ? parse_number_or_null(j, &nm->eps)
                   : !strcmp(key, "robust_acc") ? parse_number_or_null(j, &nm->acc)
                                                : rc_json_skip_value(j));
        free(key);
        if (bad) return -1;
        r = rc_json_more(j, '}');
    }
    if (r < 0) return -1;
    ev->n_norms++;
    return 0;
}

static int parse_eval_field(rc_json *j, const char *key, rc_log_eval *ev) {
    if (!strcmp(key, "protocol"))
        return parse_short_string(j, ev->protocol, sizeof ev->protocol, "protocol");
    if (!strcmp(key, "clean_acc")) return parse_number_or_null(j, &ev->clean_acc);
    if (!strcmp(key, "union_acc")) return parse_number_or_null(j, &ev->union_acc);
    if (!strcmp(key, "n")) {
        rc_json_skip_ws(j);
        const unsigned char *at = j->p;
        int64_t n;
        if (rc_json_int(j, &n)) return -1;
        if (n < 0 || n > 1000000000) {
            j->p = at;
            return rc_json_error(j, "n %lld is out of range", (long long)n);
        }
        ev->n = (long)n;
        return 0;
    }
    if (!strcmp(key, "norms")) {
        if (rc_json_expect(j, '[')) return -1;
        int r = rc_json_accept(j, ']') ? 0 : 1;
        while (r == 1) {
            if (parse_eval_norm(j, ev)) return -1;
            r = rc_json_more(j, ']');
        }
        return r;
    }
    return rc_json_skip_value(j);
}

static int parse_eval(rc_json *j, rc_log_eval *ev) {
    if (rc_json_expect(j, '{')) return -1;
    int r = rc_json_accept(j, '}') ? 0 : 1;
    while (r == 1) {
        char *key;
        if (rc_json_string(j, &key)) return -1;
        int bad = rc_json_expect(j, ':') || parse_eval_field(j, key, ev);
        free(key);
        if (bad) return -1;
        r = rc_json_more(j, '}');
    }
    if (r < 0) return -1;
    rc_json_skip_ws(j);
    return j->p < j->end ? rc_json_unexpected(j, "only spaces after the object") : 0;
}

/* The whole file into *buf (caller frees), at most EVAL_FILE_MAX bytes. */
static int slurp(const char *path, char **buf, size_t *len, rc_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return rc_err_set(e, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 0, n = 0, got;
    char *p = NULL;
    int status = -1;
    do {
        if (n == cap) {
            if (cap == EVAL_FILE_MAX) {
                rc_err_set(e, "%s: larger than %u MiB, not an evaluation report", path,
                           EVAL_FILE_MAX >> 20);
                goto out;
            }
            cap = cap ? 2 * cap : 64 << 10;
            char *grown = realloc(p, cap);
            if (!grown) {
                rc_err_set(e, "%s: out of host memory", path);
                goto out;
            }
            p = grown;
        }
        got = fread(p + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        rc_err_set(e, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    *buf = p;
    *len = n;
    p = NULL;
    status = 0;
out:
    free(p);
    fclose(f);
    return status;
}

static int read_eval(rc_log_eval *ev, const char *path, rc_err *e) {
    char *buf = NULL;
    size_t n = 0;
    if (slurp(path, &buf, &n, e)) return -1;
    rc_json j;
    rc_json_init(&j, buf, n, path, e);
    j.line = 1;
    j.end_name = "the file";
    j.nonfinite = 1;
    ev->clean_acc = ev->union_acc = NAN;
    int status = parse_eval(&j, ev);
    ev->present = status == 0;
    free(buf);
    return status;
}

/* ---- the directory --------------------------------------------------------------------------- */

static int load(rc_run_log *r, const char *dir, rc_err *e) {
    struct stat st;
    if (stat(dir, &st) != 0) return rc_err_set(e, "run directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return rc_err_set(e, "%s is not a run directory", dir);
    /* the final evaluation: the strongest protocol the directory has */
    static const char *const evals[] = {"eval-standard.json", "eval-full.json", "eval-fast.json"};
    char *metrics = join(dir, "metrics.jsonl"), *eval = NULL;
    int status = -1, have_metrics, have_eval = 0;
    if (!metrics) {
        rc_err_set(e, "%s: out of host memory", dir);
        goto out;
    }
    if ((have_metrics = exists(metrics, e)) < 0) goto out;
    for (size_t k = 0; k < sizeof evals / sizeof *evals && !have_eval; k++) {
        free(eval);
        if (!(eval = join(dir, evals[k]))) {
            rc_err_set(e, "%s: out of host memory", dir);
            goto out;
        }
        if ((have_eval = exists(eval, e)) < 0) goto out;
        if (have_eval) snprintf(r->eval.file, sizeof r->eval.file, "%s", evals[k]);
    }
    if (!have_metrics && !have_eval) {
        rc_err_set(e, "%s holds no metrics.jsonl, eval-standard.json, eval-full.json or "
                      "eval-fast.json: not a run directory, or a run that has not finished an "
                      "epoch",
                   dir);
        goto out;
    }
    r->has_metrics = have_metrics;
    if (have_metrics && read_metrics(r, metrics, e)) goto out;
    if (have_eval && read_eval(&r->eval, eval, e)) goto out;
    status = 0;
out:
    free(metrics);
    free(eval);
    return status;
}

int rc_run_log_load(rc_run_log *r, const char *dir, rc_err *e) {
    memset(r, 0, sizeof *r);
    r->dir = strdup(dir);
    if (!r->dir) return rc_err_set(e, "%s: out of host memory", dir);
    if (load(r, dir, e) == 0) return 0;
    rc_run_log_free(r);
    return -1;
}

void rc_run_log_free(rc_run_log *r) {
    free(r->dir);
    free(r->epochs);
    memset(r, 0, sizeof *r);
}
