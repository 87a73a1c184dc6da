#include "core/io/hdf5_writer.h"

#include "core/io/atomic_file.h"
#include "core/io/hdf5_util.h"

namespace attn {

namespace {
using H5 = h5::Handle;
using h5::writeInt32Attr;
using h5::writeStringAttr;

Status writeFile(const std::filesystem::path& path, const AttentionDump& d) {
  const std::string name = path.string();
  H5 file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
  if (file.id < 0) return makeError("cannot create HDF5 file '" + name + "'");
  bool ok = writeStringAttr(file.id, "architecture", d.architecture) &&
            writeInt32Attr(file.id, "layers", d.layers) && writeInt32Attr(file.id, "heads", d.heads) &&
            writeInt32Attr(file.id, "seq", d.seq);
  H5 group{H5Gcreate2(file.id, "attention", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
  ok = ok && group.id >= 0;
  const hsize_t dims[3] = {static_cast<hsize_t>(d.heads), static_cast<hsize_t>(d.seq),
                           static_cast<hsize_t>(d.seq)};
  const size_t per = static_cast<size_t>(d.heads) * d.seq * d.seq;
  for (int l = 0; ok && l < d.layers; ++l) {
    H5 space{H5Screate_simple(3, dims, nullptr), H5Sclose};
    const std::string ds = "layer_" + std::to_string(l);
    H5 set{H5Dcreate2(group.id, ds.c_str(), H5T_IEEE_F32LE, space.id, H5P_DEFAULT, H5P_DEFAULT,
                      H5P_DEFAULT),
           H5Dclose};
    ok = set.id >= 0 && H5Dwrite(set.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                 d.attention + l * per) >= 0;
  }
  if (ok) {
    const hsize_t n[1] = {static_cast<hsize_t>(d.ids.size())};
    H5 space{H5Screate_simple(1, n, nullptr), H5Sclose};
    H5 set{
        H5Dcreate2(file.id, "ids", H5T_STD_I32LE, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
        H5Dclose};
    ok = set.id >= 0 && (d.ids.empty() || H5Dwrite(set.id, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL,
                                                   H5P_DEFAULT, d.ids.data()) >= 0);
  }
  if (ok) {
    std::vector<const char*> ptrs;
    for (const auto& t : d.tokens) ptrs.push_back(t.c_str());
    const hsize_t n[1] = {static_cast<hsize_t>(ptrs.size())};
    H5 type{h5::newUtf8Type(), H5Tclose};
    H5 space{H5Screate_simple(1, n, nullptr), H5Sclose};
    H5 set{H5Dcreate2(file.id, "tokens", type.id, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           H5Dclose};
    ok = set.id >= 0 && (ptrs.empty() || H5Dwrite(set.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                                  ptrs.data()) >= 0);
  }
  if (!ok) return makeError("cannot write HDF5 file '" + name + "'");
  if (H5Fflush(file.id, H5F_SCOPE_GLOBAL) < 0) return makeError("cannot flush '" + name + "'");
  return Ok{};
}
}  // namespace

Status writeAttentionHdf5(const std::filesystem::path& path, const AttentionDump& dump) {
  // HDF5 prints its error stack to stderr by default; core never prints.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return writePathAtomically(
      path, [&](const std::filesystem::path& tmp) { return writeFile(tmp, dump); });
}

}  // namespace attn
