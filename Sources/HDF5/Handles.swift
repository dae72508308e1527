import AblabCore
import CHDF5
import Foundation

/// An HDF5 identifier owned by Swift: closed exactly once, in deinit or by `close()`.
/// Not thread-safe; use one wrapper object from one task at a time.
public class H5Handle {
    public private(set) var id: hid_t
    /// The file this object lives in (for error messages).
    public let filePath: String
    /// The object's path inside the file ("/" for the root).
    public let objectPath: String
    private let closer: (hid_t) -> herr_t

    init(id: hid_t, filePath: String, objectPath: String, closer: @escaping (hid_t) -> herr_t) {
        self.id = id; self.filePath = filePath; self.objectPath = objectPath; self.closer = closer
    }

    /// Closes the identifier now (idempotent); later use throws.
    public func close() {
        if id >= 0 { _ = closer(id); id = -1 }
    }

    deinit { if id >= 0 { _ = closer(id) } }

    func checkOpen() throws {
        H5Lib.quiet()
        guard id >= 0 else {
            throw HDF5Error(.invalidArgument, file: filePath, object: objectPath, "the object was already closed")
        }
    }

    func error(_ kind: HDF5Error.Kind, _ message: String, object: String? = nil) -> HDF5Error {
        HDF5Error(kind, file: filePath, object: object ?? objectPath, message)
    }

    func failure(_ what: String, object: String? = nil) -> HDF5Error {
        H5Lib.failure(what, file: filePath, object: object ?? objectPath)
    }

    /// Size of the file on disk in bytes (0 when it cannot be determined).
    var fileSizeOnDisk: Int {
        var st = stat()
        return stat(filePath, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Refuses to read `elements` values of `elementSize` bytes (in memory) when the file cannot justify
    /// them: more than 1100 bytes per byte of file (deflate compresses at most ~1032:1), or 64 MiB if that is
    /// more. Guards against damaged or hostile extents that would otherwise allocate without bound.
    func checkJustified(elements: Int, elementSize: Int) throws {
        let (bytes, o) = elements.multipliedReportingOverflow(by: max(elementSize, 1))
        let limit = max(64 << 20, fileSizeOnDisk.multipliedReportingOverflow(by: 1100).partialValue)
        guard elements >= 0, !o, bytes <= limit else {
            throw error(.shapeMismatch, "the object declares \(elements) elements, more than a file of \(fileSizeOnDisk) bytes can hold; the file is damaged, write it again")
        }
    }

    /// `objectPath` joined with a relative path.
    func childPath(_ name: String) -> String {
        if name.hasPrefix("/") { return name }
        return objectPath == "/" ? "/" + name : objectPath + "/" + name
    }
}

/// How to open an existing file.
public enum H5OpenMode: Sendable { case readOnly, readWrite }

/// An open HDF5 file; also the root group ("/").
public final class H5File: H5Group {
    public let mode: H5OpenMode

    private init(id: hid_t, path: String, mode: H5OpenMode) {
        self.mode = mode
        super.init(id: id, filePath: path, objectPath: "/", closer: { H5Fclose($0) })
    }

    /// Creates a new file. Refuses to replace an existing one unless `overwrite` is true.
    public static func create(_ path: String, overwrite: Bool = false) throws -> H5File {
        H5Lib.quiet()
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw HDF5Error(.alreadyExists, file: path, "the file already exists; delete it or ask to overwrite")
        }
        let flags = overwrite ? ablab_h5f_acc_trunc() : ablab_h5f_acc_excl()
        // The newest file format: HDF5 checksums every piece of metadata and checks it when reading, so a
        // damaged file is an error instead of a crash or a wrong number (raw data: see `createDataset`).
        let fapl = H5Pcreate(ablab_h5p_file_access())
        defer { H5Pclose(fapl) }
        guard ablab_h5p_set_latest_format(fapl) >= 0 else { throw H5Lib.failure("choosing the file format", file: path, object: nil) }
        let id = H5Fcreate(path, flags, hid_t(ablab_h5p_default()), fapl)
        guard id >= 0 else { throw H5Lib.failure("creating the file", file: path, object: nil) }
        return H5File(id: id, path: path, mode: .readWrite)
    }

    /// Opens an existing file. Missing files, non-HDF5 files and damaged (e.g. truncated) files
    /// throw `HDF5Error` with kind `.fileNotFound` or `.notHDF5`.
    ///
    /// With `requireChecksums`, files whose metadata carries no checksums (superblock version 0 or 1, the
    /// default of HDF5 writers other than ablab) are refused before libhdf5 parses them: libhdf5 cannot
    /// tell damage in such files from data and may crash or loop on it. ablab opens its own files this way.
    public static func open(_ path: String, mode: H5OpenMode = .readOnly, requireChecksums: Bool = false) throws -> H5File {
        H5Lib.quiet()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
            throw HDF5Error(.fileNotFound, file: path, "no such file")
        }
        if requireChecksums {
            guard let version = try superblockVersion(path) else {
                throw HDF5Error(.notHDF5, file: path, "not an HDF5 file (no HDF5 signature); was it written by ablab?")
            }
            guard version >= 2 else {
                throw HDF5Error(.notHDF5, file: path, "the HDF5 file was written without metadata checksums (superblock version \(version)), so ablab cannot check it for damage; write it again with ablab (or repack it with `h5repack --low=1 --high=2`)")
            }
        }
        let isH5 = H5Fis_hdf5(path)
        if isH5 <= 0 {
            _ = H5Lib.lastError()
            throw HDF5Error(.notHDF5, file: path, "not an HDF5 file (no HDF5 signature); was it written by ablab?")
        }
        let flags = mode == .readOnly ? ablab_h5f_acc_rdonly() : ablab_h5f_acc_rdwr()
        let id = H5Fopen(path, flags, hid_t(ablab_h5p_default()))
        guard id >= 0 else {
            let detail = H5Lib.lastError()
            throw HDF5Error(.notHDF5, file: path,
                            "cannot open the HDF5 file; it is probably truncated or damaged (HDF5: \(detail)); delete it and write it again")
        }
        return H5File(id: id, path: path, mode: mode)
    }

