#include "core/sparse/model_sparse.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/attention/compare.h"
#include "core/attention/metrics.h"

namespace attn::sparse {

bool ModelPrunePlan::prunesWeights() const {
  for (const auto& t : targets)
    if (t) return true;
  return !heads.empty();
}

namespace {
void zeroSlice(Tensor& t, int64_t begin, int64_t end) {  // a bias, elements [begin, end)
  std::vector<float> v(t.f32(), t.f32() + t.numel());
  std::fill(v.begin() + begin, v.begin() + end, 0.0f);
  t = Tensor::fromF32(t.shape(), std::move(v));
}
}  // namespace

Status zeroHeads(const ModelConfig& c, ModelWeights& weights,
                 const std::vector<std::pair<int, int>>& heads) {
  if (heads.empty()) return Ok{};
  const int Dh = c.hidden / std::max(1, c.heads);
  std::map<int, std::vector<int>> byLayer;
  for (const auto& [l, h] : heads) {
    if (l < 0 || l >= c.layers || h < 0 || h >= c.heads)
      return makeError("head (" + std::to_string(l) + ", " + std::to_string(h) + ") is outside the model");
    byLayer[l].push_back(h);
  }
  Status st = editWeightMatrices(
      c, weights,
      [&](int layer, Target t) { return layer >= 0 && t <= Target::O && byLayer.count(layer); },
      [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
        for (int h : byLayer.at(wm.layer)) {
          const int64_t k0 = int64_t(h) * Dh, k1 = k0 + Dh;
          if (wm.target == Target::O) {
            for (int64_t r = 0; r < wm.rows; ++r)
              std::fill(v.begin() + r * wm.cols + k0, v.begin() + r * wm.cols + k1, 0.0f);
          } else {
            std::fill(v.begin() + k0 * wm.cols, v.begin() + k1 * wm.cols, 0.0f);
          }
        }
        return Ok{};
      });
  if (!st) return st;
  for (const auto& [l, h] : heads) {
    LayerWeights& lw = weights.layers[size_t(l)];
    if (lw.fusedQkv()) {
      for (int t = 0; t < 3; ++t)
        zeroSlice(lw.qkv.b, int64_t(t) * c.hidden + h * Dh, int64_t(t) * c.hidden + (h + 1) * Dh);
    } else {
      for (Linear* lin : {&lw.q, &lw.k, &lw.v}) zeroSlice(lin->b, h * Dh, (h + 1) * Dh);
    }
  }
  return Ok{};
}

Result<SparseModel> pruneModel(const Model& base, const ModelPrunePlan& plan,
                               const SparsifyOptions& options) {
  const ModelConfig& c = base.config;
  const int Dh = c.hidden / std::max(1, c.heads);
  for (const auto& [l, h] : plan.heads)
    if (l < 0 || l >= c.layers || h < 0 || h >= c.heads)
      return makeError("there is no head " + std::to_string(h) + " in layer " + std::to_string(l) +
                       " (the model has " + std::to_string(c.layers) + " layers × " +
                       std::to_string(c.heads) + " heads)");
  for (const auto& t : plan.targets)  // the shape checks come per matrix
    if (t && t->method != PruneMethod::NM && !(t->sparsity >= 0.0 && t->sparsity < 1.0))
      return makeError("sparsity must be in [0, 1), not " + std::to_string(t->sparsity));
  if (Status st = validate(plan.attention.all); !st) return st.error();

  auto m = derivedModel(base);
  SparseModel out;
  out.heads = plan.heads;
  auto headsIn = [&](int layer) {
    std::vector<int> hs;
    for (const auto& [l, h] : plan.heads)
      if (l == layer) hs.push_back(h);
    return hs;
  };
  auto touched = [&](int layer, Target t) {
    if (options.only && !options.only(layer, t)) return false;
    if (plan.targets[size_t(t)]) return true;
    return layer >= 0 && t <= Target::O && !headsIn(layer).empty();
  };

  // Global magnitude: one selection over every matrix whose spec is Global.
  std::map<std::string, Bitmap> globalMasks;
  double globalSparsity = -1.0;
  for (const auto& t : plan.targets)
    if (t && t->method == PruneMethod::Global) {
      if (globalSparsity >= 0 && t->sparsity != globalSparsity)
        return makeError("global pruning needs one sparsity for all its targets");
      globalSparsity = t->sparsity;
    }
  if (globalSparsity >= 0 && options.only)
    return makeError("global pruning cannot be applied to some matrices only");
  if (globalSparsity >= 0) {
    std::vector<std::vector<float>> copies;
    std::vector<std::string> names;
    std::vector<MatrixView> views;
    ModelWeights scratch = m->weights;
    Status st = editWeightMatrices(
        c, scratch,
        [&](int, Target t) {
          return plan.targets[size_t(t)] && plan.targets[size_t(t)]->method == PruneMethod::Global;
        },
        [&](const WeightMatrix& wm, std::vector<float>& v) {
          copies.push_back(v);
          names.push_back(wm.name);
          views.push_back({nullptr, wm.rows, wm.cols});
          return Status(Ok{});
        });
    if (!st) return st.error();
    for (size_t i = 0; i < views.size(); ++i) views[i].w = copies[i].data();
    auto masks = globalMagnitudeMasks(views, globalSparsity);
    if (!masks) return masks.error();
    for (size_t i = 0; i < names.size(); ++i) globalMasks[names[i]] = std::move((*masks)[i]);
  }

  out.layerSparsity.assign(size_t(c.layers), 0.0);
  std::vector<int64_t> layerWeights(size_t(c.layers), 0), layerZeros(size_t(c.layers), 0);
  const Status st = editWeightMatrices(
      c, m->weights, touched, [&](const WeightMatrix& wm, std::vector<float>& v) -> Status {
        if (isCancelled(options.cancel)) return makeError("cancelled");
        Bitmap mask;
        const auto& spec = plan.targets[size_t(wm.target)];
        if (spec && spec->method == PruneMethod::Global) {
          mask = std::move(globalMasks[wm.name]);
        } else if (spec) {
          auto r = pruneMask(wm.stored != nullptr ? wm.stored : v.data(), wm.rows, wm.cols, *spec,
                             options.pool);
          if (!r) return makeError(wm.name + ": " + r.message());
          mask = std::move(*r);
        } else {
          mask = Bitmap::ones(wm.rows, wm.cols);
        }
        if (wm.layer >= 0)
          for (int h : headsIn(wm.layer)) {
            const int64_t k0 = int64_t(h) * Dh, k1 = k0 + Dh;
            if (wm.target == Target::O) {  // the head's input columns
              for (int64_t r = 0; r < wm.rows; ++r)
                for (int64_t k = k0; k < k1; ++k) mask.set(r * wm.cols + k, false);
            } else if (wm.target <= Target::V) {  // its output rows of Q, K, V
              for (int64_t r = k0; r < k1; ++r)
                for (int64_t j = 0; j < wm.cols; ++j) mask.set(r * wm.cols + j, false);
            }
          }
        if (wm.stored != nullptr) {  // read where the model keeps it, masked into a new tensor
          Tensor pruned = Tensor::uninitializedF32({wm.rows, wm.cols});
          maskedCopy(wm.stored, mask, pruned.mutableF32(), options.pool);
          *wm.replacement = std::move(pruned);
        } else {
          applyMask(v.data(), mask, options.pool);
        }
        const int64_t zeros = mask.size() - mask.count();
        out.weights += mask.size();
        out.zeros += zeros;
        if (wm.layer >= 0) {
          layerWeights[size_t(wm.layer)] += mask.size();
          layerZeros[size_t(wm.layer)] += zeros;
        }
        out.tensors.push_back({wm.name, wm.target, wm.layer, std::move(mask), {}});
        out.tensors.back().bytes = sparseBytes(out.tensors.back().mask);
        return Ok{};
      },
      /*store=*/true, /*values=*/true, /*borrow=*/true);
  if (!st) return st.error();
  for (int l = 0; l < c.layers; ++l)
    out.layerSparsity[size_t(l)] =
        layerWeights[size_t(l)] > 0 ? double(layerZeros[size_t(l)]) / layerWeights[size_t(l)] : 0.0;
  // The removed heads' Q, K, V biases.
  for (const auto& [l, h] : plan.heads) {
    LayerWeights& lw = m->weights.layers[size_t(l)];
    if (lw.fusedQkv()) {
      for (int t = 0; t < 3; ++t)
        zeroSlice(lw.qkv.b, int64_t(t) * c.hidden + h * Dh, int64_t(t) * c.hidden + (h + 1) * Dh);
    } else {
      for (Linear* lin : {&lw.q, &lw.k, &lw.v}) zeroSlice(lin->b, h * Dh, (h + 1) * Dh);
    }
  }
  out.model = std::move(m);
  return out;
}

Result<Importance> parseImportance(const std::string& text) {
  if (text == "entropy") return Importance::Entropy;
  if (text == "maxweight") return Importance::MaxWeight;
  if (text == "confidence") return Importance::Confidence;
  if (text == "ablation") return Importance::Ablation;
  return makeError("unknown head importance '" + text +
                   "' (expected entropy, maxweight, confidence or ablation)");
}

std::vector<std::pair<int, int>> HeadScores::ranking() const {
  std::vector<int> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return score[size_t(a)] < score[size_t(b)]; });
  std::vector<std::pair<int, int>> out;
  for (int i : order) out.emplace_back(i / heads, i % heads);
  return out;
}

