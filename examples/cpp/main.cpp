// main.cpp -- a C++17 consumer of an installed libvwn (found with find_package(vwn)).
//
// Loads a model, prints what it is, and greedily generates a few tokens with vwn_generate,
// streaming the text as it comes. The library's handles are owned by std::unique_ptr with
// custom deleters, and failed calls become a C++ exception carrying the status and the
// library's message, so nothing leaks on any path.
//
// usage: vwn_cpp_example MODEL.gguf [PROMPT] [N_TOKENS]
#include <vwn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

// ---- RAII: one deleter per handle type -------------------------------------------------------

struct ModelDeleter {
    void operator()(vwn_model *m) const noexcept { vwn_model_free(m); }
};
struct ContextDeleter {
    void operator()(vwn_context *c) const noexcept { vwn_context_free(c); }
};
struct SamplerDeleter {
    void operator()(vwn_sampler *s) const noexcept { vwn_sampler_free(s); }
};
using Model = std::unique_ptr<vwn_model, ModelDeleter>;
using Context = std::unique_ptr<vwn_context, ContextDeleter>;
using Sampler = std::unique_ptr<vwn_sampler, SamplerDeleter>;

// ---- errors: status + the library's message ---------------------------------------------------

class Error : public std::runtime_error {
public:
    Error(vwn_status status, const std::string &what)
        : std::runtime_error(what + ": " + vwn_status_string(status) + ": " + vwn_last_error()),
          status_(status) {}
    vwn_status status() const noexcept { return status_; }

private:
    vwn_status status_;
};

void check(vwn_status st, const char *what) {
    if (st != VWN_OK) throw Error(st, what);
}

// ---- constructors returning owning handles -----------------------------------------------------

Model load_model(const std::string &path) {
    vwn_model *m = nullptr;
    check(vwn_model_load(path.c_str(), nullptr, &m), ("loading " + path).c_str());
    return Model(m);
}

Context new_context(const vwn_model *model, int32_t n_ctx) {
    vwn_context_params p = vwn_context_default_params();
    p.n_ctx = n_ctx;
    vwn_context *c = nullptr;
    check(vwn_context_new(model, &p, &c), "creating a context");
    return Context(c);
}

Sampler greedy_sampler() {
    vwn_sampler_params p = vwn_sampler_default_params();
    p.temperature = 0.0f; // greedy: argmax, ties to the lowest id
    vwn_sampler *s = nullptr;
    check(vwn_sampler_new(&p, &s), "creating a sampler");
    return Sampler(s);
}

// The token callback: a plain function (the C ABI cannot take a capturing lambda) that appends
// each piece to the std::string passed as user_data and echoes it.
bool on_token(int32_t /*token*/, const char *piece, int32_t piece_len, void *user_data) {
    auto *out = static_cast<std::string *>(user_data);
    out->append(piece, static_cast<size_t>(piece_len));
    std::fwrite(piece, 1, static_cast<size_t>(piece_len), stdout);
    std::fflush(stdout);
    return true;
}

int run(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf [PROMPT] [N_TOKENS]\n", argv[0]);
        return 2;
    }
    const std::string path = argv[1];
    const std::string prompt = argc > 2 ? argv[2] : "Hello";
    const int32_t n_predict = argc > 3 ? static_cast<int32_t>(std::atoi(argv[3])) : 16;

    std::printf("libvwn %s (header %s)\n", vwn_version(), VWN_VERSION_STRING);

    Model model = load_model(path);
    vwn_model_info info{};
    check(vwn_model_get_info(model.get(), &info), "reading the model info");
    std::printf("model: V=%d D=%d L=%d GHC m=%d n=%d (D'=%d) heads=%d/%d hd=%d F=%d mtp=%d "
                "params=%llu weights=%s\n",
                info.n_vocab, info.n_embd, info.n_layer, info.ghc_m, info.ghc_n, info.n_embd_wide,
                info.n_head, info.n_head_kv, info.head_dim, info.n_ff, info.mtp_depth,
                static_cast<unsigned long long>(info.n_params), vwn_type_name(info.weight_type));

    Context ctx = new_context(model.get(), 256);
    Sampler sampler = greedy_sampler();

    vwn_generate_params gp = vwn_generate_default_params();
    gp.n_predict = n_predict;
    gp.sampler = sampler.get();
    std::string text;
    gp.callback = on_token;
    gp.user_data = &text;

    std::printf("prompt: \"%s\"\n--- generated ---\n", prompt.c_str());
    vwn_generate_stats stats{};
    check(vwn_generate(ctx.get(), prompt.c_str(), &gp, &stats), "generating");
    std::printf("\n--- end ---\n");
    std::printf("prompt tokens %d, generated %d (%zu bytes), stop reason %d\n", stats.n_prompt,
                stats.n_generated, text.size(), stats.stop_reason);
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const Error &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
