#include "widgets/distill_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <cmath>

#include "core/attention/compare.h"
#include "widgets/layer_map_view.h"
#include "widgets/loss_curves_view.h"

namespace attn::widgets {

namespace {
QDoubleSpinBox* weightBox(QWidget* parent, double value, double max = 100.0) {
  auto* b = new QDoubleSpinBox(parent);
  b->setRange(0.0, max);
  b->setDecimals(3);
  b->setSingleStep(0.1);
  b->setValue(value);
  return b;
}
}  // namespace

DistillPanel::DistillPanel(QWidget* parent) : QWidget(parent) {
  auto* root = new QVBoxLayout(this);

  auto* mapBox = new QGroupBox(tr("Layer mapping"), this);
  auto* mapLayout = new QVBoxLayout(mapBox);
  map_ = new LayerMapView(mapBox);
  mapLayout->addWidget(map_);
  connect(map_, &LayerMapView::mappingChanged, this, &DistillPanel::mappingEdited);
  auto* fill = new QHBoxLayout();
  for (const auto& [how, label, tip] :
       {std::tuple{"uniform", tr("Uniform"), tr("Student layer j ↔ teacher layer ⌈(j+1)·Lt/Ls⌉−1")},
        std::tuple{"last", tr("Last"), tr("The last student layer ↔ the last teacher layer (MiniLM)")},
        std::tuple{"auto", tr("From loss"),
                   tr("The monotone mapping with the least KL on the current text")}}) {
    auto* b = new QPushButton(label, mapBox);
    b->setToolTip(tip);
    const QString h = how;
    connect(b, &QPushButton::clicked, this, [this, h] {
      fillMapping(h);
      emit mappingEdited(map_->mapping());
    });
    fill->addWidget(b);
  }
  mapLayout->addLayout(fill);
  root->addWidget(mapBox);

  auto* lossBox = new QGroupBox(tr("Losses"), this);
  auto* lf = new QFormLayout(lossBox);
  attention_ = new QComboBox(lossBox);
  attention_->addItem(tr("KL(A_T ‖ A_S) per query row"), int(distill::AttentionLoss::Kl));
  attention_->addItem(tr("MSE (mean squared difference)"), int(distill::AttentionLoss::Mse));
  attention_->addItem(tr("‖A_T − A_S‖²_F per map"), int(distill::AttentionLoss::Frobenius));
  attention_->addItem(tr("none"), int(distill::AttentionLoss::None));
  lf->addRow(tr("Attention"), attention_);
  attentionWeight_ = weightBox(lossBox, 1.0);
  lf->addRow(tr("  weight"), attentionWeight_);
  heads_ = new QComboBox(lossBox);
  heads_->addItem(tr("one to one (averaged if counts differ)"), int(distill::HeadMode::Auto));
  heads_->addItem(tr("head-averaged maps"), int(distill::HeadMode::Average));
  heads_->addItem(tr("relation heads (MiniLM-v2)"), int(distill::HeadMode::Relation));
  lf->addRow(tr("Heads"), heads_);
  relationHeads_ = new QSpinBox(lossBox);
  relationHeads_->setRange(0, 64);
  relationHeads_->setSpecialValueText(tr("student's"));
  lf->addRow(tr("  relation heads"), relationHeads_);
  valueWeight_ = weightBox(lossBox, 1.0);
  valueWeight_->setToolTip(tr("MiniLM value relation KL; 0 = off"));
  lf->addRow(tr("Value relation"), valueWeight_);
  hiddenWeight_ = weightBox(lossBox, 0.0);
  hiddenWeight_->setToolTip(tr("Hidden-state MSE (through a learned projection when widths differ); 0 = off"));
  lf->addRow(tr("Hidden states"), hiddenWeight_);
  logitWeight_ = weightBox(lossBox, 0.0);
  temperature_ = weightBox(lossBox, 1.0, 20.0);
  temperature_->setMinimum(0.1);
  auto* logitRow = new QHBoxLayout();
  logitRow->addWidget(logitWeight_);
  logitRow->addWidget(new QLabel(tr("τ"), lossBox));
  logitRow->addWidget(temperature_);
  lf->addRow(tr("Logits"), logitRow);
  lmWeight_ = weightBox(lossBox, 0.0);
  lf->addRow(tr("LM loss"), lmWeight_);
  root->addWidget(lossBox);

  auto* runBox = new QGroupBox(tr("Data and optimiser"), this);
  auto* rf = new QFormLayout(runBox);
  auto* corpusRow = new QHBoxLayout();
  corpus_ = new QLineEdit(runBox);
  corpus_->setPlaceholderText(tr(".txt, .tsv/.csv or .jsonl"));
  auto* browse = new QToolButton(runBox);
  browse->setText("…");
  connect(browse, &QToolButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Corpus"), corpus_->text(),
                                                   tr("Corpus (*.txt *.tsv *.csv *.jsonl)"));
    if (!f.isEmpty()) setCorpus(f);
  });
  connect(corpus_, &QLineEdit::editingFinished, this, [this] { emit corpusChosen(corpus_->text()); });
  corpusRow->addWidget(corpus_, 1);
  corpusRow->addWidget(browse);
  rf->addRow(tr("Corpus"), corpusRow);
  column_ = new QComboBox(runBox);
  column_->setEnabled(false);
  rf->addRow(tr("  column"), column_);
  lr_ = new QDoubleSpinBox(runBox);
  lr_->setDecimals(6);
  lr_->setRange(1e-6, 1.0);
  lr_->setSingleStep(1e-4);
  lr_->setValue(1e-3);
  rf->addRow(tr("Learning rate"), lr_);
  steps_ = new QSpinBox(runBox);
  steps_->setRange(1, 10000000);
  steps_->setValue(300);
  rf->addRow(tr("Steps"), steps_);
  batch_ = new QSpinBox(runBox);
  batch_->setRange(1, 4096);
  batch_->setValue(16);
  rf->addRow(tr("Batch"), batch_);
  seq_ = new QSpinBox(runBox);
  seq_->setRange(2, 4096);
  seq_->setValue(64);
  rf->addRow(tr("Max tokens"), seq_);
  seed_ = new QSpinBox(runBox);
  seed_->setRange(0, 1 << 30);
  rf->addRow(tr("Seed"), seed_);
  refresh_ = new QSpinBox(runBox);
  refresh_->setRange(0, 100000);
  refresh_->setValue(10);
  refresh_->setSpecialValueText(tr("at the end"));
  refresh_->setSuffix(tr(" steps"));
  rf->addRow(tr("Refresh maps every"), refresh_);
  root->addWidget(runBox);

  auto* buttons = new QHBoxLayout();
  start_ = new QPushButton(tr("Start"), this);
  pause_ = new QPushButton(tr("Pause"), this);
  cancel_ = new QPushButton(tr("Cancel"), this);
  save_ = new QPushButton(tr("Save student…"), this);
  for (QPushButton* b : {start_, pause_, cancel_, save_}) buttons->addWidget(b);
  root->addLayout(buttons);
  connect(start_, &QPushButton::clicked, this, [this] {
    running_ = true;  // until runStarted / runFinished says otherwise
    curves_->setSeries({});
    updateEnabled();
    emit startRequested();
  });
  connect(pause_, &QPushButton::clicked, this, [this] {
    if (paused_)
      emit resumeRequested();
    else
      emit pauseRequested();
  });
  connect(cancel_, &QPushButton::clicked, this, &DistillPanel::cancelRequested);
  connect(save_, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getSaveFileName(this, tr("Save the student as a folder"));
    if (!dir.isEmpty()) emit saveRequested(dir);
  });

  curves_ = new LossCurvesView(this);
  curves_->setMinimumHeight(220);
  root->addWidget(curves_, 1);
  status_ = new QLabel(tr("Load a teacher and a student, choose a corpus, then Start."), this);
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  root->addWidget(status_);
  updateEnabled();
}

