import Foundation
import AblabCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file (unmapped when released).
final class ReadOnlyMapping: @unchecked Sendable {
    let path: String
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw IOError(path: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOError(path: path, "cannot stat: \(String(cString: strerror(errno)))") }
        size = Int(st.st_size)
        guard size > 0 else { throw ModelError(file: path, "the file is empty; download or convert it again") }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw IOError(path: path, "cannot map the file into memory: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

/// Element types a safetensors checkpoint may hold (those the runtime converts to Float32).
public enum SafetensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    public var byteSize: Int { self == .f32 ? 4 : 2 }
}

/// One tensor's entry in a safetensors header.
public struct SafetensorsTensor: Sendable {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]          // row-major, outermost first (PyTorch order)
    public var byteOffset: Int       // from the start of the file
    public var byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A single `.safetensors` file: 8-byte little-endian header length, a JSON header, then the data.
/// The header is validated completely on open (offsets inside the file, shape × dtype size == bytes).
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: SafetensorsTensor]
    let mapping: ReadOnlyMapping

    public init(path: String) throws {
        mapping = try ReadOnlyMapping(path: path)
        self.path = path
        let size = mapping.size
        guard size >= 8 else { throw ModelError(file: path, "too short for a safetensors file (\(size) bytes)") }
        let headerLen = Int(UInt64(littleEndian: mapping.base.loadUnaligned(as: UInt64.self)))
        guard headerLen > 1, headerLen <= size - 8, headerLen <= 256 << 20 else {
            throw ModelError(file: path, "header length \(headerLen) does not fit the file size \(size); the file is truncated or not safetensors")
        }
        let headerData = Data(bytes: mapping.base + 8, count: headerLen)
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw ModelError(file: path, "the header is not a JSON object; the file is damaged or not safetensors")
        }
        let dataStart = 8 + headerLen
        let dataSize = size - dataStart
        var out: [String: SafetensorsTensor] = [:]
        for (name, value) in json where name != "__metadata__" {
            guard let entry = value as? [String: Any],
                  let dt = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any],
                  let offs = entry["data_offsets"] as? [Any], offs.count == 2 else {
                throw ModelError(file: path, tensor: name, "header entry lacks dtype, shape or data_offsets")
            }
            guard let dtype = SafetensorsDType(rawValue: dt) else {
                throw ModelError(file: path, tensor: name, "dtype \(dt) is not supported (F32, F16, BF16); save the checkpoint in one of those")
            }
            let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
            let o = offs.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeAny.count, shape.allSatisfy({ $0 >= 0 }), o.count == 2 else {
                throw ModelError(file: path, tensor: name, "shape or data_offsets are not non-negative integers")
            }
            var count = 1
            for s in shape {
                let (m, overflow) = count.multipliedReportingOverflow(by: s)
                guard !overflow, m <= dataSize else {
                    throw ModelError(file: path, tensor: name, "shape \(shape) is larger than the file")
                }
                count = m
            }
            guard o[0] >= 0, o[0] <= o[1], o[1] <= dataSize else {
                throw ModelError(file: path, tensor: name, "data_offsets \(o) lie outside the data section (\(dataSize) bytes); the file is truncated or damaged")
            }
            guard o[1] - o[0] == count * dtype.byteSize else {
                throw ModelError(file: path, tensor: name, "shape \(shape) × \(dtype.byteSize) bytes ≠ \(o[1] - o[0]) bytes stored; the file is damaged")
            }
            out[name] = SafetensorsTensor(name: name, dtype: dtype, shape: shape, byteOffset: dataStart + o[0], byteCount: o[1] - o[0])
        }
        tensors = out
    }

    /// Converts a tensor to Float32 into `dst` (which must hold `elementCount` floats).
    public func read(_ t: SafetensorsTensor, into dst: UnsafeMutablePointer<Float>) {
        let src = mapping.base + t.byteOffset
        let n = t.elementCount
        switch t.dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        case .bf16:
            for i in 0..<n {
                let bits = UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                dst[i] = Float(bitPattern: bits << 16)
            }
        case .f16:
            for i in 0..<n {
                dst[i] = f16BitsToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        }
    }
}

/// IEEE 754 binary16 → binary32 (exact, including subnormals, infinities and NaN).
@inline(__always)
func f16BitsToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int((h >> 10) & 0x1f)
    let mant = UInt32(h & 0x3ff)
    if exp == 0 {
        // zero or subnormal: mant × 2^-24
        let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}
