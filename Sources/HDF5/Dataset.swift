import AblabCore
import CHDF5

/// Element types the wrapper writes and reads.
public enum H5ElementType: String, Sendable, Equatable, CaseIterable {
    case float32, float16, float64, int32, int64
    /// Variable-length UTF-8 strings.
    case string

    var fileType: H5Datatype {
        switch self {
        case .float32: return .copy(ablab_h5t_ieee_f32le())
        case .float16: return .ieeeHalf()
        case .float64: return .copy(ablab_h5t_ieee_f64le())
        case .int32: return .copy(ablab_h5t_std_i32le())
        case .int64: return .copy(ablab_h5t_std_i64le())
        case .string: return .variableString()
        }
    }

    /// The element type of a stored datatype, or nil for kinds this wrapper does not handle.
    static func of(_ t: hid_t) -> H5ElementType? {
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_FLOAT: return size == 2 ? .float16 : size == 4 ? .float32 : size == 8 ? .float64 : nil
        case H5T_INTEGER: return size == 4 ? .int32 : size == 8 ? .int64 : nil
        case H5T_STRING: return .string
        default: return nil
        }
    }
}

/// Chunked-storage filters.
public struct H5Compression: Sendable, Equatable {
    public var shuffle: Bool
    /// gzip (deflate) level 0–9, nil for none.
    public var gzipLevel: Int?
    public init(shuffle: Bool = false, gzipLevel: Int? = nil) { self.shuffle = shuffle; self.gzipLevel = gzipLevel }
    public static let none = H5Compression()
    /// Shuffle + gzip level 4: a good default for activations.
    public static let gzip = H5Compression(shuffle: true, gzipLevel: 4)
}

extension H5Group {
    /// Creates a dataset. `maxShape` entries of nil are unlimited (extendible); any unlimited dimension,
    /// or compression, requires chunked storage — `chunk` defaults to a shape of at most ~1 MiB.
    /// Missing parent groups are created.
    @discardableResult
    ///
    /// Strings are variable-length unless `stringBytes` gives a fixed length in bytes (UTF-8, NUL-padded).
    /// Fixed-length strings live in the dataset's own chunks, which carry a checksum; variable-length ones
    /// live in HDF5's global heap, which has none — ablab writes fixed-length strings in its own files.
    public func createDataset(_ path: String, type: H5ElementType, shape: [Int], maxShape: [Int?]? = nil,
                              chunk: [Int]? = nil, compression: H5Compression = .none,
                              stringBytes: Int? = nil) throws -> H5Dataset {
        try checkOpen()
        let full = childPath(path)
        try H5Group.validate(path, file: filePath, object: full)
        let rank = shape.count
        guard rank >= 1, rank <= 32, shape.allSatisfy({ $0 >= 0 }) else {
            throw error(.invalidArgument, "dataset shape \(shape) must have 1 to 32 non-negative dimensions", object: full)
        }
        if let maxShape {
            guard maxShape.count == rank, zip(shape, maxShape).allSatisfy({ $1 == nil || $0 <= $1! }) else {
                throw error(.invalidArgument, "maximum shape \(maxShape) does not fit shape \(shape)", object: full)
            }
        }
        if try exists(path) {
            throw error(.alreadyExists, "a group or dataset with this name already exists", object: full)
        }
        // Every dataset with elements is chunked and carries a Fletcher-32 checksum per chunk, so damaged
        // data is an error when read, never a silently wrong number. (A fixed dimension of 0 cannot be
        // chunked; such a dataset holds no data.)
        let canChunk = maxShape != nil || shape.allSatisfy { $0 > 0 }
        let dcpl = H5Pcreate(ablab_h5p_dataset_create())
        defer { H5Pclose(dcpl) }
        if canChunk {
            let c = chunk ?? H5Dataset.defaultChunk(shape: shape, elementSize: type == .string ? 16 : 4)
            guard c.count == rank, c.allSatisfy({ $0 >= 1 }) else {
                throw error(.invalidArgument, "chunk \(c) must have \(rank) positive dimensions", object: full)
            }
            let hc = c.map { hsize_t($0) }
            guard H5Pset_chunk(dcpl, Int32(rank), hc) >= 0 else { throw failure("setting the chunk shape \(c)", object: full) }
            if compression.shuffle { H5Pset_shuffle(dcpl) }
            if let level = compression.gzipLevel {
                guard (0...9).contains(level) else { throw error(.invalidArgument, "gzip level \(level) must be 0–9", object: full) }
                guard H5Pset_deflate(dcpl, UInt32(level)) >= 0 else { throw failure("enabling gzip", object: full) }
            }
            if type != .string || stringBytes != nil {   // HDF5 filters cannot apply to variable-length strings
                guard H5Pset_fletcher32(dcpl) >= 0 else { throw failure("enabling checksums", object: full) }
            }
        } else if chunk != nil || compression != .none {
            throw error(.invalidArgument, "a dataset of shape \(shape) with a fixed dimension of 0 cannot be chunked or compressed", object: full)
        }
        let space = H5Dataspace.simple(shape, maxDims: maxShape)
        if let stringBytes, type != .string || stringBytes < 1 {
            throw error(.invalidArgument, "a fixed string length (\(stringBytes) bytes) needs a string dataset and at least 1 byte", object: full)
        }
        let ftype = stringBytes.map { H5Datatype.fixedString(size: $0, padding: H5T_STR_NULLPAD) } ?? type.fileType
        let lcpl = H5Pcreate(ablab_h5p_link_create())
        defer { H5Pclose(lcpl) }
        H5Pset_create_intermediate_group(lcpl, 1)
        let did = H5Dcreate2(id, path, ftype.id, space.id, lcpl, dcpl, hid_t(ablab_h5p_default()))
        guard did >= 0 else { throw failure("creating the dataset", object: full) }
        return H5Dataset(id: did, filePath: filePath, objectPath: full, elementType: type)
    }

