/* `ramp-cl plot` (see ramp/plot.h): page layout, the SVG drawing and the PNG conversion.
 *
 * The page is 1000 px wide: a title and one legend row per run, six curve panels in two columns
 * (x: epoch), then the bars of the final evaluations across the page. Every drawn element of a
 * run carries data-run (its index) and data-series or data-group, so that tests and scripts can
 * find them. Fonts are the viewer's generic sans-serif: the file refers to nothing outside it. */
#include "ramp/plot.h"
#include "ramp/files.h"
#include "ramp/json.h"
#include "ramp/runlog.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define WIDTH 1000
#define MARGIN 20
#define PANEL_W ((WIDTH - 3 * MARGIN) / 2)
#define PANEL_H 250
#define PANEL_GAP 16
#define BARS_H 340
#define TITLE_H 48
#define LEGEND_ROW 18
/* the plot area inside a panel: room for the title and key above, tick labels left and below */
#define PAD_LEFT 58
#define PAD_RIGHT 14
#define PAD_TOP 46
#define PAD_BOTTOM 38
/* Every point of a series this short gets a marker; longer ones mark isolated points only. */
#define MARKERS_MAX 40

/* Tableau 10: distinct, and readable on white; runs beyond ten reuse them. */
static const char *const COLOURS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static const char *colour(int run) {
    return COLOURS[run % (int)(sizeof COLOURS / sizeof *COLOURS)];
}

/* Marker shapes tell a panel's series apart where there is no line to dash: one epoch. */
typedef enum marker { DOT, RING, SQUARE, DIAMOND } marker;

typedef struct series_def {
    int field;
    const char *label, *dash; /* dash: an SVG stroke-dasharray, NULL for solid */
    double width;
    marker mark;
} series_def;

typedef struct panel_def {
    const char *title;
    double scale; /* values are drawn times this: 100 for accuracies */
    int n_series;
    series_def series[RC_MAX_THREATS + 1];
    const char *empty; /* said where no run has a finite value */
} panel_def;

static const panel_def PANELS[6] = {
    {"Training loss", 1, 1, {{RC_LOG_TRAIN_LOSS, "train", NULL, 1.8, DOT}}, "no training loss"},
    {"Accuracy (%)",
     100,
     2,
     {{RC_LOG_TRAIN_ACC, "train", NULL, 1.8, DOT},
      {RC_LOG_CLEAN_ACC, "clean test", "6 4", 1.8, RING}},
     "no accuracy"},
    {NULL, /* the title says how many points were evaluated */
     100,
     4,
     {{RC_LOG_NORM_ACC + RC_NORM_LINF, "linf", NULL, 1.6, DOT},
      {RC_LOG_NORM_ACC + RC_NORM_L2, "l2", "6 3", 1.6, RING},
      {RC_LOG_NORM_ACC + RC_NORM_L1, "l1", "2 3", 1.6, SQUARE},
      {RC_LOG_UNION_ACC, "union", "9 3 2 3", 2.6, DIAMOND}},
     "no in-training evaluation (eval.every: 0, or no threat models)"},
    {"Learning rate", 1, 1, {{RC_LOG_LR, "lr", NULL, 1.8, DOT}}, "no learning rate"},
    {"Gradient projection: mean cosine over tensors",
     1,
     1,
     {{RC_LOG_GP_COS_MEAN, "gp_cos", NULL, 1.8, DOT}},
     "no gradient projection (method ramp with ramp.gp only)"},
    {"Seconds per epoch",
     1,
     1,
     {{RC_LOG_EPOCH_TIME, "epoch_time_s", NULL, 1.8, DOT}},
     "no timings"},
};

/* ---- SVG text -------------------------------------------------------------------------------- */

/* s as XML character data: markup characters escaped; control characters, and every non-ASCII
 * byte where s is not valid UTF-8 (a path can be any bytes), become '?'. */
