// Training curves: several series of y against the step (total loss and one per
// layer), appended as steps arrive, on a log y axis.
#pragma once

#include <QStringList>
#include <vector>

#include "widgets/plot_view.h"

class QCPGraph;

namespace attn::widgets {

class LossCurvesView : public PlotView {
  Q_OBJECT

 public:
  explicit LossCurvesView(QWidget* parent = nullptr);
  // Removes every point and sets the series (the first is drawn thicker).
  void setSeries(const QStringList& names);
  // One value per series (NaN or ≤ 0: no point for that series).
  void addPoint(double step, const std::vector<double>& values);
  int seriesCount() const { return int(graphs_.size()); }
  int pointCount(int series) const;
  double lastValue(int series) const;

 protected:
  QString imageTitle() const override { return tr("training loss"); }

 private:
  std::vector<QCPGraph*> graphs_;
};

}  // namespace attn::widgets
