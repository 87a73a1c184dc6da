// A histogram (bars) with optional vertical lines at given values — the
// quantization levels over a weight histogram. Items are created once; setters
// only replace data (DESIGN rule 5).
#pragma once

#include <QString>
#include <vector>

#include "widgets/plot_view.h"

class QCPBars;
class QCPGraph;
class QCPItemText;
class QCPTextElement;

namespace attn::widgets {

class HistogramView : public PlotView {
  Q_OBJECT

 public:
  explicit HistogramView(QWidget* parent = nullptr);

  // counts[i] covers [lo + i·w, lo + (i+1)·w), w = (hi − lo) / counts.size().
  void setHistogram(double lo, double hi, const std::vector<int64_t>& counts,
                    const QString& xLabel);
  // Vertical lines at these x values (e.g. quantization levels); empty: none.
  void setLevels(const std::vector<float>& levels);
  void setTitle(const QString& title);
  void setMessage(const QString& message);

  int binCount() const { return int(counts_.size()); }
  int64_t count(int i) const { return counts_[size_t(i)]; }
  double binLow(int i) const { return lo_ + i * width(); }
  double width() const { return counts_.empty() ? 0.0 : (hi_ - lo_) / double(counts_.size()); }
  int levelCount() const { return levels_; }
  QString title() const { return title_; }

 protected:
  void paletteChanged() override;
  QString imageTitle() const override { return title_; }

 private:
  QCPBars* bars_;
  QCPGraph* levelLines_;
  QCPItemText* message_;
  QCPTextElement* titleElement_;
  std::vector<int64_t> counts_;
  double lo_ = 0, hi_ = 1;
  int levels_ = 0;
  QString title_;
};

}  // namespace attn::widgets
