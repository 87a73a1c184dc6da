// Layers × heads overview (like bertviz's model view): one thumbnail per head
// with a per-head statistic written under it; click or arrow keys select a
// head (PgUp/PgDn change layer). Fed plain arrays; never calls the engine.
#pragma once

#include <QImage>
#include <QString>
#include <QWidget>
#include <utility>
#include <vector>

namespace attn::widgets {

class HeadGridView : public QWidget {
  Q_OBJECT

 public:
  explicit HeadGridView(QWidget* parent = nullptr);

  // attention: [L, H, S, S]; stats: [L * H] (e.g. entropy), shown as text.
  void setData(const float* attention, int layers, int heads, int seq, std::vector<double> stats,
               const QString& statName);
  void clear(const QString& message);
  // Replaces the numbers under the thumbnails; same [L * H] layout.
  void setStats(std::vector<double> stats, const QString& statName);
  void setSelected(int layer, int head);
  // Heads drawn crossed out (e.g. pruned); empty: none.
  void setCrossed(std::vector<std::pair<int, int>> heads);
  const std::vector<std::pair<int, int>>& crossed() const { return crossed_; }
  int layers() const { return layers_; }
  int heads() const { return heads_; }
  double stat(int layer, int head) const { return stats_[size_t(layer) * heads_ + head]; }
  QRect cellRect(int layer, int head) const;  // widget coordinates of a thumbnail
  QSize sizeHint() const override;

 signals:
  void headSelected(int layer, int head);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;

 private:
  std::vector<QImage> thumbs_;
  std::vector<double> stats_;
  QString statName_, message_;
  int layers_ = 0, heads_ = 0, selLayer_ = 0, selHead_ = 0;
  std::vector<std::pair<int, int>> crossed_;
};

}  // namespace attn::widgets
