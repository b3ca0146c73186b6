/* `ramp-cl plot` on synthetic run directories: the SVG is well-formed XML with one <svg> root,
 * holds the runs' names and the final evaluation's values, draws one polyline point per epoch,
 * copes with NaN and single epochs; the reader names file:line:column on malformed input; the
 * PNG converter is run and its failure reported. No OpenCL device is needed. */
#include "testutil.h"

#include "ramp/eval.h"
#include "ramp/json.h"
#include "ramp/plot.h"
#include "ramp/runlog.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files ----------------------------------------------------------------------------------- */

#define write_file(dir, name, ...) write_text(NULL, 0, dir, name, __VA_ARGS__)

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether a file named like path plus a suffix (an atomic writer's temporary file, whatever its
 * naming) is left in path's directory. */
static int temp_file_beside(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[1024];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    const char *base = slash ? slash + 1 : path;
    size_t len = strlen(base);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s", dir);
    int found = 0;
    for (struct dirent *de; (de = readdir(d));)
        found |= strncmp(de->d_name, base, len) == 0 && de->d_name[len] != '\0';
    closedir(d);
    return found;
}

static void make_dir(char *out, size_t cap, const char *parent, const char *name) {
    snprintf(out, cap, "%s/%s", parent, name);
    ck_assert_int_eq(mkdir(out, 0755), 0);
}

/* Three epochs with in-training evaluations at epochs 1 and 3 (2 has clean_acc null and no
 * robust fields), and eval-full.json: clean 76.85, linf 51.10, l2 49.00, l1 60.25, union 45.50. */
static void write_run_a(const char *dir) {
    write_file(dir, "metrics.jsonl",
               "{\"epoch\": 1, \"train_loss\": 1.9, \"train_acc\": 0.31, \"clean_acc\": 0.52, "
               "\"lr\": 0.1, \"epoch_time_s\": 10.0, \"wall_time_s\": 11.0, \"eval_n\": 200, "
               "\"eval_clean_acc\": 0.5, \"linf_acc\": 0.2, \"l2_acc\": 0.25, \"l1_acc\": 0.3, "
               "\"union_acc\": 0.15, \"gp_cos\": [0.1, 0.3]}\n"
               "{\"epoch\": 2, \"train_loss\": 1.4, \"train_acc\": 0.45, \"clean_acc\": null, "
               "\"lr\": 0.1, \"epoch_time_s\": 10.5, \"wall_time_s\": 22.0, "
               "\"gp_cos\": [0.2, 0.4]}\n"
               "\n"
               "{\"epoch\": 3, \"train_loss\": 1.1, \"train_acc\": 0.55, \"clean_acc\": 0.66, "
               "\"lr\": 0.01, \"epoch_time_s\": 9.8, \"wall_time_s\": 33.0, \"eval_n\": 200, "
               "\"eval_clean_acc\": 0.6, \"linf_acc\": 0.35, \"l2_acc\": 0.4, \"l1_acc\": 0.42, "
               "\"union_acc\": 0.3, \"gp_cos\": [0.3, 0.5], "
               "\"future_field\": {\"x\": [1, true]}}\n");
    write_file(dir, "eval-full.json",
               "{\n  \"protocol\": \"full\",\n  \"checkpoint\": \"x/model.safetensors\",\n"
               "  \"n\": 1000,\n  \"seed\": 0,\n  \"iterations\": 100,\n  \"seconds\": 202.071,\n"
               "  \"clean_acc\": 0.768500,\n  \"union_acc\": 0.455000,\n  \"norms\": [\n"
               "    {\"norm\": \"linf\", \"eps\": 0.1, \"robust_acc\": 0.511000, "
               "\"seconds\": 5.3},\n"
               "    {\"norm\": \"l2\", \"eps\": 1.5, \"robust_acc\": 0.490000, \"seconds\": 5.9},\n"
               "    {\"norm\": \"l1\", \"eps\": 10, \"robust_acc\": 0.602500, \"seconds\": 8.6}\n"
               "  ],\n  \"points\": {\"clean\": \"1101\", \"linf\": \"1001\"}\n}\n");
}

