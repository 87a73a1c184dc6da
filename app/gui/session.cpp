#include "app/gui/session.h"

#include <QElapsedTimer>
#include <QPointer>
#include <chrono>
#include <cmath>
#include <thread>

#include "core/attention/metrics.h"
#include "core/io/npy.h"
#include "core/compress/export.h"
#include "core/compress/report.h"
#include "core/io/atomic_file.h"
#include "core/model/hf_writer.h"
#include "core/text/corpus.h"
#include "core/util/memory.h"

namespace attn::app {

namespace {
constexpr int kPropagateDelayMs = 100;

// The same model object (the same owner, even if it has since been freed), or both
// none. Unlike comparing addresses, a model loaded where a freed one lived differs.
bool sameModel(const std::weak_ptr<const Model>& remembered, const std::shared_ptr<const Model>& m) {
  return !remembered.owner_before(m) && !m.owner_before(remembered);
}

// Runs `work` on `pool`, then `done(result)` on `receiver`'s thread.
template <class Work, class Done>
void runThen(QThreadPool& pool, QObject* receiver, Work work, Done done) {
  QPointer<QObject> guard(receiver);
  pool.start([guard, work = std::move(work), done = std::move(done)]() mutable {
    lowerThreadPriority();  // the GUI thread first (the pool's threads are the session's own)
    auto result = work();
    if (!guard) return;
    QMetaObject::invokeMethod(
        guard.data(),
        [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); },
        Qt::QueuedConnection);
  });
}

// Runs fn(session) on the session's thread, later, if the session still exists
// (progress and partial results from a worker).
template <class Fn>
void postTo(const QPointer<Session>& self, Fn fn) {
  if (!self) return;
  QMetaObject::invokeMethod(
      self.data(),
      [self, fn = std::move(fn)]() mutable {
        if (self) fn(*self);
      },
      Qt::QueuedConnection);
}

Result<SideResult> runSide(const Model& m, const QString& text, ThreadPool* pool,
                           const CancelToken* cancel) {
  if (!m.tokenizer) return makeError("the model has no tokenizer files");
  const text::Encoding e = m.tokenizer->encode(text.toStdString());
  if (e.ids.size() > size_t(m.config.maxPositions))
    return makeError("the text has " + std::to_string(e.ids.size()) + " tokens; the model allows " +
                     std::to_string(m.config.maxPositions));
  ForwardOptions opt;
  opt.pool = pool;
  opt.cancel = cancel;
  auto r = forward(m.config, m.weights, e.ids, {}, opt);
  if (!r) return r.error();
  SideResult s;
  s.ids = e.ids;
  for (const auto& t : e.tokens) s.tokens << QString::fromStdString(t);
  s.offsets = e.offsets;
  s.forward = std::move(*r);
  s.entropy =
      headEntropies(s.forward.attention.data(), s.forward.layers, s.forward.heads, s.forward.seq);
  for (int l = 0; l < s.forward.layers; ++l)
    for (int h = 0; h < s.forward.heads; ++h)
      s.distance.push_back(meanAttentionDistance(s.forward.attentionMap(l, h), s.forward.seq));
  return s;
}
// Groups the two tokenizations by character offsets and maps both models'
// attention onto the groups.
void alignSides(Comparison& c) {
  c.alignment = alignTokens(c.teacher.offsets, c.student.offsets);
  const int g = c.alignment.groups;
  if (g == 0) return;
  c.aligned = true;
  c.alignedTeacher = alignedAttention(c.teacher.forward, c.alignment.groupA, g);
  c.alignedStudent = alignedAttention(c.student.forward, c.alignment.groupB, g);
  const QList<uint> chars = c.text.toUcs4();
  for (int i = 0; i < g; ++i) {
    const auto [b, e] = c.alignment.spans[size_t(i)];
    if (b < 0) {  // special tokens: the teacher's, as its tokenizer names them
      QStringList names;
      for (size_t t = 0; t < c.alignment.groupA.size(); ++t)
        if (c.alignment.groupA[t] == i) names << c.teacher.tokens[qsizetype(t)];
      c.groupLabels << names.join(' ');
      continue;
    }
    QString label;
    for (int k = b; k < e && k < int(chars.size()); ++k)
      label += QString::fromUcs4(reinterpret_cast<const char32_t*>(&chars[k]), 1);
    c.groupLabels << label.simplified();
  }
}
// The Sparsity panel's τ curve (TauCurve).
Result<TauCurve> tauCurve(const ForwardResult& ref,
                          ThreadPool* pool, const CancelToken* cancel) {
  // The preview's numbers (sparsity and KL do not depend on renormalising) for
  // 21 τ from 1e-4 to 0.5, in one pass over the maps.
  if (isCancelled(cancel)) return makeError("cancelled");
  std::vector<double> taus;
  for (int k = 0; k <= 20; ++k) taus.push_back(1e-4 * std::pow(0.5 / 1e-4, k / 20.0));
  TauCurve c;
  for (const sparse::ThresholdPoint& p : sparse::thresholdCurve(ref, taus, pool)) {
    c.tau.push_back(p.tau);
    c.sparsity.push_back(p.sparsity);
    c.kl.push_back(p.klMean);
  }
  return c;
}

}  // namespace

