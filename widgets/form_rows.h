// Small builders shared by the tuning panels.
#pragma once

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

}  // namespace attn::widgets