    /// Creates a one-dimensional dataset of fixed-length UTF-8 strings, as long as the longest value,
    /// checksummed like every other dataset, and writes `values` into it.
    @discardableResult
    public func createDataset(_ path: String, strings values: [String], chunk: Int = 1024) throws -> H5Dataset {
        let longest = values.map(\.utf8.count).max() ?? 0
        let d = try createDataset(path, type: .string, shape: [values.count], maxShape: [nil],
                                  chunk: [max(1, min(chunk, values.count))], stringBytes: max(1, longest))
        try d.write(values)
        return d
    }

    /// Opens an existing dataset. `chunkCacheBytes` sizes its chunk cache (HDF5's default is 1 MiB).
    public func openDataset(_ path: String, chunkCacheBytes: Int? = nil) throws -> H5Dataset {
        try checkOpen()
        let full = childPath(path)
        guard try kind(of: path) == .dataset else { throw error(.missingObject, "no dataset here", object: full) }
        let dapl = H5Pcreate(ablab_h5p_dataset_access())
        defer { H5Pclose(dapl) }
        if let bytes = chunkCacheBytes { H5Pset_chunk_cache(dapl, 12_421, max(bytes, 1 << 20), 0.75) }
        let did = H5Dopen2(id, path, dapl)
        guard did >= 0 else { throw failure("opening the dataset", object: full) }
        let t = H5Datatype(owning: H5Dget_type(did))
        guard let et = H5ElementType.of(t.id) else {
            H5Dclose(did)
            throw error(.typeMismatch, "the dataset's element type is not one ablab reads (float16/32/64, int32/64, string)", object: full)
        }
        return H5Dataset(id: did, filePath: filePath, objectPath: full, elementType: et)
    }
}

/// A dataset: an n-dimensional array of one element type, possibly chunked, compressed and extendible.
public final class H5Dataset: H5Handle {
    public let elementType: H5ElementType

    init(id: hid_t, filePath: String, objectPath: String, elementType: H5ElementType) {
        self.elementType = elementType
        super.init(id: id, filePath: filePath, objectPath: objectPath, closer: { H5Dclose($0) })
    }

    static func defaultChunk(shape: [Int], elementSize: Int) -> [Int] {
        var c = shape.map { max($0, 1) }
        while c.reduce(elementSize, *) > (1 << 20) {
            guard let i = c.indices.max(by: { c[$0] < c[$1] }), c[i] > 1 else { break }
            c[i] = (c[i] + 1) / 2
        }
        return c
    }

    private func space() throws -> H5Dataspace {
        let s = H5Dget_space(id)
        guard s >= 0 else { throw failure("reading the dataset's shape") }
        return H5Dataspace(owning: s)
    }

    /// Current shape.
    public func shape() throws -> [Int] { try checkOpen(); return try space().extent.dims }
    /// Maximum shape (nil = unlimited).
    public func maxShape() throws -> [Int?] { try checkOpen(); return try space().extent.maxDims }
    /// Chunk shape, or nil for contiguous storage.
    public func chunkShape() throws -> [Int]? {
        try checkOpen()
        let dcpl = H5Dget_create_plist(id)
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_CHUNKED else { return nil }
        var c = [hsize_t](repeating: 0, count: 32)
        let rank = H5Pget_chunk(dcpl, 32, &c)
        return c.prefix(Int(max(rank, 0))).map { Int(clamping: $0) }
    }

