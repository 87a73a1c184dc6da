#include "widgets/loss_curves_view.h"

#include <qcustomplot.h>

#include <cmath>

#include "widgets/plot_theme.h"

namespace attn::widgets {

namespace {
const QColor kColors[] = {QColor(0x44, 0x01, 0x54), QColor(0x21, 0x91, 0x8c),
                          QColor(230, 85, 13),     QColor(0x3b, 0x52, 0x8b),
                          QColor(0x5e, 0xc9, 0x62), QColor(0xb5, 0x37, 0x8a)};
}

LossCurvesView::LossCurvesView(QWidget* parent) : PlotView(parent) {
  setMinimumHeight(160);
  plot_->yAxis->setScaleType(QCPAxis::stLogarithmic);
  plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  plot_->yAxis->setNumberFormat("eb");
  plot_->yAxis->setNumberPrecision(0);
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(tr("loss"));
  plot_->legend->setVisible(false);  // until there are series
  plot_->legend->setFont(font());
  plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  applyPlotPalette(plot_, palette());
}

void LossCurvesView::setSeries(const QStringList& names) {
  plot_->clearGraphs();
  graphs_.clear();
  for (int i = 0; i < names.size(); ++i) {
    QCPGraph* g = plot_->addGraph();
    g->setName(names[i]);
    g->setPen(QPen(kColors[i % 6], i == 0 ? 2.5 : 1.5));
    graphs_.push_back(g);
  }
  plot_->legend->setVisible(!names.isEmpty());
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LossCurvesView::addPoint(double step, const std::vector<double>& values) {
  for (size_t i = 0; i < graphs_.size() && i < values.size(); ++i)
    if (std::isfinite(values[i]) && values[i] > 0) graphs_[i]->addData(step, values[i]);
  bool any = false;
  QCPRange x, y;
  for (QCPGraph* g : graphs_) {
    bool ok = false;
    const QCPRange gx = g->getKeyRange(ok);
    if (!ok) continue;
    const QCPRange gy = g->getValueRange(ok, QCP::sdBoth);
    if (!ok) continue;
    x = any ? QCPRange(std::min(x.lower, gx.lower), std::max(x.upper, gx.upper)) : gx;
    y = any ? QCPRange(std::min(y.lower, gy.lower), std::max(y.upper, gy.upper)) : gy;
    any = true;
  }
  if (any) {
    plot_->xAxis->setRange(x.lower, std::max(x.upper, x.lower + 1));
    plot_->yAxis->setRange(y.lower / 1.3, y.upper * 1.3);
  }
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

int LossCurvesView::pointCount(int series) const {
  return series < seriesCount() ? graphs_[series]->dataCount() : 0;
}

double LossCurvesView::lastValue(int series) const {
  if (series >= seriesCount() || graphs_[series]->dataCount() == 0) return NAN;
  return (graphs_[series]->data()->constEnd() - 1)->value;
}

}  // namespace attn::widgets
