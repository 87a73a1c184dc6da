#include "core/model/pruned_heads.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "core/model/hf_writer.h"

namespace attn {

namespace {

// One tensor holding a layer's heads: the axis the heads lie along and how many
// equal parts (GPT-2's fused q | k | v) it has.
struct HeadAxis {
  std::string name;
  int axis = 0;
  int parts = 1;
};

std::vector<HeadAxis> headTensors(const ModelConfig& c, const std::string& prefix, int l) {
  const std::string L = std::to_string(l);
  switch (c.arch) {
    case Architecture::Bert:
    case Architecture::Roberta: {
      const std::string a = prefix + "encoder.layer." + L + ".attention.";
      std::vector<HeadAxis> out;
      for (const char* p : {"query", "key", "value"}) {
        out.push_back({a + "self." + p + ".weight", 0, 1});
        out.push_back({a + "self." + p + ".bias", 0, 1});
      }
      out.push_back({a + "output.dense.weight", 1, 1});
      return out;
    }
    case Architecture::DistilBert: {
      const std::string a = prefix + "transformer.layer." + L + ".attention.";
      std::vector<HeadAxis> out;
      for (const char* p : {"q_lin", "k_lin", "v_lin"}) {
        out.push_back({a + p + ".weight", 0, 1});
        out.push_back({a + p + ".bias", 0, 1});
      }
      out.push_back({a + "out_lin.weight", 1, 1});
      return out;
    }
    case Architecture::Gpt2: {
      const std::string a = prefix + "h." + L + ".attn.";
      return {{a + "c_attn.weight", 1, 3}, {a + "c_attn.bias", 0, 3}, {a + "c_proj.weight", 0, 1}};
    }
  }
  return {};
}

// A copy of `t` with `outHeads` heads along the axis: head moves[i].second of
// the result is head moves[i].first of `t`; everything else zero. Any dtype.
Result<Tensor> moveHeads(const Tensor& t, const HeadAxis& ax, int Dh, int inHeads, int outHeads,
                         const std::vector<std::pair<int, int>>& moves) {
  Shape shape = t.shape();
  if (ax.axis >= int(shape.size())) return makeError(ax.name + ": unexpected rank");
  if (shape[size_t(ax.axis)] != int64_t(ax.parts) * inHeads * Dh)
    return makeError(ax.name + ": " + std::to_string(shape[size_t(ax.axis)]) + " along the head axis; " +
                     std::to_string(int64_t(ax.parts) * inHeads * Dh) + " expected");
  const size_t es = dtypeSize(t.dtype());
  // Rows of the axis: outer = product of dims before it, inner = bytes after it.
  int64_t outer = 1, inner = int64_t(es);
  for (int d = 0; d < ax.axis; ++d) outer *= shape[size_t(d)];
  for (size_t d = size_t(ax.axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t inLen = shape[size_t(ax.axis)], outLen = int64_t(ax.parts) * outHeads * Dh;
  shape[size_t(ax.axis)] = outLen;
  auto holder = std::make_shared<std::vector<uint8_t>>(size_t(outer * outLen * inner), 0);
  const auto* src = static_cast<const uint8_t*>(t.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (int p = 0; p < ax.parts; ++p)
      for (const auto& [from, to] : moves) {
        const int64_t s = (o * inLen + int64_t(p) * inHeads * Dh + int64_t(from) * Dh) * inner;
        const int64_t d = (o * outLen + int64_t(p) * outHeads * Dh + int64_t(to) * Dh) * inner;
        std::memcpy(holder->data() + d, src + s, size_t(Dh * inner));
      }
  return Tensor(t.dtype(), std::move(shape), holder->data(), holder);
}

std::vector<int> keptHeads(int heads, const std::vector<int>& removed) {
  std::vector<int> kept;
  for (int h = 0; h < heads; ++h)
    if (!std::binary_search(removed.begin(), removed.end(), h)) kept.push_back(h);
  return kept;
}

}  // namespace

Status expandPrunedHeads(const ModelConfig& c, Checkpoint& ck) {
  if (c.prunedHeads.empty()) return Ok{};
  const std::string prefix = checkpointPrefix(ck, c.arch);
  const int Dh = c.headDim();
  for (const auto& [layer, removed] : c.prunedHeads) {
    const std::vector<int> kept = keptHeads(c.heads, removed);
    for (const HeadAxis& ax : headTensors(c, prefix, layer)) {
      auto it = ck.tensors.find(ax.name);
      if (it == ck.tensors.end()) continue;  // bindWeights reports missing tensors
      const Tensor& t = it->second.tensor;
      if (ax.axis < int(t.shape().size()) &&
          t.shape()[size_t(ax.axis)] == int64_t(ax.parts) * c.heads * Dh)
        continue;  // already full size (written by this program)
      std::vector<std::pair<int, int>> moves;  // kept head i sits at position i
      for (size_t i = 0; i < kept.size(); ++i) moves.push_back({int(i), kept[i]});
      auto full = moveHeads(t, ax, Dh, int(kept.size()), c.heads, moves);
      if (!full) return makeError("pruned_heads of layer " + std::to_string(layer) + ": " + full.message());
      it->second.tensor = std::move(*full);
    }
  }
  return Ok{};
}

Status cutHeads(const ModelConfig& c, const std::string& prefix,
                const std::map<int, std::vector<int>>& heads,
                std::vector<std::pair<std::string, Tensor>>& tensors) {
  const int Dh = c.headDim();
  std::map<std::string, std::pair<HeadAxis, std::vector<int>>> cut;  // name → axis, kept heads
  for (const auto& [layer, removed] : heads)
    for (const HeadAxis& ax : headTensors(c, prefix, layer)) cut[ax.name] = {ax, keptHeads(c.heads, removed)};
  for (auto& [name, t] : tensors) {
    const auto it = cut.find(name);
    if (it == cut.end()) continue;
    const auto& [ax, kept] = it->second;
    std::vector<std::pair<int, int>> moves;  // the inverse of the expansion
    for (size_t i = 0; i < kept.size(); ++i) moves.push_back({kept[i], int(i)});
    auto small = moveHeads(t, ax, Dh, c.heads, int(kept.size()), moves);
    if (!small) return small.error();
    t = std::move(*small);
  }
  return Ok{};
}

std::map<int, std::vector<int>> mergeHeads(const std::map<int, std::vector<int>>& a,
                                           const std::vector<std::pair<int, int>>& b) {
  std::map<int, std::set<int>> all;
  for (const auto& [l, hs] : a) all[l].insert(hs.begin(), hs.end());
  for (const auto& [l, h] : b) all[l].insert(h);
  std::map<int, std::vector<int>> out;
  for (const auto& [l, hs] : all) out[l] = std::vector<int>(hs.begin(), hs.end());
  return out;
}

}  // namespace attn
