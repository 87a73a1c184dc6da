// attnstudio: the desktop explorer.
//   attnstudio [--teacher PATH] [--student PATH] [--text TEXT] [--layer L --head H]
//              [--corpus FILE] [--screenshot FILE.png]
// With no model given it opens the demo pair in resources/demo.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QSettings>

#include "app/gui/main_window.h"
#include "core/util/memory.h"

namespace {
QString demoDir() {
  // The source tree's resources (a build run in place), else beside the binary.
  for (const QString& d : {QStringLiteral(ATTN_RESOURCE_DIR "/demo"),
                           QCoreApplication::applicationDirPath() + "/../share/attnstudio/demo"})
    if (QFileInfo::exists(d + "/teacher/config.json")) return QDir(d).absolutePath();
  return {};
}
}  // namespace

int main(int argc, char** argv) {
  attn::keepFreedMemoryForReuse();
  QApplication app(argc, argv);
  QApplication::setApplicationName("Attention Studio");
  QApplication::setOrganizationName("Attention Studio");
  QApplication::setApplicationVersion(ATTN_VERSION);

  QCommandLineParser p;
  p.setApplicationDescription("Compare teacher and student Transformer attention.");
  p.addHelpOption();
  p.addVersionOption();
  QCommandLineOption teacher("teacher", "Teacher model folder or .safetensors file.", "PATH");
  QCommandLineOption student("student", "Student model folder or .safetensors file.", "PATH");
  QCommandLineOption text("text", "Text to analyse.", "TEXT");
  QCommandLineOption layer("layer", "Student layer to show.", "L");
  QCommandLineOption head("head", "Head to show.", "H");
  QCommandLineOption shot("screenshot", "Save the window as PNG once drawn, then exit.", "FILE");
  QCommandLineOption corpus("corpus", "Corpus file for the distillation panel.", "FILE");
  p.addOptions({teacher, student, text, layer, head, shot, corpus});
  p.process(app);

  attn::app::StartOptions o;
  o.teacher = p.value(teacher);
  o.student = p.value(student);
  o.screenshot = p.value(shot);
  // The last session's text, unless given or taking a (reproducible) screenshot.
  const QString lastText =
      o.screenshot.isEmpty() ? QSettings().value("text/last").toString() : QString();
  o.text = p.isSet(text)         ? p.value(text)
           : !lastText.isEmpty() ? lastText
                                 : QStringLiteral("The quick brown fox jumps over the lazy dog.");
  o.layer = p.isSet(layer) ? p.value(layer).toInt() : -1;
  o.head = p.isSet(head) ? p.value(head).toInt() : -1;
  o.corpus = p.value(corpus);
  const QString demo = demoDir();
  if (o.teacher.isEmpty() && o.student.isEmpty() && !demo.isEmpty()) {
    o.teacher = demo + "/teacher";
    o.student = demo + "/student";
  }
  if (o.corpus.isEmpty() && !demo.isEmpty() && QFileInfo::exists(demo + "/corpus.txt"))
    o.corpus = demo + "/corpus.txt";
  attn::app::MainWindow w(o);
  w.show();
  return app.exec();
}
