// safetensors reader: round trip, zero-copy F32, F16/BF16 upcast, and one
// data row per header check a careful reader makes (each must fail with a
// message that names the file, the tensor and the numbers — never crash).
#include <QTest>
#include <cstring>
#include <new>

#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "tests/core/test_helpers.h"

using namespace attn;
using attn::test::TempDir;

namespace {
// A raw safetensors file: 8-byte length, header text, data bytes.
std::string rawFile(const std::string& header, size_t dataBytes, int64_t lengthOverride = -1) {
  std::string out(8, '\0');
  const uint64_t n = lengthOverride >= 0 ? static_cast<uint64_t>(lengthOverride) : header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += header;
  out += std::string(dataBytes, '\x01');
  return out;
}
}  // namespace

class TestSafetensors : public QObject {
  Q_OBJECT

 private slots:
  void roundTripAndZeroCopy() {
    TempDir dir;
    std::vector<float> a = {1.f, -2.f, 3.5f, 0.f, 1e-3f, 7.f};
    std::vector<uint16_t> h = {floatToHalf(1.5f), floatToHalf(-0.25f), floatToHalf(65504.f)};
    std::vector<uint16_t> b = {floatToBf16(3.0f), floatToBf16(-1.0f / 3.0f)};
    auto hs = std::make_shared<std::vector<uint16_t>>(h);
    auto bs = std::make_shared<std::vector<uint16_t>>(b);
    std::vector<std::pair<std::string, Tensor>> ts = {
        {"a", Tensor::fromF32({2, 3}, a)},
        {"h", Tensor(DType::F16, {3}, hs->data(), hs)},
        {"b", Tensor(DType::BF16, {2}, bs->data(), bs)},
    };
    QVERIFY(writeSafetensors(dir / "m.safetensors", ts, {{"format", "pt"}}).ok());
    auto f = SafetensorsFile::open(dir / "m.safetensors");
    QVERIFY2(f.ok(), f.ok() ? "" : f.message().c_str());
    QCOMPARE((*f)->metadata().at("format"), std::string("pt"));
    QCOMPARE((*f)->entries().size(), size_t(3));
    // Data section starts 8-aligned, so F32 is used in place: same pointer.
    const Tensor ta = (*f)->tensor(*(*f)->find("a"));
    QVERIFY(ta.borrowed());
    QCOMPARE(ta.toF32().raw(), ta.raw());
    QCOMPARE(ta.shape(), (Shape{2, 3}));
    QVERIFY(std::memcmp(ta.f32(), a.data(), a.size() * 4) == 0);
    const Tensor th = (*f)->tensor(*(*f)->find("h")).toF32();
    QCOMPARE(th.f32()[0], 1.5f);
    QCOMPARE(th.f32()[1], -0.25f);
    QCOMPARE(th.f32()[2], 65504.f);
    const Tensor tb = (*f)->tensor(*(*f)->find("b")).toF32();
    QCOMPARE(tb.f32()[0], 3.0f);
    QCOMPARE(tb.f32()[1], bf16ToFloat(floatToBf16(-1.0f / 3.0f)));
  }