    /// The version of the file's superblock, or nil when the file has no HDF5 signature. The signature
    /// sits at byte 0 or, after a user block, at 512, 1024, 2048, … (HDF5 file format specification,
    /// "Format Signature"); the version byte follows it. Versions 2 and 3 carry a checksum.
    public static func superblockVersion(_ path: String) throws -> Int? {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw HDF5Error(.fileNotFound, file: path, "cannot open the file for reading (permissions?)")
        }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
        var offset: UInt64 = 0
        while offset + 9 <= size {
            try? h.seek(toOffset: offset)
            guard let head = try? h.read(upToCount: 9), head.count == 9 else { return nil }
            if Array(head.prefix(8)) == signature { return Int(head[8]) }
            offset = offset == 0 ? 512 : offset * 2
        }
        return nil
    }

    /// Writes buffered data to disk.
    public func flush() throws {
        try checkOpen()
        guard H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0 else { throw failure("flushing the file") }
    }
}

/// What a link in a group points to.
public enum H5ObjectKind: Sendable, Equatable { case group, dataset, other }

/// A group: a folder of groups and datasets, with attributes.
public class H5Group: H5Handle {
    override init(id: hid_t, filePath: String, objectPath: String, closer: @escaping (hid_t) -> herr_t = { H5Gclose($0) }) {
        super.init(id: id, filePath: filePath, objectPath: objectPath, closer: closer)
    }

