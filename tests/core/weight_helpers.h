// Comparing the weights of two models (for tests that link attn_core).
#pragma once

#include <algorithm>
#include <string>

#include "core/model/model.h"

namespace attn::test {

// "" when every engine weight of a and b is equal bit for bit; otherwise the name
// of the first that differs (or a note that the lists differ).
inline std::string firstDifferentWeight(const ModelConfig& config, const ModelWeights& a,
                                        const ModelWeights& b) {
  const auto x = namedWeights(config, a), y = namedWeights(config, b);
  if (x.size() != y.size()) return "different numbers of weights";
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].first != y[i].first || x[i].second->numel() != y[i].second->numel() ||
        !std::equal(x[i].second->f32(), x[i].second->f32() + x[i].second->numel(),
                    y[i].second->f32()))
      return x[i].first;
  return "";
}

}  // namespace attn::test