/* Two epochs without evaluations; both eval files, of which the full one must be drawn. */
static void write_run_b(const char *dir) {
    write_file(dir, "metrics.jsonl",
               "{\"epoch\": 1, \"train_loss\": 2.1, \"train_acc\": 0.25, \"clean_acc\": 0.45, "
               "\"lr\": 0.1, \"epoch_time_s\": 20.0, \"wall_time_s\": 21.0}\n"
               "{\"epoch\": 2, \"train_loss\": 1.6, \"train_acc\": 0.4, \"clean_acc\": 0.58, "
               "\"lr\": 0.1, \"epoch_time_s\": 21.0, \"wall_time_s\": 42.0}\n");
    write_file(dir, "eval-full.json",
               "{\"protocol\": \"full\", \"n\": 1000, \"clean_acc\": 0.6543, "
               "\"union_acc\": 0.4321, "
               "\"norms\": [{\"norm\": \"linf\", \"eps\": 0.1, \"robust_acc\": 0.5},"
               " {\"norm\": \"l2\", \"eps\": 1.5, \"robust_acc\": 0.5},"
               " {\"norm\": \"l1\", \"eps\": 10, \"robust_acc\": 0.5}]}\n");
    write_file(dir, "eval-fast.json",
               "{\"protocol\": \"fast\", \"n\": 1000, \"clean_acc\": 0.9999, "
               "\"union_acc\": 0.9999, "
               "\"norms\": []}\n");
}

/* ---- a small XML well-formedness checker ----------------------------------------------------- */

#define MAX_ATTRS 24

typedef struct elem {
    char name[32];
    int n_attrs;
    char keys[MAX_ATTRS][32];
    char *values[MAX_ATTRS];
    char *text; /* character data directly inside, entities left as they are */
} elem;

typedef struct doc {
    elem *elems;
    int n;
    char root[32];
} doc;

static int is_name_char(int c) {
    return isalnum(c) || c == '_' || c == '-' || c == ':' || c == '.';
}

/* An entity reference at p (just after '&'): its length up to and with ';', or 0. */
static size_t entity(const char *p) {
    static const char *const names[] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
    for (int i = 0; i < 5; i++)
        if (!strncmp(p, names[i], strlen(names[i]))) return strlen(names[i]);
    if (p[0] == '#') {
        size_t n = 1;
        while (isxdigit((unsigned char)p[n]) || p[n] == 'x') n++;
        if (n > 1 && p[n] == ';') return n + 1;
    }
    return 0;
}

/* Character data or an attribute value from p up to `stop`: no '<', every '&' an entity. */
static const char *char_data(const char *p, char stop, const char **err) {
    while (*p && *p != stop) {
        if (*p == '<' && stop != '<') {
            *err = "'<' inside an attribute value";
            return NULL;
        }
        if (*p == '&') {
            size_t n = entity(p + 1);
            if (!n) {
                *err = "'&' that starts no entity";
                return NULL;
            }
            p += n;
        }
        p++;
    }
    return p;
}

static const char *parse_name(const char *p, char *out, size_t cap) {
    size_t n = 0;
    if (!isalpha((unsigned char)*p) && *p != '_') return NULL;
    while (is_name_char((unsigned char)p[n])) n++;
    if (n >= cap) return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return p + n;
}

/* Parse the whole text; NULL, or what is wrong (with *at the offset). */
static const char *check_xml(const char *s, doc *d, size_t *at) {
    const char *p = s, *err = NULL;
    int stack[256], depth = 0, roots = 0;
    d->elems = calloc(strlen(s) / 4 + 1, sizeof *d->elems);
    d->n = 0;
    ck_assert_ptr_nonnull(d->elems);
    if (!strncmp(p, "<?xml", 5)) {
        p = strstr(p, "?>");
        if (!p) return *at = 0, "unterminated XML declaration";
        p += 2;
    }
    for (;;) {
        const char *q = char_data(p, '<', &err);
        if (!q) return *at = (size_t)(p - s), err;
        if (depth == 0) {
            for (const char *c = p; c < q; c++)
                if (!isspace((unsigned char)*c))
                    return *at = (size_t)(c - s), "text outside the root";
        } else {
            elem *e = &d->elems[stack[depth - 1]];
            size_t old = e->text ? strlen(e->text) : 0;
            e->text = realloc(e->text, old + (size_t)(q - p) + 1);
            memcpy(e->text + old, p, (size_t)(q - p));
            e->text[old + (size_t)(q - p)] = '\0';
        }
        p = q;
        if (!*p) break;
        *at = (size_t)(p - s);
        if (!strncmp(p, "<!--", 4)) {
            p = strstr(p, "-->");
            if (!p) return "unterminated comment";
            p += 3;
            continue;
        }
        if (p[1] == '/') {
            char name[32];
            const char *e = parse_name(p + 2, name, sizeof name);
            if (!e || *e != '>') return "malformed end tag";
            if (depth == 0 || strcmp(d->elems[stack[depth - 1]].name, name))
                return "end tag does not match the open element";
            depth--;
            p = e + 1;
            continue;
        }
        elem *e = &d->elems[d->n];
        p = parse_name(p + 1, e->name, sizeof e->name);
        if (!p) return "malformed start tag";
        if (depth == 0 && roots++) return "a second root element";
        if (depth == 0) snprintf(d->root, sizeof d->root, "%s", e->name);
        for (;;) {
            int space = isspace((unsigned char)*p);
            while (isspace((unsigned char)*p)) p++;
            if (*p == '>' || (p[0] == '/' && p[1] == '>')) break;
            if (!space) return *at = (size_t)(p - s), "no space before an attribute";
            if (e->n_attrs == MAX_ATTRS) return "too many attributes";
            p = parse_name(p, e->keys[e->n_attrs], sizeof e->keys[0]);
            if (!p || *p != '=') return "attribute without '='";
            for (int i = 0; i < e->n_attrs; i++)
                if (!strcmp(e->keys[i], e->keys[e->n_attrs])) return "attribute given twice";
            char quote = p[1];
            if (quote != '"' && quote != '\'') return *at = (size_t)(p - s), "unquoted attribute";
            const char *v = p + 2, *end = char_data(v, quote, &err);
            if (!end) return *at = (size_t)(v - s), err;
            if (!*end) return "unterminated attribute value";
            e->values[e->n_attrs++] = strndup(v, (size_t)(end - v));
            p = end + 1;
        }
        d->n++;
        if (*p == '/') {
            p += 2;
        } else {
            if (depth == 256) return "nested too deep";
            stack[depth++] = d->n - 1;
            p++;
        }
    }
    if (depth) return *at = strlen(s), "unclosed elements at the end";
    if (!roots) return *at = 0, "no root element";
    return NULL;
}