Result<HeadScores> headImportance(const Model& model,
                                  const std::vector<std::vector<int32_t>>& inputs, Importance by,
                                  const SparsifyOptions& options,
                                  const std::function<void(int, int)>& progress) {
  HeadScores hs;
  hs.layers = model.config.layers;
  hs.heads = model.config.heads;
  const int maps = hs.layers * hs.heads;
  hs.score.assign(size_t(maps), 0.0);
  if (inputs.empty()) return makeError("head importance needs at least one input");
  ForwardOptions fo;
  fo.pool = options.pool;
  fo.cancel = options.cancel;
  const int total = int(inputs.size()) * (by == Importance::Ablation ? maps : 1);
  int done = 0;
  for (const auto& ids : inputs) {
    auto ref = forward(model.config, model.weights, ids, {}, fo);
    if (!ref) return ref.error();
    const int S = ref->seq;
    if (by != Importance::Ablation) {
      for (int m = 0; m < maps; ++m) {
        const float* p = ref->attention.data() + size_t(m) * S * S;
        double v = 0.0;
        if (by == Importance::Entropy) {
          v = -attentionEntropy(p, S);
        } else if (by == Importance::MaxWeight) {
          v = *std::max_element(p, p + size_t(S) * S);
        } else {
          for (int i = 0; i < S; ++i)
            v += *std::max_element(p + size_t(i) * S, p + size_t(i + 1) * S);
          v /= S;
        }
        hs.score[size_t(m)] += v / double(inputs.size());
      }
      if (progress) progress(++done, total);
      continue;
    }
    for (int m = 0; m < maps; ++m) {
      ForwardOptions ablate = fo;
      const int L = m / hs.heads, H = m % hs.heads;
      ablate.attentionTransform = [L, H](int layer, int head, float* p, int seq) {
        if (layer == L && head == H) std::fill(p, p + size_t(seq) * seq, 0.0f);
      };
      auto r = forward(model.config, model.weights, ids, {}, ablate);
      if (!r) return r.error();
      hs.score[size_t(m)] += (1.0 - hiddenCosine(*ref, *r)) / double(inputs.size());
      if (progress) progress(++done, total);
    }
  }
  return hs;
}

}  // namespace attn::sparse
