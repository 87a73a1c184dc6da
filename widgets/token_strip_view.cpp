#include "widgets/token_strip_view.h"

#include <QMouseEvent>
#include <QPainter>
#include <algorithm>

namespace attn::widgets {

namespace {
constexpr int kPadX = 5, kGap = 3, kRowGap = 4, kMargin = 3;
}

TokenStripView::TokenStripView(QWidget* parent) : QWidget(parent) {
  setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Fixed);
}

void TokenStripView::setRows(std::vector<Row> rows) {
  rows_ = std::move(rows);
  message_.clear();
  focusRow_ = focusIndex_ = -1;
  layoutTokens();
  updateGeometry();
  update();
}

void TokenStripView::setMessage(const QString& message) {
  rows_.clear();
  rects_.clear();
  message_ = message;
  focusRow_ = focusIndex_ = -1;
  updateGeometry();
  update();
}

void TokenStripView::setFocusToken(int row, int index) {
  const bool valid =
      row >= 0 && row < rowCount() && index >= 0 && index < int(rows_[size_t(row)].tokens.size());
  focusRow_ = valid ? row : -1;
  focusIndex_ = valid ? index : -1;
  update();
}

int TokenStripView::groupOf(int row, int index) const {
  const Row& r = rows_[size_t(row)];
  return r.groups.empty() ? index : r.groups[size_t(index)];
}

QString TokenStripView::shown(const QString& token) const {
  return token.isEmpty() ? QStringLiteral("␀") : token;
}

QRect TokenStripView::tokenRect(int row, int index) const {
  return rects_[size_t(row)][size_t(index)];
}

// Columns: group g occupies column 2g + 1; tokens left out of the alignment sit
// in column 2g before the next aligned group (2G after the last). Each column is
// as wide as the widest row's content in it, so groups line up across rows.
void TokenStripView::layoutTokens() {
  const QFontMetrics fm(font());
  const int h = fm.height() + 6;
  nameWidth_ = 0;
  for (const Row& r : rows_) nameWidth_ = std::max(nameWidth_, fm.horizontalAdvance(r.name) + 10);
  std::vector<std::vector<int>> column(rows_.size());
  int columns = 1;
  for (size_t ri = 0; ri < rows_.size(); ++ri) {
    const Row& r = rows_[ri];
    const int n = int(r.tokens.size());
    column[ri].resize(size_t(n));
    int next = -1;  // next aligned group, scanning backwards
    for (int i = n - 1; i >= 0; --i) {
      const int g = groupOf(int(ri), i);
      if (g >= 0) next = g;
      column[ri][size_t(i)] = g >= 0 ? 2 * g + 1 : (next >= 0 ? 2 * next : -2);
    }
    int maxGroup = -1;
    for (int i = 0; i < n; ++i) maxGroup = std::max(maxGroup, groupOf(int(ri), i));
    for (int i = 0; i < n; ++i)
      if (column[ri][size_t(i)] == -2) column[ri][size_t(i)] = 2 * (maxGroup + 1);
    for (int c : column[ri]) columns = std::max(columns, c + 1);
  }
  std::vector<int> widths(size_t(columns), 0);
  std::vector<std::vector<int>> tokenW(rows_.size());
  for (size_t ri = 0; ri < rows_.size(); ++ri) {
    std::vector<int> used(size_t(columns), 0);
    for (int i = 0; i < int(rows_[ri].tokens.size()); ++i) {
      const int w = fm.horizontalAdvance(shown(rows_[ri].tokens[i])) + 2 * kPadX;
      tokenW[ri].push_back(w);
      used[size_t(column[ri][size_t(i)])] += w + kGap;
    }
    for (int c = 0; c < columns; ++c)
      widths[size_t(c)] = std::max(widths[size_t(c)], used[size_t(c)]);
  }
  std::vector<int> x0(size_t(columns) + 1, kMargin + nameWidth_);
  for (int c = 0; c < columns; ++c) x0[size_t(c) + 1] = x0[size_t(c)] + widths[size_t(c)];
  rects_.assign(rows_.size(), {});
  for (size_t ri = 0; ri < rows_.size(); ++ri) {
    std::vector<int> cursor(x0.begin(), x0.end() - 1);
    const int y = kMargin + int(ri) * (h + kRowGap);
    for (size_t i = 0; i < size_t(rows_[ri].tokens.size()); ++i) {
      int& x = cursor[size_t(column[ri][i])];
      rects_[ri].emplace_back(x, y, tokenW[ri][i], h);
      x += tokenW[ri][i] + kGap;
    }
  }
  width_ = x0.back() + kMargin;
}

QSize TokenStripView::sizeHint() const {
  const int h = QFontMetrics(font()).height() + 6;
  const int rows = std::max(1, rowCount());
  return {std::max(width_, 200), 2 * kMargin + rows * h + (rows - 1) * kRowGap};
}

void TokenStripView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  const QPalette& pal = palette();
  if (rows_.empty()) {
    p.setPen(pal.color(QPalette::PlaceholderText));
    p.drawText(rect().adjusted(kMargin, 0, 0, 0), Qt::AlignLeft | Qt::AlignVCenter, message_);
    return;
  }
  const int focusGroup = focusRow_ >= 0 ? groupOf(focusRow_, focusIndex_) : -1;
  for (int ri = 0; ri < rowCount(); ++ri) {
    const Row& r = rows_[size_t(ri)];
    if (!rects_[size_t(ri)].empty()) {
      const QRect first = rects_[size_t(ri)].front();
      p.setPen(pal.color(QPalette::WindowText));
      p.drawText(QRect(kMargin, first.top(), nameWidth_ - 6, first.height()),
                 Qt::AlignRight | Qt::AlignVCenter, r.name);
    }
    for (int i = 0; i < int(r.tokens.size()); ++i) {
      const QRectF box = QRectF(rects_[size_t(ri)][size_t(i)]).adjusted(0.5, 0.5, -0.5, -0.5);
      const int g = groupOf(ri, i);
      const bool focused = ri == focusRow_ && i == focusIndex_;
      const bool partner = !focused && focusGroup >= 0 && g == focusGroup;
      QColor fill = g < 0 ? pal.color(QPalette::Window)
                          : pal.color(g % 2 ? QPalette::AlternateBase : QPalette::Base);
      if (focused) fill = pal.color(QPalette::Highlight);
      QPen border(partner ? pal.color(QPalette::Highlight) : pal.color(QPalette::Mid),
                  partner ? 2.0 : 1.0, g < 0 ? Qt::DashLine : Qt::SolidLine);
      p.setPen(border);
      p.setBrush(fill);
      p.drawRoundedRect(box, 3, 3);
      p.setPen(focused ? pal.color(QPalette::HighlightedText)
               : g < 0 ? pal.color(QPalette::PlaceholderText)
                       : pal.color(QPalette::Text));
      p.drawText(box, Qt::AlignCenter, shown(r.tokens[i]));
    }
  }
}

void TokenStripView::mousePressEvent(QMouseEvent* event) {
  for (int ri = 0; ri < rowCount(); ++ri)
    for (int i = 0; i < int(rects_[size_t(ri)].size()); ++i)
      if (rects_[size_t(ri)][size_t(i)].contains(event->position().toPoint())) {
        emit tokenClicked(ri, i);
        return;
      }
  QWidget::mousePressEvent(event);
}

}  // namespace attn::widgets
