/* A run's directory: its lock, what a run may write there, the config a resume must match (see
 * ramp/rundir.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "ramp/rundir.h"
#include "ramp/files.h"
#include "ramp/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_NAME ".ramp-cl.lock"

/* ---- the lock -------------------------------------------------------------------------------- */

/* The holder line a lock file holds ("ramp-cl pid 123 on host h"), fit for a message; empty
 * for an empty file. */
static void read_holder(int fd, char *out, size_t cap) {
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    rc_err_text(out, cap, buf);
}

int rc_run_lock_take(rc_run_lock *l, const char *dir, int quiet, rc_err *e) {
    l->fd = -1;
    l->path = NULL;
    if (rc_mkdir_p(dir) != 0)
        return rc_err_set(e, "cannot create run directory %s: %s", dir, strerror(errno));
    size_t cap = strlen(dir) + sizeof LOCK_NAME + 1;
    if (!(l->path = malloc(cap))) return rc_err_set(e, "out of host memory");
    snprintf(l->path, cap, "%s/%s", dir, LOCK_NAME);
    char holder[256];
    /* A holder that ends removes the file; one opened just before that is not the lock any more,
     * so the lock counts only on the file that is still at the path. */
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return rc_err_set(e, "cannot create %s: %s", l->path, strerror(errno));
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            int err = errno;
            read_holder(fd, holder, sizeof holder);
            close(fd);
            if (err == EACCES || err == EAGAIN)
                return rc_err_set(e,
                                  "run directory %s is in use by %s: wait for that run to end "
                                  "or give this one another output.dir",
                                  dir, *holder ? holder : "another ramp-cl");
            return rc_err_set(e, "cannot lock %s: %s", l->path, strerror(err));
        }
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(l->path, &now) == 0 && held.st_dev == now.st_dev &&
            held.st_ino == now.st_ino) {
            read_holder(fd, holder, sizeof holder);
            if (*holder && !quiet)
                printf(
                    "ramp-cl: note: %s was left by %s, which ended without releasing it (killed?); "
                    "this run takes it over\n",
                    l->path, holder);
            char host[256] = "unknown", line[512];
            gethostname(host, sizeof host - 1);
            host[sizeof host - 1] = '\0';
            int len =
                snprintf(line, sizeof line, "ramp-cl pid %ld on host %s\n", (long)getpid(), host);
            if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
                int err = errno;
                close(fd);
                return rc_err_set(e, "cannot write %s: %s", l->path, strerror(err));
            }
            l->fd = fd;
            return 0;
        }
        close(fd);
    }
    return rc_err_set(e, "cannot lock %s: it keeps being replaced", l->path);
}

void rc_run_lock_release(rc_run_lock *l) {
    if (l->fd >= 0) {
        unlink(l->path); /* before the lock goes: nobody can lock this file any more */
        close(l->fd);
    }
    free(l->path);
    l->fd = -1;
    l->path = NULL;
}

/* ---- what a run writes ----------------------------------------------------------------------- */

static int same_file(const struct stat *a, const char *path) {
    struct stat b;
    return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

int rc_run_dir_check(const char *dir, const char *init, rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char first[sizeof RC_CONFIG_PRINT_HEADER + 1] = "";
        int ours = fgets(first, sizeof first, f) &&
                   !strncmp(first, RC_CONFIG_PRINT_HEADER "\n", sizeof first - 1);
        fclose(f);
        if (!ours)
            return rc_err_set(e,
                              "%s was not written by ramp-cl (its first line is not \"%s\"): "
                              "the run would replace it with its resolved config; give the "
                              "run an output.dir of its own",
                              path, RC_CONFIG_PRINT_HEADER);
    } else if (errno != ENOENT) {
        return rc_err_set(e, "cannot read %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (!init[0] || stat(init, &st) != 0) return 0; /* the config checked that it exists */
    static const char *const written[] = {"model.safetensors", "checkpoint.safetensors"};
    for (size_t i = 0; i < sizeof written / sizeof *written; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, written[i]);
        if (same_file(&st, path))
            return rc_err_set(e,
                              "init %s is this run's own %s: training would write over the "
                              "model it starts from; give the run another output.dir",
                              init, path);
    }
    return 0;
}

/* Letters, digits, '.', '-' and '_' of s (others as '_'), at most cap - 1 bytes. */
static void file_part(char *out, size_t cap, const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_';
        out[k++] = ok ? c : '_';
    }
    out[k] = '\0';
}

