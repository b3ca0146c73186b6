/* libFuzzer harness for the YAML config reader: the input is a config file's text. A config
 * that fails must say why one problem per line, each line naming the file; a config that loads
 * must print as YAML that loads back into an identical struct. */
#include "fuzz_util.h"
#include "ramp/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rc_config cfg, again;
    static rc_err e;
    if (rc_config_load_buffer(&cfg, "fuzz.yaml", (const char *)data, size, &e) != 0) {
        fuzz_check_message(e.msg);
        /* "(N more errors not shown)" closes a long list. */
        for (const char *line = e.msg, *nl; line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (strncmp(line, "fuzz.yaml", 9) != 0 && line[0] != '(') {
                fprintf(stderr, "a line of the message does not name the file:\n%s\n", e.msg);
                abort();
            }
        }
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) fuzz_die("open_memstream");
    rc_config_print(f, &cfg);
    if (fclose(f) != 0) fuzz_die("printing the config");
    if (rc_config_load_buffer(&again, "fuzz.yaml", text, len, &e) != 0) {
        fprintf(stderr, "the printed config does not load: %s\n%s", e.msg, text);
        abort();
    }
    free(text);
    if (memcmp(&cfg, &again, sizeof cfg) != 0) {
        fprintf(stderr, "the printed config loads into a different struct\n");
        abort();
    }
    return 0;
}
