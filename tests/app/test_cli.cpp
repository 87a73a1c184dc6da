// attnstudio-cli contract: JSON keys, .npy / .h5 outputs that match the
// PyTorch reference, exit codes and one-line errors on bad input.
#include <hdf5.h>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTest>

#include "core/io/npy.h"
#include "tests/core/test_helpers.h"

using attn::test::TempDir;

namespace {
constexpr double kAttentionTol = 1.5e-5;  // as in test_forward (float32 vs float64 reference)

struct Run {
  int code = -1;
  QByteArray out, err;
};

Run cli(const QStringList& args) {
  QProcess p;
  p.start(ATTN_CLI, args);
  p.waitForFinished(120000);
  return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
          p.readAllStandardError()};
}

QString model(const char* name) {
  return QString::fromStdString((attn::test::dataDir() / "models" / name).string());
}

QJsonObject json(const Run& r) { return QJsonDocument::fromJson(r.out).object(); }

// "1,2,3" from a reference .npy (what = "ids" or "mask").
QString listOf(const char* name, const char* kase, const char* what = "ids") {
  auto a = attn::readNpy(attn::test::dataDir() / "models" / name / "reference" /
                         (std::string(kase) + "_" + what + ".npy"));
  QStringList s;
  for (double v : a->values) s << QString::number(qint64(v));
  return s.join(',');
}
}  // namespace

class TestCli : public QObject {
  Q_OBJECT

