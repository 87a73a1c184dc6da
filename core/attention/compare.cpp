#include "core/attention/compare.h"

#include <algorithm>
#include <cmath>

namespace attn {

std::vector<int> uniformLayerMap(int studentLayers, int teacherLayers) {
  std::vector<int> map(std::max(0, studentLayers));
  if (teacherLayers <= 0) return map;
  for (int j = 0; j < studentLayers; ++j) {
    const double t = std::floor(double(j + 1) * teacherLayers / studentLayers + 0.5) - 1.0;
    map[j] = std::clamp(int(t), 0, teacherLayers - 1);
  }
  return map;
}

std::vector<float> headAverage(const float* attention, int heads, int seq) {
  const size_t n = size_t(seq) * seq;
  std::vector<double> sum(n, 0.0);
  for (int h = 0; h < heads; ++h)
    for (size_t i = 0; i < n; ++i) sum[i] += attention[h * n + i];
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = heads > 0 ? float(sum[i] / heads) : 0.0f;
  return out;
}

}  // namespace attn
