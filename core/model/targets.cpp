#include "core/model/targets.h"

#include <algorithm>
#include <sstream>

namespace attn {

Result<std::vector<Target>> parseTargets(const std::string& text) {
  std::vector<Target> out;
  if (text == "all") {
    for (int t = 0; t < kTargetCount; ++t) out.push_back(Target(t));
    return out;
  }
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    int found = -1;
    for (int t = 0; t < kTargetCount; ++t)
      if (item == kTargetNames[t]) found = t;
    if (found < 0)
      return makeError("unknown target '" + item +
                       "' (expected q, k, v, o, ffn_in, ffn_out, emb or all)");
    if (std::find(out.begin(), out.end(), Target(found)) == out.end()) out.push_back(Target(found));
  }
  if (out.empty()) return makeError("no target given");
  return out;
}

namespace {

// A weight matrix as [out, in] row-major (a copy; transposed for Conv1D).
std::vector<float> outIn(const Linear& l) {
  const float* w = l.w.f32();
  const size_t n = size_t(l.in) * size_t(l.out);
  if (!l.inOut) return std::vector<float>(w, w + n);
  std::vector<float> m(n);
  for (int i = 0; i < l.in; ++i)
    for (int o = 0; o < l.out; ++o) m[size_t(o) * l.in + i] = w[size_t(i) * l.out + o];
  return m;
}

Tensor storedLayout(std::vector<float> m, const Linear& l) {
  if (!l.inOut) return Tensor::fromF32({l.out, l.in}, std::move(m));
  std::vector<float> w(m.size());
  for (int o = 0; o < l.out; ++o)
    for (int i = 0; i < l.in; ++i) w[size_t(i) * l.out + o] = m[size_t(o) * l.in + i];
  return Tensor::fromF32({l.in, l.out}, std::move(w));
}

Linear& linearOf(LayerWeights& l, Target t) {
  switch (t) {
    case Target::Q:
      return l.q;
    case Target::K:
      return l.k;
    case Target::V:
      return l.v;
    case Target::O:
      return l.o;
    case Target::FfnIn:
      return l.ffnIn;
    default:
      return l.ffnOut;
  }
}

int64_t bytesOf(const Tensor& t) { return t.empty() ? 0 : 4 * t.numel(); }
}  // namespace

int64_t floatBytes(const ModelWeights& w) {
  int64_t b = bytesOf(w.wordEmb) + bytesOf(w.posEmb) + bytesOf(w.typeEmb) +
              bytesOf(w.embNorm.gamma) + bytesOf(w.embNorm.beta) + bytesOf(w.finalNorm.gamma) +
              bytesOf(w.finalNorm.beta);
  for (const LayerWeights& l : w.layers) {
    for (const Linear* lin : {&l.q, &l.k, &l.v, &l.qkv, &l.o, &l.ffnIn, &l.ffnOut})
      b += bytesOf(lin->w) + bytesOf(lin->b);
    for (const Norm* n : {&l.attnNorm, &l.ffnNorm}) b += bytesOf(n->gamma) + bytesOf(n->beta);
  }
  return b;
}

Status editWeightMatrices(
    const ModelConfig& config, ModelWeights& weights,
    const std::function<bool(int, Target)>& selected,
    const std::function<Status(const WeightMatrix&, std::vector<float>&)>& edit, bool store,
    bool values, bool borrow) {
  const Architecture arch = config.arch;
  // edit, then (when storing) a check that it left a whole matrix (it may have supplied it).
  auto run = [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
    if (Status st = edit(wm, v); !st) return st;
    if (wm.replacement != nullptr && !wm.replacement->empty()) {
      if (wm.replacement->dtype() != DType::F32 || wm.replacement->shape() != Shape{wm.rows, wm.cols})
        return makeError(wm.name + ": an edit left a " + shapeString(wm.replacement->shape()) +
                         " tensor for a " + std::to_string(wm.rows) + " x " + std::to_string(wm.cols) +
                         " float32 matrix");
      return Ok{};
    }
    if (store && int64_t(v.size()) != wm.rows * wm.cols)
      return makeError(wm.name + ": an edit left " + std::to_string(v.size()) + " values for a " +
                       std::to_string(wm.rows) + " x " + std::to_string(wm.cols) + " matrix");
    return Ok{};
  };
  if (selected(-1, Target::Emb)) {
    const bool gpt2 = arch == Architecture::Gpt2;
    const std::pair<Tensor*, const char*> embs[] = {
        {&weights.wordEmb, gpt2 ? "wte.weight" : "embeddings.word_embeddings.weight"},
        {&weights.posEmb, gpt2 ? "wpe.weight" : "embeddings.position_embeddings.weight"},
        {&weights.typeEmb, "embeddings.token_type_embeddings.weight"}};
    for (const auto& [t, name] : embs) {
      if (t->empty()) continue;
      std::vector<float> v;
      if (values) v.assign(t->f32(), t->f32() + t->numel());
      const int64_t rows = t->dim(0), cols = t->dim(1);
      if (Status st = run({name, Target::Emb, -1, rows, cols}, v); !st) return st;
      if (store) *t = Tensor::fromF32({rows, cols}, std::move(v));
    }
  }
  for (int l = 0; l < int(weights.layers.size()); ++l) {
    LayerWeights& lw = weights.layers[size_t(l)];
    for (int ti = 0; ti < kTargetCount - 1; ++ti) {
      const Target t = Target(ti);
      if (!selected(l, t)) continue;
      const std::string role = kTargetNames[ti];
      std::string name = linearWeightName(arch, l, role);
      if (lw.fusedQkv() && (t == Target::Q || t == Target::K || t == Target::V)) {
        // GPT-2: Q, K, V are thirds of c_attn's outputs (rows of the [out, in] matrix).
        const int64_t D = lw.qkv.in, third = ti - int(Target::Q);
        std::vector<float> mat = outIn(lw.qkv);
        name.insert(name.size() - std::string(".weight").size(), "[" + role + "]");
        std::vector<float> part;
        if (values) part.assign(mat.begin() + third * D * D, mat.begin() + (third + 1) * D * D);
        if (Status st = run({name, t, l, D, D}, part); !st) return st;
        if (!store) continue;
        std::copy(part.begin(), part.end(), mat.begin() + third * D * D);
        lw.qkv.w = storedLayout(std::move(mat), lw.qkv);
        continue;
      }
      Linear& lin = linearOf(lw, t);
      const bool lend = borrow && !lin.inOut && lin.w.dtype() == DType::F32;
      std::vector<float> mat = values && !lend ? outIn(lin) : std::vector<float>();
      Tensor replacement;
      const WeightMatrix wm{name, t, l, lin.out, lin.in, lend ? lin.w.f32() : nullptr,
                            lend ? &replacement : nullptr};
      if (Status st = run(wm, mat); !st) return st;
      if (!store) continue;
      lin.w = replacement.empty() ? storedLayout(std::move(mat), lin) : std::move(replacement);
    }
  }
  return Ok{};
}

}  // namespace attn
