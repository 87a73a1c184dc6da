#include "widgets/quant_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QVBoxLayout>
#include <cmath>

#include "widgets/bar_chart_view.h"
#include "widgets/form_rows.h"
#include "widgets/histogram_view.h"

namespace attn::widgets {

namespace {
QString megabytes(int64_t b) {
  if (b < 1000000) return QString::number(double(b) / 1e3, 'f', 1) + " kB";
  return QString::number(double(b) / 1e6, 'f', 2) + " MB";
}

}  // namespace

QuantPanel::QuantPanel(QWidget* parent) : QWidget(parent) {
  auto* top = new QVBoxLayout(this);
  auto* weightsBox = new QGroupBox(tr("Weights"), this);
  auto* form = new QFormLayout(weightsBox);
  method_ = new QComboBox(weightsBox);
  for (const auto& t : quant::kMethods) method_->addItem(QString::fromUtf8(t.name));
  method_->setToolTip(
      tr("uniform: w = s·q; kmeans: learned codebook; log2: powers of two; "
         "binary: α·sign(w); ternary: α·{−1, 0, 1}"));
  form->addRow(tr("Method"), method_);
  form->addRow(tr("Bits"), sliderRow(weightsBox, 1, 8, 8, &bits_, &bitsLabel_));
  auto* granRow = new QHBoxLayout();
  granularity_ = new QComboBox(weightsBox);
  granularity_->addItems({tr("per tensor"), tr("per output channel"), tr("per group")});
  granularity_->setCurrentIndex(1);
  groupSize_ = new QSpinBox(weightsBox);
  groupSize_->setRange(1, 1 << 16);
  groupSize_->setValue(64);
  groupSize_->setPrefix(tr("G = "));
  granRow->addWidget(granularity_, 1);
  granRow->addWidget(groupSize_);
  form->addRow(tr("Granularity"), granRow);
  symmetric_ = new QCheckBox(tr("symmetric (no zero point)"), weightsBox);
  symmetric_->setChecked(true);
  form->addRow(QString(), symmetric_);
  auto* clipRow = new QHBoxLayout();
  clip_ = new QComboBox(weightsBox);
  clip_->addItems({tr("min/max"), tr("percentile"), tr("MSE-optimal")});  // as quant::Clip
  percentile_ = new QDoubleSpinBox(weightsBox);
  percentile_->setRange(50.1, 100.0);
  percentile_->setDecimals(2);
  percentile_->setValue(99.9);
  percentile_->setSuffix(" %");
  clipRow->addWidget(clip_, 1);
  clipRow->addWidget(percentile_);
  form->addRow(tr("Range"), clipRow);
  auto* targetRow = new QGridLayout();
  for (int t = 0; t < quant::kTargetCount; ++t) {
    auto* c = new QCheckBox(QString::fromUtf8(quant::kTargetNames[t]), weightsBox);
    c->setChecked(t != int(quant::Target::Emb));
    targets_.push_back(c);
    targetRow->addWidget(c, t / 4, t % 4);
  }
  form->addRow(tr("Tensors"), targetRow);
  overrides_ = new QLineEdit(weightsBox);
  overrides_->setObjectName("overrides");
  overrides_->setPlaceholderText(tr("e.g. ffn_in,ffn_out=uniform:4:group:64; layer 0 q,k=none"));
  overrides_->setToolTip(
      tr("Per tensor group or per layer, applied after the settings above, later entries "
         "winning:\n[layer N | layers A-B] targets=none | method:bits[:tensor|channel|group:G]"
         "[:asym]"));
  overrides_->setClearButtonEnabled(true);
  form->addRow(tr("Overrides"), overrides_);
  overridesError_ = new QLabel(weightsBox);
  overridesError_->setWordWrap(true);
  overridesError_->setStyleSheet("color: #c0392b");
  overridesError_->setVisible(false);
  form->addRow(QString(), overridesError_);
  top->addWidget(weightsBox);

  auto* attnBox = new QGroupBox(tr("Attention probabilities"), this);
  auto* af = new QFormLayout(attnBox);
  attnKind_ = new QComboBox(attnBox);
  attnKind_->addItems(
      {tr("float (not quantized)"), tr("uniform on [0, 1]"), tr("log2"), tr("binary (threshold)")});
  af->addRow(tr("Quantizer"), attnKind_);
  af->addRow(tr("Bits"), sliderRow(attnBox, 1, 8, 4, &attnBits_, &attnBitsLabel_));
  attnThreshold_ = new QDoubleSpinBox(attnBox);
  attnThreshold_->setRange(0.001, 1.0);
  attnThreshold_->setDecimals(3);
  attnThreshold_->setSingleStep(0.01);
  attnThreshold_->setValue(0.1);
  af->addRow(tr("Threshold"), attnThreshold_);
  top->addWidget(attnBox);

  status_ = new QLabel(this);
  status_->setWordWrap(true);
  readout_ = new QLabel(this);
  readout_->setTextFormat(Qt::RichText);
  readout_->setWordWrap(true);
  readout_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  top->addWidget(readout_);
  top->addWidget(status_);
  tensor_ = new QComboBox(this);
  tensor_->setToolTip(tr("The tensor whose histograms are shown"));
  top->addWidget(tensor_);
  auto* hists = new QHBoxLayout();
  weights_ = new HistogramView(this);
  errors_ = new HistogramView(this);
  weights_->setMessage(tr("no quantized tensor yet"));
  errors_->setMessage(QString());
  hists->addWidget(weights_, 1);
  hists->addWidget(errors_, 1);
  top->addLayout(hists, 1);
  auto* sensRow = new QHBoxLayout();
  sensitivityBy_ = new QComboBox(this);
  sensitivityBy_->addItems({tr("one layer at a time"), tr("one tensor group at a time")});
  scan_ = new QPushButton(tr("Sensitivity scan"), this);
  scan_->setToolTip(
      tr("Quantize one layer (or one tensor group) at a time and rank them by the attention KL "
         "they cause on the current text"));
  sensRow->addWidget(sensitivityBy_, 1);
  sensRow->addWidget(scan_);
  top->addLayout(sensRow);
  sensitivity_ = new BarChartView(this);
  sensitivity_->setMessage(tr("sensitivity: press Sensitivity scan to rank them"));
  top->addWidget(sensitivity_);

  for (auto* c : {method_, granularity_, clip_, attnKind_})
    connect(c, &QComboBox::currentIndexChanged, this, &QuantPanel::controlsChanged);
  for (auto* s : {bits_, attnBits_})
    connect(s, &QSlider::valueChanged, this, &QuantPanel::controlsChanged);
  connect(groupSize_, &QSpinBox::valueChanged, this, &QuantPanel::controlsChanged);
  for (auto* d : {percentile_, attnThreshold_})
    connect(d, &QDoubleSpinBox::valueChanged, this, &QuantPanel::controlsChanged);
  connect(symmetric_, &QCheckBox::toggled, this, &QuantPanel::controlsChanged);
  for (auto* c : targets_) connect(c, &QCheckBox::toggled, this, &QuantPanel::controlsChanged);
  connect(overrides_, &QLineEdit::textChanged, this, [this] {
    quant::ModelQuantPlan check;
    const Status st = quant::applyPlanText(overrides_->text().toStdString(), check);
    overridesError_->setText(st.ok() ? QString() : QString::fromStdString(st.message()));
    overridesError_->setVisible(!st.ok());
    if (st.ok()) controlsChanged();  // an invalid text changes nothing
  });
  connect(tensor_, &QComboBox::currentIndexChanged, this, &QuantPanel::showTensor);
  connect(tensor_, &QComboBox::activated, this, &QuantPanel::tensorSelected);
  connect(scan_, &QPushButton::clicked, this,
          [this] { emit sensitivityRequested(sensitivityBy_->currentIndex()); });
  updateEnabled();
}

void QuantPanel::updateEnabled() {
  const auto& t = quant::kMethods[std::max(0, method_->currentIndex())];
  bits_->blockSignals(true);
  bits_->setRange(t.minBits, t.maxBits);
  bits_->blockSignals(false);
  bitsLabel_->setText(tr("%1 bit").arg(bits_->value()));
  const bool uniform = t.method == quant::Method::Uniform;
  if (!t.group && granularity_->currentIndex() == 2) {
    granularity_->blockSignals(true);
    granularity_->setCurrentIndex(1);
    granularity_->blockSignals(false);
  }
  if (auto* m = qobject_cast<QStandardItemModel*>(granularity_->model()))
    m->item(2)->setEnabled(t.group);  // groups: uniform only
  groupSize_->setEnabled(granularity_->currentIndex() == 2);
  symmetric_->setEnabled(uniform);
  clip_->setEnabled(uniform);
  percentile_->setEnabled(uniform && clip_->currentIndex() == int(quant::Clip::Percentile));
  const int kind = attnKind_->currentIndex();
  attnBits_->setEnabled(kind == 1 || kind == 2);
  attnBitsLabel_->setText(tr("%1 bit").arg(attnBits_->value()));
  attnThreshold_->setEnabled(kind == 3);
}

void QuantPanel::controlsChanged() {
  if (updating_) return;
  updateEnabled();
  emit planChanged();
}

quant::ModelQuantPlan QuantPanel::plan() const {
  quant::Spec s;
  const auto& t = quant::kMethods[std::max(0, method_->currentIndex())];
  s.method = t.method;
  s.bits = std::clamp(bits_->value(), t.minBits, t.maxBits);
  s.granularity = granularity_->currentIndex() == 0   ? quant::Granularity::Tensor
                  : granularity_->currentIndex() == 2 ? quant::Granularity::Group
                                                      : quant::Granularity::Channel;
  s.groupSize = groupSize_->value();
  s.symmetric = symmetric_->isChecked();
  s.clip = quant::Clip(std::clamp(clip_->currentIndex(), 0, 2));
  s.percentile = percentile_->value();
  quant::ModelQuantPlan p;
  for (int i = 0; i < quant::kTargetCount; ++i)
    if (targets_[size_t(i)]->isChecked()) p.targets[size_t(i)] = s;
  using K = quant::AttentionQuant::Kind;
  const K kinds[] = {K::None, K::Uniform, K::Log2, K::Binary};
  p.attention.kind = kinds[std::clamp(attnKind_->currentIndex(), 0, 3)];
  p.attention.bits = attnBits_->value();
  p.attention.threshold = float(attnThreshold_->value());
  quant::ModelQuantPlan edited = p;  // overrides apply only when the text is valid
  if (quant::applyPlanText(overrides_->text().toStdString(), edited).ok()) p = std::move(edited);
  return p;
}

void QuantPanel::setPlan(const quant::ModelQuantPlan& p) {
  updating_ = true;
  std::optional<quant::Spec> first;
  for (int i = 0; i < quant::kTargetCount; ++i) {
    targets_[size_t(i)]->setChecked(p.targets[size_t(i)].has_value());
    if (!first && p.targets[size_t(i)]) first = p.targets[size_t(i)];
  }
  using quant::specText;
  if (first) {
    method_->setCurrentIndex(int(first->method));
    updateEnabled();
    bits_->setValue(first->bits);
    granularity_->setCurrentIndex(int(first->granularity));
    groupSize_->setValue(first->groupSize);
    symmetric_->setChecked(first->symmetric);
    clip_->setCurrentIndex(int(first->clip));
    percentile_->setValue(first->percentile);
  }
  // What the controls cannot show (different specs per group, per-layer
  // overrides) goes into the overrides text, which is applied after them.
  bool uniformSpecs = true;
  for (const auto& t : p.targets)
    if (t && first && specText(t) != specText(first)) uniformSpecs = false;
  overrides_->setText(QString::fromStdString(quant::planText(p, !uniformSpecs)));
  attnKind_->setCurrentIndex(int(p.attention.kind));
  attnBits_->setValue(p.attention.bits);
  attnThreshold_->setValue(p.attention.threshold);
  updating_ = false;
  updateEnabled();
  emit planChanged();
}

void QuantPanel::setStatus(const QString& status) { status_->setText(status); }

void QuantPanel::setResult(std::vector<quant::TensorReport> tensors, int64_t before, int64_t after,
                           const Fidelity* fid) {
  tensors_ = std::move(tensors);
  QStringList names;
  for (const auto& t : tensors_) names << QString::fromStdString(t.name);
  setItemsKeepingSelection(tensor_, names);
  summary_ =
      tr("<b>Model</b>: %1 → %2 (%3 of float32)")
          .arg(megabytes(before), megabytes(after))
          .arg(before > 0 ? QString::number(100.0 * double(after) / double(before), 'f', 1) + " %"
                          : QString("–"));
  if (fid != nullptr)
    summary_ += tr("<br><b>Attention vs float</b>: KL %1, JS %2 (mean over heads)"
                   "<br><b>Final hidden states</b>: cosine %3")
                    .arg(std::abs(fid->klMean) < 1e-12 ? 0.0 : fid->klMean, 0, 'g', 3)
                    .arg(std::abs(fid->jsMean) < 1e-12 ? 0.0 : fid->jsMean, 0, 'g', 3)
                    .arg(fid->hiddenCosine, 0, 'f', 5);
  showTensor();
}

int QuantPanel::selectedTensor() const { return tensor_->currentIndex(); }

void QuantPanel::selectTensor(int index) { tensor_->setCurrentIndex(index); }

QString QuantPanel::readoutText() const { return readout_->text(); }

void QuantPanel::showTensor() {
  const int i = tensor_->currentIndex();
  if (i < 0 || i >= int(tensors_.size())) {
    readout_->setText(summary_.isEmpty() ? tr("No tensor is quantized: tick a tensor group.")
                                         : summary_);
    weights_->setMessage(tr("no quantized tensor"));
    errors_->setMessage(QString());
    return;
  }
  const quant::TensorReport& t = tensors_[size_t(i)];
  const quant::ErrorStats& st = t.stats;
  readout_->setText(
      summary_ + tr("<br><b>%1</b><br>%2: SQNR %3 dB, MSE %4, max |error| %5, "
                    "%6 bits/weight, %7 → %8")
                     .arg(QString::fromStdString(t.name).toHtmlEscaped(),
                          QString::fromStdString(quant::describe(t.spec)))
                     .arg(std::isinf(st.sqnrDb) ? QString("∞") : QString::number(st.sqnrDb, 'f', 2))
                     .arg(st.mse, 0, 'g', 3)
                     .arg(st.maxAbsError, 0, 'g', 3)
                     .arg(st.bitsPerWeight, 0, 'f', 3)
                     .arg(megabytes(st.bytesBefore), megabytes(st.bytesAfter)));
  weights_->setTitle(tr("Weights and levels"));
  if (st.weights.counts.empty()) {  // the explorer computes the shown tensors' histograms only
    weights_->setMessage(tr("histograms being computed…"));
    errors_->setMessage(tr("histograms being computed…"));
    return;
  }
  weights_->setHistogram(st.weights.lo, st.weights.hi, st.weights.counts, tr("w"));
  weights_->setLevels(st.levels);
  errors_->setTitle(tr("Error w − ŵ"));
  errors_->setHistogram(st.errors.lo, st.errors.hi, st.errors.counts, tr("w − ŵ"));
}

void QuantPanel::setSensitivity(const std::vector<quant::Sensitivity>& entries) {
  QStringList labels;
  std::vector<double> values;
  for (const auto& e : entries) {
    labels << QString::fromStdString(e.label);
    values.push_back(e.attentionKl);
  }
  if (entries.empty())
    sensitivity_->setMessage(tr("sensitivity: nothing to rank"));
  else
    sensitivity_->setBars(labels, values, tr("attention KL"));
}

}  // namespace attn::widgets
