#include "widgets/heatmap_view.h"

#include <qcustomplot.h>

#include <QMenu>
#include <QPixmap>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "widgets/color_maps.h"
#include "widgets/plot_export.h"
#include "widgets/plot_theme.h"

namespace attn::widgets {

namespace {
constexpr double kLogFloor = 1e-4;
constexpr int kPixelsPerLabel = 14;  // a label every 14 px at most, so text never overlaps

// Ticks at every k-th cell inside [lo, hi] so that at most `fit` labels show.
QSharedPointer<QCPAxisTickerText> thinTicker(const QStringList& labels, const QCPRange& range,
                                             int pixels) {
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  const int n = int(labels.size());
  if (n == 0) return ticker;
  const int first = std::max(0, int(std::ceil(range.lower)));
  const int last = std::min(n - 1, int(std::floor(range.upper)));
  const int visible = std::max(1, last - first + 1);
  const int fit = std::max(1, pixels / kPixelsPerLabel);
  const int step = std::max(1, (visible + fit - 1) / fit);
  for (int i = first - first % step; i <= last; i += step)
    if (i >= 0) ticker->addTick(i, labels[i]);
  return ticker;
}
}  // namespace

HeatmapView::HeatmapView(QWidget* parent) : PlotView(parent) {
  setMinimumSize(260, 260);

  plot_->plotLayout()->insertRow(0);
  title_ = new QCPTextElement(plot_, QString(),
                              QFont(font().family(), font().pointSize() + 1, QFont::Bold));
  plot_->plotLayout()->addElement(0, 0, title_);

  map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
  map_->setInterpolate(false);  // crisp cells
  map_->setTightBoundary(false);
  colorScale_ = new QCPColorScale(plot_);
  plot_->plotLayout()->addElement(1, 1, colorScale_);
  colorScale_->setType(QCPAxis::atRight);
  colorScale_->setBarWidth(10);
  map_->setColorScale(colorScale_);
  map_->setGradient(viridisGradient());
  auto* group = new QCPMarginGroup(plot_);
  plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  colorScale_->setMarginGroup(QCP::msBottom | QCP::msTop, group);

  plot_->yAxis->setRangeReversed(true);  // query 0 at the top, as attention maps are read
  plot_->xAxis->setTickLabelRotation(60);
  plot_->xAxis->setLabel(tr("key"));
  plot_->yAxis->setLabel(tr("query"));
  for (QCPAxis* ax : {plot_->xAxis, plot_->yAxis}) {
    ax->setSubTicks(false);
    ax->grid()->setVisible(false);
    ax->setTickLength(0, 3);
  }

  highlight_ = new QCPItemRect(plot_);
  highlight_->setPen(QPen(QColor(255, 64, 64), 2));
  highlight_->setBrush(Qt::NoBrush);
  highlight_->setVisible(false);
  for (QCPItemRect** band : {&focusRows_, &focusCols_}) {
    *band = new QCPItemRect(plot_);
    (*band)->setPen(QPen(QColor(255, 160, 0), 1.5, Qt::DashLine));
    (*band)->setBrush(Qt::NoBrush);
    (*band)->setVisible(false);
  }
  message_ = new QCPItemText(plot_);
  message_->position->setType(QCPItemPosition::ptAxisRectRatio);
  message_->position->setCoords(0.5, 0.5);
  message_->setPositionAlignment(Qt::AlignCenter);
  message_->setColor(palette().color(QPalette::WindowText));
  message_->setText(tr("no data"));

  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot_->setMouseTracking(true);
  connect(plot_, &QCustomPlot::mouseMove, this, &HeatmapView::onMouseMove);
  connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
    int r, c;
    if (e->button() == Qt::LeftButton && cellAt(e->position(), &r, &c)) emit cellClicked(r, c);
  });
  connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] {
    updateTicks();
    if (!syncing_)
      emit windowChanged(plot_->xAxis->range().lower, plot_->xAxis->range().upper,
                         plot_->yAxis->range().lower, plot_->yAxis->range().upper);
  });
  connect(plot_->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] {
    updateTicks();
    if (!syncing_)
      emit windowChanged(plot_->xAxis->range().lower, plot_->xAxis->range().upper,
                         plot_->yAxis->range().lower, plot_->yAxis->range().upper);
  });
  setMessage(tr("no data"));
  applyPlotPalette(plot_, palette());
}

void HeatmapView::extendMenu(QMenu& menu) {
  menu.addAction(tr("Reset zoom"), this, [this] {
    setVisibleWindow(-0.5, cols_ - 0.5, -0.5, rows_ - 0.5);
    emit windowChanged(-0.5, cols_ - 0.5, -0.5, rows_ - 0.5);
  });
}

void HeatmapView::paletteChanged() {
  message_->setColor(palette().color(QPalette::WindowText));
  for (auto* m : marks_) m->setPen(QPen(palette().color(QPalette::WindowText), 2));
}

