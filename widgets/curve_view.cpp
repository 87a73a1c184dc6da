#include "widgets/curve_view.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

#include "widgets/plot_theme.h"

namespace attn::widgets {

CurveView::CurveView(QWidget* parent) : PlotView(parent) {
  setMinimumHeight(150);
  curve_ = new QCPGraph(plot_->xAxis, plot_->yAxis);
  curve_->setPen(QPen(QColor(0x21, 0x91, 0x8c), 2));
  curve_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
  marker_ = new QCPGraph(plot_->xAxis, plot_->yAxis);
  marker_->setLineStyle(QCPGraph::lsNone);
  marker_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(230, 85, 13), QColor(230, 85, 13), 10));
  plot_->xAxis->ticker()->setTickCount(4);
  plot_->yAxis->ticker()->setTickCount(4);
  applyPlotPalette(plot_, palette());
}

QString CurveView::imageTitle() const { return plot_->yAxis->label(); }

void CurveView::setCurve(const std::vector<double>& x, const std::vector<double>& y,
                         const QString& xLabel, const QString& yLabel) {
  x_ = x;
  y_ = y;
  curve_->setData(QVector<double>(x.begin(), x.end()), QVector<double>(y.begin(), y.end()));
  plot_->xAxis->setLabel(xLabel);
  plot_->yAxis->setLabel(yLabel);
  curve_->rescaleAxes();
  const QCPRange xr = plot_->xAxis->range(), yr = plot_->yAxis->range();
  plot_->xAxis->setRange(xr.lower - 0.05 * xr.size() - 1e-9, xr.upper + 0.05 * xr.size() + 1e-9);
  plot_->yAxis->setRange(std::min(0.0, yr.lower), yr.upper + 0.08 * yr.size() + 1e-9);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void CurveView::setMarker(double x, double y) {
  mx_ = x;
  marker_->data()->clear();
  if (!std::isnan(x) && !std::isnan(y)) marker_->addData(x, y);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace attn::widgets
