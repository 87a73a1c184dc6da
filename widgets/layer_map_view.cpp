#include "widgets/layer_map_view.h"

#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <cmath>

namespace attn::widgets {

namespace {
constexpr double kBoxW = 44, kBoxH = 26, kMargin = 12;
}

LayerMapView::LayerMapView(QWidget* parent) : QWidget(parent) {
  setMouseTracking(false);
  setToolTip(tr("Drag from a student layer to a teacher layer to map it; double-click a "
                "student layer (or drag it to empty space) to leave it unmapped."));
}

void LayerMapView::setLayers(int teacherLayers, int studentLayers) {
  teacher_ = std::max(0, teacherLayers);
  student_ = std::max(0, studentLayers);
  mapping_.assign(static_cast<size_t>(student_), -1);
  loss_.clear();
  update();
}

void LayerMapView::setMapping(const std::vector<int>& mapping) {
  mapping_.assign(static_cast<size_t>(student_), -1);
  for (int s = 0; s < student_ && s < static_cast<int>(mapping.size()); ++s)
    mapping_[s] = mapping[s] >= 0 && mapping[s] < teacher_ ? mapping[s] : -1;
  update();
}

void LayerMapView::setLoss(const std::vector<double>& loss) {
  loss_ = loss.size() == static_cast<size_t>(teacher_) * student_ ? loss : std::vector<double>{};
  update();
}

double LayerMapView::lossAt(int t, int s) const {
  return loss_.empty() ? NAN : loss_[static_cast<size_t>(t) * student_ + s];
}

QRectF LayerMapView::box(bool teacher, int layer) const {
  const int n = teacher ? teacher_ : student_;
  const double span = width() - 2 * kMargin;
  const double cx = kMargin + span * (layer + 0.5) / std::max(1, n);
  const double cy = teacher ? kMargin + 14 + kBoxH / 2 : height() - kMargin - kBoxH / 2;
  return {cx - kBoxW / 2, cy - kBoxH / 2, kBoxW, kBoxH};
}

QPointF LayerMapView::teacherCenter(int layer) const { return box(true, layer).center(); }
QPointF LayerMapView::studentCenter(int layer) const { return box(false, layer).center(); }

int LayerMapView::hit(bool teacher, QPointF p) const {
  const int n = teacher ? teacher_ : student_;
  for (int i = 0; i < n; ++i)
    if (box(teacher, i).adjusted(-4, -4, 4, 4).contains(p)) return i;
  return -1;
}

void LayerMapView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  const QPalette pal = palette();
  p.setPen(pal.color(QPalette::WindowText));
  QFont small = font();
  small.setPointSizeF(std::max(7.0, small.pointSizeF() - 1));
  p.setFont(small);
  p.drawText(QRectF(0, 0, width(), 14), Qt::AlignCenter, tr("teacher layers"));
  p.drawText(QRectF(0, height() - 12, width(), 12), Qt::AlignCenter, tr("student layers"));
  const QColor accent(0x21, 0x91, 0x8c), drag(230, 85, 13);
  // Lines of the mapping, labelled with their loss.
  for (int s = 0; s < student_; ++s) {
    const int t = mapping_[s];
    if (t < 0 || s == dragging_) continue;
    const QPointF a = box(false, s).center() - QPointF(0, kBoxH / 2),
                  b = box(true, t).center() + QPointF(0, kBoxH / 2);
    p.setPen(QPen(accent, 2.5));
    p.drawLine(a, b);
    const double l = lossAt(t, s);
    if (!std::isnan(l)) {
      p.setPen(pal.color(QPalette::WindowText));
      p.drawText(QRectF((a + b) / 2 - QPointF(40, 8), QSizeF(80, 16)), Qt::AlignCenter,
                 QString::number(l, 'g', 3));
    }
  }
  if (dragging_ >= 0) {
    p.setPen(QPen(drag, 2.5, Qt::DashLine));
    p.drawLine(box(false, dragging_).center() - QPointF(0, kBoxH / 2), dragPos_);
  }
  auto drawBox = [&](bool teacher, int i) {
    const QRectF r = box(teacher, i);
    const bool mapped = teacher ? std::find(mapping_.begin(), mapping_.end(), i) != mapping_.end()
                                : mapping_[i] >= 0;
    p.setPen(QPen(mapped ? accent : pal.color(QPalette::Mid), 1.5));
    p.setBrush(pal.color(QPalette::Base));
    p.drawRoundedRect(r, 5, 5);
    p.setPen(pal.color(QPalette::Text));
    p.drawText(r, Qt::AlignCenter, QString("%1%2").arg(teacher ? "T" : "S").arg(i));
    if (teacher && dragging_ >= 0) {
      const double l = lossAt(i, dragging_);
      if (!std::isnan(l)) {
        p.setPen(drag);
        p.drawText(QRectF(r.left() - 10, r.bottom() + 1, r.width() + 20, 14), Qt::AlignCenter,
                   QString::number(l, 'g', 3));
      }
    }
  };
  for (int t = 0; t < teacher_; ++t) drawBox(true, t);
  for (int s = 0; s < student_; ++s) drawBox(false, s);
}

void LayerMapView::mousePressEvent(QMouseEvent* e) {
  dragging_ = hit(false, e->position());
  dragPos_ = e->position();
  update();
}

void LayerMapView::mouseMoveEvent(QMouseEvent* e) {
  if (dragging_ < 0) return;
  dragPos_ = e->position();
  update();
}

void LayerMapView::mouseReleaseEvent(QMouseEvent* e) {
  if (dragging_ < 0) return;
  const int s = dragging_;
  dragging_ = -1;
  const int t = hit(true, e->position());
  if (hit(false, e->position()) == s) {  // a click on the box: nothing changes
    update();
    return;
  }
  if (mapping_[s] != t) {
    mapping_[s] = t;  // −1 when released on empty space
    emit mappingChanged(mapping_);
  }
  update();
}

void LayerMapView::mouseDoubleClickEvent(QMouseEvent* e) {
  const int s = hit(false, e->position());
  if (s < 0 || mapping_[s] < 0) return;
  mapping_[s] = -1;
  emit mappingChanged(mapping_);
  update();
}

}  // namespace attn::widgets
