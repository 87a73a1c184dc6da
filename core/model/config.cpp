// config.json keys read, per model_type:
//   bert, roberta: hidden_size, num_hidden_layers, num_attention_heads,
//     intermediate_size, vocab_size, max_position_embeddings, type_vocab_size,
//     layer_norm_eps, hidden_act, pad_token_id
//   distilbert: dim, n_layers, n_heads, hidden_dim, vocab_size,
//     max_position_embeddings, activation, pad_token_id (LayerNorm eps 1e-12)
//   gpt2: n_embd, n_layer, n_head, n_inner (null = 4 * n_embd), vocab_size,
//     n_positions, layer_norm_epsilon, activation_function
// The architecture comes from model_type, else from architectures[0].
// Also pruned_heads ({"layer": [heads]}, as transformers writes it).
// Checks: positive sizes, hidden divisible by heads, a supported activation.
#include "core/model/config.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace attn {

std::string architectureName(Architecture a) {
  switch (a) {
    case Architecture::Bert:
      return "bert";
    case Architecture::Roberta:
      return "roberta";
    case Architecture::DistilBert:
      return "distilbert";
    case Architecture::Gpt2:
      return "gpt2";
  }
  return "?";
}

namespace {
using nlohmann::json;

Result<int> intKey(const json& j, const char* key, const std::string& file, int fallback = -1) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback >= 0) return fallback;
    return makeError(file + ": missing key \"" + key + "\"");
  }
  // 2^24 bounds every size of real models and keeps products like 4 * hidden in int.
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1 << 24))
    return makeError(file + ": \"" + key +
                     "\" is not a sensible non-negative integer: " + it->dump());
  return static_cast<int>(it->get<int64_t>());
}

// json::value() throws on a type mismatch; these fall back instead, and the
// checks below report what is unusable.
std::string stringKey(const json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

Result<float> floatKey(const json& j, const char* key, const std::string& file, float fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) return makeError(file + ": \"" + key + "\" is not a number: " + it->dump());
  return it->get<float>();
}

Result<Activation> parseActivation(const std::string& s, const std::string& file) {
  if (s == "gelu") return Activation::GeluErf;
  if (s == "gelu_new" || s == "gelu_pytorch_tanh" || s == "gelu_fast") return Activation::GeluTanh;
  if (s == "relu") return Activation::Relu;
  return makeError(file + ": activation \"" + s + "\" is not supported (gelu, gelu_new, relu)");
}
}  // namespace

Result<ModelConfig> parseConfigJson(const std::string& text, const std::string& file) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return makeError(file + ": not a JSON object");
  ModelConfig c;
  std::string type = stringKey(j, "model_type", "");
  if (auto a = j.find("architectures");
      a != j.end() && a->is_array() && !a->empty() && a->front().is_string())
    c.hfClass = a->front().get<std::string>();
  if (type.empty()) {
    const std::string& k = c.hfClass;
    if (k.starts_with("DistilBert"))
      type = "distilbert";
    else if (k.starts_with("Roberta"))
      type = "roberta";
    else if (k.starts_with("Bert"))
      type = "bert";
    else if (k.starts_with("GPT2"))
      type = "gpt2";
  }
#define ATTN_INT(dst, key, ...)                                \
  do {                                                         \
    auto v_ = intKey(j, key, file __VA_OPT__(, ) __VA_ARGS__); \
    if (!v_) return v_.error();                                \
    dst = *v_;                                                 \
  } while (0)
  std::string act;
  if (type == "bert" || type == "roberta") {
    c.arch = type == "bert" ? Architecture::Bert : Architecture::Roberta;
    ATTN_INT(c.hidden, "hidden_size");
    ATTN_INT(c.layers, "num_hidden_layers");
    ATTN_INT(c.heads, "num_attention_heads");
    ATTN_INT(c.intermediate, "intermediate_size");
    ATTN_INT(c.vocabSize, "vocab_size");
    ATTN_INT(c.maxPositions, "max_position_embeddings");
    ATTN_INT(c.typeVocabSize, "type_vocab_size", 2);
    ATTN_INT(c.padTokenId, "pad_token_id", type == "bert" ? 0 : 1);
    auto eps = floatKey(j, "layer_norm_eps", file, 1e-12f);
    if (!eps) return eps.error();
    c.layerNormEps = *eps;
    act = stringKey(j, "hidden_act", "gelu");
  } else if (type == "distilbert") {
    c.arch = Architecture::DistilBert;
    ATTN_INT(c.hidden, "dim");
    ATTN_INT(c.layers, "n_layers");
    ATTN_INT(c.heads, "n_heads");
    ATTN_INT(c.intermediate, "hidden_dim");
    ATTN_INT(c.vocabSize, "vocab_size");
    ATTN_INT(c.maxPositions, "max_position_embeddings");
    ATTN_INT(c.padTokenId, "pad_token_id", 0);
    c.layerNormEps = 1e-12f;
    act = stringKey(j, "activation", "gelu");
  } else if (type == "gpt2") {
    c.arch = Architecture::Gpt2;
    ATTN_INT(c.hidden, "n_embd");
    ATTN_INT(c.layers, "n_layer");
    ATTN_INT(c.heads, "n_head");
    ATTN_INT(c.intermediate, "n_inner", 4 * c.hidden);
    ATTN_INT(c.vocabSize, "vocab_size");
    ATTN_INT(c.maxPositions, "n_positions");
    auto eps = floatKey(j, "layer_norm_epsilon", file, 1e-5f);
    if (!eps) return eps.error();
    c.layerNormEps = *eps;
    act = stringKey(j, "activation_function", "gelu_new");
  } else {
    return makeError(file + ": model type \"" + (type.empty() ? c.hfClass : type) +
                     "\" is not supported (bert, roberta, distilbert, gpt2)");
  }
