// ModelConfig: the architecture-independent description read from config.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <vector>
#include <string>

#include "core/util/result.h"

namespace attn {

enum class Architecture { Bert, Roberta, DistilBert, Gpt2 };
enum class Activation { GeluErf, GeluTanh, Relu };

std::string architectureName(Architecture a);  // "bert", "roberta", "distilbert", "gpt2"

struct ModelConfig {
  Architecture arch = Architecture::Bert;
  std::string hfClass;  // architectures[0] as written, e.g. "BertForMaskedLM"
  int layers = 0;
  int heads = 0;
  int hidden = 0;        // D
  int intermediate = 0;  // F
  int vocabSize = 0;     // V
  int maxPositions = 0;
  int typeVocabSize = 0;  // BERT/RoBERTa token types; 0 when absent
  int padTokenId = -1;
  float layerNormEps = 1e-12f;
  Activation activation = Activation::GeluErf;
  // config.json "pruned_heads" ({"layer": [head, …]}, original head indices): the
  // checkpoint lacks those heads' Q/K/V/O slices. The loader puts them back as
  // zeros (core/model/pruned_heads.h), so the engine always sees `heads` per layer.
  std::map<int, std::vector<int>> prunedHeads;

  int headDim() const { return heads > 0 ? hidden / heads : 0; }
  bool causal() const { return arch == Architecture::Gpt2; }
  bool preLayerNorm() const { return arch == Architecture::Gpt2; }
};

// Parses a Hugging Face config.json (BERT, RoBERTa, DistilBERT and GPT-2 key
// names). Errors name the file and the key.
Result<ModelConfig> parseConfigJson(const std::string& text, const std::string& fileName);
Result<ModelConfig> readConfigJson(const std::filesystem::path& path);

}  // namespace attn
