#include "widgets/bar_chart_view.h"

#include <qcustomplot.h>

#include <algorithm>

#include "widgets/plot_theme.h"

namespace attn::widgets {

BarChartView::BarChartView(QWidget* parent) : PlotView(parent) {
  setMinimumHeight(140);
  bars_ = new QCPBars(plot_->xAxis, plot_->yAxis);
  bars_->setWidth(0.6);
  bars_->setPen(Qt::NoPen);
  bars_->setBrush(QColor(0x21, 0x91, 0x8c));  // viridis mid-teal
  plot_->xAxis->grid()->setVisible(false);
  plot_->xAxis->setSubTicks(false);
  plot_->xAxis->setTickLength(0, 3);
  message_ = new QCPItemText(plot_);
  message_->position->setType(QCPItemPosition::ptAxisRectRatio);
  message_->position->setCoords(0.5, 0.5);
  message_->setVisible(false);
  applyPlotPalette(plot_, palette());  // the axes set up above
  paletteChanged();
}

void BarChartView::paletteChanged() { message_->setColor(palette().color(QPalette::WindowText)); }

void BarChartView::setMessage(const QString& message) {
  values_.clear();
  bars_->data()->clear();
  plot_->xAxis->setTicker(QSharedPointer<QCPAxisTickerText>::create());
  message_->setText(message);
  message_->setVisible(true);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QString BarChartView::message() const { return message_->visible() ? message_->text() : QString(); }

QString BarChartView::imageTitle() const { return plot_->yAxis->label(); }

void BarChartView::setBars(const QStringList& labels, const std::vector<double>& values,
                           const QString& valueLabel) {
  values_ = values;
  message_->setVisible(false);
  QVector<double> keys, vals;
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  for (size_t i = 0; i < values.size(); ++i) {
    keys << double(i);
    vals << values[i];
    ticker->addTick(double(i), labels.value(int(i)));
  }
  bars_->setData(keys, vals, true);
  plot_->xAxis->setTicker(ticker);
  plot_->xAxis->setRange(-0.6, std::max<double>(0.6, double(values.size()) - 0.4));
  const double mx = values.empty() ? 1.0 : *std::max_element(values.begin(), values.end());
  plot_->yAxis->setRange(0, mx > 0 ? mx * 1.1 : 1.0);
  plot_->yAxis->setLabel(valueLabel);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace attn::widgets