Session::Session(int computeThreads, QObject* parent) : QObject(parent) {
  qRegisterMetaType<std::shared_ptr<const Comparison>>();
  qRegisterMetaType<std::shared_ptr<const QuantResult>>();
  qRegisterMetaType<std::shared_ptr<const SparseResult>>();
  qRegisterMetaType<distill::StepReport>();
  qRegisterMetaType<TrainRequest>();
  qRegisterMetaType<std::shared_ptr<const WorkspaceResult>>();
  qRegisterMetaType<std::shared_ptr<const compress::SweepPoint>>();
  qRegisterMetaType<std::shared_ptr<const compress::Evaluation>>();
  trainer_.setMaxThreadCount(1);
  analysis_.setMaxThreadCount(1);
  worker_.setMaxThreadCount(1);
  const int n =
      computeThreads > 0 ? computeThreads : std::max(1, int(std::thread::hardware_concurrency()));
  compute_ = std::make_shared<ThreadPool>(n, /*background=*/true);
}

Session::~Session() {
  for (const auto& c : {cancel_, quantCancel_, scanCancel_, loadCancel_, sparseCancel_,
                        workspaceCancel_, analysisCancel_})
    if (c) c->cancel();
  worker_.waitForDone();
  analysis_.waitForDone();
}

void Session::jobStarted() {
  if (running_++ == 0) emit busyChanged(true);
}

void Session::jobFinished() {
  if (--running_ == 0) emit busyChanged(false);
}

Result<std::vector<std::string>> Session::corpusColumns(const QString& path) const {
  return text::corpusColumns(path.toStdString());
}

Result<std::vector<std::string>> Session::readCorpus(const QString& path,
                                                     const QString& column) const {
  return text::readCorpus(path.toStdString(), column.toStdString());
}

Status Session::writeArray(const QString& path, const Shape& shape,
                           const std::vector<float>& data) {
  return writeNpyF32(path.toStdString(), shape, data.data());
}

void Session::cancelLoads() {
  loadCancel_->cancel();
  loadCancel_ = std::make_shared<CancelToken>();  // later loads are not affected
}

void Session::loadModel(int side, const QString& path) {
  if (side != Teacher && side != Student) return;
  emit loadStarted(side, path);
  jobStarted();
  QPointer<Session> self(this);
  auto cancel = loadCancel_;
  runThen(
      worker_, this,
      [path, side, self, cancel]() -> Result<std::shared_ptr<const Model>> {
        if (cancel->cancelled()) return makeError("cancelled");
        LoadOptions opt;
        opt.cancel = cancel.get();
        int lastPercent = -1;
        opt.progress = [&](double f) {
          const int percent = int(f * 100);
          if (percent == lastPercent || !self) return;
          lastPercent = percent;
          postTo(self, [side, f](Session& s) { emit s.loadProgress(side, f); });
        };
        return attn::loadModel(path.toStdString(), opt);
      },
      [this, side, path](Result<std::shared_ptr<const Model>> r) {
        jobFinished();
        if (!r) {
          emit loadFailed(side, path, QString::fromStdString(r.message()));
          return;
        }
        models_[side] = *r;
        paths_[side] = path;
        // The compressed copies of this model (two at a time, the shown result and
        // the next, each with its codes: ~2.5 × its float bytes) come from pages the
        // process touches now, in the background, not during the first control
        // changes (see prefaultHeap).
        const int64_t bytes = std::min<int64_t>(floatBytes((*r)->weights) * 5 / 2, int64_t(1536) << 20);
        if (bytes > prefaulted_) {
          prefaulted_ = bytes;
          QThreadPool::globalInstance()->start([bytes] {
            lowerThreadPriority();
            prefaultHeap(size_t(bytes));
          });
        }
        emit modelLoaded(side, path);
        requestComparison();
        if (quantPlan_) setQuantPlan(*quantPlan_);  // a new model to quantize
        if (sparseRequest_)
          setSparsityPlan(sparseRequest_->plan, sparseRequest_->heads, sparseRequest_->by);
      });
}

void Session::setText(const QString& text) {
  text_ = text;
  requestComparison();
  if (quantPlan_) setQuantPlan(*quantPlan_);  // its forward pass depends on the text
  if (sparseRequest_)
    setSparsityPlan(sparseRequest_->plan, sparseRequest_->heads, sparseRequest_->by);
}

void Session::setSparsityPlan(const sparse::ModelPrunePlan& plan, int heads,
                              sparse::Importance by) {
  if (sparseCancel_) sparseCancel_->cancel();
  ++sparseGeneration_;
  if (!plan.prunesWeights() && !plan.attention.active() && heads <= 0 && plan.heads.empty()) {
    sparseRequest_.reset();
    sparsePending_ = false;
    emit sparseReady(nullptr);
    return;
  }
  sparseRequest_ = SparseRequest{plan, heads, by};
  sparsePending_ = true;
  if (!sparseRunning_) startSparse();
}

