#ifndef ABLAB_CHDF5_SHIM_H
#define ABLAB_CHDF5_SHIM_H
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

// HDF5's type and property-list identifiers are macros over `_g` globals that Swift 6 cannot import;
// these accessors expose them as functions.
static inline hid_t ablab_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t ablab_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t ablab_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t ablab_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t ablab_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t ablab_h5t_ieee_f16le(void) {
#ifdef H5T_IEEE_F16LE
    return H5T_IEEE_F16LE;
#else
    return -1;
#endif
}
static inline hid_t ablab_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t ablab_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t ablab_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t ablab_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t ablab_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t ablab_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t ablab_h5p_dataset_access(void) { return H5P_DATASET_ACCESS; }
static inline hid_t ablab_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t ablab_h5p_file_create(void) { return H5P_FILE_CREATE; }
static inline hid_t ablab_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t ablab_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t ablab_h5s_all(void) { return H5S_ALL; }
static inline hsize_t ablab_h5s_unlimited(void) { return H5S_UNLIMITED; }
static inline unsigned ablab_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned ablab_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned ablab_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned ablab_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline size_t ablab_h5t_variable(void) { return H5T_VARIABLE; }

// New files use the newest format this library writes (superblock v3, object headers v2, new chunk
// indexes): every piece of metadata then carries a checksum that the library verifies when reading.
static inline herr_t ablab_h5p_set_latest_format(hid_t fapl) {
    return H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
}

// Silence HDF5's own error printing: the Swift layer turns failures into typed errors.
// In a thread-safe HDF5 build this setting is per thread, so the Swift layer calls it before each operation.
static inline void ablab_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// The most specific message on the current thread's HDF5 error stack (empty when there is none).
static herr_t ablab_h5_walk_cb(unsigned n, const H5E_error2_t *err, void *data) {
    if (n == 0 && err != NULL && err->desc != NULL) {
        snprintf((char *)data, 512, "%s", err->desc);
    }
    return 0;
}
static inline void ablab_h5_last_error(char *buf512) {
    buf512[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, ablab_h5_walk_cb, buf512);
    H5Eclear2(H5E_DEFAULT);
}

// Frees the strings HDF5 allocated when reading variable-length data.
static inline herr_t ablab_h5_vlen_reclaim(hid_t type, hid_t space, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(type, space, H5P_DEFAULT, buf);
#else
    return H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
#endif
}
#endif
