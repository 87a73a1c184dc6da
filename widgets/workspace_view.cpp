#include "widgets/workspace_view.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QTextDocument>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "widgets/heatmap_view.h"
#include "widgets/histogram_view.h"

namespace attn::widgets {

namespace {
constexpr int kSpyCells = 48;  // weight-mask blocks per side

QString number(double v, int digits = 3) {
  if (!std::isfinite(v)) return QStringLiteral("–");
  return QString::number(std::abs(v) < 1e-12 ? 0.0 : v, 'g', digits);  // rounding noise of equal maps
}
QString megabytes(int64_t bytes) { return QString::number(double(bytes) / 1e6, 'f', 2) + " MB"; }
}  // namespace

WorkspaceView::WorkspaceView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  strip_ = new QLabel(this);
  strip_->setObjectName("fidelityStrip");
  strip_->setTextFormat(Qt::RichText);
  strip_->setWordWrap(true);
  strip_->setStyleSheet("QLabel { padding: 4px; border: 1px solid palette(mid); border-radius: 3px; }");
  layout->addWidget(strip_);

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Difference:"), this));
  diff_ = new QComboBox(this);
  diff_->setObjectName("diffAgainst");
  diff_->addItems({tr("compressed − student"), tr("compressed − teacher")});
  controls->addWidget(diff_);
  controls->addSpacing(16);
  controls->addWidget(new QLabel(tr("Tensor:"), this));
  tensor_ = new QComboBox(this);
  tensor_->setObjectName("workspaceTensor");
  tensor_->setMinimumContentsLength(12);
  controls->addWidget(tensor_);
  status_ = new QLabel(this);
  controls->addWidget(status_, 1);
  layout->addLayout(controls);

  auto* grid = new QGridLayout;
  const char* titles[4] = {QT_TR_NOOP("Teacher"), QT_TR_NOOP("Student"),
                           QT_TR_NOOP("Compressed student"), QT_TR_NOOP("Difference")};
  for (int i = 0; i < 4; ++i) {
    maps_[size_t(i)] = new HeatmapView(this);
    maps_[size_t(i)]->setTitle(tr(titles[i]));
    maps_[size_t(i)]->setMinimumSize(220, 220);
    grid->addWidget(maps_[size_t(i)], 0, i);
  }
  maps_[Difference]->setScale(HeatmapView::Scale::Diverging);
  errors_ = new HistogramView(this);
  errors_->setTitle(tr("Quantization error"));
  weights_ = new HistogramView(this);
  weights_->setTitle(tr("Weights and levels"));
  attnMask_ = new HeatmapView(this);
  attnMask_->setTitle(tr("Attention kept"));
  weightMask_ = new HeatmapView(this);
  weightMask_->setTitle(tr("Weight mask"));
  weightMask_->setAxisLabels(tr("inputs"), tr("outputs"));
  int col = 0;
  for (QWidget* w : {static_cast<QWidget*>(errors_), static_cast<QWidget*>(weights_),
                     static_cast<QWidget*>(attnMask_), static_cast<QWidget*>(weightMask_)}) {
    w->setMinimumSize(220, 180);
    grid->addWidget(w, 1, col++);
  }
  grid->setRowStretch(0, 3);
  grid->setRowStretch(1, 2);
  layout->addLayout(grid, 1);

  connect(tensor_, &QComboBox::currentIndexChanged, this, &WorkspaceView::tensorChanged);
  connect(diff_, &QComboBox::currentIndexChanged, this, &WorkspaceView::diffAgainstChanged);
  setReadout({});
}

WorkspaceView::DiffAgainst WorkspaceView::diffAgainst() const {
  return DiffAgainst(diff_->currentIndex());
}

void WorkspaceView::setMaps(const float* teacher, const float* student, const float* compressed,
                            int seq, const QStringList& tokens, const QString& where,
                            const QString& teacherWhere, const QString& teacherNote) {
  ++updates_.maps;
  const size_t n = size_t(seq) * size_t(seq);
  // One colour range for the three maps: the largest weight among them.
  float mx = 1e-6f;
  for (const float* p : {teacher, student, compressed})
    if (p != nullptr)
      for (size_t k = 0; k < n; ++k) mx = std::max(mx, p[k]);
  auto show = [&](Map m, const float* p, const QString& title) {
    maps_[m]->setTitle(title);
    if (p == nullptr) return;
    maps_[m]->setFixedRange(0.0, mx);
    maps_[m]->setMatrix(std::vector<float>(p, p + n), seq, seq, tokens, tokens);
  };
  if (teacher != nullptr)
    show(Teacher, teacher, tr("Teacher %1").arg(teacherWhere));
  else
    maps_[Teacher]->setTitle(tr("Teacher")), maps_[Teacher]->setMessage(teacherNote);
  show(Student, student, tr("Student %1").arg(where));
  show(Compressed, compressed, tr("Compressed %1").arg(where));
  const bool vsTeacher = diffAgainst() == DiffAgainst::Teacher;
  const float* other = vsTeacher ? teacher : student;
  if (other == nullptr || compressed == nullptr) {
    maps_[Difference]->setMessage(vsTeacher ? teacherNote : tr("no compressed student yet"));
    return;
  }
  std::vector<float> d(n);
  for (size_t k = 0; k < n; ++k) d[k] = compressed[k] - other[k];
  maps_[Difference]->setTitle(vsTeacher ? tr("Compressed − teacher") : tr("Compressed − student"));
  maps_[Difference]->setMatrix(std::move(d), seq, seq, tokens, tokens);
}