    /// Grows (or shrinks) the dataset to `shape`, within its maximum shape. New elements read as 0 / "".
    public func extend(to shape: [Int]) throws {
        try checkOpen()
        let ext = try space().extent
        guard shape.count == ext.dims.count, zip(shape, ext.maxDims).allSatisfy({ $0 >= 0 && ($1 == nil || $0 <= $1!) }) else {
            throw error(.shapeMismatch, "cannot resize from \(ext.dims) to \(shape): maximum shape is \(ext.maxDims.map { $0.map(String.init) ?? "unlimited" })")
        }
        let d = shape.map { hsize_t($0) }
        guard H5Dset_extent(id, d) >= 0 else { throw failure("resizing to \(shape)") }
    }

    /// Grows dimension `dimension` by `amount`, returning the old size there (the offset to write new data at).
    @discardableResult
    public func extend(dimension: Int, by amount: Int) throws -> Int {
        var s = try shape()
        guard s.indices.contains(dimension), amount >= 0 else {
            throw error(.invalidArgument, "cannot extend dimension \(dimension) by \(amount) of shape \(s)")
        }
        let old = s[dimension]
        s[dimension] += amount
        try extend(to: s)
        return old
    }

    /// Validates a hyperslab and returns (file space with the selection, memory space, element count).
    private func selection(offset: [Int]?, count: [Int]?) throws -> (H5Dataspace, H5Dataspace, Int) {
        let fs = try space()
        let dims = fs.extent.dims
        let o = offset ?? [Int](repeating: 0, count: dims.count)
        let c = count ?? zip(dims, o).map { $0 - $1 }
        guard o.count == dims.count, c.count == dims.count,
              zip(zip(o, c), dims).allSatisfy({ $0.0 >= 0 && $0.1 >= 0 && $0.0 + $0.1 <= $1 }) else {
            throw error(.shapeMismatch, "hyperslab offset \(o) count \(c) does not fit the dataset shape \(dims); extend the dataset first")
        }
        var n = 1
        for x in c {
            let (m, o) = n.multipliedReportingOverflow(by: x)
            guard !o else { throw error(.shapeMismatch, "hyperslab count \(c) is too large; the file is damaged") }
            n = m
        }
        if n > 0 {
            guard fs.selectHyperslab(offset: o, count: c) else { throw failure("selecting offset \(o) count \(c)") }
        }
        return (fs, H5Dataspace.simple(c), n)
    }

    private func requireNumeric(_ asked: String) throws {
        if elementType == .string {
            throw error(.typeMismatch, "the dataset holds strings, not \(asked)")
        }
    }

    private func rawIO(write: Bool, memType: hid_t, fileSpace: H5Dataspace, memSpace: H5Dataspace, _ p: UnsafeMutableRawPointer) throws {
        let r = write ? H5Dwrite(id, memType, memSpace.id, fileSpace.id, hid_t(ablab_h5p_default()), p)
                      : H5Dread(id, memType, memSpace.id, fileSpace.id, hid_t(ablab_h5p_default()), p)
        guard r >= 0 else { throw failure(write ? "writing" : "reading") }
    }

    // MARK: Raw (stored representation, no conversion)

    /// Bytes per element as stored (2 for float16, 4 for float32/int32, …); not meaningful for strings.
    public var storedElementSize: Int { let t = H5Datatype(owning: H5Dget_type(id)); return H5Tget_size(t.id) }

    /// Reads the hyperslab in the stored representation (e.g. binary16 bits for float16), for bit-exact copies.
    public func readRaw(into buffer: UnsafeMutableRawBufferPointer, offset: [Int]? = nil, count: [Int]? = nil) throws {
        try checkOpen()
        try requireNumeric("raw numbers")
        let (fs, ms, n) = try selection(offset: offset, count: count)
        let t = H5Datatype(owning: H5Dget_type(id))
        guard buffer.count == n * H5Tget_size(t.id) else { throw error(.shapeMismatch, "buffer of \(buffer.count) bytes for \(n) elements") }
        if n == 0 { return }
        try rawIO(write: false, memType: t.id, fileSpace: fs, memSpace: ms, buffer.baseAddress!)
    }

    /// Writes elements already in the stored representation (see `readRaw`).
    public func writeRaw(_ buffer: UnsafeRawBufferPointer, offset: [Int]? = nil, count: [Int]? = nil) throws {
        try checkOpen()
        try requireNumeric("raw numbers")
        let (fs, ms, n) = try selection(offset: offset, count: count)
        let t = H5Datatype(owning: H5Dget_type(id))
        guard buffer.count == n * H5Tget_size(t.id) else { throw error(.shapeMismatch, "\(buffer.count) bytes given for \(n) elements") }
        if n == 0 { return }
        try rawIO(write: true, memType: t.id, fileSpace: fs, memSpace: ms, UnsafeMutableRawPointer(mutating: buffer.baseAddress!))
    }

