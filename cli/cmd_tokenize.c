/* cmd_tokenize.c -- `vwn tokenize`: the token ids of a text and the piece of each, one per line
 * ("id<TAB>piece"), with the pieces escaped so that every line is printable ASCII-safe UTF-8. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "tokenize";

static void usage(FILE *out) {
    fprintf(out,
            "usage: vwn tokenize MODEL.gguf (--prompt TEXT | --file FILE) [options]\n"
            "\n"
            "Prints the tokens of a text with the model's tokenizer, one per line: id<TAB>piece.\n"
            "Pieces are escaped: \\n \\t \\r \\\\, other control bytes and bytes that are not part of\n"
            "a valid UTF-8 character as \\xNN.\n"
            "\n"
            "  --prompt TEXT    the text to tokenize\n"
            "  --file FILE      read the text from FILE (\"-\" reads standard input)\n"
            "  --no-bos         do not add the BOS token even if the model asks for it\n"
            "  --parse-special  recognise control-token texts such as <|endoftext|> in the text\n"
            "  --ids-only       print only the ids, separated by spaces, on one line\n"
            "  -h, --help       this help\n");
}

/* Length of the valid UTF-8 character at s[0..n) (2..4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned int v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1Fu; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0Fu; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07u; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[k] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return len;
}

static void print_escaped(const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '\n') { fputs("\\n", stdout); i++; }
        else if (c == '\t') { fputs("\\t", stdout); i++; }
        else if (c == '\r') { fputs("\\r", stdout); i++; }
        else if (c == '\\') { fputs("\\\\", stdout); i++; }
        else if (c >= 0x20 && c < 0x7F) { putchar(c); i++; }
        else if (c >= 0x80) {
            size_t len = utf8_len(s + i, n - i);
            if (len) { fwrite(s + i, 1, len, stdout); i += len; }
            else { printf("\\x%02X", c); i++; }
        } else {
            printf("\\x%02X", c);
            i++;
        }
    }
}

static char *read_input(const char *path, size_t *len) {
    if (strcmp(path, "-") != 0) return cli_read_file(path, len);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return NULL;
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) { free(buf); return NULL; }
        buf = nb;
        cap *= 2;
    }
    if (ferror(stdin)) { free(buf); return NULL; }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *file = NULL;
    bool add_bos = true, parse_special = false, ids_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--prompt") || !strcmp(a, "-p") || !strcmp(a, "--file") || !strcmp(a, "-f")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vwn %s: %s needs a value\n", CMD, a);
                return 2;
            }
            bool is_prompt = !strcmp(a, "--prompt") || !strcmp(a, "-p");
            if (is_prompt) prompt = argv[++i];
            else file = argv[++i];
        }
        else if (!strcmp(a, "--no-bos")) add_bos = false;
        else if (!strcmp(a, "--parse-special")) parse_special = true;
        else if (!strcmp(a, "--ids-only")) ids_only = true;
        else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "vwn %s: unknown option '%s' (see vwn tokenize --help)\n", CMD, a);
            return 2;
        } else if (!model_path) model_path = a;
        else {
            fprintf(stderr, "vwn %s: unexpected argument '%s' (see vwn tokenize --help)\n", CMD, a);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "vwn %s: no model given\n\n", CMD);
        usage(stderr);
        return 2;
    }
    if ((prompt == NULL) == (file == NULL)) {
        fprintf(stderr, "vwn %s: give exactly one of --prompt TEXT or --file FILE\n", CMD);
        return 2;
    }

    size_t len = 0;
    char *text = NULL;
    if (file) {
        text = read_input(file, &len);
        if (!text) {
            fprintf(stderr, "vwn %s: cannot read %s: %s\n", CMD, file, strerror(errno));
            return 1;
        }
    } else {
        len = strlen(prompt);
    }
    if (len > (size_t)INT32_MAX) {
        fprintf(stderr, "vwn %s: the text is too long (%zu bytes; at most %d)\n", CMD, len, INT32_MAX);
        free(text);
        return 1;
    }
    const char *input = text ? text : prompt;

    vwn_model *model = NULL;
    vwn_status st = vwn_model_load(model_path, NULL, &model);
    if (st != VWN_OK) {
        free(text);
        return cli_fail(CMD, model_path, st);
    }
    int rc = 0;
    int32_t *tokens = NULL;
    int32_t n = vwn_tokenize(model, input, (int32_t)len, NULL, 0, add_bos, parse_special);
    if (n < 0 && n != INT32_MIN) {
        tokens = malloc((size_t)(-n) * sizeof *tokens);
        if (!tokens) {
            fprintf(stderr, "vwn %s: out of memory for %d tokens\n", CMD, -n);
            rc = 1;
            goto done;
        }
        n = vwn_tokenize(model, input, (int32_t)len, tokens, -n, add_bos, parse_special);
    }
    if (n == INT32_MIN) {
        fprintf(stderr, "vwn %s: cannot tokenize the text: %s\n", CMD, vwn_last_error());
        rc = 1;
        goto done;
    }

    char small[256];
    for (int32_t i = 0; i < n; i++) {
        if (ids_only) {
            printf(i ? " %d" : "%d", (int)tokens[i]);
            continue;
        }
        char *piece = small;
        int32_t m = vwn_token_to_piece(model, tokens[i], small, (int32_t)sizeof small, true);
        if (m < 0 && m != INT32_MIN) {
            piece = malloc((size_t)(-m));
            if (!piece) { rc = 1; break; }
            m = vwn_token_to_piece(model, tokens[i], piece, -m, true);
        }
        if (m == INT32_MIN) {
            fprintf(stderr, "vwn %s: no piece for token %d: %s\n", CMD, (int)tokens[i], vwn_last_error());
            rc = 1;
            if (piece != small) free(piece);
            break;
        }
        printf("%d\t", (int)tokens[i]);
        print_escaped(piece, (size_t)m);
        putchar('\n');
        if (piece != small) free(piece);
    }
    if (ids_only) putchar('\n');

done:
    free(tokens);
    free(text);
    vwn_model_free(model);
    return rc;
}