void Session::startSparse() {
  const int side = models_[Student] ? Student : Teacher;
  const auto base = models_[side];
  if (!sparsePending_ || !sparseRequest_) return;
  sparsePending_ = false;
  if (!base || !base->tokenizer) return;
  sparseRunning_ = true;
  sparseCancel_ = std::make_shared<CancelToken>();
  auto cancel = sparseCancel_;
  const SparseRequest req = *sparseRequest_;
  const quint64 gen = sparseGeneration_;
  const QString text = text_;
  auto compute = compute_;
  auto cacheRef = sparseCache_;
  QPointer<Session> self(this);
  jobStarted();
  runThen(
      worker_, this,
      [=]() -> Result<std::shared_ptr<const SparseResult>> {
        auto ids = base->tokenizer->encode(text.toStdString()).ids;
        if (ids.size() > size_t(base->config.maxPositions))
          return makeError("the text is longer than the model allows");
        sparse::SparsifyOptions so;
        so.pool = compute.get();
        so.cancel = cancel.get();
        ForwardOptions fo;
        fo.pool = compute.get();
        fo.cancel = cancel.get();
        SparseCache& cache = *cacheRef;
        if (!sameModel(cache.model, base) || cache.text != text || !cache.dense) {
          auto ref = forward(base->config, base->weights, ids, {}, fo);
          if (!ref) return ref.error();
          cache = SparseCache{};
          cache.model = base;
          cache.text = text;
          cache.dense = std::make_shared<const ForwardResult>(std::move(*ref));
        }
        const ForwardResult& ref = *cache.dense;
        auto make = [&] {
          auto r = std::make_shared<SparseResult>();
          r->generation = gen;
          r->text = text;
          r->side = side;
          r->base = base;
          r->plan = req.plan;
          return r;
        };
        // Stage 1, the preview: quick enough to follow a dragged slider.
        {
          auto r = make();
          const sparse::Preview pv = sparse::preview(ref, req.plan.attention, compute.get());
          r->forward = pv.sparse;
          r->counts = pv.counts;
          r->total = pv.total;
          r->fidelity.klMean = pv.klMean;
          r->hasForward = true;
          r->preview = true;
          r->sweepTau = cache.sweep.tau;
          r->sweepSparsity = cache.sweep.sparsity;
          r->sweepKl = cache.sweep.kl;
          postTo(self, [r = std::shared_ptr<const SparseResult>(std::move(r)), gen](Session& s) {
            if (gen == s.sparseGeneration_) emit s.sparseReady(r);
          });
        }
        // While a slider is dragged a newer plan comes within a few tens of ms:
        // wait a little for one before the (long) propagated run, so the worker is
        // free for the next preview at once.
        for (int waited = 0; waited < kPropagateDelayMs && !cancel->cancelled(); waited += 2)
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (cancel->cancelled()) return makeError("cancelled");  // a newer plan is waiting
        // Stage 2: heads, weights, the propagated forward pass, the τ sweep.
        auto r = make();
        if (req.heads > 0) {
          if (cache.importanceBy != int(req.by)) {
            auto scores = sparse::headImportance(*base, {ids}, req.by, so);
            if (!scores) return scores.error();
            cache.importance = scores->score;
            cache.importanceBy = int(req.by);
          }
          sparse::HeadScores hs;
          hs.layers = base->config.layers;
          hs.heads = base->config.heads;
          hs.score = cache.importance;
          const auto rank = hs.ranking();
          r->plan.heads.assign(rank.begin(),
                               rank.begin() + std::min<size_t>(size_t(req.heads), rank.size()));
          r->importance = cache.importance;
        }
        auto pruned = sparse::pruneModel(*base, r->plan, so);
        if (!pruned) return pruned.error();
        r->pruned = std::move(*pruned);
        const int H = base->config.heads;
        r->counts.assign(size_t(base->config.layers) * H, {});
        auto got = forward(r->pruned.model->config, r->pruned.model->weights, ids, {},
                           sparse::withAttentionSparsity(fo, r->plan.attention, &r->counts, H));
        if (!got) return got.error();
        for (const auto& c : r->counts) r->total.add(c);
        r->fidelity = fidelity(ref, *got);
        r->forward = std::move(*got);
        r->hasForward = true;
        // Sparsity against KL over τ on the dense maps: once per model and text.
        if (cache.sweep.tau.empty()) {
          auto curve = tauCurve(ref, compute.get(), cancel.get());
          if (!curve) return curve.error();
          cache.sweep = std::move(*curve);
        }
        r->sweepTau = cache.sweep.tau;
        r->sweepSparsity = cache.sweep.sparsity;
        r->sweepKl = cache.sweep.kl;
        return std::shared_ptr<const SparseResult>(std::move(r));
      },
      [this, gen](Result<std::shared_ptr<const SparseResult>> r) {
        jobFinished();
        sparseRunning_ = false;
        if (gen == sparseGeneration_) {
          if (r)
            emit sparseReady(*r);
          else if (r.message() != "cancelled")
            emit sparseFailed(QString::fromStdString(r.message()));
        }
        if (sparsePending_) startSparse();
      });
}

void Session::setQuantPlan(const quant::ModelQuantPlan& plan) {
  if (quantCancel_) quantCancel_->cancel();
  ++quantGeneration_;
  if (!plan.quantizesWeights() && plan.attention.kind == quant::AttentionQuant::Kind::None) {
    quantPlan_.reset();
    quantPending_ = false;
    emit quantReady(nullptr);
    return;
  }
  quantPlan_ = plan;
  quantPending_ = true;
  if (!quantRunning_) startQuant();
}