    // MARK: Float

    /// Writes Floats into the hyperslab `offset`/`count` (default: the whole dataset), row-major.
    /// float16 datasets store the nearest half (round-to-nearest-even).
    public func write(_ values: UnsafeBufferPointer<Float>, offset: [Int]? = nil, count: [Int]? = nil) throws {
        try checkOpen()
        try requireNumeric("Float")
        let (fs, ms, n) = try selection(offset: offset, count: count)
        guard values.count == n else { throw error(.shapeMismatch, "\(values.count) values given for a hyperslab of \(n) elements") }
        if n == 0 { return }
        if elementType == .float16 {
            var half = [UInt16](repeating: 0, count: n)
            half.withUnsafeMutableBufferPointer { h in for i in 0..<n { h[i] = Half.bits(from: values[i]) } }
            let t = H5Datatype.ieeeHalf()
            try half.withUnsafeMutableBytes { try rawIO(write: true, memType: t.id, fileSpace: fs, memSpace: ms, $0.baseAddress!) }
        } else {
            try rawIO(write: true, memType: ablab_h5t_native_float(), fileSpace: fs, memSpace: ms, UnsafeMutableRawPointer(mutating: values.baseAddress!))
        }
    }

    public func write(_ values: [Float], offset: [Int]? = nil, count: [Int]? = nil) throws {
        try values.withUnsafeBufferPointer { try write($0, offset: offset, count: count) }
    }

    /// Reads the hyperslab into `buffer` (row-major), converting float16 to Float exactly.
    public func read(into buffer: UnsafeMutableBufferPointer<Float>, offset: [Int]? = nil, count: [Int]? = nil) throws {
        try checkOpen()
        try requireNumeric("Float")
        let (fs, ms, n) = try selection(offset: offset, count: count)
        guard buffer.count == n else { throw error(.shapeMismatch, "buffer of \(buffer.count) for a hyperslab of \(n) elements") }
        if n == 0 { return }
        if elementType == .float16 {
            var half = [UInt16](repeating: 0, count: n)
            let t = H5Datatype.ieeeHalf()
            try half.withUnsafeMutableBytes { try rawIO(write: false, memType: t.id, fileSpace: fs, memSpace: ms, $0.baseAddress!) }
            half.withUnsafeBufferPointer { h in for i in 0..<n { buffer[i] = Half.float(from: h[i]) } }
        } else {
            try rawIO(write: false, memType: ablab_h5t_native_float(), fileSpace: fs, memSpace: ms, UnsafeMutableRawPointer(buffer.baseAddress!))
        }
    }

    public func readFloats(offset: [Int]? = nil, count: [Int]? = nil) throws -> [Float] {
        var n = 1
        for x in try count ?? shape().enumerated().map({ $0.element - (offset?[$0.offset] ?? 0) }) {
            let (m, o) = n.multipliedReportingOverflow(by: x)
            guard !o else { throw error(.shapeMismatch, "hyperslab size overflows; the file is damaged") }
            n = m
        }
        guard n >= 0 else { throw error(.shapeMismatch, "negative hyperslab size") }
        try checkJustified(elements: n, elementSize: 4)
        var out = [Float](repeating: 0, count: n)
        try out.withUnsafeMutableBufferPointer { try read(into: $0, offset: offset, count: count) }
        return out
    }

    // MARK: Int32

    public func write(_ values: UnsafeBufferPointer<Int32>, offset: [Int]? = nil, count: [Int]? = nil) throws {
        try checkOpen()
        guard elementType == .int32 || elementType == .int64 else { throw error(.typeMismatch, "the dataset holds \(elementType.rawValue), not integers") }
        let (fs, ms, n) = try selection(offset: offset, count: count)
        guard values.count == n else { throw error(.shapeMismatch, "\(values.count) values given for a hyperslab of \(n) elements") }
        if n == 0 { return }
        try rawIO(write: true, memType: ablab_h5t_native_int32(), fileSpace: fs, memSpace: ms, UnsafeMutableRawPointer(mutating: values.baseAddress!))
    }

    public func write(_ values: [Int32], offset: [Int]? = nil, count: [Int]? = nil) throws {
        try values.withUnsafeBufferPointer { try write($0, offset: offset, count: count) }
    }

