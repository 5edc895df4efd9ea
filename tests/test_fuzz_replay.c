/* test_fuzz_replay.c -- replays every committed fuzz input (tests/fuzz/regressions/TARGET/...)
 * through the same code as the libFuzzer targets (the files tests/fuzz/fuzz_TARGET.c, included
 * here with renamed entry points), in the ordinary build. A reproducer of a fixed crash stays here
 * forever; a failing invariant traps with its message, which fails this test. */
#define _GNU_SOURCE
#include "vwn.h"
#include "vt.h"

#include <dirent.h>
#include <sys/stat.h>

#define LLVMFuzzerTestOneInput fuzz_gguf_one
#include "fuzz/fuzz_gguf.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_tokenizer_one
#define LLVMFuzzerInitialize fuzz_tokenizer_init
#include "fuzz/fuzz_tokenizer.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

#define LLVMFuzzerTestOneInput fuzz_state_one
#define LLVMFuzzerInitialize fuzz_state_init
#include "fuzz/fuzz_state.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

typedef int (*fuzz_fn)(const uint8_t *, size_t);

/* Runs fn over every file of dir (README files excepted); the number of inputs. */
static int replay_dir(const char *dir, fuzz_fn fn) {
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0) continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        FILE *fp = fopen(path, "rb");
        if (!fp) continue;
        uint8_t *buf = malloc((size_t)sb.st_size + 1);
        size_t got = buf ? fread(buf, 1, (size_t)sb.st_size, fp) : 0;
        fclose(fp);
        CHECK_MSG(buf && got == (size_t)sb.st_size, "cannot read %s", path);
        if (buf && got == (size_t)sb.st_size) {
            CHECK_MSG(fn(buf, got) == 0, "%s", path);
            n++;
        }
        free(buf);
    }
    closedir(dp);
    return n;
}

int main(void) {
    static const struct { const char *name; fuzz_fn fn; } targets[] = {
        {"fuzz_gguf", fuzz_gguf_one}, {"fuzz_tokenizer", fuzz_tokenizer_one}, {"fuzz_state", fuzz_state_one}};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/%s", VWN_SOURCE_DIR, targets[i].name);
        const int n = replay_dir(dir, targets[i].fn);
        printf("%s: %d inputs replayed\n", targets[i].name, n);
        /* an empty input and a one-byte input are always worth a run */
        const uint8_t one[1] = {0};
        CHECK(targets[i].fn(one, 0) == 0);
        CHECK(targets[i].fn(one, 1) == 0);
    }
    return vt_finish("test_fuzz_replay");
}
