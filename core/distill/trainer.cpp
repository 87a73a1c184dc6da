#include "core/distill/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <thread>
#include <tuple>

#include "core/io/safetensors.h"
#include "core/model/hf_writer.h"

namespace attn::distill {

namespace fs = std::filesystem;

TokenizedCorpus tokenizeCorpus(const text::Tokenizer& tok, const std::vector<std::string>& texts,
                               int maxTokens) {
  TokenizedCorpus c;
  for (const std::string& t : texts) {
    std::vector<int32_t> framed = tok.encode(t, true).ids;
    const std::vector<int32_t> content = tok.encode(t, false).ids;
    if (content.empty()) {
      ++c.skipped;
      continue;
    }
    if (static_cast<int>(framed.size()) > maxTokens) {
      // Keep the framing tokens (e.g. [CLS] … [SEP]) and cut the content, as
      // transformers' truncation does.
      size_t pre = 0;
      while (pre < framed.size() && framed[pre] != content[0]) ++pre;
      if (pre + content.size() > framed.size()) pre = 0;
      const size_t post = framed.size() - pre - std::min(content.size(), framed.size() - pre);
      const int keep = maxTokens - static_cast<int>(pre + post);
      if (keep <= 0) {
        framed.resize(static_cast<size_t>(maxTokens));
      } else {
        std::vector<int32_t> cut(framed.begin(), framed.begin() + static_cast<long>(pre));
        cut.insert(cut.end(), content.begin(), content.begin() + keep);
        cut.insert(cut.end(), framed.end() - static_cast<long>(post), framed.end());
        framed = std::move(cut);
      }
      ++c.truncated;
    }
    c.examples.push_back(std::move(framed));
  }
  return c;
}

// ---------------------------------------------------------------- Group-Lasso

namespace {
template <class Visit>
void forGroups(const Network& net, GroupLasso::Groups groups, Visit&& visit) {
  const ModelConfig& c = net.config;
  const int D = c.hidden, Dh = c.headDim(), F = c.intermediate;
  for (int l = 0; l < c.layers; ++l) {
    const LayerSlots& s = net.layout.layers[l];
    if (groups == GroupLasso::Groups::Heads) {
      for (int h = 0; h < c.heads; ++h) {
        std::vector<size_t> idx;
        for (const LinearSlot* lin : {&s.q, &s.k, &s.v})
          for (int r = h * Dh; r < (h + 1) * Dh; ++r) {
            for (int i = 0; i < D; ++i) idx.push_back(lin->w + static_cast<size_t>(r) * D + i);
            idx.push_back(lin->b + r);
          }
        for (int r = 0; r < D; ++r)
          for (int i = h * Dh; i < (h + 1) * Dh; ++i) idx.push_back(s.o.w + static_cast<size_t>(r) * D + i);
        visit(l, h, idx);
      }
    } else if (groups == GroupLasso::Groups::Ffn) {
      for (int u = 0; u < F; ++u) {
        std::vector<size_t> idx;
        for (int i = 0; i < D; ++i) idx.push_back(s.ffnIn.w + static_cast<size_t>(u) * D + i);
        idx.push_back(s.ffnIn.b + u);
        for (int r = 0; r < D; ++r) idx.push_back(s.ffnOut.w + static_cast<size_t>(r) * F + u);
        visit(l, u, idx);
      }
    }
  }
}
}  // namespace

double groupLasso(const Network& net, const GroupLasso& gl, float* grad) {
  if (gl.groups == GroupLasso::Groups::None || gl.lambda <= 0) return 0.0;
  double total = 0.0;
  forGroups(net, gl.groups, [&](int, int, const std::vector<size_t>& idx) {
    double sq = 0.0;
    for (size_t i : idx) sq += static_cast<double>(net.params[i]) * net.params[i];
    const double norm = std::sqrt(sq);
    total += norm;
    if (norm > 0)
      for (size_t i : idx) grad[i] += static_cast<float>(gl.lambda * net.params[i] / norm);
  });
  return gl.lambda * total;
}

std::vector<double> groupNorms(const Network& net, GroupLasso::Groups groups) {
  std::vector<double> out;
  forGroups(net, groups, [&](int, int, const std::vector<size_t>& idx) {
    double sq = 0.0;
    for (size_t i : idx) sq += static_cast<double>(net.params[i]) * net.params[i];
    out.push_back(std::sqrt(sq));
  });
  return out;
}

// ---------------------------------------------------------------- schedule, control

double learningRate(const TrainOptions& o, int step) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * (step + 1) / static_cast<double>(o.warmup);
  const int rest = o.steps - o.warmup;
  if (rest <= 0) return o.lr;
  return o.lr * std::max(0.0, static_cast<double>(o.steps - step) / rest);
}

