// A curve y(x) through points (e.g. attention sparsity against KL to the dense
// maps, swept over τ) with one point marked (the current setting).
#pragma once

#include <QString>
#include <vector>

#include "widgets/plot_view.h"

class QCPGraph;

namespace attn::widgets {

class CurveView : public PlotView {
  Q_OBJECT

 public:
  explicit CurveView(QWidget* parent = nullptr);
  void setCurve(const std::vector<double>& x, const std::vector<double>& y, const QString& xLabel,
                const QString& yLabel);
  void setMarker(double x, double y);  // NaN: none
  int pointCount() const { return int(x_.size()); }
  double markerX() const { return mx_; }

 protected:
  QString imageTitle() const override;

 private:
  QCPGraph* curve_;
  QCPGraph* marker_;
  std::vector<double> x_, y_;
  double mx_ = 0.0;
};

}  // namespace attn::widgets
