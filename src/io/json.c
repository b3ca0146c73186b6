/* Strict JSON reading with a cursor (see ramp/json.h). */
#include "ramp/json.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arrays and objects nested deeper than this are refused by rc_json_skip_value. */
#define SKIP_DEPTH_MAX 64

void rc_json_init(rc_json *j, const void *text, size_t len, const char *path, rc_err *e) {
    memset(j, 0, sizeof *j);
    j->start = j->p = text;
    j->end = j->start + len;
    j->path = path;
    j->unit = "byte";
    j->end_name = "the input";
    j->e = e;
}

int rc_json_error(rc_json *j, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    size_t at = (size_t)(j->p - j->start);
    const char *ctx = j->context ? j->context : "", *sep = j->context ? ": " : "";
    if (j->line > 0) {
        long line = j->line;
        const unsigned char *bol = j->start;
        for (const unsigned char *q = j->start; q < j->p; q++)
            if (*q == '\n') line++, bol = q + 1;
        return rc_err_set(j->e, "%s:%ld:%zu: %s%s%s", j->path, line, (size_t)(j->p - bol) + 1,
                          ctx, sep, what);
    }
    return rc_err_set(j->e, "%s: %s%s%s %zu: %s", j->path, ctx, sep, j->unit, at, what);
}

int rc_json_unexpected(rc_json *j, const char *wanted) {
    if (j->p >= j->end)
        return rc_json_error(j, "expected %s, found the end of %s", wanted, j->end_name);
    unsigned c = *j->p;
    if (c > 0x20 && c < 0x7f) return rc_json_error(j, "expected %s, found '%c'", wanted, (int)c);
    return rc_json_error(j, "expected %s, found byte 0x%02x", wanted, c);
}

void rc_json_skip_ws(rc_json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

int rc_json_accept(rc_json *j, char c) {
    rc_json_skip_ws(j);
    if (j->p < j->end && *j->p == (unsigned char)c) {
        j->p++;
        return 1;
    }
    return 0;
}

int rc_json_expect(rc_json *j, char c) {
    char wanted[4] = {'\'', c, '\'', '\0'};
    return rc_json_accept(j, c) ? 0 : rc_json_unexpected(j, wanted);
}

int rc_json_more(rc_json *j, char close) {
    if (rc_json_accept(j, ',')) return 1;
    if (rc_json_accept(j, close)) return 0;
    return rc_json_unexpected(j, close == '}' ? "',' or '}'" : "',' or ']'");
}

/* 1 and consume `word` if it is next and not followed by a letter or digit, else 0. */
static int accept_word(rc_json *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return 0;
    if (j->p + n < j->end && isalnum(j->p[n])) return 0;
    j->p += n;
    return 1;
}

int rc_json_null(rc_json *j) {
    rc_json_skip_ws(j);
    return accept_word(j, "null");
}

/* ---- strings --------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (not past end), or 0 if there is none: no
 * overlong forms, surrogates or code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return n;
}

int rc_json_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        size_t k = utf8_seq(p, end);
        if (!k) return 0;
        p += k;
    }
    return 1;
}

static int hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(unsigned cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A \uXXXX escape (a surrogate pair takes two) at j->p, before the closing quote q. */
static int parse_u_escape(rc_json *j, const unsigned char *q, unsigned *cp) {
    if (q - j->p < 6 || hex4(j->p + 2, cp) != 0) return rc_json_error(j, "invalid \\u escape");
    if (*cp >= 0xdc00 && *cp <= 0xdfff) return rc_json_error(j, "unpaired UTF-16 surrogate");
    if (*cp >= 0xd800 && *cp <= 0xdbff) {
        unsigned lo;
        if (q - j->p < 12 || j->p[6] != '\\' || j->p[7] != 'u' || hex4(j->p + 8, &lo) != 0 ||
            lo < 0xdc00 || lo > 0xdfff)
            return rc_json_error(j, "unpaired UTF-16 surrogate");
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
        j->p += 6;
    }
    /* Strings become C strings. */
    if (*cp == 0) return rc_json_error(j, "\\u0000 is not allowed");
    j->p += 6;
    return 0;
}

/* The character a one-letter escape (\n) stands for, or -1. */
static int simple_escape(unsigned c) {
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '/': return '/';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return -1;
    }
}

