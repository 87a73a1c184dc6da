// The compression workspace: for the selected head and tensor, side by side, the
// teacher, student and compressed-student attention maps with a difference map;
// the selected tensor's quantization-error histogram and its weights with the
// levels; the attention mask of the head and the weight mask of the tensor; and a
// strip of fidelity read-outs. Fed plain data by the window (DESIGN rule 2); its
// plots create their items once (rule 5).
#pragma once

#include <QStringList>
#include <QWidget>
#include <array>
#include <vector>

#include "core/quant/model_quant.h"
#include "core/sparse/model_sparse.h"

class QComboBox;
class QLabel;

namespace attn::widgets {

class HeatmapView;
class HistogramView;

class WorkspaceView : public QWidget {
  Q_OBJECT

 public:
  explicit WorkspaceView(QWidget* parent = nullptr);

  enum Map { Teacher = 0, Student = 1, Compressed = 2, Difference = 3 };
  HeatmapView* map(Map m) const { return maps_[m]; }
  HistogramView* errorHistogram() const { return errors_; }
  HistogramView* weightHistogram() const { return weights_; }
  HeatmapView* attentionMask() const { return attnMask_; }
  HeatmapView* weightMask() const { return weightMask_; }

  // What the difference map subtracts from the compressed map.
  enum class DiffAgainst { Student = 0, Teacher = 1 };
  DiffAgainst diffAgainst() const;

  // The four maps [S, S] of the selected head (teacher empty: none to show, with
  // `teacherNote` saying why); the difference is compressed − student or − teacher.
  // where / teacherWhere: "L1 h2", "L3 h2" (the mapped teacher layer).
  void setMaps(const float* teacher, const float* student, const float* compressed, int seq,
               const QStringList& tokens, const QString& where, const QString& teacherWhere,
               const QString& teacherNote);
  // The selected tensor: quantizer report and / or pruning mask (nullptr: not done to it).
  void setTensor(const QString& name, const quant::TensorReport* quantized,
                 const sparse::PrunedTensor* pruned);
  // The compressed head's kept entries (p > 0) — the attention rule's mask.
  void setAttentionMask(const float* compressed, int seq, const QStringList& tokens,
                        const QString& title);

  // The tensors of the selected layer the bottom row can show ("q", "ffn_in", …).
  void setTensorNames(const QStringList& names, int current);
  int currentTensor() const;

  // The fidelity strip. NaN for what is not known (no teacher with the same tokens).
  struct Readout {
    double klTeacher = 0.0, klTeacherBase = 0.0;  // compressed / uncompressed vs teacher
    double klStudent = 0.0, jsStudent = 0.0, hiddenCosine = 1.0;
    double headKlTeacher = 0.0, headKlStudent = 0.0;  // the selected head
    int64_t bytesBefore = 0, bytesAfter = 0;
    double bitsPerWeight = 32.0, weightSparsity = 0.0, attentionSparsity = 0.0;
    // Over the quantized matrices only (their codes, scales, zero points, codebooks).
    double quantizedBitsPerWeight = 32.0;
    int quantizedMatrices = 0;
    double computeMs = 0.0;
  };
  void setReadout(const Readout& r);
  void setStatus(const QString& status);  // "computing…", an error, …
  QString readoutText() const;

  // Every part's updates since construction: maps (the four heatmaps), tensor (the
  // two histograms and the weight mask), attention mask, readout.
  struct Updates {
    int maps = 0, tensor = 0, mask = 0, readout = 0;
  };
  const Updates& updates() const { return updates_; }

 signals:
  void tensorChanged(int index);
  void diffAgainstChanged();

 private:
  std::array<HeatmapView*, 4> maps_{};
  HistogramView* errors_ = nullptr;
  HistogramView* weights_ = nullptr;
  HeatmapView* attnMask_ = nullptr;
  HeatmapView* weightMask_ = nullptr;
  QComboBox* tensor_ = nullptr;
  QComboBox* diff_ = nullptr;
  QLabel* strip_ = nullptr;
  QLabel* status_ = nullptr;
  Updates updates_;
};

}  // namespace attn::widgets
