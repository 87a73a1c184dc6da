#include "widgets/tradeoff_panel.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <cmath>

#include "widgets/form_rows.h"
#include "widgets/tradeoff_view.h"

namespace attn::widgets {

namespace {
const char* kDefaults[3] = {"2, 3, 4, 6, 8", "0.001, 0.003, 0.01, 0.03, 0.1", "0, 0.3, 0.5, 0.7, 0.9"};
QString paramLabel(compress::SweepParam p) {
  switch (p) {
    case compress::SweepParam::Bits: return QObject::tr("bits");
    case compress::SweepParam::Tau: return QObject::tr("τ");
    case compress::SweepParam::Sparsity: return QObject::tr("sparsity");
  }
  return {};
}
}  // namespace

TradeoffPanel::TradeoffPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  for (int a = 0; a < 2; ++a) {
    auto* row = new QHBoxLayout;
    param_[a] = new QComboBox(this);
    param_[a]->setObjectName(QString("sweepParam%1").arg(a));
    if (a == 1) param_[a]->addItem(tr("(none)"), -1);
    param_[a]->addItem(tr("weight bits"), int(compress::SweepParam::Bits));
    param_[a]->addItem(tr("attention τ"), int(compress::SweepParam::Tau));
    param_[a]->addItem(tr("weight sparsity"), int(compress::SweepParam::Sparsity));
    values_[a] = new QLineEdit(this);
    values_[a]->setObjectName(QString("sweepValues%1").arg(a));
    row->addWidget(param_[a]);
    row->addWidget(values_[a], 1);
    form->addRow(a == 0 ? tr("Vary") : tr("and"), row);
    connect(param_[a], &QComboBox::currentIndexChanged, this, [this, a] {
      const int p = param_[a]->currentData().toInt();
      values_[a]->setEnabled(p >= 0);
      values_[a]->setText(p >= 0 ? kDefaults[p] : QString());
    });
  }
  values_[0]->setText(kDefaults[0]);
  param_[1]->setCurrentIndex(2);  // τ
  values_[1]->setText(kDefaults[1]);
  QHBoxLayout* corpusLine = corpusRow(this, tr("the current text"), 32, &corpus_, &sentences_);
  corpus_->setObjectName("sweepCorpus");
  form->addRow(tr("On"), corpusLine);
  auto* showRow = new QHBoxLayout;
  xMetric_ = new QComboBox(this);
  xMetric_->addItems({tr("bits per weight"), tr("model size (MB)")});
  yMetric_ = new QComboBox(this);
  yMetric_->setObjectName("sweepY");
  yMetric_->addItems({tr("attention KL to teacher"), tr("attention KL to student"), tr("1 − hidden cosine")});
  showRow->addWidget(xMetric_);
  showRow->addWidget(new QLabel(tr("against"), this));
  showRow->addWidget(yMetric_, 1);
  form->addRow(tr("Plot"), showRow);
  layout->addLayout(form);
  auto* buttons = new QHBoxLayout;
  run_ = new QPushButton(tr("Run sweep"), this);
  run_->setObjectName("runSweep");
  cancel_ = new QPushButton(tr("Cancel"), this);
  cancel_->setObjectName("cancelSweep");
  cancel_->setEnabled(false);
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 1);
  progress_->setValue(0);
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  buttons->addWidget(progress_, 1);
  layout->addLayout(buttons);
  view_ = new TradeoffView(this);
  layout->addWidget(view_, 1);
  status_ = new QLabel(tr("Click a point to apply its plan."), this);
  status_->setWordWrap(true);
  layout->addWidget(status_);

  connect(run_, &QPushButton::clicked, this, &TradeoffPanel::runRequested);
  connect(cancel_, &QPushButton::clicked, this, &TradeoffPanel::cancelRequested);
  connect(xMetric_, &QComboBox::currentIndexChanged, this, &TradeoffPanel::replot);
  connect(yMetric_, &QComboBox::currentIndexChanged, this, &TradeoffPanel::replot);
  connect(view_, &TradeoffView::pointClicked, this, [this](int i) {
    if (i < 0 || size_t(i) >= points_.size()) return;
    view_->setChosen(i);
    status_->setText(tr("Applied: %1").arg(describe(points_[size_t(i)])));
    emit applyRequested(points_[size_t(i)].plan, tr("Sweep point %1").arg(describe(points_[size_t(i)])));
  });
}

