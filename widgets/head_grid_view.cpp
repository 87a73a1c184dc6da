#include "widgets/head_grid_view.h"

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <algorithm>
#include <cmath>

#include "widgets/color_maps.h"

namespace attn::widgets {

namespace {
constexpr int kThumb = 56;  // thumbnail edge in pixels
constexpr int kGap = 6;
constexpr int kTextH = 14;       // statistic line under each thumbnail
constexpr int kHeaderW = 28;     // "L0" column
constexpr int kHeaderH = 18;     // "h0" row
constexpr int kMaxSamples = 64;  // thumbnails sample at most 64 × 64 cells
}  // namespace

HeadGridView::HeadGridView(QWidget* parent) : QWidget(parent) {
  setFocusPolicy(Qt::StrongFocus);
  clear(tr("no model"));
}

void HeadGridView::clear(const QString& message) {
  thumbs_.clear();
  stats_.clear();
  layers_ = heads_ = 0;
  message_ = message;
  updateGeometry();
  update();
}

void HeadGridView::setData(const float* attention, int layers, int heads, int seq,
                           std::vector<double> stats, const QString& statName) {
  layers_ = layers;
  heads_ = heads;
  stats_ = std::move(stats);
  statName_ = statName;
  message_.clear();
  thumbs_.assign(size_t(layers) * heads, QImage());
  QCPColorGradient g = viridisGradient();  // color() is non-const (it caches)
  const int n = std::min(seq, kMaxSamples);
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < heads; ++h) {
      const float* map = attention + (size_t(l) * heads + h) * size_t(seq) * seq;
      QImage img(n, n, QImage::Format_RGB32);
      float mx = 1e-12f;
      for (size_t i = 0; i < size_t(seq) * seq; ++i) mx = std::max(mx, map[i]);
      for (int y = 0; y < n; ++y)
        for (int x = 0; x < n; ++x) {  // max over the block of cells this pixel covers
          const int r0 = y * seq / n, r1 = std::max(r0 + 1, (y + 1) * seq / n);
          const int c0 = x * seq / n, c1 = std::max(c0 + 1, (x + 1) * seq / n);
          float v = 0.0f;
          for (int r = r0; r < r1; ++r)
            for (int c = c0; c < c1; ++c) v = std::max(v, map[size_t(r) * seq + c]);
          img.setPixel(x, y, g.color(v / mx, QCPRange(0, 1)));
        }
      thumbs_[size_t(l) * heads + h] = img;
    }
  setToolTip(tr("%1 per head; click to show a head, arrows / PgUp / PgDn to move").arg(statName_));
  selLayer_ = std::clamp(selLayer_, 0, std::max(0, layers - 1));
  selHead_ = std::clamp(selHead_, 0, std::max(0, heads - 1));
  setMinimumSize(sizeHint());  // inside a scroll area: scroll rather than squeeze
  updateGeometry();
  update();
}

void HeadGridView::setStats(std::vector<double> stats, const QString& statName) {
  if (stats.size() != size_t(layers_) * heads_) return;
  stats_ = std::move(stats);
  statName_ = statName;
  setToolTip(tr("%1 per head; click to show a head, arrows / PgUp / PgDn to move").arg(statName_));
  update();
}

void HeadGridView::setSelected(int layer, int head) {
  selLayer_ = layer;
  selHead_ = head;
  update();
}

QRect HeadGridView::cellRect(int layer, int head) const {
  return QRect(kHeaderW + head * (kThumb + kGap), kHeaderH + layer * (kThumb + kTextH + kGap),
               kThumb, kThumb);
}

QSize HeadGridView::sizeHint() const {
  if (layers_ == 0) return {240, 120};
  return {kHeaderW + heads_ * (kThumb + kGap) + kGap,
          kHeaderH + layers_ * (kThumb + kTextH + kGap) + kGap};
}

void HeadGridView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().window());
  p.setPen(palette().color(QPalette::WindowText));
  if (layers_ == 0) {
    p.drawText(rect(), Qt::AlignCenter, message_);
    return;
  }
  QFont small = font();
  small.setPointSizeF(std::max(6.0, small.pointSizeF() - 1.5));
  p.setFont(small);
  for (int h = 0; h < heads_; ++h)
    p.drawText(QRect(cellRect(0, h).left(), 0, kThumb, kHeaderH), Qt::AlignCenter,
               QStringLiteral("h%1").arg(h));
  for (int l = 0; l < layers_; ++l) {
    const QRect first = cellRect(l, 0);
    p.drawText(QRect(0, first.top(), kHeaderW - 4, kThumb), Qt::AlignRight | Qt::AlignVCenter,
               QStringLiteral("L%1").arg(l));
    for (int h = 0; h < heads_; ++h) {
      const QRect r = cellRect(l, h);
      p.drawImage(r, thumbs_[size_t(l) * heads_ + h]);
      p.drawText(QRect(r.left(), r.bottom() + 1, kThumb, kTextH), Qt::AlignCenter,
                 QString::number(stat(l, h), 'f', 2));
    }
  }
  p.setPen(QPen(palette().color(QPalette::WindowText), 2));
  for (const auto& [l, h] : crossed_) {
    if (l < 0 || l >= layers_ || h < 0 || h >= heads_) continue;
    const QRect r = cellRect(l, h);
    p.fillRect(r, QColor(128, 128, 128, 160));
    p.drawLine(r.topLeft(), r.bottomRight());
    p.drawLine(r.topRight(), r.bottomLeft());
  }
  const QRect sel = cellRect(selLayer_, selHead_).adjusted(-2, -2, 2, 2);
  p.setPen(QPen(QColor(255, 64, 64), 3));
  p.drawRect(sel);
}

void HeadGridView::setCrossed(std::vector<std::pair<int, int>> heads) {
  crossed_ = std::move(heads);
  update();
}

void HeadGridView::mousePressEvent(QMouseEvent* event) {
  for (int l = 0; l < layers_; ++l)
    for (int h = 0; h < heads_; ++h)
      if (cellRect(l, h).contains(event->position().toPoint())) {
        setSelected(l, h);
        emit headSelected(l, h);
        return;
      }
}

void HeadGridView::keyPressEvent(QKeyEvent* event) {
  if (layers_ == 0) return QWidget::keyPressEvent(event);
  int l = selLayer_, h = selHead_;
  switch (event->key()) {
    case Qt::Key_Left:
      h = std::max(0, h - 1);
      break;
    case Qt::Key_Right:
      h = std::min(heads_ - 1, h + 1);
      break;
    case Qt::Key_Up:
    case Qt::Key_PageUp:
      l = std::max(0, l - 1);
      break;
    case Qt::Key_Down:
    case Qt::Key_PageDown:
      l = std::min(layers_ - 1, l + 1);
      break;
    default:
      return QWidget::keyPressEvent(event);
  }
  if (l != selLayer_ || h != selHead_) {
    setSelected(l, h);
    emit headSelected(l, h);
  }
}

}  // namespace attn::widgets
