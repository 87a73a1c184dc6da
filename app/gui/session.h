// Session: the only object that calls the engine (DESIGN rule 2). It owns the
// teacher and student models and one worker thread; requests go in as slots,
// results come out as signals carrying immutable shared results. Every
// comparison request gets a generation number; a newer request cancels the
// older one and stale results are dropped (rule 3).
#pragma once

#include <atomic>

#include <QObject>
#include <QString>
#include <QStringList>
#include <QThreadPool>
#include <memory>
#include <optional>
#include <vector>

#include "core/attention/align.h"
#include "core/attention/compare.h"
#include "core/compress/evaluate.h"
#include "core/compress/plan.h"
#include "core/compress/report.h"
#include "core/distill/trainer.h"
#include "core/model/model.h"
#include "core/quant/model_quant.h"
#include "core/sparse/model_sparse.h"
#include "core/util/parallel.h"

namespace attn::app {

enum Side { Teacher = 0, Student = 1 };

struct SideResult {
  std::vector<int32_t> ids;
  QStringList tokens;
  std::vector<std::pair<int32_t, int32_t>> offsets;  // code points of the text
  ForwardResult forward;                             // attention [L, H, S, S]
  std::vector<double> entropy;                       // [L * H] mean row entropy (nats)
  std::vector<double> distance;                      // [L * H] mean attention distance (tokens)
};

struct Comparison {
  quint64 generation = 0;
  QString text;
  bool hasTeacher = false, hasStudent = false;
  SideResult teacher, student;
  // When both ran but tokenized the text differently: their tokens grouped by
  // character offsets, each model's attention mapped onto the groups (attention
  // only), and a label per group (its text, or the special tokens it holds).
  bool aligned = false;
  TokenAlignment alignment;
  ForwardResult alignedTeacher, alignedStudent;
  QStringList groupLabels;
  // Teacher × student layers (and per student head), on the aligned maps when
  // the tokenizations differ.
  LossMatrix loss;
  bool hasLoss = false;
};

// A quantized copy of one model (the student, or the teacher when there is no
// student) under a plan, its forward pass on the current text and how far its
// attention and output are from the float model's.
struct QuantResult {
  quint64 generation = 0;
  quant::ModelQuantPlan plan;
  QString text;
  int side = Student;
  std::shared_ptr<const Model> base;   // the float model it was made from
  std::shared_ptr<const Model> model;  // dequantized weights
  std::vector<quant::TensorReport> tensors;
  int64_t bytesBefore = 0, bytesAfter = 0;
  ForwardResult forward;  // the quantized model on `text` (attention quantized too)
  Fidelity fidelity;      // against the float model on `text`
  bool hasForward = false;
};

// A sparsified copy of one model (the student, or the teacher without one):
// pruned weights and heads, its forward pass with sparse attention on the
// current text, how far it is from the dense model, and a sweep of attention
// sparsity against KL over τ (on the dense maps, no forward pass per point).
struct SparseResult {
  quint64 generation = 0;
  QString text;
  int side = Student;
  std::shared_ptr<const Model> base;
  sparse::ModelPrunePlan plan;  // with the heads chosen by importance
  sparse::SparseModel pruned;
  std::vector<double> importance;  // [L * H] when heads were ranked
  ForwardResult forward;
  std::vector<sparse::SparsityCounts> counts;  // [L * H]
  sparse::SparsityCounts total;
  Fidelity fidelity;
  bool hasForward = false;
  // A preview comes first: the attention rule applied to the dense maps (no
  // forward pass, weights and heads not applied yet), then the full result.
  bool preview = false;
  std::vector<double> sweepTau, sweepSparsity, sweepKl;
};

// The Sparsity panel's curve: attention sparsity and KL against τ on the dense
// maps of a run (21 thresholds, 1e-4 … 0.5, log-spaced); it depends only on the
// run (sparse::thresholdCurve: renormalising kept rows changes neither number).
struct TauCurve {
  std::vector<double> tau, sparsity, kl;
};

// The workspace's compressed student: the Quantization and Sparsity panels'
// whole plan applied together to the student (or the teacher without one), run
// on the current text, against the uncompressed model and — when it tokenizes
// the text the same way — the teacher through the layer mapping.
struct WorkspaceRequest {
  compress::CompressionPlan plan;  // heads: as listed, or ranked below
  int headsToPrune = 0;            // used when plan.prune.heads is empty
  sparse::Importance by = sparse::Importance::Confidence;
  std::vector<int> mapping;        // student layer → teacher layer
  // Quantized matrices whose error histograms the views show (the others' reports
  // come without histograms, which cost more than the quantization itself).
  std::vector<std::string> histograms;  // quantizer report names
};
struct WorkspaceResult {
  quint64 generation = 0;
  QString text;
  int side = Student;
  compress::CompressionPlan plan;  // with the heads it removed
  std::shared_ptr<const Model> base;
  std::shared_ptr<const compress::AppliedPlan> applied;  // weights, masks, codes
  // applied->quantized with the statistics of the requested matrices complete
  // (histograms, levels); the others without histograms.
  std::vector<quant::TensorReport> reports;
  std::shared_ptr<const ForwardResult> reference;  // the uncompressed model on `text`
  std::shared_ptr<const ForwardResult> teacher;    // nullptr: no teacher, or other tokens
  ForwardResult forward;                           // the compressed model (plan's attention settings)
  std::vector<sparse::SparsityCounts> counts;      // [L * H] attention entries kept
  compress::Evaluation eval;                       // on `text`
  std::vector<double> teacherHeadKl;               // [L * H] KL(teacher ‖ compressed) per head
  std::vector<double> studentTeacherHeadKl;        // [L * H] KL(teacher ‖ uncompressed)
  double computeMs = 0.0;                          // worker time for this result
  // The first layer the forward pass computed: 0 = all of them; k > 0 = layers
  // before k were taken over from the previous result (their weights and the
  // attention settings unchanged; bit-identical to a full pass); with
  // resumedAtFfn, layer k's attention block too (only its feed-forward changed).
  int resumedAt = 0;
  bool resumedAtFfn = false;  // layer resumedAt's attention block was taken over too
  // For the Sparsity panel: its τ curve on the uncompressed run (the same object
  // until the text changes) and head importance when ranked.
  std::shared_ptr<const TauCurve> tauCurve;
  std::vector<double> importance;
};

// A sweep or a corpus measurement started from the explorer: the plan, the
// corpus (first maxSentences lines / rows), the layer mapping to the teacher.
struct AnalysisRequest {
  compress::CompressionPlan plan;
  std::vector<compress::SweepAxis> axes;  // empty: measure `plan` alone (corpus view)
  QString corpus, column;
  QString text;                           // used instead of a corpus when corpus is empty
  int maxSentences = 32;
  std::vector<int> mapping;
};

// A distillation run started from the explorer: the trainer's options (layer
// mapping, losses, optimiser), the corpus file it reads and how often the
// student shown in the maps is refreshed from the trainer.
struct TrainRequest {
  distill::TrainOptions options;
  QString corpus, column;
  int refreshEvery = 10;  // steps between student refreshes of the views (0: at the end)
};

class Session : public QObject {
  Q_OBJECT