void Session::startQuant() {
  const int side = models_[Student] ? Student : Teacher;
  const auto base = models_[side];
  if (!quantPending_ || !quantPlan_) return;
  quantPending_ = false;
  if (!base) return;
  quantRunning_ = true;
  quantCancel_ = std::make_shared<CancelToken>();
  auto cancel = quantCancel_;
  const auto plan = *quantPlan_;
  const quint64 gen = quantGeneration_;
  const QString text = text_;
  auto compute = compute_;
  jobStarted();
  runThen(
      worker_, this,
      [=]() -> Result<std::shared_ptr<const QuantResult>> {
        if (cancel->cancelled()) return makeError("cancelled");
        quant::QuantizeModelOptions qo;
        qo.pool = compute.get();
        qo.cancel = cancel.get();
        auto q = quant::quantizeModel(*base, plan, qo);
        if (!q) return q.error();
        auto r = std::make_shared<QuantResult>();
        r->generation = gen;
        r->plan = plan;
        r->text = text;
        r->side = side;
        r->base = base;
        r->model = q->model;
        r->tensors = std::move(q->tensors);
        r->bytesBefore = q->bytesBefore;
        r->bytesAfter = q->bytesAfter;
        if (base->tokenizer && !text.isEmpty()) {
          const auto ids = base->tokenizer->encode(text.toStdString()).ids;
          if (ids.size() <= size_t(base->config.maxPositions)) {
            ForwardOptions fo;
            fo.pool = compute.get();
            fo.cancel = cancel.get();
            auto ref = forward(base->config, base->weights, ids, {}, fo);
            if (!ref) return ref.error();
            auto got = forward(r->model->config, r->model->weights, ids, {},
                               quant::withAttentionQuant(fo, plan.attention));
            if (!got) return got.error();
            r->fidelity = fidelity(*ref, *got);
            r->forward = std::move(*got);
            r->hasForward = true;
          }
        }
        return std::shared_ptr<const QuantResult>(std::move(r));
      },
      [this, gen](Result<std::shared_ptr<const QuantResult>> r) {
        jobFinished();
        quantRunning_ = false;
        if (gen == quantGeneration_) {
          if (r)
            emit quantReady(*r);
          else if (r.message() != "cancelled")
            emit quantFailed(QString::fromStdString(r.message()));
        }
        if (quantPending_) startQuant();  // the newest plan, never a backlog
      });
}

void Session::runSensitivity(int by) {
  const int side = models_[Student] ? Student : Teacher;
  const auto base = models_[side];
  if (!base || !quantPlan_ || !base->tokenizer) {
    emit sensitivityFailed(tr("load a model and choose tensors to quantize first"));
    return;
  }
  const auto plan = *quantPlan_;
  const auto ids = base->tokenizer->encode(text_.toStdString()).ids;
  auto compute = compute_;
  QPointer<Session> self(this);
  if (scanCancel_) scanCancel_->cancel();  // a newer scan replaces a running one
  scanCancel_ = std::make_shared<CancelToken>();
  auto cancel = scanCancel_;
  jobStarted();
  runThen(
      worker_, this,
      [=]() -> Result<std::vector<quant::Sensitivity>> {
        quant::QuantizeModelOptions qo;
        qo.pool = compute.get();
        qo.cancel = cancel.get();
        return quant::sensitivityScan(
            *base, plan, ids, by == 0 ? quant::SensitivityBy::Layer : quant::SensitivityBy::Target,
            qo, [self](int done, int total) {
              if (!self) return;
              postTo(self, [done, total](Session& s) { emit s.sensitivityProgress(done, total); });
            });
      },
      [this, cancel](Result<std::vector<quant::Sensitivity>> r) {
        jobFinished();
        if (cancel != scanCancel_) return;  // replaced by a newer scan
        if (r)
          emit sensitivityReady(*r);
        else
          emit sensitivityFailed(QString::fromStdString(r.message()));
      });
}

void Session::requestComparison() {
  if (cancel_) cancel_->cancel();  // the older request stops at its next poll
  cancel_ = std::make_shared<CancelToken>();
  const quint64 gen = ++generation_;
  if (!models_[Teacher] && !models_[Student]) return;
  auto cancel = cancel_;
  auto teacher = models_[Teacher], student = models_[Student];
  auto compute = compute_;
  const QString text = text_;
  jobStarted();
  runThen(
      worker_, this,
      [=]() -> Result<std::shared_ptr<const Comparison>> {
        auto c = std::make_shared<Comparison>();
        c->generation = gen;
        c->text = text;
        if (cancel->cancelled()) return makeError("cancelled");
        if (teacher) {
          auto r = runSide(*teacher, text, compute.get(), cancel.get());
          if (!r) return makeError("teacher: " + r.message());
          c->teacher = std::move(*r);
          c->hasTeacher = true;
        }
        if (student) {
          auto r = runSide(*student, text, compute.get(), cancel.get());
          if (!r) return makeError("student: " + r.message());
          c->student = std::move(*r);
          c->hasStudent = true;
        }
        if (c->hasTeacher && c->hasStudent && c->teacher.ids == c->student.ids) {
          c->loss = lossMatrix(c->teacher.forward, c->student.forward);
          c->hasLoss = true;
        } else if (c->hasTeacher && c->hasStudent) {
          alignSides(*c);
          if (cancel->cancelled()) return makeError("cancelled");
          if (c->aligned) {
            c->loss = lossMatrix(c->alignedTeacher, c->alignedStudent);
            c->hasLoss = true;
          }
        }
        return std::shared_ptr<const Comparison>(std::move(c));
      },
      [this, gen](Result<std::shared_ptr<const Comparison>> r) {
        jobFinished();
        if (gen != generation_) return;  // a newer request superseded this one
        if (!r) {
          emit comparisonFailed(QString::fromStdString(r.message()));
          return;
        }
        emit comparisonReady(*r);
      });
}

// ---------------------------------------------------------------- training

namespace {
constexpr auto kMinRefreshInterval = std::chrono::milliseconds(250);
}

