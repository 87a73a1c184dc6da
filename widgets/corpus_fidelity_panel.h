// Corpus-level fidelity: the current plan measured over a corpus file, streamed
// sentence by sentence, with the per-head breakdown as a layers × heads heatmap
// (KL or JS to the uncompressed student, or KL to the teacher's mapped layer) so
// the heads compression hurts across many inputs stand out. Runs and cancels
// through signals (DESIGN rule 2).
#pragma once

#include <QWidget>
#include <memory>

#include "core/compress/evaluate.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace attn::widgets {

class HeatmapView;

class CorpusFidelityPanel : public QWidget {
  Q_OBJECT

 public:
  explicit CorpusFidelityPanel(QWidget* parent = nullptr);

  QString corpus() const;
  void setCorpus(const QString& path);
  int maxSentences() const;
  void setMaxSentences(int n);

  void started(int sentences);
  void setPartial(const compress::Evaluation& e, int done, int total);
  void finished(bool completed, const QString& message);
  bool running() const { return running_; }
  const compress::Evaluation* evaluation() const { return eval_ ? eval_.get() : nullptr; }
  HeatmapView* heatmap() const { return map_; }
  QString readoutText() const;

 signals:
  void runRequested();
  void cancelRequested();

 private:
  void redraw();

  QLineEdit* corpus_;
  QSpinBox* sentences_;
  QComboBox* metric_;
  QPushButton* run_;
  QPushButton* cancel_;
  QProgressBar* progress_;
  QLabel* readout_;
  HeatmapView* map_;
  std::unique_ptr<compress::Evaluation> eval_;
  bool running_ = false;
};

}  // namespace attn::widgets
