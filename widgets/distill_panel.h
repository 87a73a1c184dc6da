// The distillation panel: the layer-mapping editor (filled uniform, last-layer or
// from the current loss matrix, editable by dragging), the losses and their
// weights, the corpus, the optimiser (learning rate, steps, batch, sequence
// length, seed), how often the student's maps refresh; Start / Pause / Cancel /
// Save; live loss curves (total and per mapped layer) and a status line.
// Fed plain values; emits what the user asked for (DESIGN rule 2).
#pragma once

#include <QWidget>
#include <vector>

#include "core/distill/trainer.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace attn::widgets {

class LayerMapView;
class LossCurvesView;

class DistillPanel : public QWidget {
  Q_OBJECT

 public:
  explicit DistillPanel(QWidget* parent = nullptr);

  // What the loaded pair allows: layer counts, and whether logit distillation and
  // the LM loss apply (two causal LMs with tied heads and one vocabulary).
  void setModels(int teacherLayers, int studentLayers, bool logitsPossible, bool lmPossible);
  // KL of every (teacher layer, student layer) on the current text, [Lt][Ls].
  void setLossMatrix(const std::vector<double>& kl);
  void setCorpus(const QString& path);
  void setColumns(const QStringList& columns);  // of the corpus (.tsv/.csv/.jsonl)

  // The run the controls describe (mapping and losses included).
  distill::TrainOptions options() const;
  QString corpus() const;
  QString column() const;
  int refreshEvery() const;

  // Run state.
  void runStarted(int steps, int examples, int truncated);
  void addStep(const distill::StepReport& report);
  void setPaused(bool paused);
  void runFinished(bool completed, const QString& message);
  void setStatus(const QString& status);
  QString statusText() const;

  LayerMapView* mapView() const { return map_; }
  LossCurvesView* curves() const { return curves_; }
  QPushButton* startButton() const { return start_; }
  QPushButton* pauseButton() const { return pause_; }
  QPushButton* cancelButton() const { return cancel_; }
  QPushButton* saveButton() const { return save_; }
  void fillMapping(const QString& how);  // "uniform", "last", "auto"
  // Optimiser settings as the spin boxes hold them (scripts and tests).
  void setRun(double lr, int steps, int batch, int maxTokens, int refreshEvery);

 signals:
  void startRequested();
  void pauseRequested();
  void resumeRequested();
  void cancelRequested();
  void saveRequested(const QString& dir);
  void corpusChosen(const QString& path);
  // The mapping was edited (dragged in the editor or filled by a button).
  void mappingEdited(const std::vector<int>& mapping);

 private:
  void updateEnabled();

  LayerMapView* map_;
  std::vector<double> kl_;
  QComboBox* attention_;
  QComboBox* heads_;
  QSpinBox* relationHeads_;
  QDoubleSpinBox* attentionWeight_;
  QDoubleSpinBox* valueWeight_;
  QDoubleSpinBox* hiddenWeight_;
  QDoubleSpinBox* logitWeight_;
  QDoubleSpinBox* temperature_;
  QDoubleSpinBox* lmWeight_;
  QLineEdit* corpus_;
  QComboBox* column_;
  QDoubleSpinBox* lr_;
  QSpinBox* steps_;
  QSpinBox* batch_;
  QSpinBox* seq_;
  QSpinBox* seed_;
  QSpinBox* refresh_;
  QPushButton* start_;
  QPushButton* pause_;
  QPushButton* cancel_;
  QPushButton* save_;
  LossCurvesView* curves_;
  QLabel* status_;
  bool running_ = false, paused_ = false, trained_ = false;
  bool logitsPossible_ = false, lmPossible_ = false;
  int steps_total_ = 0;
};

}  // namespace attn::widgets