static const char *attr(const elem *e, const char *key) {
    for (int i = 0; i < e->n_attrs; i++)
        if (!strcmp(e->keys[i], key)) return e->values[i];
    return NULL;
}

/* How many elements called `name` have data-run `run` and attribute `key` = `value` (NULL:
 * any). */
static int count(const doc *d, const char *name, const char *run, const char *key,
                 const char *value) {
    int n = 0;
    for (int i = 0; i < d->n; i++) {
        const elem *e = &d->elems[i];
        if (strcmp(e->name, name)) continue;
        if (run && (!attr(e, "data-run") || strcmp(attr(e, "data-run"), run))) continue;
        if (key && (!attr(e, key) || strcmp(attr(e, key), value))) continue;
        n++;
    }
    return n;
}

/* The number of x,y pairs of the one polyline of this run and series. */
static int polyline_points(const doc *d, const char *run, const char *series) {
    ck_assert_int_eq(count(d, "polyline", run, "data-series", series), 1);
    for (int i = 0; i < d->n; i++) {
        const elem *e = &d->elems[i];
        if (strcmp(e->name, "polyline") || strcmp(attr(e, "data-run"), run) ||
            strcmp(attr(e, "data-series"), series))
            continue;
        const char *pts = attr(e, "points");
        ck_assert_ptr_nonnull(pts);
        int n = 0;
        for (const char *p = pts; *p;) {
            double x, y;
            int used;
            ck_assert_msg(sscanf(p, "%lf,%lf%n", &x, &y, &used) == 2, "bad points: %s", pts);
            ck_assert(isfinite(x) && isfinite(y));
            n++;
            p += used;
            while (*p == ' ') p++;
        }
        return n;
    }
    return -1;
}

/* 1 if some element's text is exactly s. */
static int has_text(const doc *d, const char *s) {
    for (int i = 0; i < d->n; i++)
        if (d->elems[i].text && !strcmp(d->elems[i].text, s)) return 1;
    return 0;
}

/* 1 if some element's text contains s. */
static int text_contains(const doc *d, const char *s) {
    for (int i = 0; i < d->n; i++)
        if (d->elems[i].text && strstr(d->elems[i].text, s)) return 1;
    return 0;
}

static void doc_free(doc *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->elems[i].text);
        for (int k = 0; k < d->elems[i].n_attrs; k++) free(d->elems[i].values[k]);
    }
    free(d->elems);
}

/* Read and check the SVG at path. */
static void load_svg(const char *path, doc *d) {
    char *s = read_file(path, NULL);
    size_t at = 0;
    const char *err = check_xml(s, d, &at);
    ck_assert_msg(err == NULL, "%s is not well-formed at byte %zu: %s: %.60s", path, at, err,
                  s + (at < strlen(s) ? at : 0));
    ck_assert_str_eq(d->root, "svg");
    ck_assert_ptr_nonnull(strstr(s, "xmlns=\"http://www.w3.org/2000/svg\""));
    /* self-contained: no links, scripts or external fonts */
    ck_assert_ptr_null(strstr(s, "href"));
    ck_assert_ptr_null(strstr(s, "<script"));
    ck_assert_ptr_null(strstr(s, "@font-face"));
    free(s);
}

