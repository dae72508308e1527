import Foundation
import AblabCore

/// Requantizing a whole llama.cpp model file to one type, with llama.cpp's rules (llama-quant.cpp of
/// llama.cpp as vendored by llama-cpp-python 0.3.36, no importance matrix) for which tensor gets which type:
/// - Quantized: tensors of two or more dimensions whose name ends in "weight", except "*_norm.weight" and
///   "ffn_gate_inp.weight". Everything else (norms, biases, 1-D tensors) is copied unchanged.
/// - For a block type T: `output.weight` (or `token_embd.weight` when the model has no `output.weight`,
///   i.e. ties them) becomes Q6_K — Q8_0 when T is Q8_0 or its row length is not a multiple of T's block
///   size. `--type Q4_K` is llama.cpp's Q4_K_S mix: additionally `attn_v` of layers 0…3 and `ffn_down` of
///   the first n_layer/8 layers become Q5_K. Q5_K is Q5_K_S and Q6_K is llama.cpp's Q6_K (no further rules).
/// - A row length that is not a multiple of the chosen type's block size falls back as llama.cpp does:
///   Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and to F16 when even that does not fit.
/// - For F32 / F16 / BF16 every quantizable tensor gets that type.
/// - A tensor already of its new type is copied byte for byte; any other is dequantized to Float32 (ablab's
///   dequantizer, the values ablab's forward pass uses) and quantized by `GGMLQuantizer`.
/// Metadata is copied, with `general.file_type` set to llama.cpp's file type id and
/// `general.quantization_version` to 2.
public enum ModelQuantization {
    /// The `--type` values and llama.cpp's file type id (llama_ftype) each corresponds to.
    public static let fileTypes: [GGMLType: UInt32] = [
        .f32: 0, .f16: 1, .q4_0: 2, .q4_1: 3, .q8_0: 7, .q5_0: 8, .q5_1: 9,
        .q4_K: 14 /* Q4_K_S */, .q5_K: 16 /* Q5_K_S */, .q6_K: 18, .bf16: 32,
    ]

    /// Whether llama.cpp would quantize tensor `t` at all.
    public static func isQuantizable(_ t: GGUFTensorInfo) -> Bool {
        t.dims.count >= 2 && t.name.hasSuffix("weight") && !t.name.contains("_norm.weight")
            && !t.name.contains("ffn_gate_inp.weight")
    }

    static func layer(of name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        return Int(name.dropFirst(4).prefix { $0.isNumber })
    }

    static func fallback(_ type: GGMLType, cols: Int) -> GGMLType {
        guard cols % type.blockSize != 0 else { return type }
        let f: GGMLType
        switch type {
        case .q4_K: f = .q5_0
        case .q5_K: f = .q5_1
        case .q6_K: f = .q8_0
        default: f = type
        }
        return cols % f.blockSize == 0 ? f : .f16
    }

    /// The type every tensor of `file` gets for `--type target` (unchanged tensors map to their own type).
    public static func plan(_ file: GGUFFile, target: GGMLType) throws -> [(tensor: GGUFTensorInfo, type: GGMLType)] {
        guard fileTypes[target] != nil else {
            throw GGUFError.badRequest(file: file.path, tensor: "(all)", message: "cannot quantize to \(target); choose one of \(supportedNames)")
        }
        let tied = file.tensorInfo("output.weight") == nil
        let nLayer = file.tensors.filter { $0.name.hasSuffix("ffn_down.weight") }.count
        return file.tensors.map { t in
            guard isQuantizable(t) else { return (t, t.type) }
            guard target.blockSize > 1 else { return (t, target) }
            var new = target
            let cols = t.dims[0]
            if t.name == "output.weight" || (tied && t.name == "token_embd.weight") {
                new = cols % target.blockSize != 0 ? .q8_0 : (target == .q8_0 ? .q8_0 : .q6_K)
            } else if target == .q4_K, let l = layer(of: t.name) {
                if t.name.hasSuffix("attn_v.weight") && l < 4 { new = .q5_K }
                if t.name.hasSuffix("ffn_down.weight") && l < nLayer / 8 { new = .q5_K }
            }
            return (t, fallback(new, cols: cols))
        }
    }

    public static var supportedNames: String {
        fileTypes.keys.sorted { $0.rawValue < $1.rawValue }.map(\.name).joined(separator: ", ")
    }

    /// Writes `source` requantized to `target` at `path` (atomically). Returns the plan that was applied.
    @discardableResult
    public static func quantize(source: String, target: GGMLType, to path: String,
                                progress: Bool = true) throws -> [(tensor: GGUFTensorInfo, type: GGMLType)] {
        guard URL(fileURLWithPath: source).standardizedFileURL.path != URL(fileURLWithPath: path).standardizedFileURL.path else {
            throw GGUFError.writeFailed(file: path, message: "the output would overwrite the source model; choose another --out")
        }
        let f = try GGUFFile(path: source)
        let plan = try self.plan(f, target: target)
        var w = GGUFWriter(alignment: f.alignment)
        for k in f.metadataKeys { w.set(k, f.metadata[k]!) }
        w.set("general.file_type", .uint32(fileTypes[target]!))
        w.set("general.quantization_version", .uint32(2))
        let work = plan.filter { $0.type != $0.tensor.type }.reduce(0) { $0 + $1.tensor.elementCount }
        let bar = Progress("quantize \(URL(fileURLWithPath: source).lastPathComponent) → \(target)",
                           total: max(1, (work + 999_999) / 1_000_000), unit: "M values", enabled: progress)
        var doneValues = 0, shown = 0
        for (t, type) in plan {
            if type == t.type {
                try w.addTensor(copying: t, from: f)
                continue
            }
            // Outer slices (rows of a matrix) in slabs of about 4 M values: the Float32 copy of a large
            // embedding never exists whole. Each slice is a whole number of `cols`-long quantizer rows.
            let cols = t.dims[0], per = max(t.rowElements, 1), rows = t.rowCount
            let slab = max(1, (1 << 22) / per)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(type.byteCount(elements: t.elementCount) ?? 0)
            var r0 = 0
            while r0 < rows {
                let r1 = min(rows, r0 + slab)
                let values = try f.dequantize(t, rows: r0..<r1)
                do {
                    bytes += try GGMLQuantizer.quantize(type, rows: (r1 - r0) * per / max(cols, 1), cols: cols, values: values, tensor: t.name)
                } catch let e as GGMLQuantizer.Failure {
                    throw GGUFError.badRequest(file: source, tensor: t.name, message: "cannot be quantized: \(e.description)")
                }
                doneValues += (r1 - r0) * per
                let now = doneValues / 1_000_000
                if now > shown { bar.advance(by: now - shown); shown = now }
                r0 = r1
            }
            try w.addRawTensor(name: t.name, dims: t.dims, type: type, bytes: bytes)
        }
        let total = max(1, (work + 999_999) / 1_000_000)
        if shown < total { bar.advance(by: total - shown) }
        bar.finish()
        try w.write(to: path)
        return plan
    }
}
