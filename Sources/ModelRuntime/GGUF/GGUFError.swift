import AblabCore

/// Everything that can go wrong reading or writing a GGUF file. Each message names the file and, where
/// relevant, the metadata key or tensor, and says what to do.
public enum GGUFError: AblabError, Equatable {
    /// The file could not be opened or mapped (missing, unreadable, a folder, …).
    case cannotOpen(file: String, reason: String)
    /// The file ends before the structure being read (`what`) is complete.
    case truncated(file: String, what: String)
    /// The first four bytes are not "GGUF".
    case badMagic(file: String)
    /// Only versions 2 and 3 are read.
    case unsupportedVersion(file: String, version: UInt32)
    /// A metadata value type id this reader does not know.
    case unknownValueType(file: String, key: String, typeID: UInt32)
    /// A tensor's ggml type id is unknown.
    case unsupportedTensorType(file: String, tensor: String, typeID: UInt32)
    /// A count or length that the file size cannot justify (hostile or corrupt header).
    case absurdCount(file: String, what: String, count: UInt64)
    /// A tensor's bytes would lie (partly) outside the file.
    case tensorOutOfBounds(file: String, tensor: String)
    /// The file is structurally invalid in another way (duplicate names, bad dims, misaligned offsets…).
    case invalid(file: String, item: String, message: String)
    /// A metadata key the caller requires is absent.
    case missingKey(file: String, key: String)
    /// A metadata key has a type other than the one the caller requires.
    case wrongKeyType(file: String, key: String, expected: String, found: String)
    /// No tensor of this name.
    case missingTensor(file: String, tensor: String)
    /// The tensor's type cannot be dequantized by this build.
    case cannotDequantize(file: String, tensor: String, type: String)
    /// A row range or output request that does not fit the tensor.
    case badRequest(file: String, tensor: String, message: String)
    /// Writing a GGUF file failed.
    case writeFailed(file: String, message: String)

    public var description: String { AblabText.oneLine(message) }

    private var message: String {
        // names read from a damaged file can hold any bytes: show them escaped and shortened
        func p(_ s: String) -> String { AblabText.printable(s) }
        switch self {
        case let .cannotOpen(f, r):
            return "\(f): cannot open this GGUF file (\(r)); check the path and permissions."
        case let .truncated(f, what):
            return "\(f): the file ends early while reading \(AblabText.printable(what, limit: 160)); the download is probably incomplete, fetch the model again."
        case let .badMagic(f):
            return "\(f): not a GGUF file (wrong magic bytes); pass a .gguf model file."
        case let .unsupportedVersion(f, v):
            return "\(f): GGUF version \(v) is not supported (only 2 and 3); convert the model with a current llama.cpp."
        case let .unknownValueType(f, k, t):
            return "\(f) [\(p(k))]: unknown metadata value type \(t); the file is corrupt or from a newer GGUF revision."
        case let .unsupportedTensorType(f, t, id):
            return "\(f) [tensor \(p(t))]: unknown ggml tensor type id \(id); use a model quantized to a standard type (F32, F16, BF16, Q4_0…Q8_0, Q4_K…Q6_K)."
        case let .absurdCount(f, what, n):
            return "\(f): \(AblabText.printable(what, limit: 160)) is \(n), more than the file size allows; the file is corrupt."
        case let .tensorOutOfBounds(f, t):
            return "\(f) [tensor \(p(t))]: the tensor's data lies outside the file; the file is truncated or corrupt, fetch it again."
        case let .invalid(f, item, m):
            return "\(f) [\(p(item))]: \(m); the file is corrupt or not a model file."
        case let .missingKey(f, k):
            return "\(f) [\(p(k))]: required metadata key is missing; this model's architecture is probably not supported."
        case let .wrongKeyType(f, k, e, found):
            return "\(f) [\(p(k))]: metadata value is \(found) but \(e) is required; the file is corrupt or not supported."
        case let .missingTensor(f, t):
            return "\(f) [tensor \(p(t))]: no such tensor; this model's architecture or layout is probably not supported."
        case let .cannotDequantize(f, t, ty):
            return "\(f) [tensor \(p(t))]: tensor type \(ty) cannot be dequantized by ablab; re-quantize the model to a supported type (F32, F16, BF16, Q4_0…Q8_0, Q4_K…Q6_K)."
        case let .badRequest(f, t, m):
            return "\(f) [tensor \(p(t))]: \(m)."
        case let .writeFailed(f, m):
            return "\(f): cannot write the GGUF file (\(m)); check free disk space and permissions."
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .cannotOpen, .writeFailed: return ExitCode.io
        case .badRequest: return ExitCode.failure
        default: return ExitCode.badInput
        }
    }
}
