// Subcommands of attnstudio-cli. Each returns the process exit code:
// 0 success, 1 bad input or failed computation (message on stderr).
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace attn::cli {

struct InspectArgs {
  std::string model;
  bool json = false;
};

struct TokenizeArgs {
  std::string model;
  std::string text;
  bool json = false;
};

struct AttentionArgs {
  std::string model;
  std::string text;
  std::string ids;   // "1,2,3"
  std::string mask;  // "1,1,0"
  std::string out;   // .npy or .h5
  bool json = false;
  int threads = 0;  // 0: all cores
};

struct BenchArgs {
  std::string model;
  std::string synthetic;  // "bert-base" | "gpt2-small"
  int seq = 128;
  int runs = 10;
  int threads = 0;
  bool json = false;
};

struct QuantizeArgs {
  std::string model;
  std::string method = "uniform";  // uniform | kmeans | log2 | binary | ternary
  int bits = 8;
  std::string granularity = "channel";  // tensor | channel | group:G
  bool asym = false;
  std::string clip = "none";  // none | mse | percentile:P
  std::string targets = "q,k,v,o,ffn_in,ffn_out";
  std::vector<std::string> overrides;  // plan text entries (core/quant/model_quant.h)
  int attnBits = 0;                    // 0: attention probabilities stay float
  std::string attnMethod = "uniform";  // uniform | log2 | binary
  double attnThreshold = 0.1;
  std::string text, ids;
  std::string out;   // the quantized model, in `format`
  std::string format = "hf";  // hf | compressed | h5 (core/compress/export.h)
  std::string dump;  // .safetensors with codes and parameters
  bool json = false;
  int threads = 0;
};

struct SparsifyArgs {
  std::string model;
  double attnThreshold = std::numeric_limits<double>::quiet_NaN();  // NaN: not given
  int attnTopK = 0;
  double attnMass = 0;
  bool renormalize = false;
  std::string prune;  // magnitude | global | rows | cols | block:B | nm:N:M
  double sparsity = 0.5;
  int norm = 1;
  std::string targets = "q,k,v,o,ffn_in,ffn_out";
  int pruneHeads = 0;
  std::string importance = "confidence";
  std::string text, ids, corpus, column;
  std::string out, dump;
  std::string format = "hf";  // of --out: hf | compressed | h5
  bool json = false;
  int threads = 0;
};

struct CompareArgs {
  std::string teacher, student;
  std::string text, ids, corpus, column;
  std::string map = "uniform";  // uniform | last | last:K | auto | S:T,…
  std::string loss = "mse";     // mse | kl
  bool json = false;
  int threads = 0;
};

struct DistillArgs {
  std::string teacher, student;  // teacher empty: language-model training (pretrain)
  std::string corpus, column;
  int steps = 100;
  double lr = 1e-4;
  int batch = 8;
  int seq = 0;     // 0: min(128, the models' positions)
  int warmup = -1;  // −1: 6 % of the steps
  double weightDecay = 0.01;
  double clip = 1.0;
  std::string map = "uniform";
  std::string loss = "kl";  // mse | frobenius | kl | kl+value | none
  std::string heads = "auto";
  int relationHeads = 0;
  double attentionWeight = 1.0, valueWeight = 1.0, hiddenWeight = 0.0, logitWeight = 0.0,
         temperature = 1.0, lmWeight = 0.0;
  std::string groupLasso;  // heads:λ | ffn:λ
  std::string qat;         // plan text, e.g. "all=uniform:4"
  uint64_t seed = 0;
  std::string out, log, resume, emitRecipe;
  std::string format = "hf";  // of --out: hf | compressed | h5 (with --qat: the codes)
  int checkpointEvery = 0;
  bool json = false;
  int threads = 0;
};

struct InitModelArgs {
  std::string config, tokenizer, out;
  uint64_t seed = 0;
};

struct BuildTokenizerArgs {
  std::string corpus, column, out;
  int vocabSize = 2000;
  std::string eos = "<|endoftext|>";
};

struct ExportArgs {
  std::string model, plan, format = "hf", dtype = "f32", out, report;
  std::string text;  // the input the report's attention fidelity is measured on
  bool json = false;
  int threads = 0;
};

// attnstudio-cli sweep: a plan measured over a corpus, varying up to two of its
// parameters (none: the plan alone, with the per-head breakdown).
struct SweepArgs {
  std::string model, plan;            // plan: JSON, empty = no compression
  std::vector<std::string> vary;      // "bits=2,4,8", "tau=0.001,0.01", "sparsity=0.5,0.7"
  std::string teacher;                // KL to the teacher's uniformly mapped layers
  std::string text, corpus, column;
  int maxSentences = 32;
  std::string csv;                    // write the points as CSV
  bool json = false;
  int threads = 0;
};

int runExport(const ExportArgs& a);
int runSweep(const SweepArgs& a);
int runCompare(const CompareArgs& a);
int runDistill(const DistillArgs& a);
int runInitModel(const InitModelArgs& a);
int runBuildTokenizer(const BuildTokenizerArgs& a);
int runInspect(const InspectArgs& a);
int runTokenize(const TokenizeArgs& a);
int runAttention(const AttentionArgs& a);
int runBench(const BenchArgs& a);
int runQuantize(const QuantizeArgs& a);
int runSparsify(const SparsifyArgs& a);

}  // namespace attn::cli