static void put_escaped(FILE *f, const char *s) {
    int utf8 = rc_json_utf8_valid(s);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*p < 0x20 || (*p >= 0x80 && !utf8) ? '?' : *p, f);
        }
    }
}

/* <text x y ATTRS>s</text> */
static void text(FILE *f, double x, double y, const char *attrs, const char *s) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attrs);
    put_escaped(f, s);
    fputs("</text>\n", f);
}

__attribute__((format(printf, 5, 6))) static void textf(FILE *f, double x, double y,
                                                        const char *attrs, const char *fmt, ...) {
    char s[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    text(f, x, y, attrs, s);
}

/* Roughly how wide s is in a sans-serif font of this size: for laying out keys, not exact. */
static double text_width(const char *s, double size) {
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) chars += (*p & 0xc0) != 0x80;
    return 0.58 * size * (double)chars;
}

/* ---- axes ------------------------------------------------------------------------------------ */

typedef struct axis {
    double lo, hi, step;
} axis;

/* 1, 2 or 5 times a power of ten, near `raw`. */
static double nice_step(double raw) {
    double mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

/* An axis from lo to hi widened to whole steps, about `ticks` of them; a single value gets a
 * range around it. */
static axis nice_axis(double lo, double hi, int ticks) {
    if (!(hi > lo)) {
        double pad = lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= pad;
        hi += pad;
    }
    axis a;
    a.step = nice_step((hi - lo) / ticks);
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    return a;
}

static void tick_label(char *out, size_t cap, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0; /* no "-0" */
    if (step < 1e-4 || step >= 1e6) {
        snprintf(out, cap, "%.3g", v);
        return;
    }
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(out, cap, "%.*f", decimals, v);
}

/* The plot area of a panel and the map from data to it. */
typedef struct frame {
    double left, right, top, bottom; /* pixels */
    axis x, y;
} frame;

/* A grey panel with a message in place of a plot that has nothing to show. */
static void empty_panel(FILE *f, const frame *fr, const char *msg) {
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f7f7f7\" "
            "stroke=\"#bbb\"/>\n",
            fr->left, fr->top, fr->right - fr->left, fr->bottom - fr->top);
    text(f, (fr->left + fr->right) / 2, (fr->top + fr->bottom) / 2,
         "font-size=\"11\" fill=\"#666\" text-anchor=\"middle\"", msg);
}

/* Points keep 6 px off the frame's sides so that markers at the first and last epoch show. */
static double px(const frame *fr, double x) {
    return fr->left + 6 + (x - fr->x.lo) / (fr->x.hi - fr->x.lo) * (fr->right - fr->left - 12);
}

static double py(const frame *fr, double y) {
    return fr->bottom - (y - fr->y.lo) / (fr->y.hi - fr->y.lo) * (fr->bottom - fr->top);
}

static void draw_axes(FILE *f, const frame *fr, const char *x_label) {
    char label[64];
    for (int k = 0;; k++) {
        double v = fr->y.lo + k * fr->y.step;
        if (v > fr->y.hi + fr->y.step * 1e-6) break;
        double y = py(fr, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
                fr->left, y, fr->right, y);
        tick_label(label, sizeof label, v, fr->y.step);
        text(f, fr->left - 5, y + 3.5, "font-size=\"10\" text-anchor=\"end\"", label);
    }
    /* integer x ticks (epochs), only where they fall inside */
    double step = fr->x.step < 1 ? 1 : fr->x.step;
    for (double v = ceil(fr->x.lo / step - 1e-9) * step; v <= fr->x.hi + 1e-9; v += step) {
        double x = px(fr, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", x,
                fr->bottom, x, fr->bottom + 4);
        tick_label(label, sizeof label, v, step);
        text(f, x, fr->bottom + 15, "font-size=\"10\" text-anchor=\"middle\"", label);
    }
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#000\"/>\n",
            fr->left, fr->top, fr->right - fr->left, fr->bottom - fr->top);
    text(f, (fr->left + fr->right) / 2, fr->bottom + 30, "font-size=\"11\" text-anchor=\"middle\"",
         x_label);
}

