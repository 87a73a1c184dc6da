// Small builders shared by the tuning panels.
#pragma once

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>

namespace attn::widgets {

// A horizontal slider [lo, hi] at `value` with a value label to its right.
inline QHBoxLayout* sliderRow(QWidget* parent, int lo, int hi, int value, QSlider** slider,
                              QLabel** label) {
  auto* row = new QHBoxLayout();
  *slider = new QSlider(Qt::Horizontal, parent);
  (*slider)->setRange(lo, hi);
  (*slider)->setValue(value);
  (*slider)->setPageStep(1);
  *label = new QLabel(parent);
  (*label)->setMinimumWidth(48);
  row->addWidget(*slider, 1);
  row->addWidget(*label);
  return row;
}

// Sets a tensor list's items without emitting signals, keeping the selected text
// when it is still there; nothing is rebuilt when the items are the same.
inline void setItemsKeepingSelection(QComboBox* box, const QStringList& items) {
  bool same = box->count() == items.size();
  for (int i = 0; same && i < box->count(); ++i) same = box->itemText(i) == items[i];
  if (same) return;
  const QString keep = box->currentText();
  QSignalBlocker block(box);
  box->clear();
  box->addItems(items);
  const int again = box->findText(keep);
  box->setCurrentIndex(again >= 0 ? again : 0);
}

}  // namespace attn::widgets
