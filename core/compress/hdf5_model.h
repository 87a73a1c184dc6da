// A compressed model as one HDF5 file, readable with h5py:
//
//   /                      attributes: format = "attnstudio-compressed",
//                          layout_version = 1, architecture, prefix (the task-head
//                          prefix of the tensor names), tool_version
//   /config                UTF-8 string: the config.json text
//   /tokenizer/<file>      uint8 [n]: the bytes of each tokenizer file
//                          (tokenizer.json, vocab.txt, vocab.json, merges.txt, …)
//   /plan                  UTF-8 string: the CompressionPlan JSON
//   /report                UTF-8 string: the export report JSON (when written)
//   /tensors/<matrix>      one group per stored matrix, named as the compressed
//                          safetensors format names it (compressed.h), attributes
//                          encoding ("quantized" | "sparse" | "float"), hf_name,
//                          hf_shape, rows, cols; quantized: method, bits,
//                          granularity ("tensor" | "channel" | "group"), group,
//                          symmetric (bool). Datasets, as in compressed.h:
//       codes      uint8  packed b-bit codes, LSB-first     (quantized)
//       scales     f32    per block: uniform s, binary/ternary α
//       zeros      uint8  per block: asymmetric zero points
//       codebook   f32    [blocks, 2^b]  k-means levels
//       exponents  int8   per block: log2 e_max
//       mask       uint8  bitmap of kept weights, LSB-first (sparse)
//       values     f32    the kept weights (sparse) or all of them (float)
//   /tensors/<name>        every other tensor of the checkpoint: attributes
//                          encoding = "dense", dtype (safetensors name); dataset
//                          data with the tensor's shape (F16 / BF16 stored as
//                          their uint16 bit patterns: HDF5 1.10 has no half type)
//
// Written atomically (a temporary file beside the target, renamed). Opening it
// (loadModel) decodes the matrices exactly as the safetensors format does.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <functional>

#include "core/compress/plan.h"
#include "core/io/safetensors.h"

namespace attn::compress {

// reportJson may be empty (no /report). lateReport, if given, is called once the
// tensors are written (work done alongside the write) and its text is stored as
// /report instead; its error leaves nothing behind.
Status writeCompressedHdf5(const std::filesystem::path& file, const Model& source,
                           const AppliedPlan& applied, const CompressionPlan& plan,
                           const std::string& reportJson = {},
                           const CancelToken* cancel = nullptr,
                           const std::function<Result<std::string>()>& lateReport = {});

// The file starts with the HDF5 signature.
bool isHdf5File(const std::filesystem::path& file);

struct Hdf5Model {
  std::map<std::string, std::string> sideFiles;  // config.json and the tokenizer files
  Checkpoint checkpoint;  // in the compressed safetensors naming, with its metadata
  std::string report;     // "" when the file has none
};
// Errors name the file and the object that is wrong.
Result<Hdf5Model> readHdf5Model(const std::filesystem::path& file);

}  // namespace attn::compress