void RunControl::pause() { paused_.store(true); }
void RunControl::resume() {
  {
    std::lock_guard lock(mu_);
    paused_.store(false);
  }
  cv_.notify_all();
}
void RunControl::cancel() {
  {
    std::lock_guard lock(mu_);
    token_.cancel();
  }
  cv_.notify_all();
}
bool RunControl::waitWhilePaused() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !paused_.load() || token_.cancelled(); });
  return !token_.cancelled();
}

// ---------------------------------------------------------------- trainer

Trainer::~Trainer() = default;

Result<std::unique_ptr<Trainer>> Trainer::create(std::shared_ptr<const Model> student,
                                                 std::shared_ptr<const Model> teacher,
                                                 TokenizedCorpus corpus, TrainOptions opt) {
  if (!student) return makeError("no student model");
  if (corpus.examples.empty()) return makeError("the corpus has no examples");
  if (opt.steps < 1) return makeError("steps must be ≥ 1");
  if (opt.batch < 1) return makeError("the batch size must be ≥ 1");
  if (opt.seq < 2) return makeError("the sequence length must be ≥ 2");
  if (opt.seq > student->config.maxPositions)
    return makeError("sequences of " + std::to_string(opt.seq) + " tokens are longer than the student's " +
                     std::to_string(student->config.maxPositions) + " positions");
  if (!(opt.lr > 0) || !std::isfinite(opt.lr)) return makeError("the learning rate must be > 0");
  if (opt.warmup < 0 || opt.warmup > opt.steps) return makeError("warm-up must be in 0..steps");
  if (opt.clip < 0) return makeError("the clipping norm must be ≥ 0");
  if (opt.loss.needsTeacher() && !teacher) return makeError("these losses need a teacher model");
  if (opt.checkpointEvery > 0 && opt.checkpointDir.empty())
    return makeError("checkpoints need a folder");
  const ModelConfig& tc = teacher ? teacher->config : student->config;
  if (opt.loss.mapping.empty() && teacher) opt.loss.mapping.assign(student->config.layers, -1);
  if (!teacher) opt.loss.mapping.assign(student->config.layers, -1);
  if (Status st = validateLoss(opt.loss, tc, student->config); !st) return st.error();
  if (teacher && opt.loss.needsTeacher()) {
    if (opt.seq > teacher->config.maxPositions)
      return makeError("sequences of " + std::to_string(opt.seq) +
                       " tokens are longer than the teacher's " +
                       std::to_string(teacher->config.maxPositions) + " positions");
    if (teacher->config.vocabSize != student->config.vocabSize ||
        (teacher->tokenizer && student->tokenizer &&
         teacher->tokenizer->vocabSize() != student->tokenizer->vocabSize()))
      return makeError("teacher and student must share a tokenizer to be trained on the same ids");
  }
  if (opt.qat) {
    for (int l = 0; l < student->config.layers; ++l)
      for (int t = 0; t < kTargetCount; ++t)
        if (auto spec = opt.qat->specFor(l, static_cast<Target>(t)); spec) {
          // The spec is checked on a small tensor of the same kind.
          const float one[8] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f, -0.6f, 0.7f, 0.8f};
          quant::Spec s = *spec;
          if (s.granularity == quant::Granularity::Group) s.groupSize = std::min(s.groupSize, 8);
          auto q = quant::quantize(one, 1, 8, s);
          if (!q) return makeError("quantization-aware training: " + q.message());
        }
  }
  for (const auto& e : corpus.examples)
    for (int32_t id : e)
      if (id < 0 || id >= student->config.vocabSize)
        return makeError("the corpus has token id " + std::to_string(id) +
                         " outside the student's vocabulary");

  std::unique_ptr<Trainer> t(new Trainer());
  auto net = networkFromWeights(student->config, student->weights);
  if (!net) return net.error();
  t->net_ = std::move(*net);
  if (teacher && opt.loss.needsTeacher()) {
    auto tn = networkFromWeights(teacher->config, teacher->weights);
    if (!tn) return tn.error();
    t->teacherNet_ = std::move(*tn);
  }
  t->proj_ = projectionSlots(opt.loss, tc, student->config);
  t->extra_.assign(t->proj_.size, 0.0f);
  initProjections(t->proj_, t->extra_.data(), opt.seed);
  t->student_ = std::move(student);
  t->teacher_ = std::move(teacher);
  for (auto& e : corpus.examples)
    if (static_cast<int>(e.size()) > opt.seq) {
      e.resize(static_cast<size_t>(opt.seq));
      ++corpus.truncated;
    }
  t->corpus_ = std::move(corpus);
  const int threads = opt.threads > 0 ? opt.threads
                                      : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  t->pool_ = std::make_unique<ThreadPool>(threads);
  t->opt_ = std::move(opt);
  const size_t total = t->net_.layout.size + t->extra_.size();
  t->m_.assign(total, 0.0f);
  t->v_.assign(total, 0.0f);
  return t;
}

