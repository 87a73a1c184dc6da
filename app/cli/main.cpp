// attnstudio-cli: inspect models, tokenize, dump attention maps, benchmark.
#include <CLI/CLI.hpp>
#include <iostream>

#include "app/cli/commands.h"

int main(int argc, char** argv) {
  using namespace attn::cli;
  CLI::App app{
      "Attention Studio command-line tool: load Hugging Face Transformer checkpoints, "
      "tokenize text and extract every layer's and head's attention."};
  app.set_version_flag("--version", std::string(ATTN_VERSION));
  app.require_subcommand(1);

  InspectArgs ia;
  auto* inspect = app.add_subcommand("inspect", "Show a model's architecture, sizes and tensors");
  inspect->add_option("MODEL", ia.model, "Model directory or .safetensors file")->required();
  inspect->add_flag("--json", ia.json, "Print JSON");

  TokenizeArgs ta;
  auto* tokenize =
      app.add_subcommand("tokenize", "Turn text into token ids with the model's tokenizer");
  tokenize->add_option("MODEL", ta.model, "Model directory or .safetensors file")->required();
  tokenize->add_option("--text", ta.text, "Text to tokenize")->required();
  tokenize->add_flag("--json", ta.json, "Print JSON (ids, tokens, offsets)");

  AttentionArgs aa;
  auto* attention =
      app.add_subcommand("attention", "Run the model and extract every attention map");
  attention->add_option("MODEL", aa.model, "Model directory or .safetensors file")->required();
  auto* text = attention->add_option("--text", aa.text, "Text to run");
  auto* ids =
      attention->add_option("--ids", aa.ids, "Comma-separated token ids, e.g. 101,7592,102");
  text->excludes(ids);
  attention->add_option("--mask", aa.mask,
                        "Comma-separated attention mask (1 = token, 0 = padding)");
  attention->add_option("--out", aa.out,
                        "Write maps: FILE.npy (float32 [layers, heads, seq, seq]) or FILE.h5");
  attention->add_flag("--json", aa.json, "Print ids, tokens and per-head entropy as JSON");
  attention->add_option("--threads", aa.threads, "Worker threads (0 = all cores)")
      ->check(CLI::Range(0, 256));

  BenchArgs ba;
  auto* bench = app.add_subcommand("bench", "Time a forward pass with all attentions captured");
  auto* bmodel = bench->add_option("MODEL", ba.model, "Model directory or .safetensors file");
  auto* bsyn = bench
                   ->add_option("--synthetic", ba.synthetic,
                                "Random weights shaped like bert-base or gpt2-small")
                   ->check(CLI::IsMember({"bert-base", "gpt2-small"}));
  bmodel->excludes(bsyn);
  bench->add_option("--seq", ba.seq, "Sequence length")->required()->check(CLI::Range(1, 8192));
  bench->add_option("--runs", ba.runs, "Timed runs after one warm-up")
      ->check(CLI::Range(1, 100000));
  bench->add_option("--threads", ba.threads, "Worker threads (0 = all cores)")
      ->check(CLI::Range(0, 256));
  bench->add_flag("--json", ba.json, "Print JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help/version or the usage error
    return code == 0 ? 0 : 2;
  }
  auto dispatch = [&]() -> int {
    if (*inspect) return runInspect(ia);
    if (*tokenize) return runTokenize(ta);
    if (*attention) {
      if (aa.text.empty() && aa.ids.empty()) {
        std::cerr << "attention: give --text or --ids\n";
        return 2;
      }
      return runAttention(aa);
    }
    if (*bench) {
      if (ba.model.empty() == ba.synthetic.empty()) {
        std::cerr << "bench: give either MODEL or --synthetic NAME\n";
        return 2;
      }
      return runBench(ba);
    }
    return 2;
  };
  try {
    return dispatch();
  } catch (const std::exception& e) {  // out of memory, a thread that cannot start, …
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
}