 public:
  explicit Session(int computeThreads = 0, QObject* parent = nullptr);
  ~Session() override;

  std::shared_ptr<const Model> model(Side side) const { return models_[side]; }
  QString modelPath(Side side) const { return paths_[side]; }
  QString text() const { return text_; }
  quint64 generation() const { return generation_; }
  // Corpus files of examples (.txt, .tsv/.csv column, .jsonl field).
  Result<std::vector<std::string>> corpusColumns(const QString& path) const;
  Result<std::vector<std::string>> readCorpus(const QString& path, const QString& column) const;
  // Small synchronous write of a float32 .npy (exports of what is on screen).
  Status writeArray(const QString& path, const Shape& shape, const std::vector<float>& data);

 public slots:
  // Loads in the worker; on failure the previous model stays.
  void loadModel(int side, const QString& path);
  // Cancels the loads that are queued or running; their models are not replaced.
  void cancelLoads();
  void setText(const QString& text);
  // Quantizes the student (or the teacher without a student) under `plan`.
  // Latest request wins and nothing queues: a running job is cancelled and
  // only the newest plan waits for the worker. An empty plan (nothing
  // quantized) clears the result.
  void setQuantPlan(const attn::quant::ModelQuantPlan& plan);
  // Ranks layers (by = 0) or tensor groups (by = 1) by the damage their
  // quantization alone does on the current text.
  void runSensitivity(int by);
  // Sparsifies the student (or the teacher) under `plan`, removing the
  // `heads` least important heads ranked `by`; latest request wins as for
  // quantization. A plan that changes nothing clears the result.
  void setSparsityPlan(const attn::sparse::ModelPrunePlan& plan, int heads,
                       attn::sparse::Importance by);
  // Distils the loaded student from the loaded teacher on their own thread (the
  // views keep working). Every refreshEvery steps (at most 4 times a second, and
  // once at the end) the student shown everywhere becomes the trainer's current
  // weights. One run at a time.
  void startTraining(const attn::app::TrainRequest& request);
  void pauseTraining();
  void resumeTraining();
  void cancelTraining();  // the student keeps the weights of the last refresh
  // Writes the trained student as a Hugging Face directory (after a run).
  void saveTrainedStudent(const QString& dir);
  // Applies `plan` to the student as loaded (or the teacher without one) and writes
  // it to `dir`: format "hf" (dtype F32 / F16 / BF16), "compressed" or "h5" (one
  // file); with a JSON report beside it when `report` is set. Reports its stages
  // (exportProgress); cancellable at any point, leaving nothing behind.
  void exportStudent(const attn::compress::CompressionPlan& plan, const QString& dir,
                     const QString& format, attn::DType dtype, bool report);
  void cancelExport();
  // The workspace's compressed student (latest request wins, as for quantization).
  // Changes of the attention rule alone reuse the compressed weights.
  void setWorkspacePlan(const attn::app::WorkspaceRequest& request);
  // Sweeps (request.axes set) or measures one plan over a corpus, on their own
  // thread (the views keep working); one at a time, a new one cancels the old.
  void runAnalysis(const attn::app::AnalysisRequest& request);
  void cancelAnalysis();

