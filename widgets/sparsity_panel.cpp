#include "widgets/sparsity_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSlider>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <optional>

#include "widgets/bar_chart_view.h"
#include "widgets/curve_view.h"
#include "widgets/form_rows.h"
#include "widgets/heatmap_view.h"

namespace attn::widgets {

namespace {
// τ slider: 0 … 100 on a log scale from 1e-4 to 0.5.
constexpr double kTauLo = 1e-4, kTauHi = 0.5;
constexpr int kTauSteps = 100;
double tauAt(int v) { return kTauLo * std::pow(kTauHi / kTauLo, double(v) / kTauSteps); }
int tauStep(double t) {
  return int(std::lround(std::log(std::clamp(t, kTauLo, kTauHi) / kTauLo) /
                         std::log(kTauHi / kTauLo) * kTauSteps));
}
constexpr int kSpyCells = 96;  // spy plots: at most 96 × 96 cells, each a block's density
}  // namespace

SparsityPanel::SparsityPanel(QWidget* parent) : QWidget(parent) {
  auto* top = new QVBoxLayout(this);
  auto* attnBox = new QGroupBox(tr("Attention"), this);
  auto* af = new QFormLayout(attnBox);
  attnKind_ = new QComboBox(attnBox);
  attnKind_->addItems({tr("dense"), tr("threshold τ"), tr("top-k per query"), tr("kept mass p")});
  attnKind_->setCurrentIndex(1);
  af->addRow(tr("Rule"), attnKind_);
  af->addRow(tr("τ (log)"), sliderRow(attnBox, 0, kTauSteps, tauStep(0.01), &tau_, &tauLabel_));
  auto* kmRow = new QHBoxLayout();
  topK_ = new QSpinBox(attnBox);
  topK_->setRange(1, 4096);
  topK_->setValue(8);
  topK_->setPrefix(tr("k = "));
  mass_ = new QDoubleSpinBox(attnBox);
  mass_->setRange(0.01, 1.0);
  mass_->setSingleStep(0.01);
  mass_->setValue(0.9);
  mass_->setPrefix(tr("p = "));
  kmRow->addWidget(topK_);
  kmRow->addWidget(mass_);
  af->addRow(QString(), kmRow);
  renormalize_ = new QCheckBox(tr("renormalise kept rows"), attnBox);
  renormalize_->setChecked(true);
  af->addRow(QString(), renormalize_);
  top->addWidget(attnBox);

  auto* wBox = new QGroupBox(tr("Weights and heads"), this);
  auto* wf = new QFormLayout(wBox);
  pruneMethod_ = new QComboBox(wBox);
  pruneMethod_->addItems({tr("none"), tr("magnitude (per tensor)"), tr("magnitude (global)"),
                          tr("rows (output channels)"), tr("columns (inputs)"), tr("blocks"),
                          tr("N:M")});
  wf->addRow(tr("Pruning"), pruneMethod_);
  wf->addRow(tr("Sparsity"), sliderRow(wBox, 0, 95, 50, &sparsity_, &sparsityLabel_));
  auto* optRow = new QHBoxLayout();
  norm_ = new QComboBox(wBox);
  norm_->addItems({tr("L1"), tr("L2")});
  block_ = new QSpinBox(wBox);
  block_->setRange(1, 512);
  block_->setValue(16);
  block_->setPrefix(tr("B = "));
  nm_ = new QComboBox(wBox);
  nm_->addItems({"2:4", "1:4", "4:8"});
  optRow->addWidget(norm_);
  optRow->addWidget(block_);
  optRow->addWidget(nm_);
  wf->addRow(QString(), optRow);
  auto* targetGrid = new QGridLayout();
  for (int t = 0; t < kTargetCount; ++t) {
    auto* c = new QCheckBox(QString::fromUtf8(kTargetNames[t]), wBox);
    c->setChecked(t != int(Target::Emb));
    targets_.push_back(c);
    targetGrid->addWidget(c, t / 4, t % 4);
  }
  wf->addRow(tr("Tensors"), targetGrid);
  auto* headRow = new QHBoxLayout();
  heads_ = new QSpinBox(wBox);
  heads_->setRange(0, 4096);
  heads_->setSuffix(tr(" heads"));
  importanceBy_ = new QComboBox(wBox);
  importanceBy_->addItems(
      {tr("by entropy"), tr("by max weight"), tr("by confidence"), tr("by ablation")});
  importanceBy_->setCurrentIndex(2);
  headRow->addWidget(heads_);
  headRow->addWidget(importanceBy_, 1);
  wf->addRow(tr("Remove"), headRow);
  top->addWidget(wBox);

  readout_ = new QLabel(this);
  readout_->setTextFormat(Qt::RichText);
  readout_->setWordWrap(true);
  status_ = new QLabel(this);
  status_->setWordWrap(true);
  top->addWidget(readout_);
  top->addWidget(status_);
  auto* views = new QGridLayout();
  headMask_ = new HeatmapView(this);
  headMask_->setMinimumSize(200, 220);
  headMask_->setTitle(tr("Kept attention"));
  weightMask_ = new HeatmapView(this);
  weightMask_->setMinimumSize(200, 220);
  weightMask_->setAxisLabels(tr("inputs"), tr("outputs"));
  weightMask_->setTitle(tr("Weight mask"));
  views->addWidget(headMask_, 0, 0);
  views->addWidget(weightMask_, 1, 0);
  top->addLayout(views, 1);
  tensor_ = new QComboBox(this);
  tensor_->setToolTip(tr("The weight matrix whose mask is shown"));
  top->addWidget(tensor_);
  sweep_ = new CurveView(this);
  top->addWidget(sweep_);
  importance_ = new BarChartView(this);
  importance_->setMessage(tr("head importance: set Remove to 1 or more heads"));
  top->addWidget(importance_);

  for (auto* c : {attnKind_, pruneMethod_, norm_, nm_, importanceBy_})
    connect(c, &QComboBox::currentIndexChanged, this, &SparsityPanel::controlsChanged);
  for (auto* s : {tau_, sparsity_})
    connect(s, &QSlider::valueChanged, this, &SparsityPanel::controlsChanged);
  for (auto* s : {topK_, block_, heads_})
    connect(s, &QSpinBox::valueChanged, this, &SparsityPanel::controlsChanged);
  connect(mass_, &QDoubleSpinBox::valueChanged, this, &SparsityPanel::controlsChanged);
  connect(renormalize_, &QCheckBox::toggled, this, &SparsityPanel::controlsChanged);
  for (auto* c : targets_) connect(c, &QCheckBox::toggled, this, &SparsityPanel::controlsChanged);
  connect(tensor_, &QComboBox::currentIndexChanged, this, &SparsityPanel::showTensor);
  tauLabel_->setText(QString::number(tau(), 'g', 3));
  sparsityLabel_->setText(QString("%1 %").arg(sparsity_->value()));
}

void SparsityPanel::controlsChanged() {
  tauLabel_->setText(QString::number(tau(), 'g', 3));
  sparsityLabel_->setText(QString("%1 %").arg(sparsity_->value()));
  const int kind = attnKind_->currentIndex(), method = pruneMethod_->currentIndex();
  tau_->setEnabled(kind == 1);
  topK_->setEnabled(kind == 2);
  mass_->setEnabled(kind == 3);
  sparsity_->setEnabled(method >= 1 && method <= 5);
  norm_->setEnabled(method == 3 || method == 4);
  block_->setEnabled(method == 5);
  nm_->setEnabled(method == 6);
  showSweepMarker();  // the curve stays (it depends on the text); the marker follows τ
  emit planChanged();
}

double SparsityPanel::tau() const { return tauAt(tau_->value()); }

bool SparsityPanel::setPlan(const sparse::ModelPrunePlan& p) {
  const QSignalBlocker blocks[] = {QSignalBlocker(attnKind_), QSignalBlocker(tau_),
                                   QSignalBlocker(topK_),     QSignalBlocker(mass_),
                                   QSignalBlocker(renormalize_), QSignalBlocker(pruneMethod_),
                                   QSignalBlocker(sparsity_), QSignalBlocker(norm_),
                                   QSignalBlocker(block_),    QSignalBlocker(nm_),
                                   QSignalBlocker(heads_)};
  bool exact = p.attention.overrides.empty();
  const auto& r = p.attention.all;
  attnKind_->setCurrentIndex(int(r.kind));
  if (r.kind == sparse::AttentionRule::Kind::Threshold) {
    setTau(r.tau);
    exact = exact && std::abs(tau() - r.tau) <= 1e-9 * std::max(1.0, r.tau);
  }
  topK_->setValue(r.k);
  mass_->setValue(r.mass);
  renormalize_->setChecked(r.renormalize);
  std::optional<sparse::PruneSpec> first;
  for (int t = 0; t < kTargetCount; ++t) {
    const auto& spec = p.targets[size_t(t)];
    if (spec && !first) first = spec;
    if (spec && first &&
        (spec->method != first->method || spec->sparsity != first->sparsity ||
         spec->norm != first->norm || spec->block != first->block || spec->n != first->n ||
         spec->m != first->m))
      exact = false;
  }
  if (first) {
    for (int t = 0; t < kTargetCount; ++t) {
      QSignalBlocker b(targets_[size_t(t)]);
      targets_[size_t(t)]->setChecked(p.targets[size_t(t)].has_value());
    }
    using M = sparse::PruneMethod;
    const int index = first->method == M::Global ? 2 : first->method == M::Rows ? 3
                      : first->method == M::Cols ? 4 : first->method == M::Block ? 5
                      : first->method == M::NM  ? 6 : 1;
    pruneMethod_->setCurrentIndex(index);
    sparsity_->setValue(int(std::lround(first->sparsity * 100)));
    exact = exact && std::abs(sparsity_->value() / 100.0 - first->sparsity) < 1e-9;
    norm_->setCurrentIndex(std::clamp(first->norm - 1, 0, 1));
    block_->setValue(first->block);
    const int nm = nm_->findText(QString("%1:%2").arg(first->n).arg(first->m));
    if (first->method == M::NM) exact = exact && nm >= 0;
    if (nm >= 0) nm_->setCurrentIndex(nm);
  } else {
    pruneMethod_->setCurrentIndex(0);
  }
  heads_->setValue(int(p.heads.size()));
  // The labels and enabled states follow the controls (planChanged stays blocked).
  const QSignalBlocker self(this);
  controlsChanged();
  return exact;
}

void SparsityPanel::setTau(double t) { tau_->setValue(tauStep(t)); }

int SparsityPanel::headsToPrune() const { return heads_->value(); }

void SparsityPanel::setHeads(int count, sparse::Importance by) {
  const QSignalBlocker a(heads_), b(importanceBy_);
  heads_->setValue(count);
  importanceBy_->setCurrentIndex(int(by));
}

sparse::Importance SparsityPanel::importance() const {
  return sparse::Importance(importanceBy_->currentIndex());
}

sparse::ModelPrunePlan SparsityPanel::plan() const {
  sparse::ModelPrunePlan p;
  using K = sparse::AttentionRule::Kind;
  const K kinds[] = {K::None, K::Threshold, K::TopK, K::Mass};
  p.attention.all.kind = kinds[std::clamp(attnKind_->currentIndex(), 0, 3)];
  p.attention.all.tau = tau();
  p.attention.all.k = topK_->value();
  p.attention.all.mass = mass_->value();
  p.attention.all.renormalize = renormalize_->isChecked();
  const int method = pruneMethod_->currentIndex();
  if (method > 0) {
    sparse::PruneSpec s;
    const sparse::PruneMethod methods[] = {
        sparse::PruneMethod::Magnitude, sparse::PruneMethod::Magnitude, sparse::PruneMethod::Global,
        sparse::PruneMethod::Rows,      sparse::PruneMethod::Cols,      sparse::PruneMethod::Block,
        sparse::PruneMethod::NM};
    s.method = methods[method];
    s.sparsity = sparsity_->value() / 100.0;
    s.norm = norm_->currentIndex() + 1;
    s.block = block_->value();
    const int nm[][2] = {{2, 4}, {1, 4}, {4, 8}};
    s.n = nm[nm_->currentIndex()][0];
    s.m = nm[nm_->currentIndex()][1];
    for (int t = 0; t < kTargetCount; ++t)
      if (targets_[size_t(t)]->isChecked()) p.targets[size_t(t)] = s;
  }
  return p;
}

void SparsityPanel::setStatus(const QString& status) { status_->setText(status); }

QString SparsityPanel::readoutText() const { return readout_->text(); }

void SparsityPanel::setResult(const std::vector<sparse::PrunedTensor>& tensors, const Readout& r) {
  tensors_ = tensors;
  QStringList names;
  for (const auto& t : tensors_) names << QString::fromStdString(t.name);
  setItemsKeepingSelection(tensor_, names);
  QString heads;
  for (const auto& [l, h] : r.prunedHeads) heads += QString(" L%1h%2").arg(l).arg(h);
  readout_->setText(tr("<b>Attention</b>: %1 % dropped, %2 of the mass kept, KL to dense %3"
                       "<br><b>Final hidden states</b>: cosine %4"
                       "<br><b>Weights</b>: %5 % zero; %6 kB dense → %7 kB bitmap+values, %8 kB CSR"
                       "<br><b>Removed heads</b>:%9")
                        .arg(100 * r.attentionSparsity, 0, 'f', 1)
                        .arg(r.retainedMass, 0, 'f', 4)
                        .arg(r.klMean, 0, 'g', 3)
                        .arg(r.hiddenCosine, 0, 'f', 5)
                        .arg(100 * r.weightSparsity, 0, 'f', 1)
                        .arg(double(r.denseBytes) / 1e3, 0, 'f', 1)
                        .arg(double(r.bitmapBytes) / 1e3, 0, 'f', 1)
                        .arg(double(r.csrBytes) / 1e3, 0, 'f', 1)
                        .arg(heads.isEmpty() ? tr(" none") : heads));
  showTensor();
}

void SparsityPanel::selectTensor(int index) { tensor_->setCurrentIndex(index); }

// A spy plot: the mask's kept fraction per block, at most kSpyCells per side.
void SparsityPanel::showTensor() {
  const int i = tensor_->currentIndex();
  if (i < 0 || i >= int(tensors_.size())) {
    weightMask_->setMessage(tr("no pruned matrix"));
    return;
  }
  sparse::BlockDensity d = sparse::blockDensity(tensors_[size_t(i)].mask, kSpyCells);
  const int rows = d.rows, cols = d.cols;
  const int64_t br = d.rowStep, bc = d.colStep;
  std::vector<float> density = std::move(d.values);
  QStringList rl, cl;
  for (int r = 0; r < rows; ++r) rl << QString::number(r * br);
  for (int c = 0; c < cols; ++c) cl << QString::number(c * bc);
  weightMask_->setTitle(br * bc > 1 ? tr("Weights kept per %1×%2 block").arg(br).arg(bc)
                                    : tr("Weights kept"));
  weightMask_->setFixedRange(0.0, 1.0);
  weightMask_->setMatrix(std::move(density), rows, cols, rl, cl);
}

void SparsityPanel::setSweep(const std::vector<double>& tau, const std::vector<double>& sparsity,
                             const std::vector<double>& kl) {
  sweepTau_ = tau;
  sweepSparsity_ = sparsity;
  sweepKl_ = kl;
  std::vector<double> pct(sparsity.size());
  for (size_t k = 0; k < pct.size(); ++k) pct[k] = 100 * sparsity[k];
  sweep_->setCurve(pct, kl, tr("attention dropped (%) as τ grows"), tr("KL to dense"));
  showSweepMarker();
}

void SparsityPanel::showSweepMarker() {  // at the swept τ nearest the current one
  double best = INFINITY;
  size_t at = 0;
  for (size_t k = 0; k < sweepTau_.size(); ++k)
    if (std::fabs(std::log(sweepTau_[k] / tau())) < best)
      best = std::fabs(std::log(sweepTau_[k] / tau())), at = k;
  if (!sweepTau_.empty()) sweep_->setMarker(100 * sweepSparsity_[at], sweepKl_[at]);
}

void SparsityPanel::setHeadMask(const float* sparse, int seq, const QStringList& tokens,
                                const QString& title) {
  std::vector<float> kept(size_t(seq) * seq);
  for (size_t k = 0; k < kept.size(); ++k) kept[k] = sparse[k] > 0.0f ? 1.0f : 0.0f;
  headMask_->setTitle(title);
  headMask_->setFixedRange(0.0, 1.0);
  headMask_->setMatrix(std::move(kept), seq, seq, tokens, tokens);
}

void SparsityPanel::setImportance(const std::vector<double>& score, int layers, int heads) {
  if (score.empty()) {
    importance_->setMessage(tr("head importance: set Remove to 1 or more heads"));
    return;
  }
  QStringList labels;
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < heads; ++h) labels << QString("L%1h%2").arg(l).arg(h);
  importance_->setBars(labels, score, tr("head importance"));
}

}  // namespace attn::widgets
