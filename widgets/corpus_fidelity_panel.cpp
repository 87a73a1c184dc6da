#include "widgets/corpus_fidelity_panel.h"

#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <cmath>

#include "widgets/form_rows.h"
#include "widgets/heatmap_view.h"

namespace attn::widgets {

CorpusFidelityPanel::CorpusFidelityPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  QHBoxLayout* row = corpusRow(this, tr("corpus file (.txt, .tsv/.csv, .jsonl)"), 256, &corpus_, &sentences_);
  corpus_->setObjectName("corpusPath");
  layout->addLayout(row);
  auto* buttons = new QHBoxLayout;
  metric_ = new QComboBox(this);
  metric_->setObjectName("corpusMetric");
  metric_->addItems({tr("KL to student"), tr("JS to student")});
  run_ = new QPushButton(tr("Measure plan on corpus"), this);
  run_->setObjectName("runCorpus");
  cancel_ = new QPushButton(tr("Cancel"), this);
  cancel_->setEnabled(false);
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 1);
  progress_->setValue(0);
  buttons->addWidget(metric_);
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  buttons->addWidget(progress_, 1);
  layout->addLayout(buttons);
  map_ = new HeatmapView(this);
  map_->setAxisLabels(tr("head"), tr("layer"));
  map_->setTitle(tr("Per head, mean over the corpus"));
  map_->setShowValues(true);
  map_->setMessage(tr("Measure the current plan over a corpus to see which heads it hurts."));
  layout->addWidget(map_, 1);
  readout_ = new QLabel(this);
  readout_->setWordWrap(true);
  layout->addWidget(readout_);
  connect(run_, &QPushButton::clicked, this, &CorpusFidelityPanel::runRequested);
  connect(cancel_, &QPushButton::clicked, this, &CorpusFidelityPanel::cancelRequested);
  connect(metric_, &QComboBox::currentIndexChanged, this, &CorpusFidelityPanel::redraw);
}

QString CorpusFidelityPanel::corpus() const { return corpus_->text().trimmed(); }
void CorpusFidelityPanel::setCorpus(const QString& path) { corpus_->setText(path); }
int CorpusFidelityPanel::maxSentences() const { return sentences_->value(); }
void CorpusFidelityPanel::setMaxSentences(int n) { sentences_->setValue(n); }

void CorpusFidelityPanel::started(int sentences) {
  running_ = true;
  eval_.reset();
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  progress_->setRange(0, sentences);
  progress_->setValue(0);
  readout_->setText(tr("Measuring the uncompressed model…"));
}

void CorpusFidelityPanel::setPartial(const compress::Evaluation& e, int done, int total) {
  eval_ = std::make_unique<compress::Evaluation>(e);
  progress_->setRange(0, total);
  progress_->setValue(done);
  redraw();
}

void CorpusFidelityPanel::finished(bool completed, const QString& message) {
  running_ = false;
  run_->setEnabled(true);
  cancel_->setEnabled(false);
  if (!completed) readout_->setText(readout_->text() + "\n" + tr("Stopped: %1").arg(message));
}

QString CorpusFidelityPanel::readoutText() const { return readout_->text(); }

void CorpusFidelityPanel::redraw() {
  if (!eval_) return;
  const compress::Evaluation& e = *eval_;
  const bool js = metric_->currentIndex() == 1;
  const std::vector<double>& v = js ? e.headJs : e.headKl;
  std::vector<float> cells(v.begin(), v.end());
  QStringList layers, heads;
  for (int l = 0; l < e.layers; ++l) layers << QString::number(l);
  for (int h = 0; h < e.heads; ++h) heads << QString::number(h);
  int worst = 0;
  for (size_t k = 1; k < v.size(); ++k)
    if (v[k] > v[size_t(worst)]) worst = int(k);
  map_->setTitle(tr("%1 per head, mean over %2 sentences").arg(metric_->currentText()).arg(e.sentences));
  map_->setAutoRange();
  map_->setMatrix(std::move(cells), e.layers, e.heads, layers, heads);
  QString text = tr("%1 sentences: attention KL %2, JS %3, hidden cosine %4; most hurt: layer %5 head %6 (%7)")
                     .arg(e.sentences)
                     .arg(e.klMean, 0, 'g', 3)
                     .arg(e.jsMean, 0, 'g', 3)
                     .arg(e.hiddenCosine, 0, 'f', 4)
                     .arg(e.heads > 0 ? worst / e.heads : 0)
                     .arg(e.heads > 0 ? worst % e.heads : 0)
                     .arg(v.empty() ? 0.0 : v[size_t(worst)], 0, 'g', 3);
  if (std::isfinite(e.teacherKl))
    text += tr("; KL to teacher %1 (uncompressed %2)").arg(e.teacherKl, 0, 'g', 3).arg(e.studentTeacherKl, 0, 'g', 3);
  readout_->setText(text);
}

}  // namespace attn::widgets