void DistillPanel::setModels(int teacherLayers, int studentLayers, bool logitsPossible,
                             bool lmPossible) {
  const bool changed =
      teacherLayers != map_->teacherLayers() || studentLayers != map_->studentLayers();
  logitsPossible_ = logitsPossible;
  lmPossible_ = lmPossible;
  if (changed) {
    map_->setLayers(teacherLayers, studentLayers);
    kl_.clear();
    fillMapping("uniform");
  }
  updateEnabled();
}

void DistillPanel::setLossMatrix(const std::vector<double>& kl) {
  kl_ = kl;
  map_->setLoss(kl);
}

void DistillPanel::fillMapping(const QString& how) {
  const int Lt = map_->teacherLayers(), Ls = map_->studentLayers();
  if (Lt <= 0 || Ls <= 0) return;
  std::vector<int> m;
  if (how == "last") {
    m.assign(size_t(Ls), -1);
    m[Ls - 1] = Lt - 1;
  } else if (how == "auto" && kl_.size() == size_t(Lt) * Ls) {
    m = bestMonotoneMap(kl_, Lt, Ls);
  } else {
    m = uniformLayerMap(Ls, Lt);
  }
  map_->setMapping(m);
}

void DistillPanel::setCorpus(const QString& path) {
  corpus_->setText(path);
  emit corpusChosen(path);
}

void DistillPanel::setColumns(const QStringList& columns) {
  const QString keep = column_->currentText();
  column_->clear();
  column_->addItems(columns);
  column_->setEnabled(!columns.isEmpty());
  if (columns.contains(keep)) column_->setCurrentText(keep);
}