Trainer::Batch Trainer::pack(const std::vector<const std::vector<int32_t>*>& ex) const {
  Batch b;
  b.n = static_cast<int>(ex.size());
  for (const auto* e : ex) b.seq = std::max(b.seq, static_cast<int>(e->size()));
  int32_t pad = student_->config.padTokenId;
  if (pad < 0 || pad >= student_->config.vocabSize) pad = 0;
  b.ids.assign(static_cast<size_t>(b.n) * b.seq, pad);
  b.mask.assign(b.ids.size(), 0);
  for (int i = 0; i < b.n; ++i) {
    std::copy(ex[i]->begin(), ex[i]->end(), b.ids.begin() + static_cast<long>(i) * b.seq);
    std::fill_n(b.mask.begin() + static_cast<long>(i) * b.seq, ex[i]->size(), 1);
  }
  return b;
}

Trainer::Batch Trainer::batchFor(int step) const {
  const int64_t E = static_cast<int64_t>(corpus_.examples.size());
  std::vector<const std::vector<int32_t>*> ex;
  int64_t cachedEpoch = -1;
  std::vector<int64_t> perm;
  for (int i = 0; i < opt_.batch; ++i) {
    const int64_t g = static_cast<int64_t>(step) * opt_.batch + i;
    const int64_t epoch = g / E;
    if (epoch != cachedEpoch) {
      perm.resize(static_cast<size_t>(E));
      std::iota(perm.begin(), perm.end(), 0);
      std::mt19937_64 rng(opt_.seed * 1000003ull + static_cast<uint64_t>(epoch));
      for (int64_t k = E - 1; k > 0; --k)  // Fisher–Yates with an explicit draw (portable)
        std::swap(perm[k], perm[static_cast<int64_t>(rng() % static_cast<uint64_t>(k + 1))]);
      cachedEpoch = epoch;
    }
    ex.push_back(&corpus_.examples[static_cast<size_t>(perm[static_cast<size_t>(g % E)])]);
  }
  return pack(ex);
}