/* rc_plot_runs with PATH set to `path` (the converter is looked up there); stdout's notes go to
 * *notes (caller frees). */
static int plot_with_path(const char *const *dirs, int n, const char *out, const char *path,
                          char **notes, rc_err *e) {
    ck_assert_int_eq(setenv("PATH", path, 1), 0);
    FILE *msg = tmpfile();
    ck_assert_ptr_nonnull(msg);
    rc_err_clear(e);
    int r = rc_plot_runs(dirs, n, out, msg, e);
    long len = ftell(msg);
    rewind(msg);
    *notes = calloc((size_t)len + 1, 1);
    ck_assert_uint_eq(fread(*notes, 1, (size_t)len, msg), (size_t)len);
    fclose(msg);
    return r;
}

/* ---- tests ----------------------------------------------------------------------------------- */

START_TEST(two_runs_make_a_well_formed_svg_with_their_numbers) {
    char dir[512], a[600], b[600], out[700], *notes;
    test_tmpdir(dir, sizeof dir, "plot");
    make_dir(a, sizeof a, dir, "run-a");
    make_dir(b, sizeof b, dir, "run-b");
    write_run_a(a);
    write_run_b(b);
    snprintf(out, sizeof out, "%s/both.svg", dir);
    const char *dirs[] = {a, b};
    rc_err e;
    ck_assert_msg(plot_with_path(dirs, 2, out, "/nonexistent", &notes, &e) == 0, "%s", e.msg);
    ck_assert_msg(strstr(notes, "wrote ") && strstr(notes, out), "notes: %s", notes);
    ck_assert_msg(strstr(notes, "no SVG converter found"), "notes: %s", notes);
    free(notes);
    ck_assert(!temp_file_beside(out));

    doc d;
    load_svg(out, &d);
    /* the runs by directory name */
    ck_assert(has_text(&d, "run-a"));
    ck_assert(has_text(&d, "run-b"));
    /* curves: one point per epoch; epoch 2's missing evaluation is stepped over */
    ck_assert_int_eq(polyline_points(&d, "0", "train_loss"), 3);
    ck_assert_int_eq(polyline_points(&d, "1", "train_loss"), 2);
    ck_assert_int_eq(polyline_points(&d, "0", "train_acc"), 3);
    ck_assert_int_eq(polyline_points(&d, "0", "clean_acc"), 2);
    ck_assert_int_eq(polyline_points(&d, "0", "lr"), 3);
    ck_assert_int_eq(polyline_points(&d, "0", "gp_cos"), 3);
    ck_assert_int_eq(polyline_points(&d, "0", "union_acc"), 2);
    ck_assert_int_eq(polyline_points(&d, "0", "linf_acc"), 2);
    ck_assert_int_eq(count(&d, "polyline", "1", "data-series", "union_acc"), 0);
    ck_assert(text_contains(&d, "n=200"));
    /* bars: 5 groups for each run, with the values of eval-full.json, 2 decimals */
    ck_assert_int_eq(count(&d, "rect", "0", "data-group", "union"), 1);
    ck_assert_int_eq(count(&d, "rect", "1", "data-group", "linf"), 1);
    const char *values[] = {"76.85", "51.10", "49.00", "60.25", "45.50", "65.43", "43.21"};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++)
        ck_assert_msg(has_text(&d, values[i]), "bar value %s missing", values[i]);
    ck_assert(!has_text(&d, "99.99")); /* eval-fast.json is not used where a full one exists */
    ck_assert(text_contains(&d, "eval-full.json (full protocol, n=1000)"));
    ck_assert(text_contains(&d, "linf \xce\xb5=0.1"));
    doc_free(&d);
}
END_TEST

