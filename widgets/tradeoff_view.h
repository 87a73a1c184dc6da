// Size against fidelity for the points of a sweep: every point as a circle, the
// Pareto front (no point both smaller and closer) joined and filled, the chosen
// point ringed. Clicking near a point emits its index. Items are created once;
// setPoints() only replaces data (DESIGN rule 5).
#pragma once

#include <QString>
#include <vector>

#include "widgets/plot_view.h"

class QCPGraph;
class QCPCurve;
class QMouseEvent;

namespace attn::widgets {

class TradeoffView : public PlotView {
  Q_OBJECT

 public:
  explicit TradeoffView(QWidget* parent = nullptr);

  // x, y: one value per point (NaN: not plotted); front: indices from paretoFront().
  void setPoints(const std::vector<double>& x, const std::vector<double>& y,
                 const std::vector<int>& front, const QString& xLabel, const QString& yLabel);
  void setChosen(int index);  // -1: none
  int pointAt(const QPoint& pixel, double radius = 12.0) const;  // -1: none near
  QPoint pixelOf(int index) const;

 signals:
  void pointClicked(int index);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;
  QString imageTitle() const override { return tr("Size against fidelity"); }

 private:
  QCPCurve* all_;
  QCPCurve* front_;
  QCPGraph* chosen_;
  std::vector<double> x_, y_;
  int chosenIndex_ = -1;
};

}  // namespace attn::widgets
