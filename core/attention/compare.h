// Comparing teacher and student attention: layer mappings and head averaging.
// Legend: H = heads, S = sequence length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace attn {

// Uniform mapping: student layer j ↔ teacher layer round((j + 1) · Lt / Ls) − 1
// (halves round up), clamped to [0, Lt − 1]. out[j] = teacher layer.
std::vector<int> uniformLayerMap(int studentLayers, int teacherLayers);

// Mean over heads. attention: [H, S, S] → [S, S].
std::vector<float> headAverage(const float* attention, int heads, int seq);

}  // namespace attn

namespace attn {

struct ForwardResult;
class ThreadPool;

// Distillation loss between every (teacher layer, student layer) pair of one
// input. When head counts match, heads are compared one to one; otherwise the
// head-averaged maps are. Padding rows/keys: pass `rows` (1 = real token).
struct LossMatrix {
  int teacherLayers = 0, studentLayers = 0;
  // [Lt][Ls] row-major: mse[t * Ls + s].
  std::vector<double> mse;  // ‖A_T − A_S‖²_F / number of entries
  std::vector<double> kl;   // KL(A_T ‖ A_S), mean over query rows (and heads)
  double at(const std::vector<double>& m, int t, int s) const {
    return m[size_t(t) * studentLayers + s];
  }
  // Per student head: [Lt][Ls][Hs]. Student head h of layer s against teacher
  // head h of layer t when head counts match, else against the teacher's head
  // average of layer t. (The layer values above average these when heads match.)
  int studentHeads = 0;
  std::vector<double> headMse, headKl;
  double headAt(const std::vector<double>& m, int t, int s, int h) const {
    return m[(size_t(t) * studentLayers + s) * studentHeads + h];
  }
};

LossMatrix lossMatrix(const ForwardResult& teacher, const ForwardResult& student,
                      const std::vector<uint8_t>& rows = {});

// The monotone mapping (teacher layer non-decreasing in the student layer) with
// the smallest total loss, by dynamic programming. loss: [Lt][Ls]. out[s] = t.
std::vector<int> bestMonotoneMap(const std::vector<double>& loss, int teacherLayers,
                                 int studentLayers);

// How far a modified model's forward pass (quantized, sparsified) is from the
// original's on the same input: per head (out[l * H + h]) KL(ref ‖ x), JS and
// MSE of the attention maps, averaged over query rows. Rows of x that no
// longer sum to 1 (quantized probabilities) are renormalised for KL and JS;
// MSE uses the maps as they are. hiddenCosine: mean over tokens of the cosine
// between the final hidden states (lastHidden).
struct Fidelity {
  int layers = 0, heads = 0;
  std::vector<double> kl, js, mse;  // [L * H]
  double klMean = 0.0, jsMean = 0.0, mseMean = 0.0;
  double hiddenCosine = 1.0;
};

// A map [S, S] whose rows are distributions again, as fidelity() compares them:
// rows that sum to 1 within float32 softmax rounding (1e-5) are kept as they are,
// others divided by their sum (all zeros: zeros). Returns p itself when every row
// is kept, else buf (filled).
const float* renormalisedRows(const float* p, int S, std::vector<float>& buf);

// pool: maps in parallel (the numbers do not depend on it).
Fidelity fidelity(const ForwardResult& ref, const ForwardResult& x, ThreadPool* pool = nullptr);
// Mean over tokens of the cosine between the final hidden states (lastHidden).
double hiddenCosine(const ForwardResult& ref, const ForwardResult& x);

}  // namespace attn