START_TEST(one_epoch_nan_and_odd_names) {
    char dir[512], one[600], nan_run[600], out[700], *notes;
    test_tmpdir(dir, sizeof dir, "plot");
    /* a name that needs escaping */
    make_dir(one, sizeof one, dir, "a&b<c>\"d'");
    make_dir(nan_run, sizeof nan_run, dir, "diverged");
    write_file(one, "metrics.jsonl",
               "{\"epoch\": 1, \"train_loss\": 0.5, \"train_acc\": 0.8, \"clean_acc\": 0.85, "
               "\"lr\": 0.05}\n");
    /* printf's nan and -inf, and Python's NaN */
    write_file(nan_run, "metrics.jsonl",
               "{\"epoch\": 1, \"train_loss\": 2.0, \"train_acc\": 0.1, \"lr\": 0.05}\n"
               "{\"epoch\": 2, \"train_loss\": nan, \"train_acc\": -nan, \"lr\": 0.05}\n"
               "{\"epoch\": 3, \"train_loss\": -inf, \"train_acc\": NaN, \"lr\": 0.05}\n"
               "{\"epoch\": 4, \"train_loss\": 1.5, \"train_acc\": 0.1, \"lr\": 0.05}\n"
               "{\"epoch\": 5, \"train_loss\": 1.4, \"train_acc\": 0.1, \"lr\": 0.05}\n");
    const char *dirs[] = {one, nan_run};
    snprintf(out, sizeof out, "%s/p.svg", dir);
    rc_err e;
    ck_assert_msg(plot_with_path(dirs, 2, out, "/nonexistent", &notes, &e) == 0, "%s", e.msg);
    free(notes);
    doc d;
    load_svg(out, &d);
    ck_assert(text_contains(&d, "a&amp;b&lt;c&gt;&quot;d&apos;"));
    /* one epoch: no line, a marker */
    ck_assert_int_eq(count(&d, "polyline", "0", NULL, NULL), 0);
    ck_assert_int_eq(count(&d, "circle", "0", "data-series", "train_loss"), 1);
    /* the non-finite losses break the line: epoch 1 alone, then 4-5 */
    ck_assert_int_eq(polyline_points(&d, "1", "train_loss"), 2);
    ck_assert_int_eq(count(&d, "circle", "1", "data-series", "train_loss"), 3);
    ck_assert(text_contains(&d, "2 non-finite values (NaN, inf) not drawn"));
    /* no evaluation anywhere: the panels say so */
    ck_assert(text_contains(&d, "no run has eval-standard.json, eval-full.json or eval-fast.json"));
    ck_assert(text_contains(&d, "no in-training evaluation"));
    ck_assert_int_eq(count(&d, "rect", NULL, "data-group", "clean"), 0);
    doc_free(&d);
}
END_TEST

START_TEST(one_run_defaults_to_plot_svg_in_its_directory) {
    char dir[512], a[600], out[700], *notes;
    test_tmpdir(dir, sizeof dir, "plot");
    make_dir(a, sizeof a, dir, "run-a");
    write_run_a(a);
    /* appended trainings: only the last is drawn */
    char *text = NULL;
    {
        char path[700];
        snprintf(path, sizeof path, "%s/metrics.jsonl", a);
        text = read_file(path, NULL);
    }
    write_file(a, "metrics.jsonl", "%s%s", text, text);
    free(text);
    char with_slash[700];
    snprintf(with_slash, sizeof with_slash, "%s/", a);
    const char *dirs[] = {with_slash};
    rc_err e;
    ck_assert_msg(plot_with_path(dirs, 1, NULL, "/nonexistent", &notes, &e) == 0, "%s", e.msg);
    snprintf(out, sizeof out, "%s/plot.svg", a);
    ck_assert_msg(strstr(notes, out) != NULL, "notes: %s", notes);
    ck_assert_msg(strstr(notes, "holds 2 trainings appended") && strstr(notes, "from line 5"),
                  "notes: %s", notes);
    free(notes);
    doc d;
    load_svg(out, &d);
    ck_assert_int_eq(polyline_points(&d, "0", "train_loss"), 3);
    ck_assert(has_text(&d, "run-a"));
    doc_free(&d);
}
END_TEST

/* The plot fails, naming the file and place, and leaves no output behind. */
static void expect_plot_fails(const char *run, const char *want1, const char *want2) {
    char out[700], *notes;
    snprintf(out, sizeof out, "%s.svg", run);
    const char *dirs[] = {run};
    rc_err e;
    ck_assert_int_eq(plot_with_path(dirs, 1, out, "/nonexistent", &notes, &e), -1);
    free(notes);
    ck_assert_msg(strstr(e.msg, want1) != NULL, "wanted \"%s\" in: %s", want1, e.msg);
    ck_assert_msg(strstr(e.msg, want2) != NULL, "wanted \"%s\" in: %s", want2, e.msg);
    ck_assert(!file_exists(out));
}