    public func readInt32(offset: [Int]? = nil, count: [Int]? = nil) throws -> [Int32] {
        try checkOpen()
        guard elementType == .int32 || elementType == .int64 else { throw error(.typeMismatch, "the dataset holds \(elementType.rawValue), not integers") }
        let (fs, ms, n) = try selection(offset: offset, count: count)
        try checkJustified(elements: n, elementSize: 4)
        var out = [Int32](repeating: 0, count: n)
        if n == 0 { return out }
        try out.withUnsafeMutableBytes { try rawIO(write: false, memType: ablab_h5t_native_int32(), fileSpace: fs, memSpace: ms, $0.baseAddress!) }
        return out
    }

    // MARK: Strings

    /// Writes UTF-8 strings (variable-length string datasets; strings must not contain NUL).
    public func write(_ values: [String], offset: [Int]? = nil, count: [Int]? = nil) throws {
        try checkOpen()
        guard elementType == .string else { throw error(.typeMismatch, "the dataset holds \(elementType.rawValue), not strings") }
        let (fs, ms, n) = try selection(offset: offset, count: count)
        guard values.count == n else { throw error(.shapeMismatch, "\(values.count) strings given for a hyperslab of \(n) elements") }
        if n == 0 { return }
        if let bad = values.firstIndex(where: { $0.utf8.contains(0) }) {
            throw error(.invalidArgument, "string \(bad) contains a NUL character, which HDF5 strings cannot hold")
        }
        let stored = H5Datatype(owning: H5Dget_type(id))
        if H5Tis_variable_str(stored.id) <= 0 {
            // Fixed-length: each string NUL-padded to the stored size.
            let size = H5Tget_size(stored.id)
            if let long = values.firstIndex(where: { $0.utf8.count > size }) {
                throw error(.invalidArgument, "string \(long) has \(values[long].utf8.count) bytes, more than the dataset's fixed length of \(size)")
            }
            var buf = [UInt8](repeating: 0, count: n * size)
            for (i, v) in values.enumerated() { buf.replaceSubrange((i * size)..<(i * size + v.utf8.count), with: v.utf8) }
            let t = H5Datatype.fixedString(size: size, padding: H5T_STR_NULLPAD)
            try buf.withUnsafeMutableBytes { try rawIO(write: true, memType: t.id, fileSpace: fs, memSpace: ms, $0.baseAddress!) }
            return
        }
        // One contiguous buffer of NUL-terminated strings and a pointer per element into it.
        var bytes: [CChar] = []
        var starts: [Int] = []
        for s in values { starts.append(bytes.count); bytes.append(contentsOf: s.utf8.map { CChar(bitPattern: $0) }); bytes.append(0) }
        let t = H5Datatype.variableString()
        try bytes.withUnsafeBufferPointer { b in
            var ptrs: [UnsafePointer<CChar>?] = starts.map { b.baseAddress! + $0 }
            try ptrs.withUnsafeMutableBytes { try rawIO(write: true, memType: t.id, fileSpace: fs, memSpace: ms, $0.baseAddress!) }
        }
    }

    /// Reads strings (variable- or fixed-length); unwritten elements read as "".
    public func readStrings(offset: [Int]? = nil, count: [Int]? = nil) throws -> [String] {
        try checkOpen()
        guard elementType == .string else { throw error(.typeMismatch, "the dataset holds \(elementType.rawValue), not strings") }
        let (fs, ms, n) = try selection(offset: offset, count: count)
        if n == 0 { return [] }
        try checkJustified(elements: n, elementSize: 16)
        let stored = H5Datatype(owning: H5Dget_type(id))
        if H5Tis_variable_str(stored.id) > 0 {
            let t = H5Datatype.variableString()
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            try ptrs.withUnsafeMutableBytes { try rawIO(write: false, memType: t.id, fileSpace: fs, memSpace: ms, $0.baseAddress!) }
            let out = ptrs.map { $0.map { String(cString: $0) } ?? "" }
            _ = ptrs.withUnsafeMutableBytes { ablab_h5_vlen_reclaim(t.id, ms.id, $0.baseAddress!) }
            return out
        }
        let size = H5Tget_size(stored.id)
        try checkJustified(elements: n, elementSize: size)
        let t = H5Datatype.fixedString(size: size, padding: H5T_STR_NULLPAD)   // NUL-padded in memory: no byte lost to a terminator
        var buf = [UInt8](repeating: 0, count: n * size)
        try buf.withUnsafeMutableBytes { try rawIO(write: false, memType: t.id, fileSpace: fs, memSpace: ms, $0.baseAddress!) }
        return (0..<n).map { i in
            let slice = buf[(i * size)..<((i + 1) * size)]
            return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
