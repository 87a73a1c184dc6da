// The trade-off explorer: a sweep over one or two plan parameters (bits, attention
// τ, weight sparsity) on a corpus (or the current text), its points plotted as size
// against fidelity with the Pareto front, shown as they arrive; clicking a point
// asks for its plan to be applied. Runs and cancels through signals (rule 2).
#pragma once

#include <QString>
#include <QWidget>
#include <vector>

#include "core/compress/evaluate.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace attn::widgets {

class TradeoffView;

class TradeoffPanel : public QWidget {
  Q_OBJECT

 public:
  explicit TradeoffPanel(QWidget* parent = nullptr);

  // The axes as set (values parsed); false with *error when a list is not numbers.
  bool axes(std::vector<compress::SweepAxis>* axes, QString* error) const;
  void setAxis(int axis, compress::SweepParam param, const QString& values);  // axis 1: -1 param clears
  void clearSecondAxis();
  QString corpus() const;  // empty: the current text
  void setCorpus(const QString& path);
  int maxSentences() const;

  // A run: started (points to come), each point, finished.
  void started(int total);
  void addPoint(const compress::SweepPoint& point);
  void finished(bool completed, const QString& message);
  void setStatus(const QString& status);

  enum class Y { TeacherKl = 0, StudentKl = 1, CosineLoss = 2 };
  enum class X { BitsPerWeight = 0, Megabytes = 1 };
  void setAxesShown(X x, Y y);
  const std::vector<compress::SweepPoint>& points() const { return points_; }
  std::vector<int> front() const;  // indices of points() on the Pareto front
  TradeoffView* view() const { return view_; }
  bool running() const { return running_; }
  QString statusText() const;

 signals:
  void runRequested();
  void cancelRequested();
  void applyRequested(const attn::compress::CompressionPlan& plan, const QString& what);

 private:
  void replot();
  void values(std::vector<double>* x, std::vector<double>* y) const;
  QString describe(const compress::SweepPoint& p) const;

  QComboBox* param_[2];
  QLineEdit* values_[2];
  QLineEdit* corpus_;
  QSpinBox* sentences_;
  QComboBox* xMetric_;
  QComboBox* yMetric_;
  QPushButton* run_;
  QPushButton* cancel_;
  QProgressBar* progress_;
  QLabel* status_;
  TradeoffView* view_;
  std::vector<compress::SweepPoint> points_;
  std::vector<compress::SweepParam> runParams_;
  bool running_ = false;
};

}  // namespace attn::widgets