START_TEST(malformed_inputs_name_file_and_line) {
    char dir[512], run[600], path[700];
    test_tmpdir(dir, sizeof dir, "plot");
    make_dir(run, sizeof run, dir, "bad");
    snprintf(path, sizeof path, "%s/metrics.jsonl:3:28: train_loss:", run);
    static const struct {
        const char *line3, *want;
    } cases[] = {
        {"{\"epoch\": 3, \"train_loss\": 1.0,}", "expected a string, found '}'"},
        {"{\"epoch\": 3, \"train_loss\": 01.0}", "train_loss: number with a leading zero"},
        {"{\"epoch\": 3, \"train_loss\": \"1\"}", "train_loss: expected a number, found '\"'"},
        {"{\"epoch\": 3, \"train_loss\": 1e999}", "train_loss: number out of range"},
        {"{\"epoch\": 3, \"train_loss\": 1.}", "expected a digit after the decimal point"},
        {"{\"epoch\": 3, \"train_loss\": 1.0", "expected ',' or '}', found the end of the line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(run, "metrics.jsonl",
                   "{\"epoch\": 1, \"train_loss\": 2.0}\n{\"epoch\": 2, \"train_loss\": 1.5}\n%s\n",
                   cases[i].line3);
        char where[720];
        snprintf(where, sizeof where, "%s/metrics.jsonl:3:", run);
        expect_plot_fails(run, where, cases[i].want);
    }
    /* the column points at the fault */
    write_file(run, "metrics.jsonl", "{\"epoch\": 1}\n\n{\"epoch\": 2, \"train_loss\": x}\n");
    expect_plot_fails(run, path, "expected a number, found 'x'");
    write_file(run, "metrics.jsonl", "{\"train_loss\": 1.0}\n");
    expect_plot_fails(run, "metrics.jsonl:1:1: the record has no \"epoch\"", "");
    write_file(run, "metrics.jsonl", "{\"epoch\": 1, \"epoch\": 2}\n");
    expect_plot_fails(run, "metrics.jsonl:1:14: field \"epoch\" given twice", "");
    write_file(run, "metrics.jsonl", "{\"epoch\": 0}\n");
    expect_plot_fails(run, "metrics.jsonl:1:11: epoch: 0 is not from 1", "");
    write_file(run, "metrics.jsonl", "{\"epoch\": 1} {\"epoch\": 2}\n");
    expect_plot_fails(run, "metrics.jsonl:1:14: expected the end of the line", "");
    /* the eval report: positions are line:column of the file */
    write_file(run, "metrics.jsonl", "{\"epoch\": 1}\n");
    write_file(run, "eval-fast.json", "{\n  \"clean_acc\": 0.5,\n  \"norms\": [3]\n}\n");
    expect_plot_fails(run, "eval-fast.json:3:13:", "expected '{', found '3'");
    /* directories */
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-run", dir);
    expect_plot_fails(missing, "run directory ", "no-such-run: No such file or directory");
    char empty[600];
    make_dir(empty, sizeof empty, dir, "empty");
    expect_plot_fails(empty, "empty holds no metrics.jsonl, eval-standard.json, eval-full.json or "
                             "eval-fast.json", "");
}
END_TEST

