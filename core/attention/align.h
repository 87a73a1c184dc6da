// Aligning two tokenizations of the same text by character offsets, so the
// attention of a teacher and a student that tokenize differently (e.g. BERT's
// WordPiece and GPT-2's byte-level BPE) can be compared cell by cell.
//
// Groups: tokens of both models whose character spans overlap, transitively,
// form one group ("New", "ĠYork" ↔ "new", "york" stay two groups; "unbelievable"
// ↔ "un", "##bel", "##ievable" become one). A group covered by only one model
// (e.g. a BPE token that is only whitespace) joins the group before it (or the
// next one at the start). Special tokens have empty spans ({0, 0}, as Hugging
// Face reports added tokens): the leading ones of each model form one "start"
// group and the trailing ones an "end" group when both models have them;
// otherwise they are dropped (listed in the result) as are special tokens in
// the middle of the sequence.
//
// Maps: following Clark et al. (2019, "What does BERT look at?"), attention
// *from* a group is the mean over its query tokens and attention *to* a group
// is the sum over its key tokens, so rows of a probability map still sum to 1.
// When tokens were dropped each row is renormalised to sum 1 over the kept keys.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace attn {

struct ForwardResult;

struct TokenAlignment {
  int groups = 0;
  std::vector<int> groupA, groupB;  // per token of A / B: group index, -1 when dropped
  // Per group: [begin, end) code points of the text it covers; {-1, -1} for the
  // start and end groups of special tokens.
  std::vector<std::pair<int32_t, int32_t>> spans;
  int droppedA = 0, droppedB = 0;
  bool identity() const;  // one token per group on both sides, nothing dropped
};

// offsets: per token [begin, end) in code points; begin == end marks a special token.
TokenAlignment alignTokens(const std::vector<std::pair<int32_t, int32_t>>& offsetsA,
                           const std::vector<std::pair<int32_t, int32_t>>& offsetsB);

// map: [S, S] attention of one head (rows = queries); group: [S] from
// alignTokens. Returns [G, G] as described above.
std::vector<float> alignedMap(const float* map, int seq, const std::vector<int>& group, int groups);

// The attention of every layer and head of r mapped onto the groups; only
// `attention`, `layers`, `heads` and `seq` (= groups) are filled.
ForwardResult alignedAttention(const ForwardResult& r, const std::vector<int>& group, int groups);

}  // namespace attn