void HeatmapView::setFocusBand(int first, int last) {
  focusFirst_ = first;
  focusLast_ = std::max(first, last);
  updateFocusBand();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::updateFocusBand() {
  const bool on = focusFirst_ >= 0 && focusLast_ < rows_ && focusLast_ < cols_ && !hasMessage_;
  focusRows_->setVisible(on);
  focusCols_->setVisible(on);
  if (!on) return;
  focusRows_->topLeft->setCoords(-0.5, focusFirst_ - 0.5);
  focusRows_->bottomRight->setCoords(cols_ - 0.5, focusLast_ + 0.5);
  focusCols_->topLeft->setCoords(focusFirst_ - 0.5, -0.5);
  focusCols_->bottomRight->setCoords(focusLast_ + 0.5, rows_ - 0.5);
}

void HeatmapView::setMatrix(std::vector<float> values, int rows, int cols, QStringList rowLabels,
                            QStringList colLabels) {
  Q_ASSERT(values.size() == size_t(rows) * size_t(cols));
  const bool sameShape = rows == rows_ && cols == cols_ && !hasMessage_;
  values_ = std::move(values);
  rows_ = rows;
  cols_ = cols;
  rowLabels_ = std::move(rowLabels);
  colLabels_ = std::move(colLabels);
  hasMessage_ = false;
  message_->setVisible(false);
  map_->setVisible(true);
  map_->data()->setSize(cols, rows);
  map_->data()->setRange(QCPRange(0, std::max(0, cols - 1)), QCPRange(0, std::max(0, rows - 1)));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) map_->data()->setCell(c, r, drawnValue(r, c));
  applyRange();
  updateValueTexts();
  updateFocusBand();
  if (!sameShape) {  // a new input resets the zoom; a new layer/head keeps it
    syncing_ = true;
    plot_->xAxis->setRange(-0.5, cols - 0.5);
    plot_->yAxis->setRange(-0.5, rows - 0.5);
    syncing_ = false;
  }
  updateTicks();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::setMessage(const QString& message) {
  hasMessage_ = true;
  values_.clear();
  rows_ = cols_ = 0;
  rowLabels_.clear();
  colLabels_.clear();
  map_->setVisible(false);
  highlight_->setVisible(false);
  focusRows_->setVisible(false);
  focusCols_->setVisible(false);
  for (auto* m : marks_) m->setVisible(false);
  for (auto* t : valueTexts_) t->setVisible(false);
  message_->setText(message);
  message_->setVisible(true);
  plot_->xAxis->setTicker(QSharedPointer<QCPAxisTickerText>::create());
  plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerText>::create());
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::setTitle(const QString& title) {
  titleText_ = title;
  title_->setText(title);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::setAxisLabels(const QString& columns, const QString& rows) {
  plot_->xAxis->setLabel(columns);
  plot_->yAxis->setLabel(rows);
}

void HeatmapView::setScale(Scale scale) {
  scale_ = scale;
  map_->setGradient(scale == Scale::Diverging ? divergingGradient() : viridisGradient());
  applyRange();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::setFixedRange(double lo, double hi) {
  fixedRange_ = true;
  lo_ = lo;
  hi_ = hi;
  applyRange();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::setAutoRange() {
  fixedRange_ = false;
  applyRange();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::setLogScale(bool on) {
  if (log_ == on) return;
  log_ = on;
  if (!hasMessage_)
    for (int r = 0; r < rows_; ++r)
      for (int c = 0; c < cols_; ++c) map_->data()->setCell(c, r, drawnValue(r, c));
  applyRange();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

double HeatmapView::drawnValue(int row, int col) const {
  const double v = value(row, col);
  if (log_ && scale_ == Scale::Sequential) return std::log10(std::max(v, kLogFloor));
  return v;
}

void HeatmapView::applyRange() {
  double lo = lo_, hi = hi_;
  if (!fixedRange_) {
    double mx = 0.0;
    for (float v : values_) mx = std::max(mx, double(scale_ == Scale::Diverging ? std::abs(v) : v));
    if (mx <= 0.0) mx = 1.0;
    lo = scale_ == Scale::Diverging ? -mx : 0.0;
    hi = mx;
  }
  if (log_ && scale_ == Scale::Sequential) {
    lo = std::log10(std::max(lo, kLogFloor));
    hi = std::log10(std::max(hi, kLogFloor * 10));
  }
  map_->setDataRange(QCPRange(lo, hi));
  colorScale_->axis()->setLabel(log_ && scale_ == Scale::Sequential ? tr("log10 weight")
                                                                    : QString());
}

void HeatmapView::colorRange(double* lo, double* hi) const {
  *lo = map_->dataRange().lower;
  *hi = map_->dataRange().upper;
}

void HeatmapView::setHighlight(int row, int col) {
  const bool on = row >= 0 && col >= 0 && row < rows_ && col < cols_;
  highlight_->setVisible(on);
  if (on) {
    highlight_->topLeft->setCoords(col - 0.5, row - 0.5);
    highlight_->bottomRight->setCoords(col + 0.5, row + 0.5);
  }
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::setVisibleWindow(double x0, double x1, double y0, double y1) {
  syncing_ = true;
  plot_->xAxis->setRange(x0, x1);
  plot_->yAxis->setRange(y0, y1);
  syncing_ = false;
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

bool HeatmapView::saveImage(const QString& path, QString* error) {
  return savePlotImage(plot_, path, titleText_, error);
}

void HeatmapView::replotNow() { plot_->replot(QCustomPlot::rpImmediateRefresh); }

QString HeatmapView::tooltipFor(int row, int col) const {
  if (row < 0 || col < 0 || row >= rows_ || col >= cols_) return {};
  const QString q = row < rowLabels_.size() ? rowLabels_[row] : QString::number(row);
  const QString k = col < colLabels_.size() ? colLabels_[col] : QString::number(col);
  return QStringLiteral("%1 → %2: %3").arg(q, k, QString::number(value(row, col), 'g', 4));
}

void HeatmapView::labelTicksFor(const QSize& size) {
  // toPainter lays the plot out for the size it draws at, and the axis rect keeps
  // that layout afterwards: the labels are then thinned for its real length.
  QPixmap scratch(size);
  QCPPainter painter(&scratch);
  plot_->toPainter(&painter, size.width(), size.height());
  painter.end();
  updateTicks();
}

void HeatmapView::updateTicks() {
  plot_->xAxis->setTicker(
      thinTicker(colLabels_, plot_->xAxis->range(), plot_->axisRect()->width()));
  plot_->yAxis->setTicker(
      thinTicker(rowLabels_, plot_->yAxis->range(), plot_->axisRect()->height()));
}

bool HeatmapView::cellAt(QPointF pos, int* row, int* col) const {
  if (hasMessage_) return false;
  *col = int(std::lround(plot_->xAxis->pixelToCoord(pos.x())));
  *row = int(std::lround(plot_->yAxis->pixelToCoord(pos.y())));
  return plot_->axisRect()->rect().contains(pos.toPoint()) && *row >= 0 && *col >= 0 &&
         *row < rows_ && *col < cols_;
}

void HeatmapView::setMarkedCells(const std::vector<std::pair<int, int>>& cells) {
  while (marks_.size() < cells.size()) {
    auto* m = new QCPItemRect(plot_);
    m->setPen(QPen(palette().color(QPalette::WindowText), 2));
    m->setBrush(Qt::NoBrush);
    marks_.push_back(m);
  }
  for (size_t i = 0; i < marks_.size(); ++i) {
    marks_[i]->setVisible(i < cells.size());
    if (i < cells.size()) {
      const auto [r, c] = cells[i];
      marks_[i]->topLeft->setCoords(c - 0.45, r - 0.45);
      marks_[i]->bottomRight->setCoords(c + 0.45, r + 0.45);
    }
  }
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::setShowValues(bool on) {
  showValues_ = on;
  updateValueTexts();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapView::updateValueTexts() {
  const size_t n =
      showValues_ && !hasMessage_ && rows_ * cols_ <= 400 ? size_t(rows_) * size_t(cols_) : 0;
  while (valueTexts_.size() < n) {
    auto* t = new QCPItemText(plot_);
    t->setPositionAlignment(Qt::AlignCenter);
    valueTexts_.push_back(t);
  }
  double lo, hi;
  colorRange(&lo, &hi);
  for (size_t i = 0; i < valueTexts_.size(); ++i) {
    valueTexts_[i]->setVisible(i < n);
    if (i >= n) continue;
    const int r = int(i) / cols_, c = int(i) % cols_;
    valueTexts_[i]->position->setCoords(c, r);
    valueTexts_[i]->setText(QString::number(value(r, c), 'g', 3));
    // Dark text on the bright end of viridis, light text elsewhere.
    const double f = hi > lo ? (drawnValue(r, c) - lo) / (hi - lo) : 0.0;
    valueTexts_[i]->setColor(f > 0.6 ? Qt::black : Qt::white);
  }
}

void HeatmapView::onMouseMove(QMouseEvent* event) {
  int row = -1, col = -1;
  const bool inside = cellAt(event->position(), &row, &col);
  const int r = inside ? row : -1, c = inside ? col : -1;
  if (r == hoverRow_ && c == hoverCol_) return;
  hoverRow_ = r;
  hoverCol_ = c;
  if (inside)
    QToolTip::showText(event->globalPosition().toPoint(), tooltipFor(r, c), plot_);
  else
    QToolTip::hideText();
  emit cellHovered(r, c);
}

}  // namespace attn::widgets
