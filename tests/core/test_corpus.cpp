// Corpus readers: .txt, .tsv, .csv (RFC 4180 quoting), .jsonl, and their errors.
#include <QTest>

#include "core/text/corpus.h"
#include "tests/core/test_helpers.h"

using namespace attn::text;
using attn::test::TempDir;
using Strings = std::vector<std::string>;

class TestCorpus : public QObject {
  Q_OBJECT

 private slots:
  void txt() {
    TempDir d;
    attn::test::writeBytes(d / "a.txt", "first line\r\n\nsecond, with comma\nthird\n\n");
    auto r = readCorpus(d / "a.txt");
    QVERIFY(r.ok());
    QCOMPARE(*r, (Strings{"first line", "second, with comma", "third"}));
    QCOMPARE(*corpusColumns(d / "a.txt"), Strings{});
  }

  void tsv() {
    TempDir d;
    attn::test::writeBytes(d / "a.tsv",
                           "id\ttext\tlabel\n1\tHello world\tpos\n2\tA \"quoted\" word\tneg\n");
    QCOMPARE(*corpusColumns(d / "a.tsv"), (Strings{"id", "text", "label"}));
    auto r = readCorpus(d / "a.tsv", "text");
    QVERIFY(r.ok());
    QCOMPARE(*r, (Strings{"Hello world", "A \"quoted\" word"}));
  }

  void csvQuoting() {
    TempDir d;
    attn::test::writeBytes(
        d / "a.csv",
        "label,sentence\r\npos,\"Commas, inside\"\r\nneg,\"He said \"\"hi\"\"\"\r\n"
        "pos,\"two\nlines\"\nneg,plain\n");
    QCOMPARE(*corpusColumns(d / "a.csv"), (Strings{"label", "sentence"}));
    auto r = readCorpus(d / "a.csv", "sentence");
    QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
    QCOMPARE(*r, (Strings{"Commas, inside", "He said \"hi\"", "two\nlines", "plain"}));
  }

  void jsonl() {
    TempDir d;
    attn::test::writeBytes(d / "a.jsonl",
                           "{\"id\": 1, \"text\": \"caf\\u00e9 au lait\", \"src\": \"x\"}\n\n"
                           "{\"id\": 2, \"text\": \"second\", \"src\": \"y\"}\n");
    // String fields of the first object, in nlohmann's (sorted) key order.
    QCOMPARE(*corpusColumns(d / "a.jsonl"), (Strings{"src", "text"}));
    auto r = readCorpus(d / "a.jsonl", "text");
    QVERIFY(r.ok());
    QCOMPARE(*r, (Strings{"café au lait", "second"}));
  }

  void errors_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QByteArray>("content");
    QTest::addColumn<QString>("column");
    QTest::addColumn<QString>("expect");
    QTest::newRow("extension") << "a.docx" << QByteArray("x") << ""
                               << "unknown corpus type '.docx'";
    QTest::newRow("missing column") << "a.csv" << QByteArray("a,b\n1,2\n") << "text"
                                    << "no column named \"text\"";
    QTest::newRow("short row") << "a.tsv" << QByteArray("a\tb\n1\n") << "b"
                               << "row 2 has 1 fields";
    QTest::newRow("unclosed quote") << "a.csv" << QByteArray("a\n\"open\n") << "a"
                                    << "never closed";
    QTest::newRow("bad json") << "a.jsonl" << QByteArray("{\"text\": \"ok\"}\n{oops\n") << "text"
                              << "line 2 is not a JSON object";
    QTest::newRow("missing field") << "a.jsonl" << QByteArray("{\"t\": \"ok\"}\n") << "text"
                                   << "line 1 has no string field \"text\"";
  }

  void errors() {
    QFETCH(QString, file);
    QFETCH(QByteArray, content);
    QFETCH(QString, column);
    QFETCH(QString, expect);
    TempDir d;
    attn::test::writeBytes(d / file.toStdString(), content.toStdString());
    auto r = readCorpus(d / file.toStdString(), column.toStdString());
    QVERIFY(!r.ok());
    QVERIFY2(QString::fromStdString(r.message()).contains(expect), r.message().c_str());
  }
};

QTEST_APPLESS_MAIN(TestCorpus)
#include "test_corpus.moc"