/* ---- curve panels ---------------------------------------------------------------------------- */

typedef struct page {
    const rc_run_log *runs;
    const char *const *names; /* legend names */
    int n;
    int min_epoch, max_epoch; /* over every run; max 0 where no run has an epoch */
} page;

/* Finite values of a panel (scaled) for the y range; non-finite ones are counted. */
static int panel_range(const page *pg, const panel_def *pd, double *lo, double *hi,
                       int *nonfinite) {
    int any = 0;
    *nonfinite = 0;
    for (int r = 0; r < pg->n; r++)
        for (size_t i = 0; i < pg->runs[r].n_epochs; i++)
            for (int s = 0; s < pd->n_series; s++) {
                const rc_log_epoch *ep = &pg->runs[r].epochs[i];
                int fld = pd->series[s].field;
                if (!ep->has[fld]) continue;
                double v = ep->value[fld] * pd->scale;
                if (!isfinite(v)) {
                    (*nonfinite)++;
                    continue;
                }
                *lo = any && *lo < v ? *lo : v;
                *hi = any && *hi > v ? *hi : v;
                any = 1;
            }
    return any;
}

static void series_attrs(char *out, size_t cap, int run, const series_def *sd) {
    snprintf(out, cap, "data-run=\"%d\" data-series=\"%s\"", run, rc_log_field_key(sd->field));
}

/* A marker of size r (about its radius) at x, y; ATTRS go first. */
static void draw_marker(FILE *f, const char *attrs, marker mark, double x, double y, double r,
                        const char *fill) {
    switch (mark) {
    case DOT:
        fprintf(f, "<circle %s cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", attrs, x, y, r,
                fill);
        break;
    case RING:
        fprintf(f,
                "<circle %s cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"#fff\" stroke=\"%s\" "
                "stroke-width=\"1.5\"/>\n",
                attrs, x, y, r, fill);
        break;
    case SQUARE:
        fprintf(f, "<rect %s x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                attrs, x - r, y - r, 2 * r, 2 * r, fill);
        break;
    case DIAMOND:
        r *= 1.3;
        fprintf(f,
                "<polygon %s points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\"/>\n",
                attrs, x, y - r, x + r, y, x, y + r, x - r, y, fill);
        break;
    }
}

/* One run's series: polylines through consecutive finite points (a missing value is stepped
 * over, a non-finite one breaks the line), markers where the series is short or a point stands
 * alone. */
static void draw_series(FILE *f, const frame *fr, const rc_run_log *run, int r,
                        const series_def *sd, double scale) {
    char attrs[96];
    series_attrs(attrs, sizeof attrs, r, sd);
    size_t n = run->n_epochs, n_points = 0;
    for (size_t i = 0; i < n; i++) n_points += run->epochs[i].has[sd->field];
    size_t i = 0;
    while (i < n) {
        /* the next stretch of finite values */
        while (i < n && (!run->epochs[i].has[sd->field] ||
                         !isfinite(run->epochs[i].value[sd->field] * scale)))
            i++;
        size_t begin = i, count = 0;
        while (i < n && (!run->epochs[i].has[sd->field] ||
                         isfinite(run->epochs[i].value[sd->field] * scale))) {
            count += run->epochs[i].has[sd->field];
            i++;
        }
        if (count >= 2) {
            fprintf(f, "<polyline %s fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"", attrs,
                    colour(r), sd->width);
            if (sd->dash) fprintf(f, " stroke-dasharray=\"%s\"", sd->dash);
            fputs(" stroke-linejoin=\"round\" points=\"", f);
            const char *sep = "";
            for (size_t k = begin; k < i; k++) {
                const rc_log_epoch *ep = &run->epochs[k];
                if (!ep->has[sd->field]) continue;
                fprintf(f, "%s%.1f,%.1f", sep, px(fr, ep->epoch),
                        py(fr, ep->value[sd->field] * scale));
                sep = " ";
            }
            fputs("\"/>\n", f);
        }
        if (count == 1 || (count > 1 && n_points <= MARKERS_MAX))
            for (size_t k = begin; k < i; k++) {
                const rc_log_epoch *ep = &run->epochs[k];
                if (!ep->has[sd->field]) continue;
                draw_marker(f, attrs, sd->mark, px(fr, ep->epoch),
                            py(fr, ep->value[sd->field] * scale), count == 1 ? 3.5 : 2.5,
                            colour(r));
            }
    }
}

/* Line samples and labels of a panel's series, left to right from x. */
static void draw_key(FILE *f, double x, double y, const panel_def *pd) {
    for (int s = 0; s < pd->n_series; s++) {
        const series_def *sd = &pd->series[s];
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\" "
                   "stroke-width=\"%.1f\"%s%s%s/>\n",
                x, y - 4, x + 24, y - 4, sd->width, sd->dash ? " stroke-dasharray=\"" : "",
                sd->dash ? sd->dash : "", sd->dash ? "\"" : "");
        draw_marker(f, "", sd->mark, x + 12, y - 4, 3, "#333");
        text(f, x + 30, y, "font-size=\"11\"", sd->label);
        x += 30 + text_width(sd->label, 11) + 14;
    }
}