void Session::startTraining(const TrainRequest& request) {
  if (training_) {
    emit trainingFinished(false, tr("a run is already going"));
    return;
  }
  auto teacher = models_[Teacher], student = models_[Student];
  if (!teacher || !student) {
    emit trainingFinished(false, tr("load a teacher and a student first"));
    return;
  }
  // A run starts from the student as shown (a freshly loaded one, or where the
  // last run stopped); checkpoints are written after the model loaded from disk.
  if (!student->checkpoint.tensors.empty()) trainBase_ = student;
  if (!trainBase_ || trainBase_->source != student->source) {
    emit trainingFinished(false, tr("the student was not loaded from a checkpoint"));
    return;
  }
  if (!trainBase_->tokenizer) {
    emit trainingFinished(false, tr("the student has no tokenizer to read the corpus with"));
    return;
  }
  auto start = std::make_shared<Model>(*trainBase_);
  start->weights = student->weights;
  training_ = true;
  trained_.reset();
  trainControl_ = std::make_shared<distill::RunControl>();
  auto control = trainControl_;
  std::shared_ptr<const Model> base = start;
  const int threads = compute_ ? compute_->threads() : 1;
  QPointer<Session> self(this);
  struct Outcome {
    std::shared_ptr<distill::Trainer> trainer;
    Status status = Ok{};
  };
  runThen(
      trainer_, this,
      [request, teacher, base, control, threads, self]() -> Outcome {
        Outcome out;
        auto texts = text::readCorpus(request.corpus.toStdString(), request.column.toStdString());
        if (!texts) {
          out.status = texts.error();
          return out;
        }
        if (teacher->tokenizer)
          for (size_t i = 0; i < std::min<size_t>(texts->size(), 16); ++i)
            if (teacher->tokenizer->encode((*texts)[i]).ids != base->tokenizer->encode((*texts)[i]).ids) {
              out.status = makeError("teacher and student tokenize the corpus differently; "
                                     "distillation needs a shared vocabulary");
              return out;
            }
        distill::TrainOptions o = request.options;
        o.threads = threads;
        o.snapshotEvery = request.refreshEvery;
        distill::TokenizedCorpus corpus = distill::tokenizeCorpus(*base->tokenizer, *texts, o.seq);
        const int examples = int(corpus.examples.size()), truncated = corpus.truncated;
        auto t = distill::Trainer::create(base, teacher, std::move(corpus), o);
        if (!t) {
          out.status = t.error();
          return out;
        }
        out.trainer = std::shared_ptr<distill::Trainer>(std::move(*t));
        postTo(self, [steps = o.steps, examples, truncated](Session& s) {
          emit s.trainingStarted(steps, examples, truncated);
        });
        out.status = out.trainer->run(
            *control,
            [self](const distill::StepReport& r) {
              postTo(self, [r](Session& s) { emit s.trainingStep(r); });
            },
            [self, base, lastRefresh = std::chrono::steady_clock::time_point{}](
                int step, std::shared_ptr<const ModelWeights> w) mutable {
              // At most a few refreshes a second: each one is a forward pass and a
              // redraw of every view, which must not crowd the GUI thread.
              const auto now = std::chrono::steady_clock::now();
              if (now - lastRefresh < kMinRefreshInterval) return;
              lastRefresh = now;
              auto m = derivedModel(*base);
              m->weights = *w;
              std::shared_ptr<const Model> snapshot = std::move(m);
              postTo(self, [snapshot, step](Session& s) {
                if (!s.training_) return;
                s.models_[Student] = snapshot;
                emit s.studentRefreshed(step);
                s.requestComparison();
              });
            });
        return out;
      },
      [this](Outcome out) {
        training_ = false;
        trained_ = out.trainer;
        if (out.trainer && trained_->completedSteps() > 0) {  // show where it stopped
          auto m = derivedModel(*trainBase_);
          m->weights = *trained_->weights();
          models_[Student] = std::move(m);
          emit studentRefreshed(trained_->completedSteps());
          requestComparison();
        }
        const bool ok = out.status.ok();
        emit trainingFinished(ok, ok ? tr("finished") : QString::fromStdString(out.status.message()));
      });
}

void Session::pauseTraining() {
  if (!training_ || !trainControl_) return;
  trainControl_->pause();
  emit trainingPaused(true);
}

void Session::resumeTraining() {
  if (!training_ || !trainControl_) return;
  trainControl_->resume();
  emit trainingPaused(false);
}

void Session::cancelTraining() {
  if (trainControl_) trainControl_->cancel();
}

void Session::saveTrainedStudent(const QString& dir) {
  if (training_ || !trained_) {
    emit trainedStudentSaveFailed(training_ ? tr("the run is still going")
                                            : tr("nothing has been trained yet"));
    return;
  }
  auto trained = trained_;
  runThen(
      trainer_, this, [trained, dir] { return trained->save(dir.toStdString()); },
      [this, dir](Status st) {
        if (st)
          emit trainedStudentSaved(dir);
        else
          emit trainedStudentSaveFailed(QString::fromStdString(st.message()));
      });
}

// ---------------------------------------------------------------- export

