// Name adapters. Tensor names per architecture (prefix = one of the listed):
//  BERT   (prefix "" or "bert."):  embeddings.{word,position,token_type}_embeddings.weight,
//         embeddings.LayerNorm.{weight,bias}, encoder.layer.N.attention.self.{query,key,value},
//         encoder.layer.N.attention.output.{dense,LayerNorm}, encoder.layer.N.intermediate.dense,
//         encoder.layer.N.output.{dense,LayerNorm}
//  RoBERTa (prefix "" or "roberta."): as BERT.
//  DistilBERT (prefix "" or "distilbert."): embeddings.{word,position}_embeddings,
//         embeddings.LayerNorm, transformer.layer.N.attention.{q,k,v,out}_lin,
//         transformer.layer.N.{sa_layer_norm,output_layer_norm},
//         transformer.layer.N.ffn.{lin1,lin2}
//  GPT-2  (prefix "" or "transformer."): wte, wpe, h.N.ln_1, h.N.attn.c_attn (Conv1D [D, 3D]),
//         h.N.attn.c_proj ([D, D]), h.N.ln_2, h.N.mlp.c_fc ([D, F]), h.N.mlp.c_proj ([F, D]), ln_f
// LayerNorm weights may use the old names gamma/beta.
#include "core/model/weights.h"

#include <cmath>
#include <cstring>
#include <functional>

namespace attn {

namespace {

class Binder {
 public:
  Binder(const Checkpoint& ck, std::string prefix, std::vector<std::string>& warnings,
         const LoadOptions& options)
      : ck_(ck), prefix_(std::move(prefix)), warnings_(warnings), options_(options) {}

  // Finds prefix+name, checks its shape, converts to F32.
  Result<Tensor> get(const std::string& name, const Shape& expect) {
    const std::string full = prefix_ + name;
    const Tensor* t = ck_.find(full);
    if (t == nullptr) return makeError("tensor '" + full + "' is missing from the checkpoint");
    if (isCancelled(options_.cancel)) return makeError("cancelled");
    if (t->shape() != expect)
      return makeError("tensor '" + full + "' has shape " + shapeString(t->shape()) +
                       ", config says " + shapeString(expect));
    if (t->dtype() != DType::F32 && t->dtype() != DType::F16 && t->dtype() != DType::BF16 &&
        t->dtype() != DType::F64)
      return makeError("tensor '" + full + "' has dtype " + std::string(dtypeName(t->dtype())) +
                       "; weights must be F32, F16, BF16 or F64");
    Tensor f = t->toF32();
    int64_t bad = 0;
    const float* p = f.f32();
    for (int64_t i = 0, n = f.numel(); i < n; ++i) bad += !std::isfinite(p[i]);
    if (bad > 0)
      warnings_.push_back("tensor '" + full + "' has " + std::to_string(bad) + " NaN/Inf values");
    bound_ += double(t->nbytes());
    if (options_.progress && ck_.totalFileBytes > 0)
      options_.progress(std::min(1.0, bound_ / double(ck_.totalFileBytes)));
    return f;
  }

  Result<Linear> linear(const std::string& name, int in, int out, bool inOut = false) {
    Linear l;
    l.in = in;
    l.out = out;
    l.inOut = inOut;
    auto w = get(name + ".weight", inOut ? Shape{in, out} : Shape{out, in});
    if (!w) return w.error();
    auto b = get(name + ".bias", {out});
    if (!b) return b.error();
    l.w = std::move(*w);
    l.b = std::move(*b);
    return l;
  }

  Result<Norm> norm(const std::string& name, int d) {
    const bool old = ck_.find(prefix_ + name + ".gamma") != nullptr;
    auto g = get(name + (old ? ".gamma" : ".weight"), {d});
    if (!g) return g.error();
    auto b = get(name + (old ? ".beta" : ".bias"), {d});
    if (!b) return b.error();
    return Norm{std::move(*g), std::move(*b)};
  }