 signals:
  void loadStarted(int side, QString path);
  void loadProgress(int side, double fraction);  // 0 … 1, a few dozen times per load
  void modelLoaded(int side, QString path);
  void loadFailed(int side, QString path, QString message);
  void comparisonReady(std::shared_ptr<const attn::app::Comparison> result);
  void comparisonFailed(QString message);
  void busyChanged(bool busy);
  void quantReady(std::shared_ptr<const attn::app::QuantResult> result);
  void quantFailed(QString message);
  void sensitivityProgress(int done, int total);
  void sensitivityReady(std::vector<attn::quant::Sensitivity> entries);
  void sensitivityFailed(QString message);
  void sparseReady(std::shared_ptr<const attn::app::SparseResult> result);
  void sparseFailed(QString message);
  void trainingStarted(int steps, int examples, int truncated);
  void trainingStep(attn::distill::StepReport report);
  void trainingPaused(bool paused);
  void studentRefreshed(int step);  // the student in the views is the trainer's at `step`
  void trainingFinished(bool completed, QString message);  // completed, cancelled or failed
  void trainedStudentSaved(QString dir);
  void trainedStudentSaveFailed(QString message);
  void exportProgress(int stage, int stages, QString what);  // stage 0 … stages-1
  // With a report: the figures of the one-page PDF, after the model was written
  // (before exportFinished); the window draws them (GUI thread).
  void exportFigures(QString dir, std::shared_ptr<const attn::compress::ReportFigures> figures);
  void exportFinished(bool ok, QString dir, QString message);
  void workspaceReady(std::shared_ptr<const attn::app::WorkspaceResult> result);
  void workspaceFailed(QString message);
  // A sweep's points as they finish; a corpus measurement's running numbers
  // after each sentence (done sentences of total).
  void analysisStarted(int total);
  void sweepPoint(std::shared_ptr<const attn::compress::SweepPoint> point, int index, int total);
  void corpusPartial(std::shared_ptr<const attn::compress::Evaluation> partial, int done, int total);
  void analysisFinished(bool completed, QString message);

 private:
  void requestComparison();
  void jobStarted();
  void jobFinished();

