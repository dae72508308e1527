import Foundation
import AblabCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a GGUF version 3 file: metadata of any type, tensors given as Float32 data (stored as F32 or
/// F16) or as already-encoded blocks of any ggml type (e.g. copied unchanged from another file).
/// `write(to:)` streams everything to a temporary file beside the target, fsyncs and renames it into
/// place, so a reader never sees a half-written model.
///
/// Export of an edited model:
/// ```swift
/// let w = try GGUFWriter.copy(from: model, replacing: ["blk.3.attn_output.weight": (t.dims, .f16, edited)],
///                             extraMetadata: ["ablab.abliterated": .bool(true)])
/// try w.write(to: "out.gguf")
/// ```
public struct GGUFWriter {
    /// Tensor data alignment in the file (power of two). Written as `general.alignment` when not 32.
    public var alignment: Int
    public private(set) var metadataKeys: [String] = []
    public private(set) var metadata: [String: GGUFValue] = [:]
    public private(set) var tensors: [GGUFTensorInfo] = []
    private var payloads: [Payload] = []

    enum Payload {
        case floats([Float], GGMLType)            // encoded to F32 / F16 while writing
        case bytes([UInt8])                       // already-encoded blocks
        case mapped(GGUFFile, GGUFTensorInfo)     // bytes straight from another file's mapping
    }

    public init(alignment: Int = 32) {
        self.alignment = alignment
    }

    // MARK: metadata

    /// Sets a metadata value; an existing key keeps its position.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if metadata.updateValue(value, forKey: key) == nil { metadataKeys.append(key) }
    }

    public mutating func removeMetadata(_ key: String) {
        if metadata.removeValue(forKey: key) != nil { metadataKeys.removeAll { $0 == key } }
    }

    // MARK: tensors

    /// Adds a tensor from Float32 values (row-major over `dims.reversed()`, i.e. PyTorch order),
    /// stored as `type` (`.f32` or `.f16`; F16 rounds to nearest even). `dims` are in GGUF order.
    public mutating func addTensor(name: String, dims: [Int], type: GGMLType = .f32, data: [Float]) throws {
        guard type == .f32 || type == .f16 else {
            throw GGUFError.badRequest(file: "(GGUF writer)", tensor: name, message: "only F32 and F16 can be written from floats, not \(type)")
        }
        let n = try checkNew(name: name, dims: dims, type: type)
        guard data.count == n else {
            throw GGUFError.badRequest(file: "(GGUF writer)", tensor: name, message: "\(data.count) values given for dims \(dims) (\(n) needed)")
        }
        append(name, dims, type, n, .floats(data, type))
    }

    /// Adds a tensor from already-encoded ggml blocks (`bytes.count` must match `dims` and `type`).
    public mutating func addRawTensor(name: String, dims: [Int], type: GGMLType, bytes: [UInt8]) throws {
        let n = try checkNew(name: name, dims: dims, type: type)
        guard bytes.count == type.byteCount(elements: n) else {
            throw GGUFError.badRequest(file: "(GGUF writer)", tensor: name, message: "\(bytes.count) bytes given for \(n) elements of \(type)")
        }
        append(name, dims, type, n, .bytes(bytes))
    }

    /// Adds tensor `t` of `file` unchanged (its encoded bytes are copied when writing).
    public mutating func addTensor(copying t: GGUFTensorInfo, from file: GGUFFile) throws {
        _ = try file.rawData(t)   // checks that t belongs to file
        let n = try checkNew(name: t.name, dims: t.dims, type: t.type)
        append(t.name, t.dims, t.type, n, .mapped(file, t))
    }

    private func checkNew(name: String, dims: [Int], type: GGMLType) throws -> Int {
        func bad(_ m: String) -> GGUFError { .badRequest(file: "(GGUF writer)", tensor: name, message: m) }
        guard !name.isEmpty, name.utf8.count < 64 else { throw bad("tensor names must have 1 to 63 bytes") }
        guard !tensors.contains(where: { $0.name == name }) else { throw bad("a tensor of this name was already added") }
        guard (1...GGUFFile.maxDims).contains(dims.count), dims.allSatisfy({ $0 >= 0 }) else {
            throw bad("dims \(dims) must be 1 to \(GGUFFile.maxDims) non-negative sizes")
        }
        var n = 1
        for d in dims {
            let (r, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw bad("dims \(dims) overflow") }
            n = r
        }
        guard dims[0] % type.blockSize == 0, type.byteCount(elements: n) != nil else {
            throw bad("first dimension \(dims[0]) is not a multiple of the \(type) block size \(type.blockSize)")
        }
        return n
    }

    private mutating func append(_ name: String, _ dims: [Int], _ type: GGMLType, _ n: Int, _ p: Payload) {
        var offset = 0
        if let last = tensors.last { offset = Self.align(last.offset + last.byteCount, alignment) }
        tensors.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: offset,
                                      elementCount: n, byteCount: type.byteCount(elements: n)!))
        payloads.append(p)
    }

    static func align(_ x: Int, _ a: Int) -> Int { (x + a - 1) / a * a }

    // MARK: copying a model

    /// A writer holding all of `source`'s metadata (in order, then `extraMetadata` sorted by key; an
    /// existing key is overwritten in place) and all its tensors in order: those named in `replacing`
    /// get the given Float32 data stored as F32 or F16 (dims in GGUF order), all others are copied
    /// byte for byte; those named in `encoded` get the given already-encoded blocks (e.g. from
    /// `GGMLQuantizer`). Every name in `replacing` and `encoded` must exist in `source`.
    public static func copy(from source: GGUFFile,
                            replacing: [String: (dims: [Int], type: GGMLType, data: [Float])] = [:],
                            encoded: [String: (dims: [Int], type: GGMLType, bytes: [UInt8])] = [:],
                            extraMetadata: [String: GGUFValue] = [:]) throws -> GGUFWriter {
        var w = GGUFWriter(alignment: source.alignment)
        for k in source.metadataKeys { w.set(k, source.metadata[k]!) }
        for k in extraMetadata.keys.sorted() { w.set(k, extraMetadata[k]!) }
        for name in Array(replacing.keys) + Array(encoded.keys) where source.tensorInfo(name) == nil {
            throw GGUFError.missingTensor(file: source.path, tensor: name)
        }
        for t in source.tensors {
            if let r = encoded[t.name] {
                try w.addRawTensor(name: t.name, dims: r.dims, type: r.type, bytes: r.bytes)
            } else if let r = replacing[t.name] {
                try w.addTensor(name: t.name, dims: r.dims, type: r.type, data: r.data)
            } else {
                try w.addTensor(copying: t, from: source)
            }
        }
        return w
    }

    /// `copy(from:replacing:extraMetadata:)` written to `path`.
    public static func copy(from source: GGUFFile,
                            replacing: [String: (dims: [Int], type: GGMLType, data: [Float])] = [:],
                            extraMetadata: [String: GGUFValue] = [:], to path: String) throws {
        try copy(from: source, replacing: replacing, extraMetadata: extraMetadata).write(to: path)
    }

    // MARK: writing

    /// Writes the file atomically (temporary file in the same folder, fsync, rename).
    public func write(to path: String) throws {
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw GGUFError.writeFailed(file: path, message: "alignment \(alignment) is not a power of two")
        }
        var meta = self
        if alignment != 32 { meta.set("general.alignment", .uint32(UInt32(alignment))) }
        else if let a = metadata["general.alignment"], a.intValue != 32 { meta.set("general.alignment", .uint32(32)) }
        meta.relayout()   // `alignment` may have changed since the tensors were added

        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try SafeFiles.createDirectory(dir)
        let tmp = dir + "/.\(url.lastPathComponent).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw GGUFError.writeFailed(file: path, message: String(cString: strerror(errno))) }
        var out = FileOutput(fd: fd, path: path)
        do {
            try meta.encode(into: &out)
            try out.flush()
            guard fsync(fd) == 0 else { throw GGUFError.writeFailed(file: path, message: "fsync: \(String(cString: strerror(errno)))") }
            close(fd)
            guard rename(tmp, path) == 0 else {
                throw GGUFError.writeFailed(file: path, message: "cannot move the finished file into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
    }

    private mutating func relayout() {
        var offset = 0
        tensors = tensors.map { t in
            let info = GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type, offset: offset,
                                      elementCount: t.elementCount, byteCount: t.byteCount)
            offset = Self.align(offset + t.byteCount, alignment)
            return info
        }
    }

    private func encode(into out: inout FileOutput) throws {
        out.bytes(Array("GGUF".utf8))
        out.u32(3)
        out.u64(UInt64(tensors.count))
        out.u64(UInt64(metadataKeys.count))
        for k in metadataKeys {
            out.string(k)
            let v = metadata[k]!
            out.u32(v.type.rawValue)
            try encodeValue(v, key: k, into: &out)
        }
        for t in tensors {
            out.string(t.name)
            out.u32(UInt32(t.dims.count))
            for d in t.dims { out.u64(UInt64(d)) }
            out.u32(t.type.rawValue)
            out.u64(UInt64(t.offset))
        }
        try out.padTo(alignment)
        let dataStart = out.written
        for (t, p) in zip(tensors, payloads) {
            try out.padTo(alignment)
            precondition(out.written - dataStart == t.offset)
            switch p {
            case let .floats(values, type):
                try values.withUnsafeBufferPointer { try out.floats($0, as: type) }
            case let .bytes(b):
                try b.withUnsafeBytes { try out.raw($0) }
            case let .mapped(file, info):
                try out.raw(try file.rawData(info))
            }
        }
        try out.padTo(alignment)
    }

    private func encodeValue(_ v: GGUFValue, key: String, into out: inout FileOutput) throws {
        switch v {
        case let .uint8(x): out.bytes([x])
        case let .int8(x): out.bytes([UInt8(bitPattern: x)])
        case let .uint16(x): out.int(x)
        case let .int16(x): out.int(x)
        case let .uint32(x): out.int(x)
        case let .int32(x): out.int(x)
        case let .uint64(x): out.int(x)
        case let .int64(x): out.int(x)
        case let .float32(x): out.u32(x.bitPattern)
        case let .float64(x): out.u64(x.bitPattern)
        case let .bool(b): out.bytes([b ? 1 : 0])
        case let .string(s): out.string(s)
        case let .array(et, a):
            out.u32(et.rawValue)
            out.u64(UInt64(a.count))
            for e in a {
                guard e.type == et else {
                    throw GGUFError.writeFailed(file: out.path, message: "metadata array \(key) is declared \(et) but holds a \(e.type)")
                }
                try encodeValue(e, key: key, into: &out)
            }
        }
    }

    // MARK: half precision

    /// Float → IEEE half, rounding to nearest even; overflow → ±inf, NaN stays NaN.
    public static func floatToHalf(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let a = x & 0x7FFF_FFFF
        if a >= 0x7F80_0000 {   // inf / NaN
            return sign | 0x7C00 | (a > 0x7F80_0000 ? 0x0200 | UInt16((a >> 13) & 0x3FF) : 0)
        }
        if a >= 0x477F_F000 { return sign | 0x7C00 }   // ≥ 65520 rounds to inf
        if a < 0x3880_0000 {                            // < 2^-14: half subnormal (or zero)
            let q = (Float(bitPattern: a) * 0x1p24).rounded(.toNearestOrEven)   // units of 2^-24, exact scale
            return sign | UInt16(q)
        }
        var h = (a >> 13) &- (112 << 10)                 // rebias exponent 127 → 15
        let rest = a & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1) { h += 1 }
        return sign | UInt16(h)
    }
}

