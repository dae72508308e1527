import Foundation
import AblabCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor's entry in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable, Hashable {
    public let name: String
    /// Dimensions in GGUF / ggml order: `dims[0]` (ne[0]) is the fastest-varying (contiguous) one.
    public let dims: [Int]
    public let type: GGMLType
    /// Byte offset of the tensor's data relative to the start of the file's data section.
    public let offset: Int
    public let elementCount: Int
    public let byteCount: Int

    /// Dimensions in PyTorch order (`dims` reversed). Dequantized data is row-major over `shape`:
    /// a linear weight stored by PyTorch as [out, in] has GGUF `dims` [in, out] and `shape` [out, in],
    /// and row `r` of the dequantized buffer is `weight[r, :]`.
    public var shape: [Int] { dims.reversed() }

    /// Number of slices along the outermost dimension (`shape[0]`; 1 for a scalar).
    public var rowCount: Int { dims.last ?? 1 }
    /// Elements per slice along the outermost dimension (`elementCount / rowCount`).
    public var rowElements: Int { rowCount == 0 ? 0 : elementCount / rowCount }
}

/// A GGUF model file (versions 2 and 3), memory-mapped read-only. Header, metadata and tensor table are
/// parsed and validated on `init`; tensor data is read lazily from the mapping. Immutable, so it may be
/// shared between threads. Buffers returned by `rawData` are valid while this object lives.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let alignment: Int
    /// Metadata in file order by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute byte offset of the data section (tensor offsets are relative to it).
    public let dataOffset: Int
    /// File size in bytes.
    public let fileSize: Int

    private let base: UnsafeRawPointer
    private let tensorIndex: [String: Int]

    /// Nesting limit for metadata arrays (a hostile file could otherwise exhaust the stack).
    static let maxArrayDepth = 8
    /// ggml's GGML_MAX_DIMS.
    static let maxDims = 4

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.cannotOpen(file: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size >= 4 else { throw GGUFError.truncated(file: path, what: "the header") }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw GGUFError.cannotOpen(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        let base = UnsafeRawPointer(m)
        let parsed: Parsed
        do {
            parsed = try Self.parse(base: base, size: size, file: path)
        } catch {
            munmap(m, size)
            throw error
        }
        self.base = base
        self.fileSize = size
        self.version = parsed.version
        self.alignment = parsed.alignment
        self.metadata = parsed.metadata
        self.metadataKeys = parsed.keys
        self.tensors = parsed.tensors
        self.dataOffset = parsed.dataOffset
        var idx = [String: Int](minimumCapacity: parsed.tensors.count)
        for (i, t) in parsed.tensors.enumerated() { idx[t.name] = i }
        self.tensorIndex = idx
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
    }

    public func tensorInfo(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor info of `name`, or a `missingTensor` error.
    public func requireTensor(_ name: String) throws -> GGUFTensorInfo {
        guard let t = tensorInfo(name) else { throw GGUFError.missingTensor(file: path, tensor: name) }
        return t
    }

    // MARK: - parsing

    private struct Parsed {
        var version: UInt32 = 0
        var alignment = 32
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        var tensors: [GGUFTensorInfo] = []
        var dataOffset = 0
    }

    private static func parse(base: UnsafeRawPointer, size: Int, file: String) throws -> Parsed {
        var r = ByteReader(base: base, size: size, file: file)
        var p = Parsed()
        let magic = try r.bytes(4, "the magic bytes")
        guard magic.elementsEqual("GGUF".utf8) else { throw GGUFError.badMagic(file: file) }
        p.version = try r.u32("the version")
        guard p.version == 2 || p.version == 3 else { throw GGUFError.unsupportedVersion(file: file, version: p.version) }
        let tensorCount = try r.u64("the tensor count")
        let kvCount = try r.u64("the metadata count")
        // Each metadata entry needs ≥ 8 (key length) + 4 (type) + 1 bytes; each tensor info ≥ 8+4+4+8.
        try r.checkCount(kvCount, minBytesEach: 13, what: "the metadata entry count")
        try r.checkCount(tensorCount, minBytesEach: 24, what: "the tensor count")

        p.keys.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let key = try r.string("metadata key #\(i)")
            let t = try r.u32("the type of metadata key \(key)")
            guard let type = GGUFValueType(rawValue: t) else { throw GGUFError.unknownValueType(file: file, key: key, typeID: t) }
            let v = try r.value(type, key: key, depth: 0)
            guard p.metadata.updateValue(v, forKey: key) == nil else {
                throw GGUFError.invalid(file: file, item: key, message: "metadata key appears twice")
            }
            p.keys.append(key)
        }

        if let a = p.metadata["general.alignment"] {
            guard let n = a.intValue, n > 0, n <= 1 << 20, n & (n - 1) == 0 else {
                throw GGUFError.invalid(file: file, item: "general.alignment", message: "alignment must be a power of two integer, found \(a)")
            }
            p.alignment = n
        }

        p.tensors.reserveCapacity(Int(tensorCount))
        var seen = Set<String>()
        for i in 0..<Int(tensorCount) {
            let name = try r.string("the name of tensor #\(i)")
            let nd = try r.u32("the dimension count of tensor \(name)")
            guard nd <= UInt32(maxDims) else {
                throw GGUFError.invalid(file: file, item: "tensor \(name)", message: "\(nd) dimensions (at most \(maxDims) allowed)")
            }
            var dims: [Int] = []
            var count = 1
            for _ in 0..<Int(nd) {
                let d = try r.u64("the dimensions of tensor \(name)")
                guard d <= UInt64(size) * 8, case let di = Int(d) else {
                    throw GGUFError.absurdCount(file: file, what: "a dimension of tensor \(name)", count: d)
                }
                let (c, o) = count.multipliedReportingOverflow(by: di)
                guard !o else { throw GGUFError.absurdCount(file: file, what: "the element count of tensor \(name)", count: d) }
                count = c
                dims.append(di)
            }
            let tid = try r.u32("the type of tensor \(name)")
            guard let type = GGMLType(rawValue: tid) else {
                throw GGUFError.unsupportedTensorType(file: file, tensor: name, typeID: tid)
            }
            let off = try r.u64("the offset of tensor \(name)")
            guard (dims.first ?? 1) % type.blockSize == 0, let bytes = type.byteCount(elements: count) else {
                throw GGUFError.invalid(file: file, item: "tensor \(name)",
                                        message: "first dimension \(dims.first ?? 1) is not a multiple of the \(type) block size \(type.blockSize)")
            }
            guard off <= UInt64(size) else { throw GGUFError.tensorOutOfBounds(file: file, tensor: name) }
            guard seen.insert(name).inserted else {
                throw GGUFError.invalid(file: file, item: "tensor \(name)", message: "tensor name appears twice")
            }
            p.tensors.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: Int(off),
                                            elementCount: count, byteCount: bytes))
        }

        let pos = r.pos
        p.dataOffset = (pos + p.alignment - 1) / p.alignment * p.alignment
        for t in p.tensors {
            guard t.offset % p.alignment == 0 else {
                throw GGUFError.invalid(file: file, item: "tensor \(t.name)", message: "data offset \(t.offset) is not a multiple of the alignment \(p.alignment)")
            }
            // dataOffset + offset + byteCount <= size, without overflow
            guard t.byteCount == 0 || (p.dataOffset <= size && t.offset <= size - p.dataOffset
                                       && t.byteCount <= size - p.dataOffset - t.offset) else {
                throw GGUFError.tensorOutOfBounds(file: file, tensor: t.name)
            }
        }
        return p
    }

    // MARK: - typed metadata

    public func string(_ key: String) -> String? { metadata[key]?.stringValue }
    /// Any integer type as Int.
    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    /// float32/float64 (or an integer) as Float.
    public func float(_ key: String) -> Float? { metadata[key]?.doubleValue.map { Float($0) } }
    /// float32/float64 (or an integer) as Double.
    public func double(_ key: String) -> Double? { metadata[key]?.doubleValue }
    public func bool(_ key: String) -> Bool? { metadata[key]?.boolValue }

    public func stringArray(_ key: String) -> [String]? {
        guard case let .array(_, a)? = metadata[key] else { return nil }
        var out = [String](); out.reserveCapacity(a.count)
        for v in a { guard let s = v.stringValue else { return nil }; out.append(s) }
        return out
    }
    public func intArray(_ key: String) -> [Int]? {
        guard case let .array(_, a)? = metadata[key] else { return nil }
        var out = [Int](); out.reserveCapacity(a.count)
        for v in a { guard let s = v.intValue else { return nil }; out.append(s) }
        return out
    }
    public func floatArray(_ key: String) -> [Float]? {
        guard case let .array(_, a)? = metadata[key] else { return nil }
        var out = [Float](); out.reserveCapacity(a.count)
        for v in a { guard let s = v.doubleValue else { return nil }; out.append(Float(s)) }
        return out
    }

    private func require<T>(_ key: String, _ expected: String, _ get: (String) -> T?) throws -> T {
        guard let v = metadata[key] else { throw GGUFError.missingKey(file: path, key: key) }
        guard let t = get(key) else { throw GGUFError.wrongKeyType(file: path, key: key, expected: expected, found: v.typeName) }
        return t
    }
    public func requireString(_ key: String) throws -> String { try require(key, "a string", string) }
    public func requireInt(_ key: String) throws -> Int { try require(key, "an integer", int) }
    public func requireFloat(_ key: String) throws -> Float { try require(key, "a number", float) }
    public func requireDouble(_ key: String) throws -> Double { try require(key, "a number", double) }
    public func requireBool(_ key: String) throws -> Bool { try require(key, "a bool", bool) }
    public func requireStringArray(_ key: String) throws -> [String] { try require(key, "an array of strings", stringArray) }
    public func requireIntArray(_ key: String) throws -> [Int] { try require(key, "an array of integers", intArray) }
    public func requireFloatArray(_ key: String) throws -> [Float] { try require(key, "an array of numbers", floatArray) }

    /// The model architecture (`general.architecture`), e.g. "llama" or "qwen2".
    public var architecture: String? { string("general.architecture") }

    // MARK: - tensor data

    /// Checks that `t` is this file's entry (a tensor info from another file could point anywhere).
    private func own(_ t: GGUFTensorInfo) throws {
        guard let i = tensorIndex[t.name], tensors[i] == t else {
            throw GGUFError.badRequest(file: path, tensor: t.name, message: "this tensor info does not belong to this file")
        }
    }

    /// The tensor's bytes inside the mapping; valid while this `GGUFFile` lives.
    public func rawData(_ t: GGUFTensorInfo) throws -> UnsafeRawBufferPointer {
        try own(t)
        return UnsafeRawBufferPointer(start: base + dataOffset + t.offset, count: t.byteCount)
    }

    private func checkDequantizable(_ t: GGUFTensorInfo) throws {
        try own(t)
        guard t.type.canDequantize else { throw GGUFError.cannotDequantize(file: path, tensor: t.name, type: t.type.name) }
    }

    /// The whole tensor as Float32, row-major over `t.shape`.
    public func dequantize(_ t: GGUFTensorInfo) throws -> [Float] {
        try dequantize(t, rows: 0..<t.rowCount)
    }

    /// Slices `rows` along the outermost dimension (`shape[0]`), as Float32, row-major:
    /// `rows.count * t.rowElements` values. For a weight with shape [out, in] these are output rows.
    public func dequantize(_ t: GGUFTensorInfo, rows: Range<Int>) throws -> [Float] {
        try checkRows(t, rows)
        let n = rows.count * t.rowElements
        return try [Float](unsafeUninitializedCapacity: n) { buf, count in
            try dequantizeElements(t, from: rows.lowerBound * t.rowElements, count: n, into: buf.baseAddress!)
            count = n
        }
    }

    /// Dequantizes the whole tensor into `into`, which must have room for `t.elementCount` floats.
    /// Use this to fill preallocated weight storage without an extra copy.
    public func dequantize(_ t: GGUFTensorInfo, into: UnsafeMutablePointer<Float>) throws {
        try checkDequantizable(t)
        try dequantizeElements(t, from: 0, count: t.elementCount, into: into)
    }

    /// Bounds-checked variant: `into.count` must equal `rows.count * t.rowElements`.
    public func dequantize(_ t: GGUFTensorInfo, rows: Range<Int>, into: UnsafeMutableBufferPointer<Float>) throws {
        try checkRows(t, rows)
        let n = rows.count * t.rowElements
        guard into.count == n else {
            throw GGUFError.badRequest(file: path, tensor: t.name, message: "output buffer holds \(into.count) floats, \(n) needed")
        }
        guard n > 0 else { return }
        try dequantizeElements(t, from: rows.lowerBound * t.rowElements, count: n, into: into.baseAddress!)
    }

    private func checkRows(_ t: GGUFTensorInfo, _ rows: Range<Int>) throws {
        try checkDequantizable(t)
        guard rows.lowerBound >= 0, rows.upperBound <= t.rowCount else {
            throw GGUFError.badRequest(file: path, tensor: t.name, message: "rows \(rows) are outside 0..<\(t.rowCount)")
        }
    }

    /// Elements [first, first+count) of `t` (flat, GGUF order). Handles ranges that do not start or
    /// end on a block boundary by decoding the edge blocks into a scratch block.
    private func dequantizeElements(_ t: GGUFTensorInfo, from first: Int, count: Int, into dst: UnsafeMutablePointer<Float>) throws {
        guard count > 0 else { return }
        let bs = t.type.blockSize, bb = t.type.blockBytes
        let src = base + dataOffset + t.offset
        var e = first, out = dst, left = count
        // leading partial block
        if e % bs != 0 || left < bs {
            let b = e / bs, skip = e - b * bs, take = min(left, bs - skip)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: bs) { tmp in
                GGMLDequantizer.decode(t.type, src + b * bb, 1, tmp.baseAddress!)
                out.update(from: tmp.baseAddress! + skip, count: take)
            }
            e += take; out += take; left -= take
        }
        let whole = left / bs
        if whole > 0 {
            GGMLDequantizer.dequantize(t.type, from: src + (e / bs) * bb, elements: whole * bs, into: out)
            e += whole * bs; out += whole * bs; left -= whole * bs
        }
        if left > 0 {  // trailing partial block
            withUnsafeTemporaryAllocation(of: Float.self, capacity: bs) { tmp in
                GGMLDequantizer.decode(t.type, src + (e / bs) * bb, 1, tmp.baseAddress!)
                out.update(from: tmp.baseAddress!, count: left)
            }
        }
    }
}

