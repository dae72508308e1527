import Foundation
import AblabCore
import KernelABI

/// Where model weights come from: a Hugging Face folder or a GGUF file. Tensors are returned as
/// row-major Float32 with their PyTorch shape (outermost first), e.g. a linear weight as [out, in].
protocol TensorSource {
    /// A human-readable location for error messages (file or folder).
    var location: String { get }
    func has(_ name: String) -> Bool
    /// The PyTorch-order shape of a tensor, or nil when absent.
    func shape(of name: String) -> [Int]?
    /// Converts the tensor to Float32 into `dst`, after checking it has exactly `shape`.
    func read(_ name: String, shape: [Int], into dst: UnsafeMutablePointer<Float>) throws
    /// The tensor as stored (format and address, kept alive by the returned owner), after checking it
    /// has exactly `shape` and a format the kernels read.
    func stored(_ name: String, shape: [Int]) throws -> StoredTensor
}

/// A Hugging Face checkpoint folder: `config.json` plus `model.safetensors` or a sharded
/// `model.safetensors.index.json` with its shards.
public final class HFCheckpoint: @unchecked Sendable, TensorSource {
    public let directory: String
    /// config.json, parsed.
    public let config: [String: Any]
    private var files: [String: SafetensorsFile] = [:]   // shard file name → file
    private var index: [String: String] = [:]             // tensor name → shard file name

    public init(directory: String) throws {
        self.directory = directory
        let configPath = directory + "/config.json"
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw ModelError(file: configPath, "missing; a Hugging Face checkpoint folder needs config.json")
        }
        guard let cfg = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError(file: configPath, "is not a JSON object")
        }
        config = cfg
        let single = directory + "/model.safetensors"
        let indexPath = directory + "/model.safetensors.index.json"
        if FileManager.default.fileExists(atPath: single) {
            let f = try SafetensorsFile(path: single)
            files["model.safetensors"] = f
            for name in f.tensors.keys { index[name] = "model.safetensors" }
        } else if let idata = FileManager.default.contents(atPath: indexPath) {
            guard let ij = try? JSONSerialization.jsonObject(with: idata) as? [String: Any],
                  let map = ij["weight_map"] as? [String: String] else {
                throw ModelError(file: indexPath, "has no \"weight_map\" object of tensor name → shard file")
            }
            for shard in Set(map.values) {
                guard !shard.contains("/"), !shard.hasPrefix(".") else {
                    throw ModelError(file: indexPath, "shard name \(shard) must be a plain file name inside the folder")
                }
                files[shard] = try SafetensorsFile(path: directory + "/" + shard)
            }
            for (name, shard) in map {
                guard files[shard]?.tensors[name] != nil else {
                    throw ModelError(file: directory + "/" + shard, tensor: name, "listed in model.safetensors.index.json but absent from the shard")
                }
                index[name] = shard
            }
        } else {
            throw ModelError(file: directory, "has neither model.safetensors nor model.safetensors.index.json")
        }
    }

    var location: String { directory }
    public var tensorNames: [String] { index.keys.sorted() }

    private func entry(_ name: String) -> (SafetensorsFile, SafetensorsTensor)? {
        guard let shard = index[name], let f = files[shard], let t = f.tensors[name] else { return nil }
        return (f, t)
    }

    func has(_ name: String) -> Bool { index[name] != nil }
    /// Values, stored bytes and dtype of a tensor (memory estimates).
    func storage(of name: String) -> (Int, Int, String)? { entry(name).map { ($0.1.elementCount, $0.1.byteCount, $0.1.dtype.rawValue) } }
    /// Bytes of the safetensors files (they are mapped while loading).
    var fileBytes: Int {
        files.values.reduce(0) { acc, f in
            acc + (((try? FileManager.default.attributesOfItem(atPath: f.path))?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }
    func shape(of name: String) -> [Int]? { entry(name)?.1.shape }

    func read(_ name: String, shape: [Int], into dst: UnsafeMutablePointer<Float>) throws {
        guard let (f, t) = entry(name) else {
            throw ModelError(file: directory, tensor: name, "tensor missing from the checkpoint; is this the right architecture?")
        }
        guard t.shape == shape else {
            throw ModelError(file: f.path, tensor: name, "has shape \(t.shape) but config.json implies \(shape)")
        }
        f.read(t, into: dst)
    }

    func stored(_ name: String, shape: [Int]) throws -> StoredTensor {
        guard let (f, t) = entry(name) else {
            throw ModelError(file: directory, tensor: name, "tensor missing from the checkpoint; is this the right architecture?")
        }
        guard t.shape == shape else {
            throw ModelError(file: f.path, tensor: name, "has shape \(t.shape) but config.json implies \(shape)")
        }
        let format: WeightFormat
        switch t.dtype {
        case .f32: format = .f32
        case .f16: format = .f16
        case .bf16: format = .bf16
        }
        return StoredTensor(format: format, base: f.mapping.base + t.byteOffset, owner: f.mapping)
    }

    /// A tensor as a new array (tests, small tensors).
    public func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let (f, t) = entry(name) else {
            throw ModelError(file: directory, tensor: name, "tensor missing from the checkpoint")
        }
        var v = [Float](repeating: 0, count: t.elementCount)
        v.withUnsafeMutableBufferPointer { f.read(t, into: $0.baseAddress!) }
        return (t.shape, v)
    }
}