  std::shared_ptr<const Model> models_[2];
  QString paths_[2];
  int64_t prefaulted_ = 0;  // bytes of heap touched ahead (prefaultHeap), the most asked for
  QString text_;
  quint64 generation_ = 0;
  std::shared_ptr<CancelToken> cancel_;
  std::shared_ptr<CancelToken> loadCancel_ = std::make_shared<CancelToken>();
  void startQuant();
  std::optional<quant::ModelQuantPlan> quantPlan_;  // the current plan (nullopt: none)
  bool quantPending_ = false, quantRunning_ = false;
  quint64 quantGeneration_ = 0;
  std::shared_ptr<CancelToken> quantCancel_;
  std::shared_ptr<CancelToken> scanCancel_;
  struct SparseRequest {
    sparse::ModelPrunePlan plan;
    int heads = 0;
    sparse::Importance by = sparse::Importance::Confidence;
  };
  void startSparse();
  std::optional<SparseRequest> sparseRequest_;
  bool sparsePending_ = false, sparseRunning_ = false;
  quint64 sparseGeneration_ = 0;
  std::shared_ptr<CancelToken> sparseCancel_;
  // Worker-side caches for the sparse jobs (only the worker thread touches them):
  // the dense forward of (model, text) and its τ sweep.
  // Models are remembered by ownership (weak_ptr), not address: a model loaded
  // where a freed one lived is another model.
  struct SparseCache {
    std::weak_ptr<const Model> model;
    QString text;
    std::shared_ptr<const ForwardResult> dense;
    TauCurve sweep;
    int importanceBy = -1;
    std::vector<double> importance;
  };
  std::shared_ptr<SparseCache> sparseCache_ = std::make_shared<SparseCache>();
  // Training: its own thread, so comparisons keep running during a run.
  QThreadPool trainer_;
  std::shared_ptr<distill::RunControl> trainControl_;
  std::shared_ptr<distill::Trainer> trained_;   // the last run's trainer (for saving)
  std::shared_ptr<const Model> trainBase_;      // the student as loaded, before training
  bool training_ = false;
  std::shared_ptr<CancelToken> exportCancel_;
  void startWorkspace();
  std::optional<WorkspaceRequest> workspaceRequest_;
  bool workspacePending_ = false, workspaceRunning_ = false;
  quint64 workspaceGeneration_ = 0;
  std::shared_ptr<CancelToken> workspaceCancel_;
  // Worker-side cache of the workspace job: the reference runs of (model, text)
  // and the last compressed weights with the plan they came from.
  struct WorkspaceCache {
    std::weak_ptr<const Model> model, teacher;
    QString text;
    std::vector<int32_t> ids;
    std::shared_ptr<const ForwardResult> reference, teacherRun;
    std::string weightsKey;  // plan JSON without the attention settings
    std::shared_ptr<const compress::AppliedPlan> applied;
    compress::CompressionPlan appliedPlan;  // the plan `applied` came from
    std::string resultKey;   // the whole request: a repeat only adds histograms
    std::shared_ptr<const WorkspaceResult> last;
    std::string lastAttentionKey;  // last's attention settings (quantizer, sparsity)
    std::shared_ptr<const TauCurve> tauCurve;
    double studentTeacherKl = 0.0;  // the uncompressed model against the teacher
    std::vector<double> studentTeacherHeadKl;
    int importanceBy = -1;
    std::vector<double> importance;
  };
  std::shared_ptr<WorkspaceCache> workspaceCache_ = std::make_shared<WorkspaceCache>();
  std::shared_ptr<std::atomic<int>> referenceDelayMs_ = std::make_shared<std::atomic<int>>(0);
  QThreadPool analysis_;  // sweeps and corpus measurements, one at a time
  std::shared_ptr<CancelToken> analysisCancel_;
  quint64 analysisGeneration_ = 0;

 public:
  bool training() const { return training_; }
  // For tests: the workspace job waits this long before its reference runs of a new
  // text, a window in which a newer request cancels it (0: no wait).
  void setWorkspaceReferenceDelayForTesting(int ms) { referenceDelayMs_->store(ms); }

 private:
  QThreadPool worker_;  // one thread: jobs run in order, never two at once
  std::shared_ptr<ThreadPool> compute_;
  int running_ = 0;
};

}  // namespace attn::app

Q_DECLARE_METATYPE(std::shared_ptr<const attn::app::Comparison>)
Q_DECLARE_METATYPE(std::shared_ptr<const attn::app::QuantResult>)
Q_DECLARE_METATYPE(std::shared_ptr<const attn::app::SparseResult>)
Q_DECLARE_METATYPE(std::shared_ptr<const attn::app::WorkspaceResult>)
Q_DECLARE_METATYPE(std::shared_ptr<const attn::compress::SweepPoint>)
Q_DECLARE_METATYPE(std::shared_ptr<const attn::compress::Evaluation>)
Q_DECLARE_METATYPE(attn::distill::StepReport)
Q_DECLARE_METATYPE(attn::app::TrainRequest)
