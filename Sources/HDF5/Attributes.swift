import AblabCore
import CHDF5

/// Attributes on groups, files and datasets. Setting an attribute replaces any existing one of that name.
extension H5Handle {
    private func attrError(_ kind: HDF5Error.Kind, _ name: String, _ message: String) -> HDF5Error {
        error(kind, message, object: objectPath + (objectPath.hasSuffix("/") ? "" : "/") + "@" + name)
    }

    /// Whether an attribute exists on this object.
    public func hasAttribute(_ name: String) throws -> Bool {
        try checkOpen()
        let r = H5Aexists(id, name)
        guard r >= 0 else { throw failure("checking attribute '\(name)'") }
        return r > 0
    }

    /// Names of this object's attributes, in creation order of the index (name order).
    public func attributeNames() throws -> [String] {
        try checkOpen()
        final class Box { var names: [String] = [] }
        let box = Box()
        var idx: hsize_t = 0
        let r = withExtendedLifetime(box) {
            H5Aiterate2(id, H5_INDEX_NAME, H5_ITER_INC, &idx, { _, name, _, data in
                let b = Unmanaged<Box>.fromOpaque(data!).takeUnretainedValue()
                b.names.append(String(cString: name!))
                return 0
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        guard r >= 0 else { throw failure("listing attributes") }
        return box.names
    }

    public func removeAttribute(_ name: String) throws {
        try checkOpen()
        if try hasAttribute(name) {
            guard H5Adelete(id, name) >= 0 else { throw failure("deleting attribute '\(name)'") }
        }
    }

    private func writeAttribute(_ name: String, fileType: H5Datatype, memType: hid_t, space: H5Dataspace,
                                _ body: (hid_t, hid_t) -> herr_t) throws {
        try checkOpen()
        guard !name.isEmpty else { throw error(.invalidArgument, "attribute names must not be empty") }
        try removeAttribute(name)
        let aid = H5Acreate2(id, name, fileType.id, space.id, hid_t(ablab_h5p_default()), hid_t(ablab_h5p_default()))
        guard aid >= 0 else { throw failure("creating attribute '\(name)'") }
        defer { H5Aclose(aid) }
        guard body(aid, memType) >= 0 else { throw failure("writing attribute '\(name)'") }
    }

    public func setAttribute(_ name: String, _ value: Int) throws {
        var v = Int64(value)
        try writeAttribute(name, fileType: .copy(ablab_h5t_std_i64le()), memType: ablab_h5t_native_int64(), space: .scalar()) { H5Awrite($0, $1, &v) }
    }

    public func setAttribute(_ name: String, _ value: Double) throws {
        var v = value
        try writeAttribute(name, fileType: .copy(ablab_h5t_ieee_f64le()), memType: ablab_h5t_native_double(), space: .scalar()) { H5Awrite($0, $1, &v) }
    }

    public func setAttribute(_ name: String, _ values: [Int32]) throws {
        try writeAttribute(name, fileType: .copy(ablab_h5t_std_i32le()), memType: ablab_h5t_native_int32(), space: .simple([values.count])) { a, t in
            values.withUnsafeBytes { H5Awrite(a, t, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!) }
        }
    }

    public func setAttribute(_ name: String, _ values: [Float]) throws {
        try writeAttribute(name, fileType: .copy(ablab_h5t_ieee_f32le()), memType: ablab_h5t_native_float(), space: .simple([values.count])) { a, t in
            values.withUnsafeBytes { H5Awrite(a, t, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!) }
        }
    }

    /// A UTF-8 string attribute, fixed-length by default (null-terminated, sized to the string; stored in
    /// the checksummed object header; h5py reads `numpy.bytes_`, `.decode()` gives `str`), or variable-length
    /// (stored in HDF5's global heap, which carries no checksum; h5py reads `str`).
    public func setAttribute(_ name: String, _ value: String, fixedLength: Bool = true) throws {
        if value.utf8.contains(0) { throw attrError(.invalidArgument, name, "string attributes cannot hold NUL characters") }
        if fixedLength {
            var bytes = Array(value.utf8)
            bytes.append(0)
            let t = H5Datatype.fixedString(size: bytes.count)
            try writeAttribute(name, fileType: t, memType: t.id, space: .scalar()) { H5Awrite($0, $1, &bytes) }
        } else {
            let t = H5Datatype.variableString()
            try value.withCString { cs in
                var p: UnsafePointer<CChar>? = cs
                try writeAttribute(name, fileType: t, memType: t.id, space: .scalar()) { H5Awrite($0, $1, &p) }
            }
        }
    }

    // MARK: Reading

    private func withAttribute<T>(_ name: String, _ body: (hid_t, H5Dataspace, H5Datatype) throws -> T) throws -> T {
        try checkOpen()
        guard try hasAttribute(name) else { throw attrError(.missingObject, name, "no such attribute") }
        let aid = H5Aopen(id, name, hid_t(ablab_h5p_default()))
        guard aid >= 0 else { throw failure("opening attribute '\(name)'") }
        defer { H5Aclose(aid) }
        return try body(aid, H5Dataspace(owning: H5Aget_space(aid)), H5Datatype(owning: H5Aget_type(aid)))
    }

    private func numeric<T: Numeric>(_ name: String, memType: hid_t, expect cls: H5T_class_t, what: String) throws -> [T] {
        try withAttribute(name) { aid, space, type in
            guard H5Tget_class(type.id) == cls else { throw attrError(.typeMismatch, name, "the attribute is not \(what)") }
            let n = space.elementCount
            guard n >= 0, n < (1 << 28), n * MemoryLayout<T>.size <= max(fileSizeOnDisk, 1 << 16) else { throw attrError(.shapeMismatch, name, "implausible attribute size \(n)") }
            var out = [T](repeating: 0, count: n)
            if n == 0 { return out }
            guard out.withUnsafeMutableBytes({ H5Aread(aid, memType, $0.baseAddress!) }) >= 0 else {
                throw failure("reading attribute '\(name)'")
            }
            return out
        }
    }

    private func scalar<T: Numeric>(_ name: String, memType: hid_t, expect cls: H5T_class_t, what: String) throws -> T {
        let v: [T] = try numeric(name, memType: memType, expect: cls, what: what)
        guard v.count == 1 else { throw attrError(.shapeMismatch, name, "expected one value, found \(v.count)") }
        return v[0]
    }

    public func intAttribute(_ name: String) throws -> Int {
        Int(try scalar(name, memType: ablab_h5t_native_int64(), expect: H5T_INTEGER, what: "an integer") as Int64)
    }

    public func doubleAttribute(_ name: String) throws -> Double {
        try scalar(name, memType: ablab_h5t_native_double(), expect: H5T_FLOAT, what: "a floating-point number")
    }

    public func int32ArrayAttribute(_ name: String) throws -> [Int32] {
        try numeric(name, memType: ablab_h5t_native_int32(), expect: H5T_INTEGER, what: "integers")
    }

    public func floatArrayAttribute(_ name: String) throws -> [Float] {
        try numeric(name, memType: ablab_h5t_native_float(), expect: H5T_FLOAT, what: "floating-point numbers")
    }

    /// A string attribute, fixed- or variable-length.
    public func stringAttribute(_ name: String) throws -> String {
        try withAttribute(name) { aid, space, type in
            guard H5Tget_class(type.id) == H5T_STRING else { throw attrError(.typeMismatch, name, "the attribute is not a string") }
            guard space.elementCount == 1 else { throw attrError(.shapeMismatch, name, "expected one string, found \(space.elementCount)") }
            if H5Tis_variable_str(type.id) > 0 {
                let t = H5Datatype.variableString()
                var p: UnsafeMutablePointer<CChar>? = nil
                guard H5Aread(aid, t.id, &p) >= 0 else { throw failure("reading attribute '\(name)'") }
                let s = p.map { String(cString: $0) } ?? ""
                _ = ablab_h5_vlen_reclaim(t.id, space.id, &p)
                return s
            }
            let size = H5Tget_size(type.id)
            guard size < (1 << 26), size <= max(fileSizeOnDisk, 1 << 16) else { throw attrError(.shapeMismatch, name, "implausible string size \(size)") }
            let t = H5Datatype.fixedString(size: size, padding: H5T_STR_NULLPAD)   // NUL-padded in memory: no byte lost to a terminator
            var buf = [UInt8](repeating: 0, count: size + 1)
            guard buf.withUnsafeMutableBytes({ H5Aread(aid, t.id, $0.baseAddress!) }) >= 0 else { throw failure("reading attribute '\(name)'") }
            return String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