/* The in-training evaluation's title: how many points, where every record agrees. */
static void eval_panel_title(const page *pg, char *out, size_t cap) {
    double n = -1;
    int same = 1;
    for (int r = 0; r < pg->n; r++)
        for (size_t i = 0; i < pg->runs[r].n_epochs; i++) {
            const rc_log_epoch *ep = &pg->runs[r].epochs[i];
            if (!ep->has[RC_LOG_EVAL_N]) continue;
            if (n >= 0 && ep->value[RC_LOG_EVAL_N] != n) same = 0;
            n = ep->value[RC_LOG_EVAL_N];
        }
    if (n >= 0 && same && isfinite(n))
        snprintf(out, cap, "Robust accuracy during training (%%), fast, n=%.0f", n);
    else
        snprintf(out, cap, "Robust accuracy during training (%%), fast protocol");
}

static void draw_panel(FILE *f, double x0, double y0, const page *pg, const panel_def *pd) {
    char title[128];
    if (pd->title)
        snprintf(title, sizeof title, "%s", pd->title);
    else
        eval_panel_title(pg, title, sizeof title);
    text(f, x0, y0 + 14, "font-size=\"13\" font-weight=\"bold\"", title);
    frame fr = {x0 + PAD_LEFT, x0 + PANEL_W - PAD_RIGHT, y0 + PAD_TOP, y0 + PANEL_H - PAD_BOTTOM,
                {0, 0, 1}, {0, 0, 1}};
    double lo = 0, hi = 0;
    int nonfinite;
    if (!panel_range(pg, pd, &lo, &hi, &nonfinite)) {
        empty_panel(f, &fr, nonfinite ? "only non-finite values (NaN, inf)" : pd->empty);
        return;
    }
    if (pd->n_series > 1) draw_key(f, x0, y0 + 32, pd);
    if (nonfinite)
        textf(f, x0 + PANEL_W, y0 + 32, "font-size=\"11\" fill=\"#c00\" text-anchor=\"end\"",
              "%d non-finite value%s (NaN, inf) not drawn", nonfinite, nonfinite > 1 ? "s" : "");
    fr.y = nice_axis(lo, hi, 5);
    /* epochs: a single one sits in the middle */
    fr.x.lo = pg->min_epoch == pg->max_epoch ? pg->min_epoch - 0.5 : pg->min_epoch;
    fr.x.hi = pg->min_epoch == pg->max_epoch ? pg->max_epoch + 0.5 : pg->max_epoch;
    fr.x.step = nice_step((fr.x.hi - fr.x.lo) / 8);
    draw_axes(f, &fr, "epoch");
    for (int r = 0; r < pg->n; r++)
        for (int s = 0; s < pd->n_series; s++)
            draw_series(f, &fr, &pg->runs[r], r, &pd->series[s], pd->scale);
}

