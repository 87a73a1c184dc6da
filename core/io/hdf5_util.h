// Small helpers over the HDF5 C API shared by the attention dumps and the HDF5
// model format (core only; HDF5's headers stay private to attn_core).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>

namespace attn::h5 {

// Closes an HDF5 handle when it leaves scope.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id >= 0) close(id);
  }
};

// Variable-length UTF-8 strings, so h5py returns str rather than bytes.
inline hid_t newUtf8Type() {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  return type;
}

inline bool writeIntAttr(hid_t obj, const char* name, int64_t v) {
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle attr{H5Acreate2(obj, name, H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  return attr.id >= 0 && H5Awrite(attr.id, H5T_NATIVE_INT64, &v) >= 0;
}

inline bool writeInt32Attr(hid_t obj, const char* name, int32_t v) {
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle attr{H5Acreate2(obj, name, H5T_STD_I32LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  return attr.id >= 0 && H5Awrite(attr.id, H5T_NATIVE_INT32, &v) >= 0;
}

inline bool writeStringAttr(hid_t obj, const char* name, const std::string& v) {
  Handle type{newUtf8Type(), H5Tclose};
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle attr{H5Acreate2(obj, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  const char* text = v.c_str();
  return attr.id >= 0 && H5Awrite(attr.id, type.id, &text) >= 0;
}

// A scalar UTF-8 string dataset.
inline bool writeStringDataset(hid_t loc, const char* name, const std::string& v) {
  Handle type{newUtf8Type(), H5Tclose};
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle set{H5Dcreate2(loc, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Dclose};
  const char* text = v.c_str();
  return set.id >= 0 && H5Dwrite(set.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, &text) >= 0;
}

}  // namespace attn::h5
