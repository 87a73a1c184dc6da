// Layer mappings between a student and a teacher: out[student layer] = teacher
// layer, −1 when the student layer is not distilled.
//   uniform   student j ↔ teacher round((j + 1)·Lt / Ls) − 1   (core/attention/compare.h)
//   last      the last student layer ↔ the last teacher layer (MiniLM)
//   last:K    the last K student layers ↔ the last K teacher layers, in order
//   S:T,…     explicit pairs "student:teacher", e.g. "0:1,1:3"; other layers unmapped
//   auto      the monotone mapping with the least total loss over a loss matrix
//             (bestMonotoneMap) — resolved by the caller, which has the data
#pragma once

#include <string>
#include <vector>

#include "core/util/result.h"

namespace attn::distill {

// Everything but "auto" (which returns an error naming it).
Result<std::vector<int>> parseMapping(const std::string& text, int teacherLayers,
                                      int studentLayers);
// "0:1,1:3" (unmapped layers left out).
std::string mappingText(const std::vector<int>& mapping);

}  // namespace attn::distill