/* ---- final evaluation bars ------------------------------------------------------------------- */

/* A bar group: clean, one per norm name found in any report, union. */
typedef struct bar_group {
    char label[64];
    const char *norm; /* NULL for clean and union */
    int is_union;
} bar_group;

static double group_value(const rc_log_eval *ev, const bar_group *g) {
    if (!g->norm) return g->is_union ? ev->union_acc : ev->clean_acc;
    for (int k = 0; k < ev->n_norms; k++)
        if (!strcmp(ev->norms[k].name, g->norm)) return ev->norms[k].acc;
    return NAN;
}

static int bar_groups(const page *pg, bar_group *g) {
    int n = 0;
    g[n++] = (bar_group){"clean", NULL, 0};
    for (int r = 0; r < pg->n; r++) {
        const rc_log_eval *ev = &pg->runs[r].eval;
        for (int k = 0; ev->present && k < ev->n_norms; k++) {
            int known = 0;
            for (int i = 1; i < n; i++) known |= !strcmp(g[i].norm, ev->norms[k].name);
            if (!known && n < 1 + RC_MAX_THREATS * 4)
                g[n++] = (bar_group){"", ev->norms[k].name, 0};
        }
    }
    /* the label gives eps where every report with the norm agrees on it */
    for (int i = 1; i < n; i++) {
        double eps = NAN;
        int same = 1;
        for (int r = 0; r < pg->n; r++) {
            const rc_log_eval *ev = &pg->runs[r].eval;
            for (int k = 0; ev->present && k < ev->n_norms; k++) {
                if (strcmp(ev->norms[k].name, g[i].norm)) continue;
                if (!isnan(eps) && ev->norms[k].eps != eps) same = 0;
                eps = ev->norms[k].eps;
            }
        }
        if (same && isfinite(eps))
            snprintf(g[i].label, sizeof g[i].label, "%s \xce\xb5=%g", g[i].norm, eps);
        else
            snprintf(g[i].label, sizeof g[i].label, "%s (\xce\xb5 differs)", g[i].norm);
    }
    g[n++] = (bar_group){"union", NULL, 1};
    return n;
}

/* ", eval-full.json (full protocol, n=1000)" where every run's report says the same, else a
 * pointer to the legend. */
static void bars_source(const page *pg, char *out, size_t cap) {
    const rc_log_eval *first = NULL;
    int same = 1;
    for (int r = 0; r < pg->n; r++) {
        const rc_log_eval *ev = &pg->runs[r].eval;
        if (!ev->present) continue;
        if (first && (strcmp(first->file, ev->file) || strcmp(first->protocol, ev->protocol) ||
                      first->n != ev->n))
            same = 0;
        if (!first) first = ev;
    }
    if (!same) {
        snprintf(out, cap, ", eval-standard.json, eval-full.json or eval-fast.json as the legend "
                           "says");
        return;
    }
    char n[32] = "";
    if (first->n) snprintf(n, sizeof n, ", n=%ld", first->n);
    snprintf(out, cap, ", %s (%s protocol%s)", first->file,
             first->protocol[0] ? first->protocol : "unknown", n);
}