 private:
  const Checkpoint& ck_;
  std::string prefix_;
  std::vector<std::string>& warnings_;
  const LoadOptions& options_;
  double bound_ = 0.0;
};

#define ATTN_TRY(dst, expr)     \
  do {                          \
    auto r_ = (expr);           \
    if (!r_) return r_.error(); \
    dst = std::move(*r_);       \
  } while (0)

std::string findPrefix(const Checkpoint& ck, const std::string& probe,
                       std::initializer_list<const char*> prefixes) {
  for (const char* p : prefixes)
    if (ck.find(std::string(p) + probe) != nullptr) return p;
  return "";
}

// Tensor names of one encoder layer (after "<layers>.N.") in BERT-like models.
struct EncoderNames {
  const char* prefixed;  // the prefix of task-head checkpoints: "bert.", "distilbert."
  const char* layers;    // "encoder.layer" / "transformer.layer"
  const char *q, *k, *v, *o, *attnNorm, *ffnIn, *ffnOut, *ffnNorm;
};

constexpr EncoderNames kBertNames = {"bert.",
                                     "encoder.layer",
                                     "attention.self.query",
                                     "attention.self.key",
                                     "attention.self.value",
                                     "attention.output.dense",
                                     "attention.output.LayerNorm",
                                     "intermediate.dense",
                                     "output.dense",
                                     "output.LayerNorm"};
constexpr EncoderNames kDistilBertNames = {
    "distilbert.",     "transformer.layer", "attention.q_lin", "attention.k_lin",
    "attention.v_lin", "attention.out_lin", "sa_layer_norm",   "ffn.lin1",
    "ffn.lin2",        "output_layer_norm"};

// BERT, RoBERTa, DistilBERT: embeddings (+ token types when the config has
// them), LayerNorm, then post-LN encoder layers.
Result<ModelWeights> bindEncoder(const ModelConfig& c, const Checkpoint& ck, EncoderNames n,
                                 std::vector<std::string>& warnings, const LoadOptions& o) {
  Binder b(ck, findPrefix(ck, "embeddings.word_embeddings.weight", {"", n.prefixed}), warnings, o);
  const int D = c.hidden, F = c.intermediate;
  ModelWeights w;
  ATTN_TRY(w.wordEmb, b.get("embeddings.word_embeddings.weight", {c.vocabSize, D}));
  ATTN_TRY(w.posEmb, b.get("embeddings.position_embeddings.weight", {c.maxPositions, D}));
  if (c.typeVocabSize > 0)
    ATTN_TRY(w.typeEmb, b.get("embeddings.token_type_embeddings.weight", {c.typeVocabSize, D}));
  ATTN_TRY(w.embNorm, b.norm("embeddings.LayerNorm", D));
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = std::string(n.layers) + "." + std::to_string(i) + ".";
    LayerWeights l;
    ATTN_TRY(l.q, b.linear(p + n.q, D, D));
    ATTN_TRY(l.k, b.linear(p + n.k, D, D));
    ATTN_TRY(l.v, b.linear(p + n.v, D, D));
    ATTN_TRY(l.o, b.linear(p + n.o, D, D));
    ATTN_TRY(l.attnNorm, b.norm(p + n.attnNorm, D));
    ATTN_TRY(l.ffnIn, b.linear(p + n.ffnIn, D, F));
    ATTN_TRY(l.ffnOut, b.linear(p + n.ffnOut, F, D));
    ATTN_TRY(l.ffnNorm, b.norm(p + n.ffnNorm, D));
    w.layers.push_back(std::move(l));
  }
  return w;
}

Result<ModelWeights> bindGpt2(const ModelConfig& c, const Checkpoint& ck,
                              std::vector<std::string>& warnings, const LoadOptions& o) {
  Binder b(ck, findPrefix(ck, "wte.weight", {"", "transformer."}), warnings, o);
  const int D = c.hidden, F = c.intermediate;
  ModelWeights w;
  ATTN_TRY(w.wordEmb, b.get("wte.weight", {c.vocabSize, D}));
  ATTN_TRY(w.posEmb, b.get("wpe.weight", {c.maxPositions, D}));
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    LayerWeights l;
    ATTN_TRY(l.attnNorm, b.norm(p + "ln_1", D));
    ATTN_TRY(l.qkv, b.linear(p + "attn.c_attn", D, 3 * D, true));
    ATTN_TRY(l.o, b.linear(p + "attn.c_proj", D, D, true));
    ATTN_TRY(l.ffnNorm, b.norm(p + "ln_2", D));
    ATTN_TRY(l.ffnIn, b.linear(p + "mlp.c_fc", D, F, true));
    ATTN_TRY(l.ffnOut, b.linear(p + "mlp.c_proj", F, D, true));
    w.layers.push_back(std::move(l));
  }
  ATTN_TRY(w.finalNorm, b.norm("ln_f", D));
  return w;
}