const Network& Trainer::forwardNet() {
  if (!opt_.qat) return net_;
  qatNet_ = net_;
  const ModelConfig& c = net_.config;
  auto fake = [&](float* w, int rows, int cols, const std::optional<quant::Spec>& spec) {
    if (!spec) return;
    auto q = quant::quantize(w, rows, cols, *spec);
    if (!q) return;  // specs were checked in create()
    const std::vector<float> deq = q->dequantize();
    std::copy(deq.begin(), deq.end(), w);
  };
  const Layout& L = qatNet_.layout;
  fake(qatNet_.at(L.wordEmb), c.vocabSize, c.hidden, opt_.qat->specFor(-1, Target::Emb));
  for (int l = 0; l < c.layers; ++l) {
    const LayerSlots& s = L.layers[l];
    const std::pair<const LinearSlot*, Target> parts[] = {
        {&s.q, Target::Q},         {&s.k, Target::K},          {&s.v, Target::V},
        {&s.o, Target::O},         {&s.ffnIn, Target::FfnIn}, {&s.ffnOut, Target::FfnOut}};
    for (const auto& [slot, target] : parts)
      fake(qatNet_.at(slot->w), slot->out, slot->in, opt_.qat->specFor(l, target));
  }
  return qatNet_;
}

Status Trainer::compute(const Batch& b, LossValues& values, std::vector<float>* grad) {
  const Network& net = forwardNet();
  const Normalizers norm = normalizers(b.mask.data(), b.n, b.seq);
  const int chunks = std::min(b.n, kChunks);
  const size_t P = net_.layout.size, X = extra_.size();
  // Aligned buffers: Eigen's products and reductions take a different path on an
  // unaligned destination, which would make results depend on malloc.
  std::vector<Buffer> grads(static_cast<size_t>(grad ? chunks : 0));
  std::vector<LossValues> vals(static_cast<size_t>(chunks));
  std::vector<std::string> errors(static_cast<size_t>(chunks));
  pool_->run(chunks, [&](int64_t c) {
    const int first = static_cast<int>(c * b.n / chunks), last = static_cast<int>((c + 1) * b.n / chunks);
    const int n = last - first;
    const int32_t* ids = b.ids.data() + static_cast<size_t>(first) * b.seq;
    const int32_t* mask = b.mask.data() + static_cast<size_t>(first) * b.seq;
    Activations& sa = studentActs_[static_cast<size_t>(c)];  // reused: no page faults per step
    Activations& ta = teacherActs_[static_cast<size_t>(c)];
    if (Status st = networkForward(net, ids, mask, n, b.seq, sa); !st) {
      errors[c] = st.message();
      return;
    }
    if (teacherNet_)
      if (Status st = networkForward(*teacherNet_, ids, mask, n, b.seq, ta); !st) {
        errors[c] = "teacher: " + st.message();
        return;
      }
    ActivationGrads g;
    g.resize(net.config.layers);
    Buffer local;
    if (grad) local.assign(P + X, 0.0f);
    Buffer scratch;
    if (!grad) scratch.assign(P + X, 0.0f);
    float* gp = grad ? local.data() : scratch.data();
    accumulateLosses(opt_.loss, norm, net, sa, teacherNet_ ? &*teacherNet_ : nullptr,
                     teacherNet_ ? &ta : nullptr, proj_, extra_.data(), vals[c], g, gp, gp + P);
    if (grad) {
      networkBackward(net, sa, g, gp);
      grads[c] = std::move(local);
    }
  });
  for (const std::string& e : errors)
    if (!e.empty()) return makeError(e);
  values = LossValues{};
  for (const LossValues& v : vals) values.add(v);
  if (grad) {
    grad->assign(P + X, 0.0f);
    for (const auto& g : grads)
      for (size_t i = 0; i < g.size(); ++i) (*grad)[i] += g[i];
  }
  return Ok{};
}