static void draw_bars(FILE *f, double x0, double y0, double w, const page *pg) {
    int m = 0; /* runs with a report: one bar each per group, in run order */
    for (int r = 0; r < pg->n; r++) m += pg->runs[r].eval.present;
    char source[160] = "";
    if (m) bars_source(pg, source, sizeof source);
    textf(f, x0, y0 + 14, "font-size=\"13\" font-weight=\"bold\"",
          "Final evaluation: accuracy (%%)%s", source);
    frame fr = {x0 + PAD_LEFT, x0 + w - PAD_RIGHT, y0 + PAD_TOP, y0 + BARS_H - PAD_BOTTOM,
                {0, 1, 1}, {0, 100, 20}};
    if (!m) {
        empty_panel(f, &fr,
                    "no run has eval-standard.json, eval-full.json or eval-fast.json (ramp-cl "
                    "eval writes them)");
        return;
    }
    bar_group groups[2 + RC_MAX_THREATS * 4];
    int n_groups = bar_groups(pg, groups);
    char label[64];
    for (int k = 0; k <= 5; k++) {
        double y = py(&fr, 20.0 * k);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
                fr.left, y, fr.right, y);
        snprintf(label, sizeof label, "%d", 20 * k);
        text(f, fr.left - 5, y + 3.5, "font-size=\"10\" text-anchor=\"end\"", label);
    }
    double gw = (fr.right - fr.left) / n_groups, bw = fmin(56, gw * 0.84 / m);
    int vertical = bw < 34; /* values written upwards where "100.00" would not fit */
    for (int g = 0; g < n_groups; g++) {
        double gx = fr.left + g * gw + (gw - m * bw) / 2;
        for (int r = 0, k = -1; r < pg->n; r++) {
            if (!pg->runs[r].eval.present) continue;
            k++;
            double v = 100 * group_value(&pg->runs[r].eval, &groups[g]);
            double x = gx + k * bw, cx = x + bw / 2;
            if (!isfinite(v)) {
                text(f, cx, fr.bottom - 4, "font-size=\"9\" fill=\"#666\" text-anchor=\"middle\"",
                     "n/a");
                continue;
            }
            double top = py(&fr, fmax(0, fmin(100, v)));
            fprintf(f,
                    "<rect data-run=\"%d\" data-group=\"%s\" x=\"%.1f\" y=\"%.1f\" "
                    "width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                    r, groups[g].norm ? groups[g].norm : groups[g].label, x + 1, top, bw - 2,
                    fr.bottom - top, colour(r));
            snprintf(label, sizeof label, "%.2f", v);
            if (vertical)
                fprintf(f,
                        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" transform=\"rotate(-90 "
                        "%.1f %.1f)\">%s</text>\n",
                        cx + 3.5, top - 4, cx + 3.5, top - 4, label);
            else
                text(f, cx, top - 4, "font-size=\"10\" text-anchor=\"middle\"", label);
        }
        text(f, fr.left + (g + 0.5) * gw, fr.bottom + 16, "font-size=\"11\" text-anchor=\"middle\"",
             groups[g].label);
    }
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#000\"/>\n",
            fr.left, fr.top, fr.right - fr.left, fr.bottom - fr.top);
}

/* ---- the page -------------------------------------------------------------------------------- */

static void legend_row(FILE *f, double y, const page *pg, int r) {
    const rc_run_log *run = &pg->runs[r];
    char what[512];
    size_t len = 0;
    if (!run->has_metrics)
        len += (size_t)snprintf(what, sizeof what, "no metrics.jsonl");
    else if (!run->n_epochs)
        len += (size_t)snprintf(what, sizeof what, "no epoch in metrics.jsonl yet");
    else
        len += (size_t)snprintf(what, sizeof what, "%zu epoch%s", run->n_epochs,
                                run->n_epochs > 1 ? "s" : "");
    if (run->n_runs_in_file > 1 && len < sizeof what)
        len += (size_t)snprintf(what + len, sizeof what - len,
                                " (the last of %d trainings appended to metrics.jsonl, from line "
                                "%ld)",
                                run->n_runs_in_file, run->first_line);
    if (len < sizeof what) {
        char n[32] = "";
        if (run->eval.n) snprintf(n, sizeof n, ", n=%ld", run->eval.n);
        if (run->eval.present)
            snprintf(what + len, sizeof what - len, "; final evaluation %s (%s%s)",
                     run->eval.file, run->eval.protocol[0] ? run->eval.protocol : "protocol ?",
                     n);
        else
            snprintf(what + len, sizeof what - len, "; no final evaluation");
    }
    fprintf(f,
            "<rect data-run=\"%d\" x=\"%d\" y=\"%.1f\" width=\"24\" height=\"10\" "
            "fill=\"%s\"/>\n",
            r, MARGIN, y - 9, colour(r));
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\"><tspan font-weight=\"bold\">",
            MARGIN + 32, y);
    put_escaped(f, pg->names[r]);
    fputs("</tspan> \xe2\x80\x94 ", f);
    put_escaped(f, what);
    fputs("</text>\n", f);
}