void WorkspaceView::setTensor(const QString& name, const quant::TensorReport* quantized,
                              const sparse::PrunedTensor* pruned) {
  ++updates_.tensor;
  if (quantized != nullptr && quantized->stats.errors.counts.empty()) {
    errors_->setMessage(tr("%1: histograms being computed…").arg(name));
    weights_->setMessage(tr("%1: histograms being computed…").arg(name));
  } else if (quantized != nullptr) {
    const quant::ErrorStats& st = quantized->stats;
    errors_->setTitle(tr("%1: error, SQNR %2 dB").arg(name).arg(st.sqnrDb, 0, 'f', 1));
    errors_->setHistogram(st.errors.lo, st.errors.hi, st.errors.counts, tr("w − ŵ"));
    weights_->setTitle(tr("%1: weights and %2 levels").arg(name).arg(st.levels.size()));
    weights_->setHistogram(st.weights.lo, st.weights.hi, st.weights.counts, tr("w"));
    weights_->setLevels(st.levels);
  } else {
    errors_->setMessage(tr("%1 is not quantized").arg(name));
    weights_->setMessage(tr("%1 is not quantized").arg(name));
  }
  if (pruned == nullptr) {
    weightMask_->setTitle(tr("Weight mask"));
    weightMask_->setMessage(tr("%1 is not pruned").arg(name));
    return;
  }
  sparse::BlockDensity d = sparse::blockDensity(pruned->mask, kSpyCells);
  QStringList rl, cl;
  for (int r = 0; r < d.rows; ++r) rl << QString::number(r * d.rowStep);
  for (int c = 0; c < d.cols; ++c) cl << QString::number(c * d.colStep);
  weightMask_->setTitle(tr("%1: %2 % kept%3")
                            .arg(name)
                            .arg(100.0 * (1.0 - pruned->mask.sparsity()), 0, 'f', 1)
                            .arg(d.rowStep * d.colStep > 1
                                     ? tr(" (per %1×%2 block)").arg(d.rowStep).arg(d.colStep)
                                     : QString()));
  weightMask_->setFixedRange(0.0, 1.0);
  weightMask_->setMatrix(std::move(d.values), d.rows, d.cols, rl, cl);
}

void WorkspaceView::setAttentionMask(const float* compressed, int seq, const QStringList& tokens,
                                     const QString& title) {
  ++updates_.mask;
  std::vector<float> kept(size_t(seq) * size_t(seq));
  for (size_t k = 0; k < kept.size(); ++k) kept[k] = compressed[k] > 0.0f ? 1.0f : 0.0f;
  attnMask_->setTitle(title);
  attnMask_->setFixedRange(0.0, 1.0);
  attnMask_->setMatrix(std::move(kept), seq, seq, tokens, tokens);
}

void WorkspaceView::setTensorNames(const QStringList& names, int current) {
  QSignalBlocker block(tensor_);
  if (tensor_->count() != names.size() ||
      [&] {
        for (int i = 0; i < names.size(); ++i)
          if (tensor_->itemText(i) != names[i]) return true;
        return false;
      }()) {
    tensor_->clear();
    tensor_->addItems(names);
  }
  tensor_->setCurrentIndex(current);
}

int WorkspaceView::currentTensor() const { return tensor_->currentIndex(); }

void WorkspaceView::setReadout(const Readout& r) {
  ++updates_.readout;
  auto cell = [](const QString& label, const QString& value, const QString& sub = {}) {
    return QString("<td style='padding: 0 10px'><span style='color: palette(mid)'>%1</span><br>"
                   "<b style='font-size: large'>%2</b>%3</td>")
        .arg(label, value, sub.isEmpty() ? QString() : "<br><small>" + sub + "</small>");
  };
  QString html = "<table><tr>";
  html += cell(tr("KL to teacher"), number(r.klTeacher),
               std::isfinite(r.klTeacher) ? tr("uncompressed %1 · head %2")
                                                .arg(number(r.klTeacherBase))
                                                .arg(number(r.headKlTeacher))
                                          : tr("no teacher with the same tokens"));
  html += cell(tr("KL to student"), number(r.klStudent),
               tr("JS %1 · head %2").arg(number(r.jsStudent)).arg(number(r.headKlStudent)));
  html += cell(tr("hidden cosine"), QString::number(r.hiddenCosine, 'f', 4));
  html += cell(tr("model size"), megabytes(r.bytesAfter),
               tr("of %1 (%2×)")
                   .arg(megabytes(r.bytesBefore))
                   .arg(r.bytesAfter > 0 ? double(r.bytesBefore) / double(r.bytesAfter) : 0.0, 0, 'f', 1));
  html += cell(tr("bits / weight"), QString::number(r.bitsPerWeight, 'f', 2),
               r.quantizedMatrices == 0   ? tr("all weights, nothing quantized")
               : r.quantizedMatrices == 1 ? tr("%1 in the one quantized matrix").arg(r.quantizedBitsPerWeight, 0, 'f', 2)
                                          : tr("%1 in the %2 quantized matrices")
                                                .arg(r.quantizedBitsPerWeight, 0, 'f', 2)
                                                .arg(r.quantizedMatrices));
  html += cell(tr("sparsity"), QString("%1 %").arg(100.0 * r.weightSparsity, 0, 'f', 1),
               tr("weights · attention %1 %").arg(100.0 * r.attentionSparsity, 0, 'f', 1));
  html += "</tr></table>";
  strip_->setText(html);
  strip_->setToolTip(tr("Worker time for this result: %1 ms").arg(r.computeMs, 0, 'f', 0));
}

void WorkspaceView::setStatus(const QString& status) { status_->setText(status); }

QString WorkspaceView::readoutText() const {
  QTextDocument doc;
  doc.setHtml(strip_->text());
  return doc.toPlainText();
}

}  // namespace attn::widgets