/// Bounds-checked little-endian cursor over the mapped file.
struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    let file: String
    var pos = 0

    init(base: UnsafeRawPointer, size: Int, file: String) {
        self.base = base; self.size = size; self.file = file
    }

    var remaining: Int { size - pos }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else { throw GGUFError.truncated(file: file, what: what()) }
    }

    /// Throws if `count` items of at least `minBytesEach` bytes cannot fit: `absurdCount` when even the
    /// whole file could not hold them, `truncated` when only the rest of this (cut) file cannot.
    func checkCount(_ count: UInt64, minBytesEach: Int, what: @autoclosure () -> String) throws {
        let (need, o) = count.multipliedReportingOverflow(by: UInt64(minBytesEach))
        if o || need > UInt64(size) { throw GGUFError.absurdCount(file: file, what: what(), count: count) }
        if need > UInt64(remaining) { throw GGUFError.truncated(file: file, what: what()) }
    }

    mutating func bytes(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try need(n, what())
        defer { pos += n }
        return UnsafeRawBufferPointer(start: base + pos, count: n)
    }

    mutating func load<T: FixedWidthInteger>(_ t: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        defer { pos += MemoryLayout<T>.size }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: pos, as: T.self))
    }

    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try load(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try load(UInt64.self, what()) }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let n = try u64(what())
        try checkCount(n, minBytesEach: 1, what: "the length of \(what())")
        let b = try bytes(Int(n), what())
        return String(decoding: b, as: UTF8.self)
    }

    mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        let what = "the value of metadata key \(key)"
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, what))
        case .int8: return .int8(try load(Int8.self, what))
        case .uint16: return .uint16(try load(UInt16.self, what))
        case .int16: return .int16(try load(Int16.self, what))
        case .uint32: return .uint32(try load(UInt32.self, what))
        case .int32: return .int32(try load(Int32.self, what))
        case .uint64: return .uint64(try load(UInt64.self, what))
        case .int64: return .int64(try load(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what)))
        case .bool:
            let b = try load(UInt8.self, what)
            guard b <= 1 else { throw GGUFError.invalid(file: file, item: key, message: "bool value \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string: return .string(try string(what))
        case .array:
            guard depth < GGUFFile.maxArrayDepth else {
                throw GGUFError.invalid(file: file, item: key, message: "arrays nested deeper than \(GGUFFile.maxArrayDepth) levels")
            }
            let t = try u32("the element type of metadata array \(key)")
            guard let et = GGUFValueType(rawValue: t) else { throw GGUFError.unknownValueType(file: file, key: key, typeID: t) }
            let n = try u64("the length of metadata array \(key)")
            try checkCount(n, minBytesEach: et.minimumEncodedSize, what: "the length of metadata array \(key)")
            var a = [GGUFValue]()
            a.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { a.append(try value(et, key: key, depth: depth + 1)) }
            return .array(et, a)
        }
    }
}