void rc_run_report_path(char *out, size_t cap, const char *dir, const char *checkpoint,
                        const char *protocol) {
    char own[RC_CONFIG_PATH_MAX + 64], real[PATH_MAX];
    snprintf(own, sizeof own, "%s/model.safetensors", dir);
    struct stat st;
    if (stat(checkpoint, &st) != 0 || same_file(&st, own)) {
        snprintf(out, cap, "%s/eval-%s.json", dir, protocol);
        return;
    }
    const char *p = realpath(checkpoint, real) ? real : checkpoint;
    const char *slash = strrchr(p, '/'), *name = slash ? slash + 1 : p;
    const char *parent = p;
    size_t parent_len = 0;
    if (slash) { /* the last directory of the path */
        const char *q = slash;
        while (q > p && q[-1] != '/') q--;
        parent = q, parent_len = (size_t)(slash - q);
    }
    size_t name_len = strlen(name);
    if (name_len > 12 && !strcmp(name + name_len - 12, ".safetensors")) name_len -= 12;
    char a[128], b[128];
    file_part(a, sizeof a, parent, parent_len);
    file_part(b, sizeof b, name, name_len);
    snprintf(out, cap, "%s/eval-%s-%s%s%s.json", dir, protocol, a, *a ? "-" : "", b);
}

/* ---- the config a resume must match ---------------------------------------------------------- */

char *rc_run_config_text(const rc_config *cfg) {
    rc_config c = *cfg;
    c.output.dir[0] = '\0';
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    rc_config_print(f, &c);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Keys that change what is evaluated, when checkpoints are written, or where files are found,
 * but not a single trained weight. */
static const char *const SAFE_KEYS[] = {"eval.every",
                                        "eval.n",
                                        "eval.final_protocol",
                                        "eval.final_n",
                                        "output.checkpoint_every",
                                        "output.checkpoint_minutes",
                                        "data.eval_batch_size",
                                        "data.path",
                                        "init"};
#define N_SAFE (sizeof SAFE_KEYS / sizeof *SAFE_KEYS)

int rc_run_config_safe_key(const char *key) {
    for (size_t i = 0; i < N_SAFE; i++)
        if (!strcmp(key, SAFE_KEYS[i])) return 1;
    return 0;
}

void rc_run_config_safe_keys(char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_SAFE && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", SAFE_KEYS[i]);
}

/* One setting of a printed config: its key path ("optimizer.lr", "threat_models[1]") and its
 * value as printed. */
typedef struct setting {
    char key[128];
    const char *value;
    size_t value_len;
} setting;

/* Split rc_config_print's text into settings by indentation: "name:" alone opens a section, a
 * "- " item is the next element of the section above it. Returns how many (at most cap). */
static size_t settings_of(const char *text, setting *out, size_t cap) {
    char stack[8][64] = {{0}};
    int items = 0;
    size_t n = 0;
    for (const char *line = text; *line && n < cap;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        int indent = 0;
        while (line[indent] == ' ') indent++;
        int depth = indent / 2;
        const char *s = line + indent;
        if (depth < 8 && *s && *s != '#') {
            if (s[0] == '-' && s[1] == ' ') {
                setting *t = &out[n++];
                char parent[128] = "";
                for (int d = 0; d < depth; d++)
                    snprintf(parent + strlen(parent), sizeof parent - strlen(parent), "%s%s",
                             d ? "." : "", stack[d]);
                snprintf(t->key, sizeof t->key, "%s[%d]", parent, items++);
                t->value = s + 2, t->value_len = (size_t)(end - s - 2);
            } else {
                const char *colon = memchr(s, ':', (size_t)(end - s));
                size_t klen = colon ? (size_t)(colon - s) : (size_t)(end - s);
                snprintf(stack[depth], sizeof stack[depth], "%.*s", (int)klen, s);
                items = 0;
                if (colon && colon + 1 < end) {
                    setting *t = &out[n++];
                    t->key[0] = '\0';
                    for (int d = 0; d <= depth; d++)
                        snprintf(t->key + strlen(t->key), sizeof t->key - strlen(t->key), "%s%s",
                                 d ? "." : "", stack[d]);
                    t->value = colon + 2 <= end ? colon + 2 : end;
                    t->value_len = (size_t)(end - t->value);
                }
            }
        }
        line = *end ? end + 1 : end;
    }
    return n;
}

static const setting *find_setting(const setting *s, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].key, key)) return &s[i];
    return NULL;
}