distill::TrainOptions DistillPanel::options() const {
  distill::TrainOptions o;
  distill::LossOptions& L = o.loss;
  L.mapping = map_->mapping();
  L.attention = static_cast<distill::AttentionLoss>(attention_->currentData().toInt());
  L.attentionWeight = attentionWeight_->value();
  L.heads = static_cast<distill::HeadMode>(heads_->currentData().toInt());
  L.relationHeads = relationHeads_->value();
  L.valueWeight = valueWeight_->value();
  L.hiddenWeight = hiddenWeight_->value();
  L.logitWeight = logitsPossible_ ? logitWeight_->value() : 0.0;
  L.temperature = temperature_->value();
  L.lmWeight = lmPossible_ ? lmWeight_->value() : 0.0;
  o.lr = lr_->value();
  o.steps = steps_->value();
  o.batch = batch_->value();
  o.seq = seq_->value();
  o.seed = static_cast<uint64_t>(seed_->value());
  o.warmup = static_cast<int>(std::lround(0.06 * o.steps));
  return o;
}

void DistillPanel::setRun(double lr, int steps, int batch, int maxTokens, int refreshEvery) {
  lr_->setValue(lr);
  steps_->setValue(steps);
  batch_->setValue(batch);
  seq_->setValue(maxTokens);
  refresh_->setValue(refreshEvery);
}

QString DistillPanel::corpus() const { return corpus_->text(); }
QString DistillPanel::column() const { return column_->isEnabled() ? column_->currentText() : QString(); }
int DistillPanel::refreshEvery() const { return refresh_->value(); }

void DistillPanel::runStarted(int steps, int examples, int truncated) {
  running_ = true;
  paused_ = false;
  steps_total_ = steps;
  QStringList series = {tr("total")};
  const auto& m = map_->mapping();
  for (size_t s = 0; s < m.size(); ++s)
    if (m[s] >= 0) series << tr("S%1↔T%2").arg(s).arg(m[s]);
  curves_->setSeries(series);
  setStatus(tr("training on %1 examples%2").arg(examples).arg(
      truncated > 0 ? tr(" (%1 cut to %2 tokens)").arg(truncated).arg(seq_->value()) : QString()));
  updateEnabled();
}

void DistillPanel::addStep(const distill::StepReport& r) {
  std::vector<double> values = {r.loss.total};
  const auto& m = map_->mapping();
  for (size_t s = 0; s < m.size(); ++s)
    if (m[s] >= 0) values.push_back(s < r.loss.attention.size() ? r.loss.attention[s] : NAN);
  curves_->addPoint(r.step, values);
  setStatus(tr("step %1 / %2 · loss %3 · lr %4 · %5 examples/s")
                .arg(r.step)
                .arg(r.steps)
                .arg(r.loss.total, 0, 'g', 4)
                .arg(r.lr, 0, 'g', 3)
                .arg(r.examplesPerSecond, 0, 'f', 0));
}

void DistillPanel::setPaused(bool paused) {
  paused_ = paused;
  pause_->setText(paused ? tr("Resume") : tr("Pause"));
  if (paused) setStatus(statusText() + tr(" · paused"));
  updateEnabled();
}

void DistillPanel::runFinished(bool completed, const QString& message) {
  const bool started = running_;
  running_ = false;
  paused_ = false;
  pause_->setText(tr("Pause"));
  trained_ = trained_ || (started && curves_->pointCount(0) > 0);
  setStatus(completed ? tr("finished: %1 steps").arg(curves_->pointCount(0))
                      : tr("stopped: %1").arg(message));
  updateEnabled();
}

void DistillPanel::setStatus(const QString& status) { status_->setText(status); }
QString DistillPanel::statusText() const { return status_->text(); }

void DistillPanel::updateEnabled() {
  const bool haveModels = map_->teacherLayers() > 0 && map_->studentLayers() > 0;
  start_->setEnabled(haveModels && !running_);
  pause_->setEnabled(running_);
  cancel_->setEnabled(running_);
  save_->setEnabled(!running_ && trained_);
  logitWeight_->setEnabled(logitsPossible_);
  temperature_->setEnabled(logitsPossible_);
  lmWeight_->setEnabled(lmPossible_);
  if (!logitsPossible_) logitWeight_->setToolTip(tr("Needs two GPT-2 style models with one vocabulary"));
  for (QWidget* w : std::initializer_list<QWidget*>{map_, attention_, heads_, relationHeads_,
                                                    attentionWeight_, valueWeight_, hiddenWeight_,
                                                    corpus_, lr_, steps_, batch_, seq_, seed_})
    w->setEnabled(!running_);
}

}  // namespace attn::widgets