#undef ATTN_TRY

bool isBuffer(const std::string& name) {
  return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") ||
         name.ends_with("position_ids");
}

}  // namespace

int weightLayer(const ModelWeights& w, const Tensor* t) {
  const std::less<const void*> before;
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights* l = &w.layers[i];
    if (!before(t, l) && before(t, l + 1)) return int(i);
  }
  for (const Tensor* e : {&w.wordEmb, &w.posEmb, &w.typeEmb, &w.embNorm.gamma, &w.embNorm.beta})
    if (t == e) return -1;
  return int(w.layers.size());
}

std::vector<std::pair<std::string, const Tensor*>> namedWeights(const ModelConfig& c,
                                                                const ModelWeights& w) {
  std::vector<std::pair<std::string, const Tensor*>> out;
  auto add = [&](const std::string& name, const Tensor& t) {
    if (!t.empty()) out.emplace_back(name, &t);
  };
  auto linear = [&](const std::string& name, const Linear& l) {
    add(name + ".weight", l.w);
    add(name + ".bias", l.b);
  };
  auto norm = [&](const std::string& name, const Norm& n) {
    add(name + ".weight", n.gamma);
    add(name + ".bias", n.beta);
  };
  if (c.arch == Architecture::Gpt2) {
    add("wte.weight", w.wordEmb);
    add("wpe.weight", w.posEmb);
    for (size_t i = 0; i < w.layers.size(); ++i) {
      const std::string p = "h." + std::to_string(i) + ".";
      const LayerWeights& l = w.layers[i];
      norm(p + "ln_1", l.attnNorm);
      linear(p + "attn.c_attn", l.qkv);
      linear(p + "attn.c_proj", l.o);
      norm(p + "ln_2", l.ffnNorm);
      linear(p + "mlp.c_fc", l.ffnIn);
      linear(p + "mlp.c_proj", l.ffnOut);
    }
    norm("ln_f", w.finalNorm);
    return out;
  }
  const EncoderNames& n = c.arch == Architecture::DistilBert ? kDistilBertNames : kBertNames;
  add("embeddings.word_embeddings.weight", w.wordEmb);
  add("embeddings.position_embeddings.weight", w.posEmb);
  add("embeddings.token_type_embeddings.weight", w.typeEmb);
  norm("embeddings.LayerNorm", w.embNorm);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const std::string p = std::string(n.layers) + "." + std::to_string(i) + ".";
    const LayerWeights& l = w.layers[i];
    linear(p + n.q, l.q);
    linear(p + n.k, l.k);
    linear(p + n.v, l.v);
    linear(p + n.o, l.o);
    norm(p + n.attnNorm, l.attnNorm);
    linear(p + n.ffnIn, l.ffnIn);
    linear(p + n.ffnOut, l.ffnOut);
    norm(p + n.ffnNorm, l.ffnNorm);
  }
  return out;
}

std::string linearWeightName(Architecture arch, int layer, const std::string& role) {
  const std::string n = std::to_string(layer);
  if (arch == Architecture::Gpt2) {
    const char* name = role == "o"         ? "attn.c_proj"
                       : role == "ffn_in"  ? "mlp.c_fc"
                       : role == "ffn_out" ? "mlp.c_proj"
                                           : "attn.c_attn";
    return "h." + n + "." + name + ".weight";
  }
  const EncoderNames& e = arch == Architecture::DistilBert ? kDistilBertNames : kBertNames;
  const char* name = role == "q"        ? e.q
                     : role == "k"      ? e.k
                     : role == "v"      ? e.v
                     : role == "o"      ? e.o
                     : role == "ffn_in" ? e.ffnIn
                                        : e.ffnOut;
  return std::string(e.layers) + "." + n + "." + name + ".weight";
}

