// The sparsification tuning panel: attention sparsity (τ on a log scale, top-k,
// kept mass, renormalisation), weight pruning (method, target sparsity, norm,
// block size, N:M pattern, tensor groups), head removal (how many, ranked by
// which importance); read-outs; the kept/dropped mask of the current head; a
// spy plot of the selected weight mask (block-averaged density); sparsity
// against KL swept over τ with the current τ marked; the head-importance chart.
// Fed plain core results; emits planChanged on every control change.
#pragma once

#include <QWidget>
#include <vector>

#include "core/attention/compare.h"
#include "core/sparse/model_sparse.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QSlider;
class QSpinBox;

namespace attn::widgets {

class HeatmapView;
class CurveView;
class BarChartView;

class SparsityPanel : public QWidget {
  Q_OBJECT

 public:
  explicit SparsityPanel(QWidget* parent = nullptr);

  // The plan without heads (the Session ranks heads by importance() and removes headsToPrune()).
  sparse::ModelPrunePlan plan() const;
  int headsToPrune() const;
  sparse::Importance importance() const;
  // Sets the controls to `plan` (heads: their count) without emitting planChanged.
  // Returns false when the controls cannot show all of it — different specs per
  // tensor group, per-layer / per-head attention rules, an N:M pattern not listed —
  // in which case the caller applies the plan as it is.
  bool setPlan(const sparse::ModelPrunePlan& plan);
  // How many heads to remove and by which ranking, without emitting planChanged.
  void setHeads(int count, sparse::Importance by);
  void setTau(double tau);  // moves the τ slider (log scale)
  double tau() const;

  // Results: per-tensor masks, model-level numbers, attention counts and the τ sweep.
  struct Readout {
    double weightSparsity = 0.0, attentionSparsity = 0.0, retainedMass = 1.0;
    double klMean = 0.0, hiddenCosine = 1.0;
    int64_t denseBytes = 0, bitmapBytes = 0, csrBytes = 0;
    std::vector<std::pair<int, int>> prunedHeads;
  };
  void setResult(const std::vector<sparse::PrunedTensor>& tensors, const Readout& readout);
  void setSweep(const std::vector<double>& tau, const std::vector<double>& sparsity,
                const std::vector<double>& kl);
  void setHeadMask(const float* sparse, int seq, const QStringList& tokens, const QString& title);
  void setImportance(const std::vector<double>& score, int layers, int heads);
  void setStatus(const QString& status);

  QString readoutText() const;
  int tensorCount() const { return int(tensors_.size()); }
  void selectTensor(int index);
  HeatmapView* headMaskView() const { return headMask_; }
  HeatmapView* weightMaskView() const { return weightMask_; }
  CurveView* sweepView() const { return sweep_; }
  BarChartView* importanceChart() const { return importance_; }

 signals:
  void planChanged();

 private:
  void controlsChanged();
  void showTensor();
  void showSweepMarker();

  QComboBox* attnKind_;
  QSlider* tau_;
  QLabel* tauLabel_;
  QSpinBox* topK_;
  QDoubleSpinBox* mass_;
  QCheckBox* renormalize_;
  QComboBox* pruneMethod_;
  QSlider* sparsity_;
  QLabel* sparsityLabel_;
  QComboBox* norm_;
  QSpinBox* block_;
  QComboBox* nm_;
  std::vector<QCheckBox*> targets_;
  QSpinBox* heads_;
  QComboBox* importanceBy_;
  QLabel* readout_;
  QLabel* status_;
  QComboBox* tensor_;
  HeatmapView* headMask_;
  HeatmapView* weightMask_;
  CurveView* sweep_;
  BarChartView* importance_;
  std::vector<sparse::PrunedTensor> tensors_;
  std::vector<double> sweepTau_, sweepSparsity_, sweepKl_;
};

}  // namespace attn::widgets