Result<StepReport> Trainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  const Batch b = batchFor(step_);
  StepReport r;
  std::vector<float> grad;
  if (Status st = compute(b, r.loss, &grad); !st) return st.error();
  r.groupLasso = groupLasso(net_, opt_.groupLasso, grad.data());
  double sq = 0.0;
  for (float g : grad) sq += static_cast<double>(g) * g;
  r.gradNorm = std::sqrt(sq);
  if (!std::isfinite(r.gradNorm) || !std::isfinite(r.loss.total))
    return makeError("the loss or its gradient is not finite at step " + std::to_string(step_ + 1) +
                     " (lower the learning rate)");
  const float clipScale = opt_.clip > 0 && r.gradNorm > opt_.clip
                              ? static_cast<float>(opt_.clip / r.gradNorm)
                              : 1.0f;
  r.lr = learningRate(opt_, step_);
  const int t = step_ + 1;
  const double b1 = opt_.beta1, b2 = opt_.beta2;
  const double c1 = 1.0 - std::pow(b1, t), c2 = 1.0 - std::pow(b2, t);
  const float lr = static_cast<float>(r.lr), eps = static_cast<float>(opt_.adamEps);
  auto update = [&](float* p, size_t at, size_t n, bool decay) {
    const float shrink = decay ? static_cast<float>(1.0 - r.lr * opt_.weightDecay) : 1.0f;
    for (size_t i = 0; i < n; ++i) {
      const float g = grad[at + i] * clipScale;
      float& m = m_[at + i];
      float& v = v_[at + i];
      m = static_cast<float>(b1) * m + static_cast<float>(1.0 - b1) * g;
      v = static_cast<float>(b2) * v + static_cast<float>(1.0 - b2) * g * g;
      const float mh = static_cast<float>(m / c1), vh = static_cast<float>(v / c2);
      p[i] = p[i] * shrink - lr * mh / (std::sqrt(vh) + eps);
    }
  };
  for (const Segment& s : net_.layout.segments) update(net_.at(s.offset), s.offset, s.size, s.decay);
  update(extra_.data(), net_.layout.size, extra_.size(), false);
  ++step_;
  r.step = step_;
  r.steps = opt_.steps;
  for (int i = 0; i < b.n * b.seq; ++i) r.tokens += b.mask[i];
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.examplesPerSecond = secs > 0 ? b.n / secs : 0.0;
  return r;
}

Result<LossValues> Trainer::evaluate(const std::vector<std::vector<int32_t>>& examples) {
  if (examples.empty()) return makeError("no examples");
  std::vector<const std::vector<int32_t>*> ptrs;
  for (const auto& e : examples) {
    if (e.empty() || static_cast<int>(e.size()) > opt_.seq)
      return makeError("examples must have 1.." + std::to_string(opt_.seq) + " tokens");
    ptrs.push_back(&e);
  }
  LossValues v;
  if (Status st = compute(pack(ptrs), v, nullptr); !st) return st.error();
  return v;
}

std::vector<Trainer::Projection> Trainer::projections() const {
  std::vector<Projection> out;
  for (size_t l = 0; l < proj_.offset.size(); ++l) {
    const size_t off = proj_.offset[l];
    if (off == std::numeric_limits<size_t>::max()) continue;
    const size_t n = static_cast<size_t>(proj_.rows) * proj_.cols;
    out.push_back({static_cast<int>(l), proj_.rows, proj_.cols,
                   std::vector<float>(extra_.begin() + static_cast<long>(off),
                                      extra_.begin() + static_cast<long>(off + n))});
  }
  return out;
}

std::shared_ptr<const ModelWeights> Trainer::weights() const {
  return std::make_shared<const ModelWeights>(networkWeights(net_));
}

Status Trainer::save(const fs::path& dir) const {
  return writeHfModel(dir, *student_, networkWeights(net_));
}

namespace {
const char* kStateFile = "trainer_state.safetensors";
}