void Session::exportStudent(const compress::CompressionPlan& plan, const QString& dir,
                            const QString& format, DType dtype, bool report) {
  auto base = models_[Student] ? models_[Student] : models_[Teacher];
  if (!base) {
    emit exportFinished(false, dir, tr("no model to export"));
    return;
  }
  if (exportCancel_) exportCancel_->cancel();
  exportCancel_ = std::make_shared<CancelToken>();
  auto cancel = exportCancel_;
  auto compute = compute_;
  jobStarted();
  QPointer<Session> self(this);
  runThen(
      worker_, this,
      [self, base, plan, dir, format, dtype, report, cancel, compute]() -> Status {
        auto stage = [self](int i, QString what) {
          postTo(self, [i, what](Session& s) { emit s.exportProgress(i, 3, what); });
        };
        stage(0, tr("Applying the plan (pruning, quantization)…"));
        auto applied = compress::applyPlan(*base, plan, compute.get(), cancel.get());
        if (!applied) return applied.error();
        if (cancel->cancelled()) return makeError("cancelled");
        compress::CompressionPlan recorded = plan;
        if (recorded.student.empty()) recorded.student = base->source.string();
        const std::filesystem::path out = dir.toStdString();
        compress::ExportOptions eo;
        eo.format = compress::exportFormatFromName(format.toStdString())
                        .value_or(compress::ExportFormat::Hf);
        eo.dtype = dtype;
        eo.cancel = cancel.get();
        std::string json;
        std::shared_ptr<const compress::ReportFigures> figures;
        if (report) {  // the JSON and the figures from one pair of forward passes
          stage(1, tr("Measuring attention fidelity for the report…"));
          auto r = compress::reportJsonAndFigures(*base, *applied, recorded, {}, compute.get());
          if (!r) return r.error();
          json = std::move(r->json);
          figures = std::make_shared<const compress::ReportFigures>(std::move(r->figures));
        } else if (eo.format == compress::ExportFormat::Hdf5) {  // the file keeps its report
          stage(1, tr("Measuring attention fidelity for the report…"));
          auto r = compress::reportJson(*base, *applied, recorded, {}, compute.get());
          if (!r) return r.error();
          json = std::move(*r);
        }
        eo.reportJson = json;
        if (cancel->cancelled()) return makeError("cancelled");
        stage(2, tr("Writing %1…").arg(dir));
        if (Status st = compress::exportModel(out, *base, *applied, recorded, eo); !st) return st;
        if (report) {
          postTo(self, [dir, figures](Session& s) { emit s.exportFigures(dir, figures); });
          return writeFileAtomically(out.string() + ".report.json", [&](std::FILE* f) -> Status {
            if (std::fwrite(json.data(), 1, json.size(), f) != json.size())
              return makeError("cannot write the report");
            return Ok{};
          });
        }
        return Ok{};
      },
      [this, dir](Status st) {
        jobFinished();
        emit exportFinished(st.ok(), dir, st.ok() ? QString() : QString::fromStdString(st.message()));
      });
}

void Session::cancelExport() {
  if (exportCancel_) exportCancel_->cancel();
}

void Session::setWorkspacePlan(const WorkspaceRequest& request) {
  if (workspaceCancel_) workspaceCancel_->cancel();
  ++workspaceGeneration_;
  workspaceRequest_ = request;
  workspacePending_ = true;
  if (!workspaceRunning_) startWorkspace();
}