Result<ModelWeights> bindWeights(const ModelConfig& c, const Checkpoint& ck,
                                 std::vector<std::string>& warnings, const LoadOptions& o) {
  switch (c.arch) {
    case Architecture::Bert:
      return bindEncoder(c, ck, kBertNames, warnings, o);
    case Architecture::Roberta: {
      EncoderNames n = kBertNames;
      n.prefixed = "roberta.";
      return bindEncoder(c, ck, n, warnings, o);
    }
    case Architecture::DistilBert:
      return bindEncoder(c, ck, kDistilBertNames, warnings, o);
    case Architecture::Gpt2:
      return bindGpt2(c, ck, warnings, o);
  }
  return makeError("unknown architecture");
}

int64_t countParameters(const Checkpoint& ck) {
  // Output projections that transformers ties to the word embeddings; when a
  // file stores both and they are equal, the parameters exist once.
  static const char* kTiedHeads[] = {"lm_head.weight", "lm_head.decoder.weight",
                                     "cls.predictions.decoder.weight", "vocab_projector.weight"};
  static const char* kEmbeddings[] = {"wte.weight",
                                      "transformer.wte.weight",
                                      "embeddings.word_embeddings.weight",
                                      "bert.embeddings.word_embeddings.weight",
                                      "roberta.embeddings.word_embeddings.weight",
                                      "distilbert.embeddings.word_embeddings.weight"};
  const Tensor* emb = nullptr;
  for (const char* e : kEmbeddings)
    if ((emb = ck.find(e)) != nullptr) break;
  int64_t n = 0;
  for (const auto& [name, item] : ck.tensors) {
    if (isBuffer(name)) continue;
    const Tensor& t = item.tensor;
    bool tied = false;
    for (const char* h : kTiedHeads)
      tied =
          tied || (name == h && emb != nullptr && emb->shape() == t.shape() &&
                   emb->dtype() == t.dtype() && std::memcmp(emb->raw(), t.raw(), t.nbytes()) == 0);
    if (!tied) n += t.numel();
  }
  return n;
}

namespace {
bool same(const Tensor& a, const Tensor& b) { return a.raw() == b.raw() && a.shape() == b.shape(); }
bool sameNorm(const Norm& a, const Norm& b) { return same(a.gamma, b.gamma) && same(a.beta, b.beta); }
bool sameLinear(const Linear& a, const Linear& b) { return same(a.w, b.w) && same(a.b, b.b); }
}  // namespace

bool sameAttentionBlock(const ModelWeights& before, const ModelWeights& after, int layer) {
  if (layer < 0 || size_t(layer) >= before.layers.size() || size_t(layer) >= after.layers.size())
    return false;
  const LayerWeights &a = before.layers[size_t(layer)], &b = after.layers[size_t(layer)];
  return sameLinear(a.q, b.q) && sameLinear(a.k, b.k) && sameLinear(a.v, b.v) &&
         sameLinear(a.qkv, b.qkv) && sameLinear(a.o, b.o) && sameNorm(a.attnNorm, b.attnNorm);
}

bool sameEmbeddings(const ModelWeights& before, const ModelWeights& after) {
  return same(before.wordEmb, after.wordEmb) && same(before.posEmb, after.posEmb) &&
         same(before.typeEmb, after.typeEmb) && sameNorm(before.embNorm, after.embNorm) &&
         sameNorm(before.finalNorm, after.finalNorm);
}

int firstChangedLayer(const ModelWeights& before, const ModelWeights& after) {
  if (before.layers.size() != after.layers.size() || !sameEmbeddings(before, after)) return 0;
  for (size_t l = 0; l < after.layers.size(); ++l) {
    const LayerWeights &a = before.layers[l], &b = after.layers[l];
    if (!sameAttentionBlock(before, after, int(l)) || !sameLinear(a.ffnIn, b.ffnIn) ||
        !sameLinear(a.ffnOut, b.ffnOut) || !sameNorm(a.ffnNorm, b.ffnNorm))
      return int(l);
  }
  return int(after.layers.size());
}

}  // namespace attn