int rc_json_string(rc_json *j, char **out) {
    rc_json_skip_ws(j);
    if (j->p >= j->end || *j->p != '"') return rc_json_unexpected(j, "a string");
    /* Find the closing quote first: the unescaped text is never longer than the escaped one. */
    const unsigned char *q = j->p + 1;
    while (q < j->end && *q != '"') q += *q == '\\' && q + 1 < j->end ? 2 : 1;
    if (q >= j->end) return rc_json_error(j, "unterminated string");
    char *s = malloc((size_t)(q - j->p));
    if (!s) return rc_json_error(j, "out of host memory");
    size_t n = 0;
    j->p++;
    while (j->p < q) {
        unsigned c = *j->p;
        if (c < 0x20) {
            free(s);
            return rc_json_error(j, "control character 0x%02x in a string", c);
        }
        if (c != '\\') {
            size_t k = utf8_seq(j->p, q);
            if (!k) {
                free(s);
                return rc_json_error(j, "invalid UTF-8");
            }
            memcpy(s + n, j->p, k);
            n += k;
            j->p += k;
            continue;
        }
        /* The scan above stepped over the byte after every backslash, so it is before q. */
        int esc = simple_escape(j->p[1]);
        if (esc >= 0) {
            s[n++] = (char)esc;
            j->p += 2;
        } else if (j->p[1] == 'u') {
            unsigned cp;
            if (parse_u_escape(j, q, &cp) != 0) {
                free(s);
                return -1;
            }
            n += utf8_put(cp, s + n);
        } else {
            free(s);
            return rc_json_error(j, "invalid escape in a string");
        }
    }
    s[n] = '\0';
    j->p = q + 1;
    *out = s;
    return 0;
}

/* ---- numbers --------------------------------------------------------------------------------- */

static int is_digit(const rc_json *j, const unsigned char *p) {
    return p < j->end && *p >= '0' && *p <= '9';
}