void Session::startWorkspace() {
  const int side = models_[Student] ? Student : Teacher;
  const auto base = models_[side];
  const auto teacher = side == Student ? models_[Teacher] : nullptr;
  if (!workspacePending_ || !workspaceRequest_) return;
  workspacePending_ = false;
  if (!base) return;
  workspaceRunning_ = true;
  workspaceCancel_ = std::make_shared<CancelToken>();
  auto cancel = workspaceCancel_;
  const WorkspaceRequest req = *workspaceRequest_;
  const quint64 gen = workspaceGeneration_;
  const QString text = text_;
  auto compute = compute_;
  auto cachePtr = workspaceCache_;
  auto delay = referenceDelayMs_;
  jobStarted();
  runThen(
      worker_, this,
      [=]() -> Result<std::shared_ptr<const WorkspaceResult>> {
        QElapsedTimer clock;
        clock.start();
        WorkspaceCache& cache = *cachePtr;
        if (cancel->cancelled()) return makeError("cancelled");
        if (!base->tokenizer) return makeError("the model has no tokenizer files");
        ForwardOptions fo;
        fo.pool = compute.get();
        fo.cancel = cancel.get();
        // Reference runs of (model, text, teacher): kept until one of them changes.
        if (!sameModel(cache.model, base) || cache.text != text || !sameModel(cache.teacher, teacher) ||
            !cache.reference) {
          // The compressed weights depend on the model only: a new text keeps them —
          // also when this job is cancelled during the runs below (the model is
          // recorded at once; the text and runs only once they are complete).
          WorkspaceCache fresh;
          if (sameModel(cache.model, base)) {
            fresh.applied = std::move(cache.applied);
            fresh.appliedPlan = std::move(cache.appliedPlan);
            fresh.weightsKey = std::move(cache.weightsKey);
          }
          fresh.model = base;
          cache = std::move(fresh);
          auto ids = base->tokenizer->encode(text.toStdString()).ids;
          if (ids.size() > size_t(base->config.maxPositions))
            return makeError("the text has " + std::to_string(ids.size()) + " tokens; the model allows " +
                             std::to_string(base->config.maxPositions));
          if (const int ms = delay->load(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
          auto ref = forward(base->config, base->weights, ids, {}, fo);
          if (!ref) return ref.error();
          std::shared_ptr<const ForwardResult> teacherRun;
          if (teacher && teacher->tokenizer &&
              teacher->tokenizer->encode(text.toStdString()).ids == ids) {
            auto t = forward(teacher->config, teacher->weights, ids, {}, fo);
            if (!t) return t.error();
            teacherRun = std::make_shared<const ForwardResult>(std::move(*t));
          }
          cache.teacher = teacher;
          cache.text = text;
          cache.ids = std::move(ids);
          cache.reference = std::make_shared<const ForwardResult>(std::move(*ref));
          cache.teacherRun = std::move(teacherRun);
        }
        // Histograms of the matrices the views show, into r->reports.
        auto addHistograms = [&](WorkspaceResult& r) -> Status {
          for (const std::string& name : req.histograms) {
            auto it = std::find_if(r.reports.begin(), r.reports.end(),
                                   [&](const quant::TensorReport& t) { return t.name == name; });
            if (it == r.reports.end() || !it->stats.errors.counts.empty()) continue;
            auto full = compress::tensorStats(*base, *r.applied, name, 64, compute.get());
            if (!full) return full.error();
            *it = std::move(*full);
          }
          return Ok{};
        };
        std::string resultKey;
        {
          compress::CompressionPlan keyed = req.plan;
          keyed.student.clear();
          resultKey = compress::planJson(keyed) + "|" + std::to_string(req.headsToPrune) + "|" +
                      std::to_string(int(req.by));
          for (int t : req.mapping) resultKey += "," + std::to_string(t);
        }
        if (cache.last && cache.resultKey == resultKey) {  // the same plan: only histograms
          auto r = std::make_shared<WorkspaceResult>(*cache.last);
          r->generation = gen;
          if (Status st = addHistograms(*r); !st) return st.error();
          r->computeMs = double(clock.nsecsElapsed()) / 1e6;
          cache.last = r;
          return std::shared_ptr<const WorkspaceResult>(std::move(r));
        }
        auto r = std::make_shared<WorkspaceResult>();
        r->generation = gen;
        r->text = text;
        r->side = side;
        r->base = base;
        r->plan = req.plan;
        r->reference = cache.reference;
        r->teacher = cache.teacherRun;
        if (r->plan.prune.heads.empty() && req.headsToPrune > 0) {
          if (cache.importanceBy != int(req.by)) {
            sparse::SparsifyOptions so;
            so.pool = compute.get();
            so.cancel = cancel.get();
            auto scores = sparse::headImportance(*base, {cache.ids}, req.by, so);
            if (!scores) return scores.error();
            cache.importance = scores->score;
            cache.importanceBy = int(req.by);
          }
          sparse::HeadScores hs;
          hs.layers = base->config.layers;
          hs.heads = base->config.heads;
          hs.score = cache.importance;
          const auto rank = hs.ranking();
          r->plan.prune.heads.assign(rank.begin(),
                                     rank.begin() + std::min<size_t>(size_t(req.headsToPrune), rank.size()));
        }
        // The weights depend on the plan without its attention settings: a change of
        // τ or of the attention quantizer reuses them.
        compress::CompressionPlan weightsOnly = r->plan;
        weightsOnly.student.clear();
        weightsOnly.quant.attention = {};
        weightsOnly.prune.attention = {};
        const std::string key = compress::planJson(weightsOnly);
        if (!cache.applied || cache.weightsKey != key) {
          // Only the matrices whose quantization spec changed are quantized again.
          auto applied = cache.applied
                             ? compress::reapplyPlan(*base, *cache.applied, cache.appliedPlan, r->plan,
                                                     compute.get(), cancel.get(), /*histograms=*/false)
                             : compress::applyPlan(*base, r->plan, compute.get(), cancel.get(), false,
                                                   /*histograms=*/false);
          if (!applied) return applied.error();
          cache.applied = std::make_shared<const compress::AppliedPlan>(std::move(*applied));
          cache.appliedPlan = r->plan;
          cache.weightsKey = key;
        }
        r->applied = cache.applied;
        // The same weights as last time: its reports, with the histograms it computed.
        r->reports = cache.last && cache.last->applied == cache.applied ? cache.last->reports
                                                                        : cache.applied->quantized;
        if (Status st = addHistograms(*r); !st) return st.error();
        const Model& m = *r->applied->model;
        const int H = m.config.heads;
        r->counts.assign(size_t(m.config.layers) * H, {});
        ForwardOptions o = quant::withAttentionQuant(fo, r->plan.quant.attention);
        if (r->plan.prune.attention.active())
          o = sparse::withAttentionSparsity(std::move(o), r->plan.prune.attention, &r->counts, H);
        o.captureHidden = o.captureFfnInputs = true;  // what the next change resumes from
        // With the same attention settings, the layers before the first one whose
        // weights changed are the previous run's: resume there — at its feed-forward
        // block when its attention weights are the previous run's too.
        std::string attentionKey;
        {
          compress::CompressionPlan a;
          a.quant.attention = r->plan.quant.attention;
          a.prune.attention = r->plan.prune.attention;
          attentionKey = compress::planJson(a);
        }
        const auto previous = cache.last;
        const bool resumable = previous && previous->applied && previous->applied->model &&
                               cache.lastAttentionKey == attentionKey &&
                               previous->counts.size() == r->counts.size();
        const ModelWeights& before = resumable ? previous->applied->model->weights : m.weights;
        const int from = resumable ? firstChangedLayer(before, m.weights) : 0;
        // (At layer 0 also the embeddings: firstChangedLayer gives 0 for them too.)
        const bool atFfn = resumable && !previous->forward.ffnInputs.empty() &&
                           sameAttentionBlock(before, m.weights, from) &&
                           (from > 0 || sameEmbeddings(before, m.weights));
        if (from >= m.config.layers) {  // no weight changed: the previous run as it is
          r->forward = previous->forward;
          r->counts = previous->counts;
        } else {
          if (from > 0 || atFfn) {
            o.resume = &previous->forward;
            o.resumeLayer = from;
            o.resumeAtFfn = atFfn;
            // The attention counts of the layers taken over (with their attention).
            std::copy(previous->counts.begin(),
                      previous->counts.begin() + ptrdiff_t(from + (atFfn ? 1 : 0)) * H,
                      r->counts.begin());
          }
          auto got = forward(m.config, m.weights, cache.ids, {}, o);
          if (!got) return got.error();
          r->forward = std::move(*got);
        }
        r->resumedAt = from;
        r->resumedAtFfn = atFfn && from < m.config.layers;
        cache.lastAttentionKey = attentionKey;
        // The one-sentence evaluation, from the runs above (no second forward pass).
        compress::Evaluation& e = r->eval;
        e.layers = m.config.layers;
        e.heads = H;
        e.sentences = 1;
        e.size = compress::planSize(*base, *r->applied);
        e.weightSparsity = compress::weightSparsity(*r->applied);
        for (const auto& c : r->counts) e.attention.add(c);
        const Fidelity f = fidelity(*r->reference, r->forward, compute.get());
        e.headKl = f.kl;
        e.headJs = f.js;
        e.klMean = f.klMean;
        e.jsMean = f.jsMean;
        e.hiddenCosine = f.hiddenCosine;
        if (r->teacher) {
          r->teacherHeadKl = compress::teacherHeadKl(*r->teacher, r->forward, req.mapping, compute.get());
          e.teacherKl = compress::teacherKlFromHeads(*r->teacher, r->forward, req.mapping, r->teacherHeadKl);
          // The uncompressed model against the teacher: once per text and mapping.
          if (cache.resultKey.empty() || cache.resultKey.substr(cache.resultKey.rfind('|')) !=
                                              resultKey.substr(resultKey.rfind('|'))) {
            cache.studentTeacherKl = compress::teacherKl(*r->teacher, *r->reference, req.mapping);
            cache.studentTeacherHeadKl =
                compress::teacherHeadKl(*r->teacher, *r->reference, req.mapping, compute.get());
          }
          e.studentTeacherKl = cache.studentTeacherKl;
          r->studentTeacherHeadKl = cache.studentTeacherHeadKl;
        }
        // The Sparsity panel's curve on the uncompressed run: once per text.
        if (!cache.tauCurve) {
          auto curve = tauCurve(*cache.reference, compute.get(), cancel.get());
          if (!curve) return curve.error();
          cache.tauCurve = std::make_shared<const TauCurve>(std::move(*curve));
        }
        r->tauCurve = cache.tauCurve;
        if (req.headsToPrune > 0 && req.plan.prune.heads.empty()) r->importance = cache.importance;
        r->computeMs = double(clock.nsecsElapsed()) / 1e6;
        cache.resultKey = resultKey;
        cache.last = r;
        return std::shared_ptr<const WorkspaceResult>(std::move(r));
      },
      [this, gen](Result<std::shared_ptr<const WorkspaceResult>> r) {
        jobFinished();
        workspaceRunning_ = false;
        if (gen == workspaceGeneration_) {
          if (r)
            emit workspaceReady(*r);
          else if (r.message() != "cancelled")
            emit workspaceFailed(QString::fromStdString(r.message()));
        }
        if (workspacePending_) startWorkspace();
      });
}

void Session::runAnalysis(const AnalysisRequest& request) {
  cancelAnalysis();
  const int side = models_[Student] ? Student : Teacher;
  const auto base = models_[side];
  const auto teacher = side == Student ? models_[Teacher] : nullptr;
  if (!base) {
    emit analysisFinished(false, tr("Load a model first."));
    return;
  }
  std::vector<std::string> texts;
  if (!request.corpus.isEmpty()) {
    auto rows = readCorpus(request.corpus, request.column);
    if (!rows) {
      emit analysisFinished(false, QString::fromStdString(rows.message()));
      return;
    }
    texts = std::move(*rows);
    if (request.maxSentences > 0 && int(texts.size()) > request.maxSentences)
      texts.resize(size_t(request.maxSentences));
  } else {
    texts = {request.text.toStdString()};
  }
  analysisCancel_ = std::make_shared<CancelToken>();
  auto cancel = analysisCancel_;
  const quint64 gen = ++analysisGeneration_;
  auto compute = compute_;
  QPointer<Session> self(this);
  const int sentences = int(texts.size());
  int total = sentences;
  if (!request.axes.empty()) {
    total = 1;
    for (const auto& a : request.axes) total *= int(a.values.size());
  }
  emit analysisStarted(total);
  runThen(
      analysis_, this,
      [=]() -> Status {
        auto ref = compress::makeReference(*base, teacher.get(), texts, request.mapping, compute.get(),
                                           cancel.get());
        if (!ref) return ref.error();
        if (request.axes.empty()) {
          auto applied = compress::applyPlan(*base, request.plan, compute.get(), cancel.get(), false, false);
          if (!applied) return applied.error();
          const int n = int(ref->ids.size());
          auto e = compress::evaluatePlan(
              *base, *applied, request.plan, *ref, compute.get(), cancel.get(),
              [&](const compress::Evaluation& partial) {
                auto p = std::make_shared<const compress::Evaluation>(partial);
                postTo(self, [p, gen, n](Session& s) {
                  if (gen == s.analysisGeneration_) emit s.corpusPartial(p, p->sentences, n);
                });
              });
          if (!e) return e.error();
          return Ok{};
        }
        auto points = compress::sweep(
            *base, request.plan, request.axes, *ref, compute.get(), cancel.get(),
            [&](const compress::SweepPoint& pt, int index, int count) {
              auto p = std::make_shared<const compress::SweepPoint>(pt);
              postTo(self, [p, gen, index, count](Session& s) {
                if (gen == s.analysisGeneration_) emit s.sweepPoint(p, index, count);
              });
            });
        if (!points) return points.error();
        return Ok{};
      },
      [this, gen](Status st) {
        if (gen != analysisGeneration_) return;
        if (st)
          emit analysisFinished(true, {});
        else
          emit analysisFinished(false, st.message() == "cancelled" ? tr("Cancelled.")
                                                                   : QString::fromStdString(st.message()));
      });
}

void Session::cancelAnalysis() {
  if (analysisCancel_) analysisCancel_->cancel();
}

}  // namespace attn::app
