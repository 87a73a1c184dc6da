#include "widgets/tradeoff_view.h"

#include <qcustomplot.h>

#include <QMouseEvent>
#include <algorithm>
#include <cmath>

#include "widgets/plot_theme.h"

namespace attn::widgets {

TradeoffView::TradeoffView(QWidget* parent) : PlotView(parent) {
  setMinimumSize(260, 200);
  // Curves keep the points in the order given (a QCPGraph would sort by x).
  all_ = new QCPCurve(plot_->xAxis, plot_->yAxis);
  all_->setLineStyle(QCPCurve::lsNone);
  all_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QColor(0x3b, 0x52, 0x8b),
                                        QColor(0x3b, 0x52, 0x8b, 60), 8));
  all_->setName(tr("sweep points"));
  front_ = new QCPCurve(plot_->xAxis, plot_->yAxis);
  front_->setPen(QPen(QColor(230, 85, 13), 2));
  front_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(230, 85, 13), QColor(230, 85, 13), 9));
  front_->setName(tr("Pareto front"));
  chosen_ = new QCPGraph(plot_->xAxis, plot_->yAxis);
  chosen_->setLineStyle(QCPGraph::lsNone);
  chosen_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 2), Qt::NoBrush, 16));
  chosen_->setName(tr("applied"));
  plot_->legend->setVisible(true);
  plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  plot_->installEventFilter(this);
  plot_->setCursor(Qt::PointingHandCursor);
  applyPlotPalette(plot_, palette());
}

void TradeoffView::setPoints(const std::vector<double>& x, const std::vector<double>& y,
                             const std::vector<int>& front, const QString& xLabel,
                             const QString& yLabel) {
  x_ = x;
  y_ = y;
  QVector<double> xs, ys, fx, fy;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    xs << x[i];
    ys << y[i];
    x0 = std::min(x0, x[i]), x1 = std::max(x1, x[i]);
    y0 = std::min(y0, y[i]), y1 = std::max(y1, y[i]);
  }
  for (int i : front) fx << x[size_t(i)], fy << y[size_t(i)];
  all_->setData(xs, ys);
  front_->setData(fx, fy);
  plot_->xAxis->setLabel(xLabel);
  plot_->yAxis->setLabel(yLabel);
  if (!xs.isEmpty()) {
    const double dx = std::max(x1 - x0, 1e-6), dy = std::max(y1 - y0, 1e-9);
    plot_->xAxis->setRange(x0 - 0.08 * dx, x1 + 0.08 * dx);
    plot_->yAxis->setRange(std::min(0.0, y0 - 0.05 * dy), y1 + 0.12 * dy);
  }
  setChosen(chosenIndex_ < int(x.size()) ? chosenIndex_ : -1);
}

void TradeoffView::setChosen(int index) {
  chosenIndex_ = index;
  chosen_->data()->clear();
  if (index >= 0 && size_t(index) < x_.size() && std::isfinite(x_[size_t(index)]) &&
      std::isfinite(y_[size_t(index)]))
    chosen_->addData(x_[size_t(index)], y_[size_t(index)]);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QPoint TradeoffView::pixelOf(int index) const {
  const double px = plot_->xAxis->coordToPixel(x_[size_t(index)]);
  const double py = plot_->yAxis->coordToPixel(y_[size_t(index)]);
  return plot_->mapTo(const_cast<TradeoffView*>(this), QPoint(int(std::lround(px)), int(std::lround(py))));
}

int TradeoffView::pointAt(const QPoint& pixel, double radius) const {
  int best = -1;
  double bestD = radius;
  for (size_t i = 0; i < x_.size(); ++i) {
    if (!std::isfinite(x_[i]) || !std::isfinite(y_[i])) continue;
    const QPoint p = pixelOf(int(i));
    const double d = std::hypot(double(p.x() - pixel.x()), double(p.y() - pixel.y()));
    if (d <= bestD) bestD = d, best = int(i);
  }
  return best;
}

bool TradeoffView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == plot_ && event->type() == QEvent::MouseButtonRelease) {
    auto* me = static_cast<QMouseEvent*>(event);
    if (me->button() == Qt::LeftButton) {
      const int i = pointAt(plot_->mapTo(this, me->position().toPoint()));
      if (i >= 0) emit pointClicked(i);
    }
  }
  return PlotView::eventFilter(watched, event);
}

}  // namespace attn::widgets