/* The key as --accept names it: "threat_models[1]" is threat_models. */
static int accepted(const char *key, const char *const *accept, int n_accept) {
    size_t len = strcspn(key, "[");
    for (int i = 0; i < n_accept; i++)
        if (strlen(accept[i]) == len && !strncmp(key, accept[i], len) &&
            rc_run_config_safe_key(accept[i]))
            return 1;
    return 0;
}

#define MAX_SETTINGS 256

int rc_run_config_check(const char *saved, const char *saved_digest, const char *now,
                        const char *const *accept, int n_accept, int quiet, rc_err *e) {
    char digest[17];
    rc_fnv1a64_hex(now, digest);
    if (!strcmp(digest, saved_digest)) return 0;
    setting *a = calloc(2 * MAX_SETTINGS, sizeof *a), *b = a + MAX_SETTINGS;
    if (!a) return rc_err_set(e, "out of host memory");
    size_t na = settings_of(saved, a, MAX_SETTINGS), nb = settings_of(now, b, MAX_SETTINGS);
    char refused[4096] = "", taken[2048] = "";
    int n_refused = 0, n_unsafe = 0;
    /* every key of either side once: the saved ones, then those only the new config has */
    for (size_t i = 0; i < na + nb; i++) {
        const setting *old = i < na ? &a[i] : find_setting(a, na, b[i - na].key);
        const setting *cur = i < na ? find_setting(b, nb, a[i].key) : &b[i - na];
        if (i >= na && old) continue;
        const char *key = old ? old->key : cur->key;
        if (old && cur && old->value_len == cur->value_len &&
            !memcmp(old->value, cur->value, old->value_len))
            continue;
        int ok = accepted(key, accept, n_accept);
        char *list = ok ? taken : refused;
        size_t cap = ok ? sizeof taken : sizeof refused, len = strlen(list);
        snprintf(list + len, cap - len, "%s%s: %.*s -> %.*s", len ? "; " : "", key,
                 old ? (int)old->value_len : 6, old ? old->value : "(none)",
                 cur ? (int)cur->value_len : 6, cur ? cur->value : "(none)");
        if (!ok) n_refused++, n_unsafe += !rc_run_config_safe_key(key);
    }
    free(a);
    if (n_refused) {
        char safe[256];
        rc_run_config_safe_keys(safe, sizeof safe);
        return rc_err_set(e,
                          "config.yaml differs from the config the run started with (recorded "
                          "in its checkpoint): %s. A resumed run continues with the config it "
                          "started with: undo %s, or %s (keys that may change on resume: %s)",
                          refused, n_refused > 1 ? "these changes" : "this change",
                          n_unsafe ? "train on in a new run with init: pointing at the checkpoint"
                                   : "accept each with --accept KEY",
                          safe);
    }
    if (*taken && !quiet) printf("ramp-cl: note: resuming with accepted changes: %s\n", taken);
    return 0;
}