int rc_json_int(rc_json *j, int64_t *out) {
    rc_json_skip_ws(j);
    const unsigned char *start = j->p;
    int neg = j->p < j->end && *j->p == '-';
    j->p += neg;
    if (!is_digit(j, j->p)) {
        j->p = start;
        return rc_json_unexpected(j, "an integer");
    }
    if (*j->p == '0' && is_digit(j, j->p + 1))
        return rc_json_error(j, "integer with a leading zero");
    int64_t v = 0;
    while (is_digit(j, j->p)) {
        int d = *j->p - '0';
        if (v > (INT64_MAX - d) / 10) {
            j->p = start;
            return rc_json_error(j, "integer out of range");
        }
        v = v * 10 + d;
        j->p++;
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return rc_json_error(j, "only integers are allowed here");
    *out = neg ? -v : v;
    return 0;
}

/* The words printf ("nan", "-inf") and Python's json ("NaN", "-Infinity") write for non-finite
 * numbers: 1 and *out set if one is next, else 0. */
static int accept_nonfinite(rc_json *j, double *out) {
    const unsigned char *start = j->p;
    int neg = j->p < j->end && *j->p == '-';
    j->p += neg || (j->p < j->end && *j->p == '+');
    if (accept_word(j, "nan") || accept_word(j, "NaN")) {
        *out = NAN;
        return 1;
    }
    if (accept_word(j, "inf") || accept_word(j, "Infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 1;
    }
    j->p = start;
    return 0;
}

int rc_json_number(rc_json *j, double *out) {
    rc_json_skip_ws(j);
    if (j->nonfinite && accept_nonfinite(j, out)) return 0;
    const unsigned char *start = j->p, *p = j->p;
    if (p < j->end && *p == '-') p++;
    if (!is_digit(j, p)) return rc_json_unexpected(j, "a number");
    if (*p == '0' && is_digit(j, p + 1)) {
        j->p = p;
        return rc_json_error(j, "number with a leading zero");
    }
    while (is_digit(j, p)) p++;
    if (p < j->end && *p == '.') {
        if (!is_digit(j, ++p)) {
            j->p = p;
            return rc_json_unexpected(j, "a digit after the decimal point");
        }
        while (is_digit(j, p)) p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (!is_digit(j, p)) {
            j->p = p;
            return rc_json_unexpected(j, "a digit in the exponent");
        }
        while (is_digit(j, p)) p++;
    }
    char num[128];
    size_t len = (size_t)(p - start);
    if (len >= sizeof num) return rc_json_error(j, "number longer than %zu characters",
                                                sizeof num - 1);
    memcpy(num, start, len);
    num[len] = '\0';
    errno = 0;
    double v = strtod(num, NULL);
    if (errno == ERANGE && isinf(v)) return rc_json_error(j, "number out of range");
    *out = v;
    j->p = p;
    return 0;
}

/* ---- any value ------------------------------------------------------------------------------- */

static int skip_value(rc_json *j, int depth) {
    rc_json_skip_ws(j);
    if (j->p >= j->end) return rc_json_unexpected(j, "a value");
    unsigned c = *j->p;
    if (c == '"') {
        char *s;
        if (rc_json_string(j, &s)) return -1;
        free(s);
        return 0;
    }
    if (c == '{' || c == '[') {
        if (depth == SKIP_DEPTH_MAX)
            return rc_json_error(j, "nested more than %d deep", SKIP_DEPTH_MAX);
        char close = c == '{' ? '}' : ']';
        j->p++;
        int r = rc_json_accept(j, close) ? 0 : 1;
        while (r == 1) {
            if (c == '{') {
                char *key;
                if (rc_json_string(j, &key)) return -1;
                free(key);
                if (rc_json_expect(j, ':')) return -1;
            }
            if (skip_value(j, depth + 1)) return -1;
            r = rc_json_more(j, close);
        }
        return r;
    }
    if (accept_word(j, "true") || accept_word(j, "false") || accept_word(j, "null")) return 0;
    double v;
    if (c == '-' || (c >= '0' && c <= '9') || j->nonfinite) {
        const unsigned char *at = j->p;
        if (rc_json_number(j, &v) == 0) return 0;
        if (j->p != at) return -1; /* a malformed number: its message stands */
    }
    return rc_json_unexpected(j, "a value");
}

int rc_json_skip_value(rc_json *j) { return skip_value(j, 0); }

/* ---- writing --------------------------------------------------------------------------------- */

void rc_json_put_bytes(rc_json_buf *b, const void *bytes, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, bytes, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void rc_json_put(rc_json_buf *b, const char *text) { rc_json_put_bytes(b, text, strlen(text)); }

void rc_json_put_string(rc_json_buf *b, const char *s) {
    rc_json_put_bytes(b, "\"", 1);
    const unsigned char *run = (const unsigned char *)s, *p = run;
    for (; *p; p++) {
        const char *esc;
        char hex[8];
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (*p >= 0x20) continue;
            snprintf(hex, sizeof hex, "\\u%04x", *p);
            esc = hex;
        }
        rc_json_put_bytes(b, run, (size_t)(p - run)); /* the plain bytes before this one */
        rc_json_put(b, esc);
        run = p + 1;
    }
    rc_json_put_bytes(b, run, (size_t)(p - run));
    rc_json_put_bytes(b, "\"", 1);
}

void rc_json_put_int(rc_json_buf *b, long long v) { rc_json_putf(b, "%lld", v); }

void rc_json_put_number(rc_json_buf *b, const char *fmt, double v) {
    if (isfinite(v))
        rc_json_putf(b, fmt, v);
    else
        rc_json_put(b, "null");
}

void rc_json_putf(rc_json_buf *b, const char *fmt, ...) {
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1; /* an encoding error: nothing sensible to put */
        return;
    }
    if ((size_t)n < sizeof small) {
        rc_json_put_bytes(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rc_json_put_bytes(b, big, (size_t)n);
    free(big);
}

void rc_json_buf_free(rc_json_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
