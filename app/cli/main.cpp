// attnstudio-cli: inspect models, tokenize, dump attention maps, benchmark.
#include <CLI/CLI.hpp>
#include <iostream>

#include "app/cli/commands.h"
#include "core/util/memory.h"

int main(int argc, char** argv) {
  attn::keepFreedMemoryForReuse();
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
  auto addFormat = [](CLI::App* sub, std::string& format) {
    sub->add_option("--format", format,
                    "Format of --out: hf (dequantized), compressed (codes, safetensors), h5 "
                    "(codes, one HDF5 file)")
        ->check(CLI::IsMember({"hf", "compressed", "h5"}));
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
                       "Write the quantized model (--format: hf dequantized float32, compressed, h5)");
  addFormat(quantize, qa.format);
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
  sparsify->add_option("--out", sa.out, "Write the pruned model (--format: hf, compressed, h5)");
  addFormat(sparsify, sa.format);
  sparsify->add_option("--dump", sa.dump, "Write the masks (uint8 0/1) as FILE.safetensors");
  sparsify->add_flag("--json", sa.json, "Print JSON");
  addThreads(sparsify, sa.threads);

  CompareArgs ca;
  auto* compare = app.add_subcommand(
      "compare", "Attention loss between every teacher and student layer, and a layer mapping");
  compare->add_option("TEACHER", ca.teacher, "Teacher model directory")->required();
  compare->add_option("STUDENT", ca.student, "Student model directory")->required();
  auto* ctext = compare->add_option("--text", ca.text, "Text to run (each model tokenizes it)");
  auto* cids = compare->add_option("--ids", ca.ids, "Token ids for both models");
  auto* ccorpus = compare->add_option("--corpus", ca.corpus, "Corpus file: the mean over its examples");
  compare->add_option("--column", ca.column, "Column (.tsv/.csv) or field (.jsonl) of --corpus");
  ctext->excludes(cids)->excludes(ccorpus);
  cids->excludes(ccorpus);
  compare->add_option("--map", ca.map, "uniform, last, last:K, auto, or pairs student:teacher (0:1,1:3)");
  compare->add_option("--loss", ca.loss, "Attention loss")->check(CLI::IsMember({"mse", "kl"}));
  compare->add_flag("--json", ca.json, "Print JSON (loss_matrix, mapping, mapped_losses, total)");
  addThreads(compare, ca.threads);

  DistillArgs da;
  auto addTraining = [&](CLI::App* sub, DistillArgs& d) {
    sub->add_option("--corpus", d.corpus, "Corpus file (.txt, .tsv/.csv, .jsonl)")->required();
    sub->add_option("--column", d.column, "Column (.tsv/.csv) or field (.jsonl) of --corpus");
    sub->add_option("--steps", d.steps, "Optimiser steps")->required()->check(CLI::Range(1, 100000000));
    sub->add_option("--lr", d.lr, "Peak learning rate (AdamW)")->check(CLI::PositiveNumber);
    sub->add_option("--batch", d.batch, "Examples per step")->check(CLI::Range(1, 65536));
    sub->add_option("--seq", d.seq, "Longest example in tokens, longer ones are cut (default: min(128, positions))")
        ->check(CLI::Range(2, 65536));
    sub->add_option("--warmup", d.warmup, "Warm-up steps (default 6 % of --steps)")
        ->check(CLI::Range(0, 100000000));
    sub->add_option("--weight-decay", d.weightDecay, "AdamW weight decay")->check(CLI::Range(0.0, 1.0));
    sub->add_option("--clip", d.clip, "Max global gradient norm (0: none)")->check(CLI::NonNegativeNumber);
    sub->add_option("--seed", d.seed, "Seed of the example order");
    sub->add_option("--group-lasso", d.groupLasso, "Group-Lasso regulariser: heads:λ or ffn:λ");
    sub->add_option("--qat", d.qat, "Quantization-aware training plan, e.g. all=uniform:4:channel");
    sub->add_option("--out", d.out, "Write the trained model (--format: hf, compressed, h5)");
    addFormat(sub, d.format);
    sub->add_option("--log", d.log, "Write one JSON line per step");
    sub->add_option("--checkpoint-every", d.checkpointEvery,
                    "Write OUT.checkpoints/step-N every N steps")
        ->check(CLI::Range(0, 100000000));
    sub->add_option("--resume", d.resume, "Continue from a checkpoint folder");
    sub->add_option("--emit-recipe", d.emitRecipe,
                    "Write the run as a PyTorch/torchrun script + JSON config into DIR");
    sub->add_flag("--json", d.json, "Print a JSON summary");
    sub->add_option("--threads", d.threads, "Worker threads (0 = all cores)")->check(CLI::Range(0, 256));
  };
  auto* distillCmd = app.add_subcommand(
      "distill", "Train a student so that its attention matches the teacher's");
  distillCmd->add_option("TEACHER", da.teacher, "Teacher model directory")->required();
  distillCmd->add_option("STUDENT", da.student, "Student model directory (the starting point)")
      ->required();
  addTraining(distillCmd, da);
  distillCmd->add_option("--map", da.map, "uniform, last, last:K, auto, or pairs student:teacher");
  distillCmd->add_option("--loss", da.loss, "Attention loss")
      ->check(CLI::IsMember({"mse", "frobenius", "kl", "kl+value", "mse+value", "none"}));
  distillCmd->add_option("--heads", da.heads, "Head handling when counts differ")
      ->check(CLI::IsMember({"auto", "average", "relation"}));
  distillCmd->add_option("--relation-heads", da.relationHeads, "Relation heads (0: student heads)")
      ->check(CLI::Range(0, 4096));
  distillCmd->add_option("--attention-weight", da.attentionWeight, "Weight of the attention loss")
      ->check(CLI::NonNegativeNumber);
  distillCmd->add_option("--value-weight", da.valueWeight, "Weight of the value-relation loss (+value)")
      ->check(CLI::NonNegativeNumber);
  distillCmd->add_option("--hidden-weight", da.hiddenWeight, "Weight of the hidden-state MSE")
      ->check(CLI::NonNegativeNumber);
  distillCmd->add_option("--logit-weight", da.logitWeight, "Weight of logit distillation (LM heads)")
      ->check(CLI::NonNegativeNumber);
  distillCmd->add_option("--temperature", da.temperature, "Logit distillation temperature")
      ->check(CLI::PositiveNumber);
  distillCmd->add_option("--lm-weight", da.lmWeight, "Weight of the student's own LM loss")
      ->check(CLI::NonNegativeNumber);

  DistillArgs pa;
  auto* pretrain = app.add_subcommand(
      "pretrain", "Train a causal language model (GPT-2 style) on a corpus: next-token loss");
  pretrain->add_option("MODEL", pa.student, "Model directory (e.g. from init-model)")->required();
  addTraining(pretrain, pa);

  InitModelArgs ima;
  auto* initModel =
      app.add_subcommand("init-model", "Write a model directory with random weights");
  initModel->add_option("--config", ima.config, "config.json to use")->required();
  initModel->add_option("--tokenizer", ima.tokenizer, "Folder with the tokenizer files to copy");
  initModel->add_option("--out", ima.out, "Output directory")->required();
  initModel->add_option("--seed", ima.seed, "Random seed");

  BuildTokenizerArgs bta;
  auto* buildTok = app.add_subcommand(
      "build-tokenizer", "Train a byte-level BPE tokenizer (vocab.json + merges.txt) on a corpus");
  buildTok->add_option("--corpus", bta.corpus, "Corpus file")->required();
  buildTok->add_option("--column", bta.column, "Column or field of --corpus");
  buildTok->add_option("--vocab-size", bta.vocabSize, "Tokens, the end-of-text token included")
      ->check(CLI::Range(257, 1000000));
  buildTok->add_option("--out", bta.out, "Output directory")->required();

  ExportArgs ea;
  auto* exportCmd = app.add_subcommand(
      "export", "Apply a compression plan (JSON) and write the compressed model");
  exportCmd->add_option("MODEL", ea.model, "Model directory or .safetensors file")->required();
  exportCmd->add_option("--plan", ea.plan, "Compression plan (JSON, core/compress/plan.h)")
      ->required();
  exportCmd->add_option("--format", ea.format,
                        "Output format: hf (dequantized), compressed (codes, safetensors), "
                        "h5 (codes, one HDF5 file)")
      ->check(CLI::IsMember({"hf", "compressed", "h5"}));
  exportCmd->add_option("--dtype", ea.dtype, "Weights as f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  exportCmd->add_option("--out", ea.out, "Output directory (hf, compressed) or .h5 file")->required();
  exportCmd->add_option("--report", ea.report, "Write a report: FILE.json or FILE.csv");
  exportCmd->add_option("--text", ea.text, "Input the report's attention fidelity is measured on");
  exportCmd->add_flag("--json", ea.json, "Print the report as JSON");
  addThreads(exportCmd, ea.threads);

  SweepArgs swa;
  auto* sweepCmd = app.add_subcommand(
      "sweep", "Measure a compression plan over a corpus, varying up to two of its parameters "
               "(points, Pareto front; without --vary: the plan's per-head fidelity)");
  sweepCmd->add_option("MODEL", swa.model, "Model directory, .safetensors or .h5 file")->required();
  sweepCmd->add_option("--plan", swa.plan, "Compression plan (JSON); default: no compression");
  sweepCmd->add_option("--vary", swa.vary,
                       "PARAM=V1,V2,… with PARAM bits, tau or sparsity (at most twice)");
  sweepCmd->add_option("--teacher", swa.teacher, "Teacher for KL to its uniformly mapped layers");
  sweepCmd->add_option("--text", swa.text, "One input sentence");
  sweepCmd->add_option("--corpus", swa.corpus, "Corpus file (.txt, .tsv/.csv, .jsonl)");
  sweepCmd->add_option("--column", swa.column, "Column or field of --corpus");
  sweepCmd->add_option("--max", swa.maxSentences, "Sentences of --corpus to use")
      ->check(CLI::PositiveNumber);
  sweepCmd->add_option("--csv", swa.csv, "Write the points as CSV");
  sweepCmd->add_flag("--json", swa.json, "Print the points as JSON");
  addThreads(sweepCmd, swa.threads);

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
    if (*compare) return runCompare(ca);
    if (*exportCmd) return runExport(ea);
    if (*sweepCmd) return runSweep(swa);
    if (*distillCmd) return runDistill(da);
    if (*pretrain) return runDistill(pa);
    if (*initModel) return runInitModel(ima);
    if (*buildTok) return runBuildTokenizer(bta);
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