Status Trainer::writeCheckpoint() {
  std::error_code ec;
  fs::create_directories(opt_.checkpointDir, ec);
  char name[32];
  std::snprintf(name, sizeof name, "step-%06d", step_);
  const fs::path dir = opt_.checkpointDir / name;
  const fs::path tmp = opt_.checkpointDir / (std::string(name) + ".partial");
  fs::remove_all(tmp, ec);
  if (fs::exists(dir, ec)) fs::remove_all(dir, ec);
  if (Status st = save(tmp); !st) return st;
  auto vec = [](const float* p, size_t n) {
    return Tensor::fromF32({static_cast<int64_t>(n)}, std::vector<float>(p, p + n));
  };
  std::vector<std::pair<std::string, Tensor>> state;
  state.emplace_back("params", vec(net_.params.data(), net_.params.size()));
  if (!extra_.empty()) state.emplace_back("projections", vec(extra_.data(), extra_.size()));
  state.emplace_back("adam_m", vec(m_.data(), m_.size()));
  state.emplace_back("adam_v", vec(v_.data(), v_.size()));
  const std::map<std::string, std::string> meta = {
      {"step", std::to_string(step_)},
      {"steps", std::to_string(opt_.steps)},
      {"seed", std::to_string(opt_.seed)},
      {"batch", std::to_string(opt_.batch)}};
  if (Status st = writeSafetensors(tmp / kStateFile, state, meta); !st) {
    fs::remove_all(tmp, ec);
    return st;
  }
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    return makeError("cannot rename the checkpoint to '" + dir.string() + "'");
  }
  checkpoints_.push_back(dir);
  while (opt_.keepCheckpoints > 0 && static_cast<int>(checkpoints_.size()) > opt_.keepCheckpoints) {
    fs::remove_all(checkpoints_.front(), ec);
    checkpoints_.erase(checkpoints_.begin());
  }
  return Ok{};
}

Status Trainer::resumeFrom(const fs::path& checkpoint) {
  auto ck = openCheckpoint(checkpoint / kStateFile);
  if (!ck) return makeError("no trainer state in '" + checkpoint.string() + "': " + ck.message());
  auto get = [&](const std::string& name, std::vector<float>& out, size_t expect) -> Status {
    const auto it = ck->tensors.find(name);
    if (expect == 0 && it == ck->tensors.end()) return Ok{};
    if (it == ck->tensors.end()) return makeError("the trainer state has no '" + name + "'");
    const Tensor& t = it->second.tensor;
    if (t.dtype() != DType::F32 || static_cast<size_t>(t.numel()) != expect)
      return makeError("the trainer state's '" + name +
                       "' does not match this student and these losses");
    out.assign(t.f32(), t.f32() + expect);
    return Ok{};
  };
  std::vector<float> params, extra, m, v;
  const size_t P = net_.layout.size, X = extra_.size();
  for (auto [name, dst, n] : {std::tuple{"params", &params, P}, std::tuple{"projections", &extra, X},
                              std::tuple{"adam_m", &m, P + X}, std::tuple{"adam_v", &v, P + X}})
    if (Status st = get(name, *dst, n); !st) return st;
  int step = 0;
  try {
    step = std::stoi(ck->metadata.at("step"));
  } catch (...) {
    return makeError("the trainer state has no step");
  }
  if (step < 0 || step > opt_.steps)
    return makeError("the checkpoint is at step " + std::to_string(step) + " of a run of " +
                     std::to_string(opt_.steps));
  std::copy(params.begin(), params.end(), net_.params.begin());
  extra_.assign(extra.begin(), extra.end());
  extra_.resize(X);
  m_ = std::move(m);
  v_ = std::move(v);
  step_ = step;
  return Ok{};
}

Status Trainer::run(RunControl& control, const std::function<void(const StepReport&)>& onStep,
                    const std::function<void(int, std::shared_ptr<const ModelWeights>)>& onSnapshot) {
  while (step_ < opt_.steps) {
    if (!control.waitWhilePaused()) return makeError("cancelled");
    auto r = step();
    if (!r) return r.error();
    if (onStep) onStep(*r);
    if (control.cancelled()) return makeError("cancelled");
    if (onSnapshot && opt_.snapshotEvery > 0 && (step_ % opt_.snapshotEvery == 0 || step_ == opt_.steps))
      onSnapshot(step_, weights());
    if (opt_.checkpointEvery > 0 && (step_ % opt_.checkpointEvery == 0 || step_ == opt_.steps))
      if (Status st = writeCheckpoint(); !st) return st;
  }
  return Ok{};
}

}  // namespace attn::distill
