// The student trainer: mini-batches from a tokenized corpus, the losses of
// core/distill/losses.h, AdamW with linear warm-up and linear decay, global-norm
// gradient clipping, optional Group-Lasso and quantization-aware training,
// checkpoints as Hugging Face directories, pause / resume / cancel.
//
// Determinism: batch b of the run is a pure function of (seed, b): the examples are
// taken in the order of a seeded shuffle per epoch; each batch is split into at
// most kChunks fixed chunks whose gradients are summed in order, so a run gives
// the same numbers for the same seed whatever the thread count, and a resumed
// run continues exactly where the checkpoint was written.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/distill/losses.h"
#include "core/model/model.h"
#include "core/quant/model_quant.h"
#include "core/text/tokenizer.h"

namespace attn::distill {

inline constexpr int kChunks = 4;

// Token ids per example, framed as the tokenizer frames them, at most maxTokens
// long (longer ones are cut; `truncated` counts them; empty texts are skipped).
struct TokenizedCorpus {
  std::vector<std::vector<int32_t>> examples;
  int truncated = 0, skipped = 0;
};
TokenizedCorpus tokenizeCorpus(const text::Tokenizer& tokenizer,
                               const std::vector<std::string>& texts, int maxTokens);

// Group-Lasso λ·Σ_g ‖w_g‖₂ over the groups structured pruning removes: a head's
// rows of W_q, W_k, W_v with their biases and its columns of W_o ("heads"), or an
// FFN unit's row of W_in (+ bias) and column of W_out ("ffn").
struct GroupLasso {
  enum class Groups { None, Heads, Ffn };
  Groups groups = Groups::None;
  double lambda = 0.0;
};
// Adds the penalty's gradient to grad and returns its value.
double groupLasso(const Network& net, const GroupLasso& gl, float* grad);
// ‖w_g‖₂ of each group, [layers][groups] row-major (for pruning after training).
std::vector<double> groupNorms(const Network& net, GroupLasso::Groups groups);

struct TrainOptions {
  LossOptions loss;
  int steps = 100;
  int batch = 8;
  int seq = 128;  // longest example, tokens
  double lr = 1e-4;
  double weightDecay = 0.01;
  int warmup = 0;  // steps of linear warm-up from 0, then linear decay to 0 at `steps`
  double beta1 = 0.9, beta2 = 0.999, adamEps = 1e-8;
  double clip = 1.0;  // max global gradient norm; 0: no clipping
  uint64_t seed = 0;
  int threads = 0;  // 0: all cores
  GroupLasso groupLasso;
  // Quantization-aware training: the forward pass sees fake-quantized weights
  // (quantize → dequantize with these specs), the gradient updates the float
  // weights unchanged (straight-through estimator).
  std::optional<quant::ModelQuantPlan> qat;
  // Checkpoints: every `checkpointEvery` steps (0: none) into
  // checkpointDir/step-<N> (Hugging Face directory + trainer_state.safetensors),
  // the newest `keepCheckpoints` kept.
  int checkpointEvery = 0;
  std::filesystem::path checkpointDir;
  int keepCheckpoints = 2;
  // Student attention snapshots for live views: every `snapshotEvery` steps.
  int snapshotEvery = 0;
};

// Learning rate of step t (0-based) of the schedule.
double learningRate(const TrainOptions& o, int step);

struct StepReport {
  int step = 0, steps = 0;  // step = completed steps
  LossValues loss;
  double groupLasso = 0.0;
  double lr = 0.0, gradNorm = 0.0;
  double examplesPerSecond = 0.0;
  int tokens = 0;
};

// Pause / resume / cancel from any thread; the trainer checks between steps.
class RunControl {
 public:
  void pause();
  void resume();
  void cancel();
  bool paused() const { return paused_.load(); }
  bool cancelled() const { return token_.cancelled(); }
  const CancelToken* token() const { return &token_; }
  // Blocks while paused; returns false when cancelled.
  bool waitWhilePaused();

 private:
  std::atomic<bool> paused_{false};
  CancelToken token_;
  std::mutex mu_;
  std::condition_variable cv_;
};

class Trainer {
 public:
  // student: the model to train (its weights are the starting point; checkpoints
  // are written after it, so it must come from a checkpoint directory);
  // teacher: may be null when the losses need none (language-model training).
  static Result<std::unique_ptr<Trainer>> create(std::shared_ptr<const Model> student,
                                                 std::shared_ptr<const Model> teacher,
                                                 TokenizedCorpus corpus, TrainOptions options);
  ~Trainer();

  // Continues from a checkpoint written by this trainer (same options): network,
  // projections, AdamW moments and the step.
  Status resumeFrom(const std::filesystem::path& checkpoint);

  // Runs to options.steps (or until cancelled: no partial checkpoint is written,
  // the last complete one stays). onStep after every step; onSnapshot every
  // snapshotEvery steps with the student's current weights.
  Status run(RunControl& control, const std::function<void(const StepReport&)>& onStep = {},
             const std::function<void(int step, std::shared_ptr<const ModelWeights>)>&
                 onSnapshot = {});

  // One step (used by run; exposed for tests and benchmarks).
  Result<StepReport> step();
  // The loss of a batch without updating anything.
  Result<LossValues> evaluate(const std::vector<std::vector<int32_t>>& examples);

  int completedSteps() const { return step_; }
  const Network& network() const { return net_; }
  std::shared_ptr<const ModelWeights> weights() const;
  // The student as a Hugging Face directory (atomic; refuses a non-empty dir).
  Status save(const std::filesystem::path& dir) const;
  Status writeCheckpoint();
  const TrainOptions& options() const { return opt_; }
  struct Projection {
    int layer = 0;  // student layer
    int64_t rows = 0, cols = 0;
    std::vector<float> values;  // [D_T, D_S]
  };
  std::vector<Projection> projections() const;
  const std::vector<std::filesystem::path>& checkpoints() const { return checkpoints_; }

 private:
  Trainer() = default;
  struct Batch {
    int n = 0, seq = 0;
    std::vector<int32_t> ids, mask;
  };
  Batch batchFor(int step) const;
  Batch pack(const std::vector<const std::vector<int32_t>*>& examples) const;
  Status compute(const Batch& b, LossValues& values, std::vector<float>* grad);
  const Network& forwardNet();  // the net the forward pass uses (fake-quantized under QAT)

  std::shared_ptr<const Model> student_, teacher_;
  Network net_, qatNet_;
  std::optional<Network> teacherNet_;
  ProjectionSlots proj_;
  Buffer extra_;  // projections (aligned: see compute())
  TokenizedCorpus corpus_;
  TrainOptions opt_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<float> m_, v_;  // AdamW moments over [params, extra]
  std::vector<Activations> studentActs_{kChunks}, teacherActs_{kChunks};
  int step_ = 0;
  std::vector<std::filesystem::path> checkpoints_;
};

}  // namespace attn::distill
