// Small builders shared by the tuning panels.
#pragma once

#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>

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

// A corpus file field with a browse button and a sentence count: [path][…][N sentences].
inline QHBoxLayout* corpusRow(QWidget* parent, const QString& placeholder, int sentences,
                              QLineEdit** path, QSpinBox** count) {
  auto* row = new QHBoxLayout();
  *path = new QLineEdit(parent);
  (*path)->setPlaceholderText(placeholder);
  auto* browse = new QPushButton(QStringLiteral("…"), parent);
  browse->setMaximumWidth(30);
  QLineEdit* edit = *path;
  QObject::connect(browse, &QPushButton::clicked, parent, [parent, edit] {
    const QString f = QFileDialog::getOpenFileName(parent, QObject::tr("Corpus"), {},
                                                   QObject::tr("Corpora (*.txt *.tsv *.csv *.jsonl)"));
    if (!f.isEmpty()) edit->setText(f);
  });
  *count = new QSpinBox(parent);
  (*count)->setRange(1, 1000000);
  (*count)->setValue(sentences);
  (*count)->setSuffix(QObject::tr(" sentences"));
  row->addWidget(*path, 1);
  row->addWidget(browse);
  row->addWidget(*count);
  return row;
}

}  // namespace attn::widgets
