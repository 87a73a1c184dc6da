// Subcommands of attnstudio-cli. Each returns the process exit code:
// 0 success, 1 bad input or failed computation (message on stderr).
#pragma once

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

int runInspect(const InspectArgs& a);
int runTokenize(const TokenizeArgs& a);
int runAttention(const AttentionArgs& a);
int runBench(const BenchArgs& a);

}  // namespace attn::cli
