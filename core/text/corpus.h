// Corpus files of example texts:
//   .txt    one example per line (empty lines skipped)
//   .tsv    tab-separated, first row = column names, a column chosen by name
//   .csv    RFC 4180 (quoted fields, "" escapes, newlines inside quotes), header row
//   .jsonl  one JSON object per line, a string field chosen by name
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/util/result.h"

namespace attn::text {

// Column names (.tsv/.csv header) or the string fields of the first object
// (.jsonl); empty for .txt.
Result<std::vector<std::string>> corpusColumns(const std::filesystem::path& path);

// The examples; `column` names the column or field (ignored for .txt). Errors
// name the file, the line and what is wrong.
Result<std::vector<std::string>> readCorpus(const std::filesystem::path& path,
                                            const std::string& column = "");

}  // namespace attn::text