    static func validate(_ path: String, file: String, object: String) throws {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        let inner = path.hasPrefix("/") ? parts.dropFirst() : parts[...]
        if path.isEmpty || inner.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            throw HDF5Error(.invalidArgument, file: file, object: object,
                            "'\(path)' is not a valid object path (empty, '.' or '..' components)")
        }
    }

    /// Creates a group at a relative or absolute path, creating missing parents.
    /// With `existOK`, an existing group is opened instead.
    @discardableResult
    public func createGroup(_ path: String, existOK: Bool = false) throws -> H5Group {
        try checkOpen()
        try H5Group.validate(path, file: filePath, object: childPath(path))
        if try exists(path) {
            if existOK { return try openGroup(path) }
            throw error(.alreadyExists, "a group or dataset with this name already exists", object: childPath(path))
        }
        let lcpl = H5Pcreate(ablab_h5p_link_create())
        defer { H5Pclose(lcpl) }
        H5Pset_create_intermediate_group(lcpl, 1)
        let gid = H5Gcreate2(id, path, lcpl, hid_t(ablab_h5p_default()), hid_t(ablab_h5p_default()))
        guard gid >= 0 else { throw failure("creating the group", object: childPath(path)) }
        return H5Group(id: gid, filePath: filePath, objectPath: childPath(path))
    }

    /// Opens an existing group.
    public func openGroup(_ path: String) throws -> H5Group {
        try checkOpen()
        guard try kind(of: path) == .group else {
            throw error(.missingObject, "no group here", object: childPath(path))
        }
        let gid = H5Gopen2(id, path, hid_t(ablab_h5p_default()))
        guard gid >= 0 else { throw failure("opening the group", object: childPath(path)) }
        return H5Group(id: gid, filePath: filePath, objectPath: childPath(path))
    }

    /// Whether a link exists at `path` (checked component by component, so missing parents are fine).
    public func exists(_ path: String) throws -> Bool {
        try checkOpen()
        try H5Group.validate(path, file: filePath, object: childPath(path))
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix == "/") ? String(part) : "/" + part
            let r = H5Lexists(id, prefix, hid_t(ablab_h5p_default()))
            if r < 0 { _ = H5Lib.lastError(); return false } // e.g. a parent is a dataset
            if r == 0 { return false }
        }
        return true
    }

    /// The kind of object at `path`, or nil when there is none.
    public func kind(of path: String) throws -> H5ObjectKind? {
        guard try exists(path) else { return nil }
        let oid = H5Oopen(id, path, hid_t(ablab_h5p_default()))
        guard oid >= 0 else { _ = H5Lib.lastError(); return .other }
        defer { H5Oclose(oid) }
        switch H5Iget_type(oid) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// Names of the direct children, in name order.
    public func children() throws -> [String] {
        try checkOpen()
        var info = H5G_info_t()
        guard H5Gget_info(id, &info) >= 0 else { throw failure("listing the group") }
        var names: [String] = []
        // No reserveCapacity: a damaged file can declare any number of links (each read below is checked).
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, hid_t(ablab_h5p_default()))
            guard n >= 0 else { throw failure("reading a link name") }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            _ = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(n) + 1, hid_t(ablab_h5p_default()))
            names.append(String(decoding: buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// Removes the link at `path` (the space is reclaimed only when the file is rewritten).
    public func remove(_ path: String) throws {
        try checkOpen()
        guard try exists(path) else { throw error(.missingObject, "nothing to remove", object: childPath(path)) }
        guard H5Ldelete(id, path, hid_t(ablab_h5p_default())) >= 0 else { throw failure("removing the link", object: childPath(path)) }
    }
}

/// A dataspace (shape and selection), owned.
public final class H5Dataspace {
    public let id: hid_t
    init(owning id: hid_t) { self.id = id }
    deinit { if id >= 0 { H5Sclose(id) } }

    /// A simple dataspace; `maxDims` entries of nil mean unlimited.
    static func simple(_ dims: [Int], maxDims: [Int?]? = nil) -> H5Dataspace {
        let d = dims.map { hsize_t($0) }
        if let maxDims {
            let m = maxDims.map { $0.map { hsize_t($0) } ?? ablab_h5s_unlimited() }
            return H5Dataspace(owning: H5Screate_simple(Int32(d.count), d, m))
        }
        return H5Dataspace(owning: H5Screate_simple(Int32(d.count), d, nil))
    }

    static func scalar() -> H5Dataspace { H5Dataspace(owning: H5Screate(H5S_SCALAR)) }

    /// Current and maximum extents (nil = unlimited).
    var extent: (dims: [Int], maxDims: [Int?]) {
        let rank = Int(H5Sget_simple_extent_ndims(id))
        if rank <= 0 { return ([], []) }
        var d = [hsize_t](repeating: 0, count: rank)
        var m = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(id, &d, &m)
        // A damaged file can declare extents beyond Int.max; clamp them so later size checks reject them.
        return (d.map { Int(clamping: $0) }, m.map { $0 == ablab_h5s_unlimited() ? nil : Int(clamping: $0) })
    }

    var isScalar: Bool { H5Sget_simple_extent_type(id) == H5S_SCALAR }
    var elementCount: Int { Int(H5Sget_simple_extent_npoints(id)) }

    func selectHyperslab(offset: [Int], count: [Int]) -> Bool {
        let o = offset.map { hsize_t($0) }, c = count.map { hsize_t($0) }
        return H5Sselect_hyperslab(id, H5S_SELECT_SET, o, nil, c, nil) >= 0
    }
}

/// A datatype, owned (always a copy, so closing is safe).
final class H5Datatype {
    let id: hid_t
    init(owning id: hid_t) { self.id = id }
    deinit { if id >= 0 { H5Tclose(id) } }

    static func copy(_ t: hid_t) -> H5Datatype { H5Datatype(owning: H5Tcopy(t)) }

    /// IEEE 754 binary16, little-endian: sign bit 15, exponent bits 10–14 (bias 15), mantissa bits 0–9.
    /// This is the layout h5py and numpy read as `float16`.
    static func ieeeHalf() -> H5Datatype {
        let native = ablab_h5t_ieee_f16le()
        if native >= 0 { return copy(native) }
        let t = H5Tcopy(ablab_h5t_ieee_f32le())
        H5Tset_fields(t, 15, 10, 5, 0, 10)
        H5Tset_size(t, 2)
        H5Tset_ebias(t, 15)
        return H5Datatype(owning: t)
    }

    /// Variable-length UTF-8 strings.
    static func variableString() -> H5Datatype {
        let t = H5Tcopy(ablab_h5t_c_s1())
        H5Tset_size(t, ablab_h5t_variable())
        H5Tset_cset(t, H5T_CSET_UTF8)
        return H5Datatype(owning: t)
    }

    /// Fixed-length (null-terminated) UTF-8 strings of `size` bytes.
    static func fixedString(size: Int, padding: H5T_str_t = H5T_STR_NULLTERM) -> H5Datatype {
        let t = H5Tcopy(ablab_h5t_c_s1())
        H5Tset_size(t, max(1, size))
        H5Tset_strpad(t, padding)
        H5Tset_cset(t, H5T_CSET_UTF8)
        return H5Datatype(owning: t)
    }
}