bool TradeoffPanel::axes(std::vector<compress::SweepAxis>* out, QString* error) const {
  out->clear();
  for (int a = 0; a < 2; ++a) {
    const int p = param_[a]->currentData().toInt();
    if (p < 0) continue;
    compress::SweepAxis axis;
    axis.param = compress::SweepParam(p);
    for (const QString& part : values_[a]->text().split(',', Qt::SkipEmptyParts)) {
      bool ok = false;
      const double v = part.trimmed().toDouble(&ok);
      if (!ok) {
        *error = tr("'%1' in the %2 values is not a number").arg(part.trimmed(), paramLabel(axis.param));
        return false;
      }
      axis.values.push_back(v);
    }
    if (axis.values.empty()) {
      *error = tr("give at least one %1 value").arg(paramLabel(axis.param));
      return false;
    }
    out->push_back(std::move(axis));
  }
  if (out->size() == 2 && (*out)[0].param == (*out)[1].param) {
    *error = tr("the two axes vary the same parameter");
    return false;
  }
  return true;
}

void TradeoffPanel::setAxis(int axis, compress::SweepParam param, const QString& values) {
  param_[axis]->setCurrentIndex(param_[axis]->findData(int(param)));
  values_[axis]->setText(values);
}

void TradeoffPanel::clearSecondAxis() { param_[1]->setCurrentIndex(0); }
QString TradeoffPanel::corpus() const { return corpus_->text().trimmed(); }
void TradeoffPanel::setCorpus(const QString& path) { corpus_->setText(path); }
int TradeoffPanel::maxSentences() const { return sentences_->value(); }

void TradeoffPanel::started(int total) {
  points_.clear();
  runParams_.clear();
  std::vector<compress::SweepAxis> a;
  QString ignored;
  if (axes(&a, &ignored))
    for (const auto& x : a) runParams_.push_back(x.param);
  running_ = true;
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  progress_->setRange(0, total);
  progress_->setValue(0);
  view_->setChosen(-1);
  status_->setText(tr("Measuring the uncompressed model…"));
  replot();
}

void TradeoffPanel::addPoint(const compress::SweepPoint& point) {
  points_.push_back(point);
  progress_->setValue(int(points_.size()));
  status_->setText(tr("%1 of %2 points: %3").arg(points_.size()).arg(progress_->maximum()).arg(describe(point)));
  replot();
}

void TradeoffPanel::finished(bool completed, const QString& message) {
  running_ = false;
  run_->setEnabled(true);
  cancel_->setEnabled(false);
  if (completed)
    status_->setText(tr("%1 points, %2 on the Pareto front. Click a point to apply its plan.")
                         .arg(points_.size())
                         .arg(front().size()));
  else
    status_->setText(tr("Stopped after %1 points: %2").arg(points_.size()).arg(message));
}

void TradeoffPanel::setStatus(const QString& status) { status_->setText(status); }
QString TradeoffPanel::statusText() const { return status_->text(); }

void TradeoffPanel::setAxesShown(X x, Y y) {
  xMetric_->setCurrentIndex(int(x));
  yMetric_->setCurrentIndex(int(y));
}

void TradeoffPanel::values(std::vector<double>* x, std::vector<double>* y) const {
  x->clear();
  y->clear();
  for (const auto& p : points_) {
    x->push_back(xMetric_->currentIndex() == 0 ? p.eval.size.bitsPerWeight() : double(p.eval.size.after) / 1e6);
    switch (Y(yMetric_->currentIndex())) {
      case Y::TeacherKl: y->push_back(p.eval.teacherKl); break;
      case Y::StudentKl: y->push_back(p.eval.klMean); break;
      case Y::CosineLoss: y->push_back(1.0 - p.eval.hiddenCosine); break;
    }
  }
}

std::vector<int> TradeoffPanel::front() const {
  std::vector<double> x, y;
  values(&x, &y);
  return compress::paretoFront(x, y);
}

void TradeoffPanel::replot() {
  std::vector<double> x, y;
  values(&x, &y);
  view_->setPoints(x, y, compress::paretoFront(x, y), xMetric_->currentText(), yMetric_->currentText());
}

QString TradeoffPanel::describe(const compress::SweepPoint& p) const {
  QStringList parts;
  for (size_t a = 0; a < p.values.size() && a < runParams_.size(); ++a)
    parts << QString("%1 = %2").arg(paramLabel(runParams_[a])).arg(p.values[a], 0, 'g', 3);
  return tr("%1 — %2 bits/weight, KL to student %3, to teacher %4")
      .arg(parts.join(", "))
      .arg(p.eval.size.bitsPerWeight(), 0, 'f', 2)
      .arg(p.eval.klMean, 0, 'g', 3)
      .arg(std::isfinite(p.eval.teacherKl) ? QString::number(p.eval.teacherKl, 'g', 3) : tr("–"));
}

}  // namespace attn::widgets
