// Comparing teacher and student attention: layer mappings and head averaging.
// Legend: H = heads, S = sequence length.
#pragma once

#include <vector>

namespace attn {

// Uniform mapping: student layer j ↔ teacher layer round((j + 1) · Lt / Ls) − 1
// (halves round up), clamped to [0, Lt − 1]. out[j] = teacher layer.
std::vector<int> uniformLayerMap(int studentLayers, int teacherLayers);

// Mean over heads. attention: [H, S, S] → [S, S].
std::vector<float> headAverage(const float* attention, int heads, int seq);

}  // namespace attn
