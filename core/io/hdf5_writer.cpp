#include "core/io/hdf5_writer.h"

#include <hdf5.h>

#include "core/io/atomic_file.h"

namespace attn {

namespace {
// Closes an HDF5 handle when it leaves scope.
struct H5 {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5() {
    if (id >= 0) close(id);
  }
};

bool writeIntAttr(hid_t obj, const char* name, int32_t v) {
  H5 space{H5Screate(H5S_SCALAR), H5Sclose};
  H5 attr{H5Acreate2(obj, name, H5T_STD_I32LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  return attr.id >= 0 && H5Awrite(attr.id, H5T_NATIVE_INT32, &v) >= 0;
}

bool writeStringAttr(hid_t obj, const char* name, const std::string& v) {
  // Variable-length UTF-8, so h5py returns str rather than bytes.
  H5 type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(type.id, H5T_VARIABLE);
  H5Tset_cset(type.id, H5T_CSET_UTF8);
  H5 space{H5Screate(H5S_SCALAR), H5Sclose};
  H5 attr{H5Acreate2(obj, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  const char* text = v.c_str();
  return attr.id >= 0 && H5Awrite(attr.id, type.id, &text) >= 0;
}

Status writeFile(const std::filesystem::path& path, const AttentionDump& d) {
  const std::string name = path.string();
  H5 file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
  if (file.id < 0) return makeError("cannot create HDF5 file '" + name + "'");
  bool ok = writeStringAttr(file.id, "architecture", d.architecture) &&
            writeIntAttr(file.id, "layers", d.layers) && writeIntAttr(file.id, "heads", d.heads) &&
            writeIntAttr(file.id, "seq", d.seq);
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
    H5 type{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(type.id, H5T_VARIABLE);
    H5Tset_cset(type.id, H5T_CSET_UTF8);
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
