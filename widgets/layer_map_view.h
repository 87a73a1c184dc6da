// The layer-mapping editor: teacher layers in a row above, student layers below,
// a line for every mapped pair (student layer s ↔ teacher layer t). Drag from a
// student layer to a teacher layer to map it; drag a student layer to empty
// space (or double-click it) to unmap it. When a loss matrix is set, each line
// is labelled with its pair's loss and, while dragging, the teacher layers show
// their loss against the dragged student layer.
#pragma once

#include <QWidget>
#include <vector>

namespace attn::widgets {

class LayerMapView : public QWidget {
  Q_OBJECT

 public:
  explicit LayerMapView(QWidget* parent = nullptr);

  void setLayers(int teacherLayers, int studentLayers);
  void setMapping(const std::vector<int>& mapping);  // [student] → teacher or −1
  const std::vector<int>& mapping() const { return mapping_; }
  // loss: [Lt][Ls] row-major (empty: none), e.g. the KL matrix of the current text.
  void setLoss(const std::vector<double>& loss);
  int teacherLayers() const { return teacher_; }
  int studentLayers() const { return student_; }

  // Box centres in widget coordinates (for tests and for the painter).
  QPointF teacherCenter(int layer) const;
  QPointF studentCenter(int layer) const;

  QSize sizeHint() const override { return {320, 150}; }
  QSize minimumSizeHint() const override { return {200, 110}; }

 signals:
  void mappingChanged(const std::vector<int>& mapping);  // after a user edit

 protected:
  void paintEvent(QPaintEvent*) override;
  void mousePressEvent(QMouseEvent*) override;
  void mouseMoveEvent(QMouseEvent*) override;
  void mouseReleaseEvent(QMouseEvent*) override;
  void mouseDoubleClickEvent(QMouseEvent*) override;

 private:
  QRectF box(bool teacher, int layer) const;
  int hit(bool teacher, QPointF p) const;
  double lossAt(int t, int s) const;

  int teacher_ = 0, student_ = 0;
  std::vector<int> mapping_;
  std::vector<double> loss_;
  int dragging_ = -1;  // student layer being dragged
  QPointF dragPos_;
};

}  // namespace attn::widgets
