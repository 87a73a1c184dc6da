// A labelled bar chart (e.g. the loss of each mapped layer pair). The bars are
// created once; setBars() replaces their data.
#pragma once

#include <QStringList>
#include <vector>

#include "widgets/plot_view.h"

class QCPBars;
class QCPItemText;

namespace attn::widgets {

class BarChartView : public PlotView {
  Q_OBJECT

 public:
  explicit BarChartView(QWidget* parent = nullptr);
  void setBars(const QStringList& labels, const std::vector<double>& values,
               const QString& valueLabel);
  // No bars; the message in their place (until the next setBars).
  void setMessage(const QString& message);
  QString message() const;  // "" while bars are shown
  int count() const { return int(values_.size()); }
  double value(int i) const { return values_[size_t(i)]; }

 protected:
  QString imageTitle() const override;
  void paletteChanged() override;

 private:
  QCPBars* bars_;
  QCPItemText* message_;
  std::vector<double> values_;
};

}  // namespace attn::widgets
