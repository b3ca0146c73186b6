#include "ramp/progress.h"
#include "ramp/clock.h"

#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define LINE_EVERY_S 10.0
#define BAR_EVERY_S 0.25

rc_progress_mode rc_progress_mode_for(FILE *out, int quiet) {
    if (quiet) return RC_PROGRESS_QUIET;
    return isatty(fileno(out)) ? RC_PROGRESS_BAR : RC_PROGRESS_LINES;
}

void rc_progress_begin(rc_progress *p, rc_progress_mode mode, FILE *out, const char *what,
                       const char *unit, uint64_t first, uint64_t total) {
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->out = out;
    snprintf(p->what, sizeof p->what, "%s", what);
    p->unit = unit;
    p->first = first;
    p->total = total;
    p->t0 = p->last = rc_now_s();
}

int rc_progress_due(const rc_progress *p) {
    if (p->mode == RC_PROGRESS_QUIET) return 0;
    return rc_now_s() - p->last >= (p->mode == RC_PROGRESS_BAR ? BAR_EVERY_S : LINE_EVERY_S);
}

static void format_duration(char *s, size_t n, double secs) {
    long t = secs < 0 ? 0 : (long)(secs + 0.5);
    if (t >= 3600) snprintf(s, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(s, n, "%ld:%02ld", t / 60, t % 60);
}

void rc_progress_update(rc_progress *p, uint64_t done, const char *figures) {
    if (!rc_progress_due(p)) return;
    double now = rc_now_s(), dt = now - p->t0;
    double rate = dt > 0 && done > p->first ? (double)(done - p->first) / dt : 0;
    char eta[32] = "?";
    if (rate > 0) format_duration(eta, sizeof eta, (double)(p->total - done) / rate);
    if (p->mode == RC_PROGRESS_BAR) {
        char bar[BAR_WIDTH + 1];
        int fill = p->total ? (int)(BAR_WIDTH * done / p->total) : 0;
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '-';
        bar[BAR_WIDTH] = '\0';
        /* \r and erase-line redraw the bar in place */
        fprintf(p->out, "\r\033[K  %s [%s] %llu/%llu  %s  %.0f %s/s  ETA %s", p->what, bar,
                (unsigned long long)done, (unsigned long long)p->total, figures, rate, p->unit,
                eta);
        p->drawn = 1;
    } else {
        fprintf(p->out, "  %s: %llu/%llu, %s, %.0f %s/s, ETA %s\n", p->what,
                (unsigned long long)done, (unsigned long long)p->total, figures, rate, p->unit,
                eta);
    }
    fflush(p->out);
    p->last = now;
}

void rc_progress_end(rc_progress *p) {
    if (p->drawn) fputs("\r\033[K", p->out);
    fflush(p->out);
    p->drawn = 0;
}