/* A stand-in converter: a shell script in its own directory, which becomes PATH. */
static void fake_converter(const char *bin, const char *body) {
    ck_assert_int_eq(mkdir(bin, 0755), 0);
    write_file(bin, "rsvg-convert", "#!/bin/sh\n%s\n", body);
    char path[700];
    snprintf(path, sizeof path, "%s/rsvg-convert", bin);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

START_TEST(png_through_the_converter_and_its_failure) {
    char dir[512], a[600], bin[600], out[700], png[700], *notes;
    test_tmpdir(dir, sizeof dir, "plot");
    make_dir(a, sizeof a, dir, "run-a");
    write_run_a(a);
    const char *dirs[] = {a};
    snprintf(out, sizeof out, "%s/p.svg", dir);
    snprintf(png, sizeof png, "%s/p.png", dir);
    rc_err e;
    /* the converter gets the SVG after "--" and writes the PNG to stdout */
    snprintf(bin, sizeof bin, "%s/ok", dir);
    fake_converter(bin, "[ \"$1 $2 $3\" = '--format png --' ] || exit 9\n"
                        "read -r line <\"$4\"; printf 'PNG:%.5s' \"$line\"");
    ck_assert_msg(plot_with_path(dirs, 1, out, bin, &notes, &e) == 0, "%s", e.msg);
    ck_assert_msg(strstr(notes, png) != NULL, "notes: %s", notes);
    free(notes);
    char *got = read_file(png, NULL);
    ck_assert_str_eq(got, "PNG:<?xml");
    free(got);
    /* a failing converter: an error naming it and the files; the SVG stays, no PNG */
    ck_assert_int_eq(unlink(png), 0);
    snprintf(bin, sizeof bin, "%s/fails", dir);
    fake_converter(bin, "echo partial; exit 3");
    ck_assert_int_eq(plot_with_path(dirs, 1, out, bin, &notes, &e), -1);
    free(notes);
    ck_assert_msg(strstr(e.msg, "rsvg-convert failed on") && strstr(e.msg, "exit status 3") &&
                      strstr(e.msg, png),
                  "%s", e.msg);
    ck_assert(file_exists(out));
    ck_assert(!file_exists(png));
    ck_assert(!temp_file_beside(png));
}
END_TEST

/* The real converter where it is installed: the SVG renders. */
START_TEST(rsvg_convert_renders_the_svg) {
    const char *path = getenv("PATH");
    char probe[1200] = "";
    int found = 0;
    for (const char *p = path ? path : ""; *p && !found;) {
        size_t len = strcspn(p, ":");
        snprintf(probe, sizeof probe, "%.*s/rsvg-convert", (int)len, p);
        found = access(probe, X_OK) == 0;
        p += len + (p[len] == ':');
    }
    if (!found) {
        printf("note: rsvg-convert (librsvg2-bin) is not on PATH: the rendering test is skipped\n");
        return;
    }
    char dir[512], a[600], b[600], out[700], png[700], *notes;
    test_tmpdir(dir, sizeof dir, "plot");
    make_dir(a, sizeof a, dir, "run-a");
    make_dir(b, sizeof b, dir, "run-b");
    write_run_a(a);
    write_run_b(b);
    const char *dirs[] = {a, b};
    snprintf(out, sizeof out, "%s/p.svg", dir);
    snprintf(png, sizeof png, "%s/p.png", dir);
    rc_err e;
    ck_assert_msg(plot_with_path(dirs, 2, out, path, &notes, &e) == 0, "%s", e.msg);
    free(notes);
    char *got = read_file(png, NULL);
    ck_assert_int_eq(memcmp(got, "\x89PNG\r\n\x1a\n", 8), 0);
    free(got);
}
END_TEST

/* ---- the JSON writer ------------------------------------------------------------------------- */

/* Quotes, backslash, every kind of control character, DEL and multi-byte UTF-8. */
static const char tricky[] = "say \"hi\" \\ back\\slash\x01\x02\x1f\b\f\n\r\t\x7f end "
                             "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";

/* The value of the top-level string field `key` of the JSON object in text, read strictly. */
static char *string_field(const char *text, const char *key) {
    rc_err e;
    rc_json j;
    rc_json_init(&j, text, strlen(text), "text", &e);
    char *found = NULL;
    ck_assert_msg(rc_json_expect(&j, '{') == 0, "%s", e.msg);
    int more = 1;
    while (more == 1) {
        char *k;
        ck_assert_msg(rc_json_string(&j, &k) == 0, "%s", e.msg);
        ck_assert_msg(rc_json_expect(&j, ':') == 0, "%s", e.msg);
        if (!strcmp(k, key))
            ck_assert_msg(rc_json_string(&j, &found) == 0, "%s", e.msg);
        else
            ck_assert_msg(rc_json_skip_value(&j) == 0, "%s", e.msg);
        free(k);
        more = rc_json_more(&j, '}');
        ck_assert_msg(more >= 0, "%s", e.msg);
    }
    rc_json_skip_ws(&j);
    ck_assert(j.p == j.end);
    ck_assert_ptr_nonnull(found);
    return found;
}

/* The writer escapes per RFC 8259 (controls as \b \f \n \r \t or \u00xx), so the strict reader
 * gives back every byte. */
START_TEST(json_strings_round_trip_through_writer_and_reader) {
    rc_json_buf b = {0};
    rc_json_put(&b, "{\"a\": 1, ");
    rc_json_put_string(&b, "s");
    rc_json_put(&b, ": ");
    rc_json_put_string(&b, tricky);
    rc_json_putf(&b, ", \"x\": %.6f, \"i\": ", 0.5);
    rc_json_put_int(&b, -42);
    rc_json_put(&b, "}");
    ck_assert(!b.oom);
    ck_assert_msg(strstr(b.p, "\\\"hi\\\" \\\\ back\\\\slash\\u0001\\u0002\\u001f\\b\\f\\n\\r\\t"),
                  "%s", b.p);
    for (size_t i = 0; i < b.len; i++) /* no raw control character is left */
        ck_assert_int_ge((unsigned char)b.p[i], 0x20);
    ck_assert(strstr(b.p, ", \"x\": 0.500000, \"i\": -42}"));
    char *got = string_field(b.p, "s");
    ck_assert_str_eq(got, tricky);
    free(got);
    rc_json_buf_free(&b);
}
END_TEST

/* The eval report keeps a checkpoint path with such characters whole (the report's writer once
 * dropped control characters), and plot still reads the report. */
START_TEST(eval_report_keeps_an_odd_checkpoint_path) {
    char dir[512], path[700];
    test_tmpdir(dir, sizeof dir, "plot");
    write_run_a(dir);
    snprintf(path, sizeof path, "%s/eval-full.json", dir);
    unsigned char clean[3] = {1, 0, 1}, robust[3] = {1, 0, 0};
    rc_eval_report r = {.protocol = RC_PROTOCOL_FULL, .n = 3, .n_norms = 1,
                        .norms = {RC_NORM_LINF}, .eps = {8.0 / 255}, .clean = clean,
                        .robust = {robust}, .clean_acc = 2.0 / 3, .acc = {1.0 / 3},
                        .union_acc = 1.0 / 3, .seconds = 1.5, .norm_seconds = {1.25}, .seed = 7};
    rc_err e;
    ck_assert_msg(rc_eval_write_json(&r, tricky, path, &e) == 0, "%s", e.msg);
    ck_assert(!temp_file_beside(path));
    char *text = read_file(path, NULL);
    char *got = string_field(text, "checkpoint");
    ck_assert_str_eq(got, tricky);
    free(got);
    got = string_field(text, "protocol");
    ck_assert_str_eq(got, "full");
    free(got);
    free(text);
    rc_run_log log;
    ck_assert_msg(rc_run_log_load(&log, dir, &e) == 0, "%s", e.msg);
    ck_assert(log.eval.present && log.eval.n == 3 && log.eval.n_norms == 1);
    ck_assert_str_eq(log.eval.norms[0].name, "linf");
    ck_assert_double_eq_tol(log.eval.union_acc, 1.0 / 3, 1e-6);
    rc_run_log_free(&log);
}
END_TEST

/* A standard-protocol report carries each attack's count, and plot prefers it to the run's
 * eval-full.json. */
START_TEST(standard_report_counts_attacks_and_is_preferred) {
    char dir[512], path[700];
    test_tmpdir(dir, sizeof dir, "plot");
    write_run_a(dir); /* with eval-full.json, union 45.50 */
    snprintf(path, sizeof path, "%s/eval-standard.json", dir);
    unsigned char clean[4] = {1, 1, 1, 0}, robust[4] = {1, 0, 0, 0};
    rc_eval_report r = {.protocol = RC_PROTOCOL_STANDARD, .n = 4, .n_norms = 1,
                        .norms = {RC_NORM_L2}, .eps = {0.5}, .clean = clean, .robust = {robust},
                        .clean_acc = 0.75, .acc = {0.25}, .union_acc = 0.25, .seconds = 2,
                        .broken_by = {{1, 0, 0, 1}}, .attack_seconds = {{0.5, 0.25, 1, 0.25}}};
    rc_err e;
    ck_assert_msg(rc_eval_write_json(&r, "m.safetensors", path, &e) == 0, "%s", e.msg);
    char *text = read_file(path, NULL);
    ck_assert_msg(strstr(text, "\"attacks\": {\"apgd-ce\": {\"broken\": 1, \"seconds\": 0.500}, "
                               "\"apgd-t\": {\"broken\": 0, \"seconds\": 0.250}, \"fab-t\": "
                               "{\"broken\": 0, \"seconds\": 1.000}, \"square\": {\"broken\": 1, "
                               "\"seconds\": 0.250}}"),
                  "%s", text);
    free(text);
    rc_run_log log;
    ck_assert_msg(rc_run_log_load(&log, dir, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(log.eval.file, "eval-standard.json");
    ck_assert_str_eq(log.eval.protocol, "standard");
    ck_assert_double_eq_tol(log.eval.union_acc, 0.25, 1e-6);
    rc_run_log_free(&log);
}
END_TEST

int main(void) {
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, two_runs_make_a_well_formed_svg_with_their_numbers);
    tcase_add_test(tc, one_epoch_nan_and_odd_names);
    tcase_add_test(tc, one_run_defaults_to_plot_svg_in_its_directory);
    tcase_add_test(tc, malformed_inputs_name_file_and_line);
    tcase_add_test(tc, png_through_the_converter_and_its_failure);
    tcase_add_test(tc, rsvg_convert_renders_the_svg);
    tcase_add_test(tc, json_strings_round_trip_through_writer_and_reader);
    tcase_add_test(tc, eval_report_keeps_an_odd_checkpoint_path);
    tcase_add_test(tc, standard_report_counts_attacks_and_is_preferred);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
