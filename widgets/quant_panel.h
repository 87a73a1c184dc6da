// The quantization tuning panel: controls that edit a ModelQuantPlan (method,
// bits, granularity, group size, symmetry, clipping, target tensor groups,
// attention-probability quantization), read-outs of the last result, the
// weight histogram of the selected tensor with its quantization levels beside
// its error histogram, and the sensitivity chart. It is fed plain core results
// and emits planChanged on every control change; it never runs the engine.
#pragma once

#include <QWidget>
#include <vector>

#include "core/attention/compare.h"
#include "core/quant/model_quant.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSlider;
class QSpinBox;

namespace attn::widgets {

class HistogramView;
class BarChartView;

class QuantPanel : public QWidget {
  Q_OBJECT

 public:
  explicit QuantPanel(QWidget* parent = nullptr);

  quant::ModelQuantPlan plan() const;
  // Shows `plan` in the controls (uniform spec of its first target); emits planChanged once.
  void setPlan(const quant::ModelQuantPlan& plan);

  // The last computed result for the current plan: per-tensor reports, model
  // sizes and, when an input was run, the attention fidelity against float.
  void setResult(std::vector<quant::TensorReport> tensors, int64_t bytesBefore, int64_t bytesAfter,
                 const Fidelity* fidelity);
  void setStatus(const QString& status);  // "computing…", an error, …
  void setSensitivity(const std::vector<quant::Sensitivity>& entries);

  int tensorCount() const { return int(tensors_.size()); }
  int selectedTensor() const;
  void selectTensor(int index);
  QString readoutText() const;
  HistogramView* weightHistogram() const { return weights_; }
  HistogramView* errorHistogram() const { return errors_; }
  BarChartView* sensitivityChart() const { return sensitivity_; }

 signals:
  void planChanged();
  void sensitivityRequested(int by);  // quant::SensitivityBy
  void tensorSelected(int index);     // the user picked another tensor to look at

 private:
  void controlsChanged();
  void updateEnabled();
  void showTensor();

  QComboBox* method_;
  QSlider* bits_;
  QLabel* bitsLabel_;
  QComboBox* granularity_;
  QSpinBox* groupSize_;
  QCheckBox* symmetric_;
  QComboBox* clip_;
  QDoubleSpinBox* percentile_;
  std::vector<QCheckBox*> targets_;
  QLineEdit* overrides_;
  QLabel* overridesError_;
  QComboBox* attnKind_;
  QSlider* attnBits_;
  QLabel* attnBitsLabel_;
  QDoubleSpinBox* attnThreshold_;
  QLabel* readout_;
  QLabel* status_;
  QComboBox* tensor_;
  HistogramView* weights_;
  HistogramView* errors_;
  QComboBox* sensitivityBy_;
  QPushButton* scan_;
  BarChartView* sensitivity_;
  std::vector<quant::TensorReport> tensors_;
  QString summary_;
  bool updating_ = false;
};

}  // namespace attn::widgets