 private slots:
  void inspectJson() {
    const Run r = cli({"inspect", model("gpt2_tiny"), "--json"});
    QCOMPARE(r.code, 0);
    const QJsonObject j = json(r);
    for (const char* key : {"architecture", "layers", "heads", "hidden", "intermediate",
                            "vocab_size", "max_positions", "parameters", "tokenizer", "tensors"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j["architecture"].toString(), QString("gpt2"));
    QCOMPARE(j["layers"].toInt(), 2);
    QCOMPARE(j["heads"].toInt(), 4);
    QCOMPARE(j["hidden"].toInt(), 32);
    QCOMPARE(j["intermediate"].toInt(), 128);  // n_inner null -> 4 * n_embd
    QCOMPARE(j["tokenizer"].toString(), QString("bpe"));
    const QJsonArray ts = j["tensors"].toArray();
    QVERIFY(!ts.isEmpty());
    bool sawConv = false;
    for (const auto& t : ts) {
      const auto o = t.toObject();
      QVERIFY(o.contains("name") && o.contains("dtype") && o.contains("shape"));
      if (o["name"].toString() == "transformer.h.0.attn.c_attn.weight") {
        sawConv = true;
        QCOMPARE(o["shape"].toArray(), (QJsonArray{32, 96}));  // Conv1D [in, out]
      }
    }
    QVERIFY(sawConv);
  }

  void tokenizeRealVocabulary() {
    // The demo model ships bert-base-uncased's vocabulary.
    const Run r = cli({"tokenize", ATTN_DEMO_DIR "/bert-demo", "--text", "Hello world", "--json"});
    QCOMPARE(r.code, 0);
    const QJsonObject j = json(r);
    QCOMPARE(j["ids"].toArray(), (QJsonArray{101, 7592, 2088, 102}));
    QCOMPARE(j["tokens"].toArray(), (QJsonArray{"[CLS]", "hello", "world", "[SEP]"}));
    QCOMPARE(j["offsets"].toArray()[2].toArray(), (QJsonArray{6, 11}));
  }

  void attentionNpyMatchesReference() {
    TempDir tmp;
    const QString out = QString::fromStdString((tmp / "a.npy").string());
    const Run r = cli({"attention", model("roberta_tiny"), "--ids", listOf("roberta_tiny", "plain"),
                       "--out", out, "--threads", "2"});
    QVERIFY2(r.code == 0, r.err.constData());
    auto got = attn::readNpy(out.toStdString());
    QVERIFY2(got.ok(), got.ok() ? "" : got.message().c_str());
    auto want =
        attn::readNpy(attn::test::dataDir() / "models/roberta_tiny/reference/plain_attentions.npy");
    QVERIFY(want.ok());
    QCOMPARE(got->shape, want->shape);  // [L, H, S, S]
    ATTN_CHECK_CLOSE(got->values.data(), want->values.data(), got->values.size(), kAttentionTol,
                     "attention from .npy");
  }

  void attentionHdf5() {
    TempDir tmp;
    const auto path = tmp / "a.h5";
    const Run r = cli({"attention", model("bert_tiny"), "--ids", listOf("bert_tiny", "padded"),
                       "--mask", listOf("bert_tiny", "padded", "mask"), "--out",
                       QString::fromStdString(path.string())});
    QVERIFY2(r.code == 0, r.err.constData());
    auto want =
        attn::readNpy(attn::test::dataDir() / "models/bert_tiny/reference/padded_attentions.npy");
    QVERIFY(want.ok());
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    QVERIFY(f >= 0);
    const int64_t H = want->shape[1], S = want->shape[2];
    for (int l = 0; l < int(want->shape[0]); ++l) {
      const std::string name = "/attention/layer_" + std::to_string(l);
      const hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
      QVERIFY(d >= 0);
      const hid_t sp = H5Dget_space(d);
      hsize_t dims[3] = {0, 0, 0};
      QCOMPARE(H5Sget_simple_extent_ndims(sp), 3);
      H5Sget_simple_extent_dims(sp, dims, nullptr);
      QCOMPARE(dims[0], hsize_t(H));
      QCOMPARE(dims[1], hsize_t(S));
      std::vector<float> buf(size_t(H * S * S));
      QVERIFY(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0);
      ATTN_CHECK_CLOSE(buf.data(), want->values.data() + l * H * S * S, buf.size(), kAttentionTol,
                       "attention from .h5");
      H5Sclose(sp);
      H5Dclose(d);
    }
    const hid_t ids = H5Dopen2(f, "/ids", H5P_DEFAULT);
    QVERIFY(ids >= 0);
    H5Dclose(ids);
    const hid_t toks = H5Dopen2(f, "/tokens", H5P_DEFAULT);
    QVERIFY(toks >= 0);
    H5Dclose(toks);
    H5Fclose(f);
  }

  void attentionJson() {
    const Run r = cli({"attention", model("distilbert_tiny"), "--text", "the brown fox", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    QVERIFY(j.contains("ids") && j.contains("tokens") && j.contains("entropy"));
    const QJsonArray ent = j["entropy"].toArray();
    QCOMPARE(ent.size(), 2);
    QCOMPARE(ent[0].toArray().size(), 4);
    const double maxEntropy = std::log(double(j["ids"].toArray().size()));
    for (const auto& row : ent)
      for (const auto& e : row.toArray())
        QVERIFY(e.toDouble() >= 0 && e.toDouble() <= maxEntropy + 1e-9);
  }

  void benchSynthetic() {
    const Run r = cli({"bench", "--synthetic", "gpt2-small", "--seq", "8", "--runs", "1",
                       "--threads", "1", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    for (const char* key : {"forward_ms_median", "forward_ms_min", "peak_rss_mb", "threads"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j["threads"].toInt(), 1);
    QVERIFY(j["forward_ms_median"].toDouble() > 0);
    QVERIFY(j["peak_rss_mb"].toDouble() > 400);  // 124M float32 parameters live in memory
  }

  void errors_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("message");
    const QString bert = model("bert_tiny");
    QTest::newRow("missing model")
        << QStringList{"inspect", "/nonexistent"} << 1 << "does not exist";
    QTest::newRow("bad ids") << QStringList{"attention", bert, "--ids", "2,x,3"} << 1
                             << "'x' is not an integer";
    QTest::newRow("id outside vocab") << QStringList{"attention", bert, "--ids", "2,99999"} << 1
                                      << "token id 99999 at position 1";
    QTest::newRow("mask length") << QStringList{"attention", bert, "--ids", "2,3", "--mask", "1"}
                                 << 1 << "--mask has 1 entries for 2 tokens";
    QTest::newRow("mask not 0/1") << QStringList{"attention", bert, "--ids", "2,3", "--mask", "1,2"}
                                  << 1 << "--mask entries must be 0 or 1, not 2";
    QTest::newRow("id out of range") << QStringList{"attention", bert, "--ids", "2,99999999999"}
                                     << 1 << "99999999999 is out of range";
    QTest::newRow("bad out") << QStringList{"attention", bert, "--ids", "2,3", "--out", "x.txt"}
                             << 1 << "must end in .npy or .h5";
    QTest::newRow("no tokenizer") << QStringList{"tokenize", model("bert_bare/bert.safetensors"),
                                                 "--text", "hi"}
                                  << 1 << "has no tokenizer files";
    QTest::newRow("unknown option") << QStringList{"inspect", bert, "--frobnicate"} << 2 << "";
    QTest::newRow("no subcommand") << QStringList{} << 2 << "";
    QTest::newRow("text and ids") << QStringList{"attention", bert, "--text", "a", "--ids", "1"}
                                  << 2 << "";
    QTest::newRow("bench both") << QStringList{"bench",     bert,    "--synthetic",
                                               "bert-base", "--seq", "4"}
                                << 2 << "";
  }

  void errors() {
    QFETCH(QStringList, args);
    QFETCH(int, code);
    QFETCH(QString, message);
    const Run r = cli(args);
    QCOMPARE(r.code, code);
    QVERIFY2(QString(r.err).contains(message), r.err.constData());
    if (code == 1) QCOMPARE(r.err.count('\n'), 1);  // one line
  }

  void helpEverywhere() {
    for (const char* sub : {"inspect", "tokenize", "attention", "bench"}) {
      const Run r = cli({sub, "--help"});
      QCOMPARE(r.code, 0);
      QVERIFY(r.out.contains("Usage") || r.out.contains("USAGE") || r.out.contains("usage"));
    }
  }
};

QTEST_APPLESS_MAIN(TestCli)
#include "test_cli.moc"