static void write_svg(FILE *f, const page *pg) {
    double panels_y = TITLE_H + pg->n * LEGEND_ROW + 8;
    double bars_y = panels_y + 3 * (PANEL_H + PANEL_GAP);
    int height = (int)(bars_y + BARS_H + MARGIN);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
            "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n",
            WIDTH, height, WIDTH, height, WIDTH, height);
    textf(f, MARGIN, 28, "font-size=\"16\" font-weight=\"bold\"", "ramp-cl: %d run%s", pg->n,
          pg->n > 1 ? "s" : "");
    for (int r = 0; r < pg->n; r++) legend_row(f, TITLE_H + (r + 0.7) * LEGEND_ROW, pg, r);
    for (int p = 0; p < (int)(sizeof PANELS / sizeof *PANELS); p++)
        draw_panel(f, MARGIN + (p % 2) * (PANEL_W + MARGIN),
                   panels_y + (double)(p / 2) * (PANEL_H + PANEL_GAP), pg, &PANELS[p]);
    draw_bars(f, MARGIN, bars_y, WIDTH - 2 * MARGIN, pg);
    fputs("</svg>\n", f);
}

/* ---- PNG ------------------------------------------------------------------------------------- */

/* The first executable `name` in PATH into out; 0 if there is none. */
static int find_on_path(const char *name, char *out, size_t cap) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        /* an empty entry is the working directory */
        int n = snprintf(out, cap, "%.*s%s%s", (int)len, p, len ? "/" : "", name);
        if (n > 0 && (size_t)n < cap && access(out, X_OK) == 0) return 1;
        if (!colon) return 0;
        p = colon + 1;
    }
}

