// The tokens of each model as a strip of boxes, one row per model. When the
// models tokenize differently, the rows are aligned by character offsets:
// tokens of the same group (see core/attention/align.h) start at the same x, and
// groups are shaded alternately so their extent is visible. Tokens left out of
// the alignment (special tokens the other model lacks) are drawn dashed and
// greyed. Clicking a token emits tokenClicked; the focused token is filled with
// the highlight colour and the tokens of its group in other rows are outlined.
#pragma once

#include <QStringList>
#include <QWidget>
#include <vector>

namespace attn::widgets {

class TokenStripView : public QWidget {
  Q_OBJECT

 public:
  struct Row {
    QString name;  // e.g. "Teacher"
    QStringList tokens;
    std::vector<int> groups;  // per token: group, -1 = not aligned; empty = one per token
  };

  explicit TokenStripView(QWidget* parent = nullptr);

  void setRows(std::vector<Row> rows);
  void setMessage(const QString& message);
  // Token `index` of row `row` gets the focus; (-1, -1) clears it.
  void setFocusToken(int row, int index);
  int focusRow() const { return focusRow_; }
  int focusIndex() const { return focusIndex_; }
  int rowCount() const { return int(rows_.size()); }
  const Row& row(int i) const { return rows_[size_t(i)]; }
  // Group of a token (its index when the row has no groups).
  int groupOf(int row, int index) const;
  QRect tokenRect(int row, int index) const;  // widget coordinates
  QSize sizeHint() const override;
  QSize minimumSizeHint() const override { return sizeHint(); }

 signals:
  void tokenClicked(int row, int index);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;

 private:
  void layoutTokens();
  QString shown(const QString& token) const;

  std::vector<Row> rows_;
  std::vector<std::vector<QRect>> rects_;  // per row, per token
  QString message_;
  int width_ = 0, nameWidth_ = 0;
  int focusRow_ = -1, focusIndex_ = -1;
};

}  // namespace attn::widgets
