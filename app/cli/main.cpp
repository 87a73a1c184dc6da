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
  auto addThreads = [](CLI::App* sub, int& threads) {
    sub->add_option("--threads", threads, "Worker threads (0 = all cores)")
        ->check(CLI::Range(0, 256));
  };

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
  addThreads(attention, aa.threads);

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
  addThreads(bench, ba.threads);
  bench->add_flag("--json", ba.json, "Print JSON");

  QuantizeArgs qa;
  auto* quantize = app.add_subcommand(
      "quantize", "Quantize a model's weights (and attention) and measure the damage");
  quantize->add_option("MODEL", qa.model, "Model directory or .safetensors file")->required();
  quantize->add_option("--method", qa.method, "Quantization method")
      ->check(CLI::IsMember({"uniform", "kmeans", "log2", "binary", "ternary"}));
  quantize->add_option("--bits", qa.bits, "Bits per code (uniform 2-8, kmeans 1-8, log2 2-8)");
  quantize->add_option("--granularity", qa.granularity,
                       "tensor, channel (output channel) or group:G (G consecutive inputs)");
  quantize->add_flag("--asym", qa.asym, "Uniform: asymmetric (zero point) instead of symmetric");
  quantize->add_option("--clip", qa.clip, "Uniform range: none, mse, or percentile:P");
  quantize->add_option("--targets", qa.targets,
                       "Tensor groups: q,k,v,o,ffn_in,ffn_out,emb (comma-separated) or all");
  quantize->add_option("--override", qa.overrides,
                       "Per-group / per-layer specs, applied in order, e.g. "
                       "\"ffn_in,ffn_out=uniform:4:group:64; layer 0 q,k=none\"");
  quantize
      ->add_option("--attn-bits", qa.attnBits,
                   "Quantize attention probabilities to B bits (0 = keep float)")
      ->check(CLI::Range(0, 8));
  quantize->add_option("--attn-method", qa.attnMethod, "Attention quantizer")
      ->check(CLI::IsMember({"uniform", "log2", "binary"}));
  quantize->add_option("--attn-threshold", qa.attnThreshold,
                       "Binary attention: p >= threshold becomes 1");
  auto* qtext = quantize->add_option("--text", qa.text, "Text for the attention comparison");
  auto* qids = quantize->add_option("--ids", qa.ids, "Token ids for the attention comparison");
  qtext->excludes(qids);
  quantize->add_option("--out", qa.out,
                       "Write the quantized model (dequantized float32) as a HF directory");
  quantize->add_option("--dump", qa.dump,
                       "Write codes and scales / zero points / codebooks as FILE.safetensors");
  quantize->add_flag("--json", qa.json, "Print JSON");
  addThreads(quantize, qa.threads);

  SparsifyArgs sa;
  auto* sparsify = app.add_subcommand(
      "sparsify", "Sparsify attention, prune weights and heads, and measure the damage");
  sparsify->add_option("MODEL", sa.model, "Model directory or .safetensors file")->required();
  auto* at = sparsify->add_option("--attn-threshold", sa.attnThreshold,
                                  "Drop attention probabilities below T");
  auto* ak = sparsify->add_option("--attn-topk", sa.attnTopK, "Keep the K largest per query");
  auto* am = sparsify->add_option("--attn-mass", sa.attnMass,
                                  "Keep the fewest keys whose probabilities sum to P");
  at->excludes(ak)->excludes(am);
  ak->excludes(am);
  sparsify->add_flag("--renormalize", sa.renormalize, "Rows of kept probabilities sum to 1");
  sparsify->add_option("--prune", sa.prune,
                       "Weight pruning: magnitude, global, rows, cols, block:B or nm:N:M");
  sparsify->add_option("--sparsity", sa.sparsity, "Fraction of weights (rows, blocks) removed");
  sparsify->add_option("--norm", sa.norm, "rows / cols: rank by the L1 or L2 norm")
      ->check(CLI::IsMember({1, 2}));
  sparsify->add_option("--targets", sa.targets,
                       "Tensor groups: q,k,v,o,ffn_in,ffn_out,emb (comma-separated) or all");
  sparsify->add_option("--prune-heads", sa.pruneHeads, "Remove the K least important heads")
      ->check(CLI::Range(0, 100000));
  sparsify->add_option("--importance", sa.importance, "Head importance")
      ->check(CLI::IsMember({"entropy", "maxweight", "confidence", "ablation"}));
  auto* stext = sparsify->add_option("--text", sa.text, "Text to run");
  auto* sids = sparsify->add_option("--ids", sa.ids, "Token ids to run");
  auto* scorpus = sparsify->add_option(
      "--corpus", sa.corpus, "Corpus file (.txt, .tsv/.csv, .jsonl): head importance over it");
  sparsify->add_option("--column", sa.column, "Column (.tsv/.csv) or field (.jsonl) of --corpus");
  stext->excludes(sids)->excludes(scorpus);
  sids->excludes(scorpus);
  sparsify->add_option("--out", sa.out, "Write the pruned model as a HF directory");
  sparsify->add_option("--dump", sa.dump, "Write the masks (uint8 0/1) as FILE.safetensors");
  sparsify->add_flag("--json", sa.json, "Print JSON");
  addThreads(sparsify, sa.threads);

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
    if (*quantize) return runQuantize(qa);
    if (*sparsify) return runSparsify(sa);
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