/* rsvg-convert SVG > PNG, the PNG written atomically through the converter's stdout. */
static int convert_png(const char *tool, const char *svg, const char *png, rc_err *e) {
    rc_atomic_file a;
    if (rc_atomic_begin(&a, png, e)) return -1;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int err = posix_spawn_file_actions_init(&fa);
    if (!err) {
        err = posix_spawn_file_actions_adddup2(&fa, fileno(a.f), STDOUT_FILENO);
        char *argv[] = {"rsvg-convert", "--format", "png", "--", (char *)svg, NULL};
        if (!err) err = posix_spawn(&pid, tool, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    if (err) {
        rc_atomic_abort(&a);
        return rc_err_set(e, "cannot run %s to write %s: %s", tool, png, strerror(err));
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            rc_atomic_abort(&a);
            return rc_err_set(e, "waiting for %s writing %s: %s", tool, png, strerror(errno));
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc_atomic_abort(&a);
        if (WIFEXITED(status))
            return rc_err_set(e, "%s failed on %s (exit status %d): no %s written", tool, svg,
                              WEXITSTATUS(status), png);
        return rc_err_set(e, "%s was killed by signal %d converting %s: no %s written", tool,
                          WTERMSIG(status), svg, png);
    }
    return rc_atomic_commit(&a, e);
}

/* ---- the command ----------------------------------------------------------------------------- */

/* Legend names: the directory's last component, or the path as given where two runs share it. */
static void run_names(const char *const *dirs, int n, char **names) {
    for (int r = 0; r < n; r++) {
        size_t len = strlen(dirs[r]);
        while (len > 1 && dirs[r][len - 1] == '/') len--;
        size_t base = len;
        while (base > 0 && dirs[r][base - 1] != '/') base--;
        if (base == len) base = 0; /* "/" */
        names[r] = strndup(dirs[r] + base, len - base);
    }
    for (int r = 0; r < n; r++) {
        int shared = 0;
        for (int s = 0; s < n; s++)
            shared |= s != r && names[r] && names[s] && !strcmp(names[r], names[s]);
        if (shared) {
            free(names[r]);
            names[r] = strdup(dirs[r]);
        }
    }
}

static int plot(const char *const *dirs, int n, const char *out, rc_run_log *runs, char **names,
                FILE *msg, rc_err *e) {
    page pg = {runs, (const char *const *)names, n, 0, 0};
    for (int r = 0; r < n; r++) {
        if (rc_run_log_load(&runs[r], dirs[r], e)) return -1;
        if (runs[r].n_runs_in_file > 1)
            fprintf(msg,
                    "ramp-cl plot: note: %s/metrics.jsonl holds %d trainings appended one after "
                    "another; plotting the last, from line %ld\n",
                    dirs[r], runs[r].n_runs_in_file, runs[r].first_line);
        for (size_t i = 0; i < runs[r].n_epochs; i++) {
            int ep = runs[r].epochs[i].epoch;
            if (!pg.max_epoch || ep < pg.min_epoch) pg.min_epoch = ep;
            if (ep > pg.max_epoch) pg.max_epoch = ep;
        }
    }
    run_names(dirs, n, names);
    for (int r = 0; r < n; r++)
        if (!names[r]) return rc_err_set(e, "out of host memory");
    rc_atomic_file a;
    if (rc_atomic_begin(&a, out, e)) return -1;
    write_svg(a.f, &pg);
    if (rc_atomic_commit(&a, e)) return -1;
    fprintf(msg, "ramp-cl plot: wrote %s\n", out);
    char tool[4096];
    if (!find_on_path("rsvg-convert", tool, sizeof tool)) {
        fprintf(msg, "ramp-cl plot: no PNG: no SVG converter found (rsvg-convert, from the "
                     "Debian package librsvg2-bin, is not on PATH)\n");
        return 0;
    }
    char png[1100];
    size_t len = strlen(out);
    int svg_suffix = len >= 4 && !strcmp(out + len - 4, ".svg");
    snprintf(png, sizeof png, "%.*s.png", (int)(svg_suffix ? len - 4 : len), out);
    if (convert_png(tool, out, png, e)) return -1;
    fprintf(msg, "ramp-cl plot: wrote %s\n", png);
    return 0;
}

int rc_plot_runs(const char *const *dirs, int n, const char *out, FILE *msg, rc_err *e) {
    if (n < 1) return rc_err_set(e, "plot needs at least one run directory");
    /* the PNG's name, beside the SVG's, needs room for ".png" */
    size_t max = 1000;
    char dflt[1100];
    if (!out) {
        size_t len = strlen(dirs[0]);
        while (len > 1 && dirs[0][len - 1] == '/') len--;
        if (n == 1 && len > max - 10)
            return rc_err_set(e, "%s: path too long for the plot beside it", dirs[0]);
        if (n == 1)
            snprintf(dflt, sizeof dflt, "%.*s/plot.svg", (int)len, dirs[0]);
        else
            snprintf(dflt, sizeof dflt, "runs-plot.svg");
        out = dflt;
    }
    if (strlen(out) > max) return rc_err_set(e, "%s: output path too long", out);
    rc_run_log *runs = calloc((size_t)n, sizeof *runs);
    char **names = calloc((size_t)n, sizeof *names);
    int status = runs && names ? plot(dirs, n, out, runs, names, msg, e)
                               : rc_err_set(e, "out of host memory");
    for (int r = 0; runs && r < n; r++) rc_run_log_free(&runs[r]);
    for (int r = 0; names && r < n; r++) free(names[r]);
    free(runs);
    free(names);
    return status;
}