#undef ATTN_INT
  // Variants whose attention this engine does not compute: refuse rather than
  // return maps that differ from what the model really does.
  const std::string posType = stringKey(j, "position_embedding_type", "absolute");
  if (posType != "absolute")
    return makeError(file + ": position_embedding_type \"" + posType +
                     "\" is not supported (only \"absolute\")");
  auto flag = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
  };
  if (c.arch != Architecture::Gpt2 && flag("is_decoder"))
    return makeError(file + ": \"is_decoder\": true (causal BERT) is not supported");
  if (c.arch == Architecture::Gpt2) {
    auto scale = j.find("scale_attn_weights");
    if (scale != j.end() && scale->is_boolean() && !scale->get<bool>())
      return makeError(file + ": \"scale_attn_weights\": false is not supported");
    for (const char* key : {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"})
      if (flag(key)) return makeError(file + ": \"" + key + "\": true is not supported");
  }
  auto a = parseActivation(act, file);
  if (!a) return a.error();
  c.activation = *a;
  if (c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 || c.intermediate <= 0 || c.vocabSize <= 0 ||
      c.maxPositions <= 0)
    return makeError(file + ": sizes must be positive (hidden " + std::to_string(c.hidden) +
                     ", layers " + std::to_string(c.layers) + ", heads " + std::to_string(c.heads) +
                     ", vocab " + std::to_string(c.vocabSize) + ")");
  if (c.hidden % c.heads != 0)
    return makeError(file + ": hidden size " + std::to_string(c.hidden) + " is not divisible by " +
                     std::to_string(c.heads) + " heads");
  if (!(c.layerNormEps > 0.0f)) return makeError(file + ": layer norm epsilon must be positive");
  if (auto ph = j.find("pruned_heads"); ph != j.end() && !ph->is_null()) {
    if (!ph->is_object()) return makeError(file + ": \"pruned_heads\" must be an object");
    for (const auto& [key, list] : ph->items()) {
      int layer = -1;
      try {
        size_t used = 0;
        layer = std::stoi(key, &used);
        if (used != key.size()) layer = -1;
      } catch (...) {
        layer = -1;
      }
      if (layer < 0 || layer >= c.layers)
        return makeError(file + ": pruned_heads: \"" + key + "\" is not a layer (0 … " +
                         std::to_string(c.layers - 1) + ")");
      if (!list.is_array())
        return makeError(file + ": pruned_heads." + key + " must be a list of heads");
      std::vector<int>& heads = c.prunedHeads[layer];
      for (const auto& h : list) {
        if (!h.is_number_integer() || h.get<int64_t>() < 0 || h.get<int64_t>() >= c.heads)
          return makeError(file + ": pruned_heads." + key + ": " + h.dump() + " is not a head (0 … " +
                           std::to_string(c.heads - 1) + ")");
        heads.push_back(h.get<int>());
      }
      std::sort(heads.begin(), heads.end());
      heads.erase(std::unique(heads.begin(), heads.end()), heads.end());
      if (int(heads.size()) == c.heads)
        return makeError(file + ": pruned_heads." + key + " removes every head of the layer");
      if (heads.empty()) c.prunedHeads.erase(layer);
    }
  }
  return c;
}

Result<ModelConfig> readConfigJson(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError("cannot open '" + path.string() + "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parseConfigJson(text, path.string());
}

}  // namespace attn