  void streamedWriteEqualsWholeWrite() {
    // The data handed over one tensor at a time gives the same bytes as writing
    // the tensors at once; a tensor that is not what the header promised, or an
    // error from the producer, ends the write and leaves no file.
    TempDir dir;
    std::vector<std::pair<std::string, Tensor>> ts = {
        {"w", Tensor::fromF32({2, 3}, {1, 2, 3, 4, 5, 6})},
        {"empty", Tensor::fromF32({0, 4}, {})},
        {"b", Tensor::fromF32({3}, {-1, 0.5f, 9})}};
    QVERIFY(writeSafetensors(dir / "whole.safetensors", ts).ok());
    std::vector<TensorEntry> entries;
    for (const auto& [name, t] : ts) entries.push_back({name, t.dtype(), t.shape()});
    std::vector<size_t> asked;
    auto next = [&](size_t i) -> Result<Tensor> {
      asked.push_back(i);
      return ts[i].second;
    };
    QVERIFY(streamSafetensors(dir / "streamed.safetensors", entries, next).ok());
    QCOMPARE(asked, (std::vector<size_t>{0, 1, 2}));
    QCOMPARE(attn::test::readBytes(dir / "streamed.safetensors"),
             attn::test::readBytes(dir / "whole.safetensors"));

    entries[2].shape = {1, 3};  // same bytes, another shape: still refused
    Status st = streamSafetensors(dir / "bad.safetensors", entries, next);
    QVERIFY(!st.ok());
    QVERIFY2(QString::fromStdString(st.message()).contains("'b' arrived as F32 [3], the header says F32 [1,3]"),
             st.message().c_str());
    entries[2] = {"b", DType::F16, {3}};
    st = streamSafetensors(dir / "bad.safetensors", entries, next);
    QVERIFY(!st.ok());
    QVERIFY2(QString::fromStdString(st.message()).contains("the header says F16 [3]"), st.message().c_str());
    entries[2] = {"b", DType::F32, {3}};
    st = streamSafetensors(dir / "bad.safetensors", entries, [&](size_t i) -> Result<Tensor> {
      if (i == 1) return makeError("the quantizer failed");
      return ts[i].second;
    });
    QVERIFY(!st.ok());
    QCOMPARE(QString::fromStdString(st.message()), QString("the quantizer failed"));
    // An exception from the producer (out of memory) is an error too, and leaves nothing.
    st = streamSafetensors(dir / "bad.safetensors", entries, [&](size_t i) -> Result<Tensor> {
      if (i == 2) throw std::bad_alloc();
      return ts[i].second;
    });
    QVERIFY(!st.ok());
    QVERIFY2(QString::fromStdString(st.message()).startsWith("the write failed: "), st.message().c_str());
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      ++files;
      QVERIFY2(e.path().filename().string().find("bad") == std::string::npos, e.path().c_str());
    }
    QCOMPARE(files, 2);
  }

  void halfConversionsMatchIeee() {
    // Exhaustive: every finite half converts to float and back unchanged.
    for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
      const uint16_t hb = static_cast<uint16_t>(bits);
      if ((hb & 0x7c00u) == 0x7c00u) continue;  // inf / NaN
      const float f = halfToFloat(hb);
      QCOMPARE(floatToHalf(f), hb);
    }
    // Round half to even between 1 and 1 + 2^-10.
    QCOMPARE(floatToHalf(1.0f + 0.5f / 1024.0f), floatToHalf(1.0f));
    QCOMPARE(floatToHalf(1.0f + 1.5f / 1024.0f), uint16_t(floatToHalf(1.0f) + 2));
    QCOMPARE(halfToFloat(0x0001), 5.9604644775390625e-08f);  // smallest subnormal
  }

  void badHeader_data() {
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("expect");
    const auto row = [](const char* name, const std::string& bytes, const char* expect) {
      QTest::newRow(name) << QByteArray(bytes.data(), qsizetype(bytes.size())) << QString(expect);
    };
    const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    row("empty file", "", "too short");
    row("short file", std::string(5, '\0'), "5 bytes is too short");
    row("length past end", rawFile(ok, 8, 1000), "header length 1000 exceeds the file");
    row("huge length", rawFile(ok, 8, int64_t(1) << 62), "exceeds the file");
    row("invalid json", rawFile(R"({"w":{"dtype":)", 0), "not valid JSON");
    row("not an object", rawFile("[1,2,3]", 0), "not a JSON object");
    row("unknown dtype", rawFile(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8),
        "tensor 'w' has unknown dtype 'Q4'");
    row("negative dim", rawFile(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
        "tensor 'w' has a shape entry that is not a non-negative integer: -2");
    row("float dim", rawFile(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8),
        "not a non-negative integer");
    row("no offsets", rawFile(R"({"w":{"dtype":"F32","shape":[2]}})", 8), "no data_offsets");
    row("begin after end", rawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8),
        "[8, 0] with begin after end");
    row("offsets past data",
        rawFile(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
        "[0, 16] past the data section (8 bytes)");
    row("size mismatch", rawFile(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
        "tensor 'w' has 8 bytes, but shape [3] of F32 needs 12");
    row("overflowing shape",
        rawFile(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
        "overflows");
    row("overlap",
        rawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                12),
        "overlaps the previous tensor");
    row("gap",
        rawFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                12),
        "gap of 4 bytes before tensor 'b'");
    row("trailing bytes", rawFile(ok, 12), "tensors cover 8 bytes of a data section of 12 bytes");
    row("metadata not string",
        rawFile(
            R"({"__metadata__":{"format":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
            8),
        "__metadata__ value 'format' is not a string");
  }

  void badHeader() {
    QFETCH(QByteArray, bytes);
    QFETCH(QString, expect);
    TempDir dir;
    const auto path = dir / "bad.safetensors";
    attn::test::writeBytes(path, bytes.toStdString());
    auto f = SafetensorsFile::open(path);
    QVERIFY2(!f.ok(), "a malformed file was accepted");
    const QString msg = QString::fromStdString(f.message());
    QVERIFY2(msg.contains(expect), qPrintable("message was: " + msg));
    QVERIFY2(msg.contains("bad.safetensors"), qPrintable("message does not name the file: " + msg));
  }

  void npyHugeShapeIsAnError() {
    TempDir dir;
    std::string header =
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }";
    while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
    header.push_back('\n');
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes.push_back(char(header.size() & 0xff));
    bytes.push_back(char(header.size() >> 8));
    attn::test::writeBytes(dir / "huge.npy", bytes + header);
    auto a = readNpy(dir / "huge.npy");
    QVERIFY(!a.ok());
    QVERIFY2(a.message().find("data has 0 bytes") != std::string::npos, a.message().c_str());
  }

  void missingFile() {
    auto f = SafetensorsFile::open("/nonexistent/x.safetensors");
    QVERIFY(!f.ok());
    QVERIFY(QString::fromStdString(f.message()).contains("cannot open"));
    auto ck = openCheckpoint("/nonexistent/dir");
    QVERIFY(!ck.ok());
  }

  void truncatedFilesNeverCrash() {
    // Every prefix of a valid file is either rejected or (the full file) accepted.
    TempDir dir;
    std::vector<std::pair<std::string, Tensor>> ts = {
        {"x", Tensor::fromF32({3, 2}, {1, 2, 3, 4, 5, 6})}, {"y", Tensor::fromF32({1}, {9})}};
    QVERIFY(writeSafetensors(dir / "ok.safetensors", ts).ok());
    const std::string full = attn::test::readBytes(dir / "ok.safetensors");
    for (size_t n = 0; n < full.size(); ++n) {
      attn::test::writeBytes(dir / "cut.safetensors", full.substr(0, n));
      QVERIFY2(!SafetensorsFile::open(dir / "cut.safetensors").ok(),
               qPrintable(QString("prefix of %1 bytes accepted").arg(n)));
    }
  }
};

QTEST_APPLESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