/// Buffered writer over a file descriptor.
struct FileOutput {
    let fd: Int32
    let path: String
    private var buffer: [UInt8] = []
    private(set) var written = 0
    static let chunk = 1 << 20

    init(fd: Int32, path: String) {
        self.fd = fd; self.path = path
        buffer.reserveCapacity(Self.chunk)
    }

    mutating func bytes(_ b: [UInt8]) { buffer.append(contentsOf: b); written += b.count }
    mutating func int<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) }
        written += MemoryLayout<T>.size
    }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes(Array(s.utf8)) }

    mutating func padTo(_ a: Int) throws {
        let n = GGUFWriter.align(written, a) - written
        if n > 0 { bytes([UInt8](repeating: 0, count: n)) }
        if buffer.count >= Self.chunk { try flush() }
    }

    mutating func flush() throws {
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ b: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < b.count {
            let n = Glibc_write(fd, b.baseAddress! + off, b.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw GGUFError.writeFailed(file: path, message: String(cString: strerror(errno)))
            }
            off += n
        }
    }

    /// Large payloads bypass the buffer.
    mutating func raw(_ b: UnsafeRawBufferPointer) throws {
        try flush()
        try writeAll(b)
        written += b.count
    }

    /// Float32 values encoded as F32 or F16, in chunks.
    mutating func floats(_ v: UnsafeBufferPointer<Float>, as type: GGMLType) throws {
        if type == .f32 {
            #if _endian(little)
            try raw(UnsafeRawBufferPointer(v))
            return
            #endif
        }
        try flush()
        let per = 1 << 18
        var scratch = [UInt8](repeating: 0, count: per * 4)
        var i = 0
        while i < v.count {
            let n = min(per, v.count - i)
            let bytes: Int = scratch.withUnsafeMutableBytes { s in
                if type == .f16 {
                    let h = s.baseAddress!.assumingMemoryBound(to: UInt16.self)
                    for j in 0..<n { h[j] = GGUFWriter.floatToHalf(v[i + j]).littleEndian }
                    return 2 * n
                }
                let f = s.baseAddress!.assumingMemoryBound(to: UInt32.self)
                for j in 0..<n { f[j] = v[i + j].bitPattern.littleEndian }
                return 4 * n
            }
            try scratch.withUnsafeBytes { try writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<bytes])) }
            written += bytes
            i += n
        }
    }
}

#if canImport(Glibc)
@inline(__always) private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, p, n) }
#else
@inline(__always) private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
#endif
