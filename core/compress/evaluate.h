// Measuring a compression plan on inputs: the compressed model against the
// uncompressed one (and against a teacher) over one sentence or a corpus, per head
// and overall; sweeps over one or two plan parameters; the Pareto front of size
// against fidelity. What the explorer's workspace, trade-off and corpus views show.
// Legend: L = layers, H = heads, S = sequence length.
#pragma once

#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/attention/compare.h"
#include "core/compress/plan.h"

namespace attn::compress {

// Model size in the compressed format (core/compress/compressed.h): quantized
// matrices at their storage size, pruned-only matrices as bitmap + kept values,
// every other weight as float32. bitsPerWeight = 8 · after / weights.
struct PlanSize {
  int64_t before = 0, after = 0;  // bytes
  int64_t weights = 0;            // number of weights (all weight tensors)
  double bitsPerWeight() const { return weights > 0 ? 8.0 * double(after) / double(weights) : 32.0; }
};
PlanSize planSize(const Model& base, const AppliedPlan& applied);
// The error statistics with histograms of the quantized matrix `name` (a
// TensorReport's name) of `applied` — equal to what applyPlan(…, histograms = true)
// reports for it — computed afterwards from the source weights (masked as the plan
// pruned them) and the kept codes: a view needs the histograms of the one or two
// matrices it shows, not of all of them. Error when the plan did not quantize it.
Result<quant::TensorReport> tensorStats(const Model& base, const AppliedPlan& applied,
                                        const std::string& name, int bins = 64,
                                        ThreadPool* pool = nullptr);

// Zeros over the pruned matrices (0 when nothing is pruned).
double weightSparsity(const AppliedPlan& applied);

// What a plan is measured on: per sentence its ids, the uncompressed model's
// forward pass and, when a teacher is given and tokenizes the sentence to the
// same ids, the teacher's. mapping[s] = teacher layer compared with student layer s.
struct Reference {
  std::vector<std::vector<int32_t>> ids;
  std::vector<ForwardResult> student;
  std::vector<std::optional<ForwardResult>> teacher;
  std::vector<int> mapping;
  int teacherSentences() const;
};
// Sentences longer than the model's positions are cut to them; empty ones are
// skipped. progress(done, total) after each sentence.
Result<Reference> makeReference(const Model& student, const Model* teacher,
                                const std::vector<std::string>& texts,
                                const std::vector<int>& mapping, ThreadPool* pool = nullptr,
                                const CancelToken* cancel = nullptr,
                                const std::function<void(int, int)>& progress = {});

// Mean over the mapped layers of KL(A_T ‖ A_X), each the mean over query rows
// (and heads: one to one when the head counts match, else the head averages).
// Rows of A_X that no longer sum to 1 are renormalised first, as fidelity() does.
// Both runs on the same ids. NaN when mapping is empty.
double teacherKl(const ForwardResult& teacher, const ForwardResult& x, const std::vector<int>& mapping);

// Per head of x ([L * H]): KL(teacher head ‖ x head) when the head counts match,
// else KL(teacher's head average ‖ x head); NaN for layers the mapping skips.
std::vector<double> teacherHeadKl(const ForwardResult& teacher, const ForwardResult& x,
                                  const std::vector<int>& mapping, ThreadPool* pool = nullptr);
// teacherKl from teacherHeadKl's values when the head counts match (their mean over
// the mapped layers), without a second pass; else teacherKl itself.
double teacherKlFromHeads(const ForwardResult& teacher, const ForwardResult& x,
                          const std::vector<int>& mapping, const std::vector<double>& headKl);

inline constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

struct Evaluation {
  int layers = 0, heads = 0;
  int sentences = 0;         // measured so far
  std::vector<double> headKl, headJs;  // [L * H] KL / JS to the uncompressed model, mean over sentences
  double klMean = 0.0, jsMean = 0.0, hiddenCosine = 1.0;  // means over sentences
  double teacherKl = kNoValue;         // compressed vs teacher (sentences with a teacher run)
  double studentTeacherKl = kNoValue;  // uncompressed vs teacher, the same sentences
  sparse::SparsityCounts attention;    // attention entries kept by the plan's rule
  PlanSize size;
  double weightSparsity = 0.0;
};

// The compressed model `applied` (applyPlan(base, plan)) run with the plan's
// attention settings on every sentence of `ref`. partial(evaluation so far) after
// each sentence (streamed corpus views).
Result<Evaluation> evaluatePlan(const Model& base, const AppliedPlan& applied,
                                const CompressionPlan& plan, const Reference& ref,
                                ThreadPool* pool = nullptr, const CancelToken* cancel = nullptr,
                                const std::function<void(const Evaluation&)>& partial = {});

// Plan parameters a sweep can vary:
//   Bits      the code width of every quantized target (uniform:v:channel on every
//             linear target when the plan quantizes nothing); binary specs stay binary
//   Tau       the attention threshold rule τ = v on every head
//   Sparsity  the sparsity of every pruned target (magnitude pruning of every
//             linear target when the plan prunes nothing)
enum class SweepParam { Bits, Tau, Sparsity };
const char* sweepParamName(SweepParam p);  // "bits", "tau", "sparsity"
Result<SweepParam> parseSweepParam(const std::string& name);
Result<CompressionPlan> withParam(CompressionPlan plan, SweepParam param, double value);

struct SweepAxis {
  SweepParam param = SweepParam::Bits;
  std::vector<double> values;
};
struct SweepPoint {
  std::vector<double> values;  // one per axis
  CompressionPlan plan;
  Evaluation eval;
};
// Every combination of the axes' values (the first axis outermost), each applied
// to `base` and evaluated on `ref`; onPoint(point, index, total) as each finishes.
// A cancelled sweep returns the error "cancelled" after the points it finished.
Result<std::vector<SweepPoint>> sweep(const Model& base, const CompressionPlan& plan,
                                      const std::vector<SweepAxis>& axes, const Reference& ref,
                                      ThreadPool* pool = nullptr, const CancelToken* cancel = nullptr,
                                      const std::function<void(const SweepPoint&, int, int)>& onPoint = {});

// Indices of the points no other point beats in both x and y (smaller is better
// in both), sorted by x. NaN points are never on the front.
std::vector<int> paretoFront(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace attn::compress
