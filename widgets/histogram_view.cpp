#include "widgets/histogram_view.h"

#include <qcustomplot.h>

#include <algorithm>

#include "widgets/plot_theme.h"

namespace attn::widgets {

HistogramView::HistogramView(QWidget* parent) : PlotView(parent) {
  setMinimumSize(150, 150);
  plot_->plotLayout()->insertRow(0);
  titleElement_ =
      new QCPTextElement(plot_, QString(), QFont(font().family(), font().pointSize(), QFont::Bold));
  plot_->plotLayout()->addElement(0, 0, titleElement_);
  bars_ = new QCPBars(plot_->xAxis, plot_->yAxis);
  bars_->setPen(Qt::NoPen);
  bars_->setBrush(QColor(0x3b, 0x52, 0x8b));  // viridis blue
  levelLines_ = new QCPGraph(plot_->xAxis, plot_->yAxis);
  levelLines_->setLineStyle(QCPGraph::lsImpulse);
  levelLines_->setPen(QPen(QColor(230, 85, 13, 200), 1.0));  // orange: visible on the bars
  levelLines_->setName(tr("levels"));
  message_ = new QCPItemText(plot_);
  message_->position->setType(QCPItemPosition::ptAxisRectRatio);
  message_->position->setCoords(0.5, 0.5);
  message_->setVisible(false);
  plot_->yAxis->setLabel(tr("count"));
  plot_->xAxis->grid()->setVisible(false);
  plot_->xAxis->ticker()->setTickCount(3);  // narrow plots: a few readable ticks
  plot_->yAxis->ticker()->setTickCount(4);
  plot_->xAxis->setNumberFormat("g");
  plot_->xAxis->setNumberPrecision(2);
  applyPlotPalette(plot_, palette());  // the items and axes made above
  paletteChanged();
}

void HistogramView::paletteChanged() { message_->setColor(palette().color(QPalette::WindowText)); }

void HistogramView::setHistogram(double lo, double hi, const std::vector<int64_t>& counts,
                                 const QString& xLabel) {
  counts_ = counts;
  lo_ = lo;
  hi_ = hi;
  message_->setVisible(false);
  const double w = width() > 0 ? width() : 1.0;
  QVector<double> keys, values;
  int64_t mx = 1;
  for (size_t i = 0; i < counts.size(); ++i) {
    keys << lo + (double(i) + 0.5) * w;
    values << double(counts[i]);
    mx = std::max(mx, counts[i]);
  }
  bars_->setWidth(w);
  bars_->setData(keys, values, true);
  plot_->xAxis->setLabel(xLabel);
  plot_->xAxis->setRange(lo - w, hi + w);
  plot_->yAxis->setRange(0, double(mx) * 1.08);
  setLevels({});
}

void HistogramView::setLevels(const std::vector<float>& levels) {
  levels_ = int(levels.size());
  QVector<double> x, y;
  const double top = plot_->yAxis->range().upper;
  for (float l : levels) x << l, y << top;
  levelLines_->setData(x, y, true);
  // Levels outside the bars (e.g. far clipped ones) stay visible.
  if (!levels.empty()) {
    const auto [a, b] = std::minmax_element(levels.begin(), levels.end());
    const QCPRange r = plot_->xAxis->range();
    const double pad = 0.02 * (std::max<double>(r.upper, *b) - std::min<double>(r.lower, *a));
    plot_->xAxis->setRange(std::min<double>(r.lower, *a - pad),
                           std::max<double>(r.upper, *b + pad));
  }
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HistogramView::setTitle(const QString& title) {
  title_ = title;
  titleElement_->setText(title);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HistogramView::setMessage(const QString& message) {
  counts_.clear();
  bars_->data()->clear();
  levelLines_->data()->clear();
  levels_ = 0;
  message_->setText(message);
  message_->setVisible(true);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace attn::widgets
