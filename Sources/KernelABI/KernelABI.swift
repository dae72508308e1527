/// The contract between the runtime and its compute kernels.
///
/// The kernels exist in several builds of one source (`Sources/Kernels/Source`): a portable one and, on
/// x86-64, one compiled for AVX2 + FMA and one for AVX-512. Every build computes the same thing in the same
/// order, so all of them give the same bits; they differ in speed only. `KernelSet` is what each build
/// provides; `Kernels` (ModelRuntime) picks one at start-up from the CPU.
///
/// The canonical order of a dot product over k values (weights × activations, attention scores):
/// sixteen partial sums, lane l accumulating the products of the elements k ≡ l (mod 16) in increasing k
/// with fused multiply-adds; then the sixteen lanes reduced pairwise (lane i + lane i + 8 for i < 8, then
/// i + i + 4, then i + i + 2, then lane 0 + lane 1); then the sum of the elements past the last multiple
/// of 16 (one at a time with fused multiply-adds, from 0) is added. Every output is reduced by one thread in this
/// order, whatever the number of rows, the tiling, the thread split or the CPU, so results do not depend on
/// `--threads`, batching or the machine.
///
/// `--compute bf16` (ModelRuntime's `ComputeMode`) is the one exception to "the same bits on every CPU": its
/// weight products round both operands to bf16 and run AVX512_BF16's vdpbf16ps (Sources/Kernels/BF16, not a
/// `KernelSet`), in their own fixed order, so they too do not depend on threads or batching.

/// How a weight matrix is stored: ggml's types (as in GGUF files) and the safetensors float types.
public enum WeightFormat: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case q8_0 = "Q8_0", q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1"
    case q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K"

    /// Elements per block (1 for the float types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1: return 32
        case .q4_K, .q5_K, .q6_K: return 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q8_0: return 34
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        }
    }

    /// Bytes of one row of `cols` elements (a whole number of blocks), nil when `cols` is not.
    public func rowBytes(cols: Int) -> Int? {
        guard cols > 0, cols % blockSize == 0 else { return nil }
        return cols / blockSize * blockBytes
    }

    public var description: String { rawValue }
}

/// A row-major matrix [rows, cols] of weights in its stored format: row r starts at `base + r * rowBytes`.
/// `rows` is the output dimension of a linear layer, `cols` its input dimension. The memory belongs to
/// whoever made the matrix (a memory-mapped file, or an allocation of the model).
public struct WeightMatrix: @unchecked Sendable {
    public let format: WeightFormat
    public let rows: Int
    public let cols: Int
    public let base: UnsafeRawPointer
    public let rowBytes: Int

    public init(format: WeightFormat, rows: Int, cols: Int, base: UnsafeRawPointer) {
        precondition(cols % format.blockSize == 0, "a row of \(format) holds whole blocks")
        self.format = format; self.rows = rows; self.cols = cols; self.base = base
        self.rowBytes = cols / format.blockSize * format.blockBytes
    }

    /// Bytes of the whole matrix.
    public var byteCount: Int { rows * rowBytes }

    /// The rows `range` as a matrix of their own.
    public func rows(_ range: Range<Int>) -> WeightMatrix {
        WeightMatrix(format: format, rows: range.count, cols: cols, base: base + range.lowerBound * rowBytes)
    }
}

/// One build of the kernels. All functions are single-threaded; callers split work by output columns.
public protocol KernelSet {
    /// "avx512", "avx2" or "portable".
    static var name: String { get }

    /// out[i, j] (+)= Σ_p x[i, p] · W[j, p] for i < m and j in `columns` (rows of W), in the canonical order.
    /// x: [m, ldx] Float32, out: [m, ldo]. With `accumulate` the dot product is computed first and then
    /// added to out (so out + x·Wᵀ rounds the same as computing x·Wᵀ into a buffer and adding it).
    /// `panel` is scratch for `panelFloats(cols:)` floats (used when m is large enough to dequantize rows
    /// of W once and reuse them).
    static func matmul(_ w: WeightMatrix, columns: Range<Int>, x: UnsafePointer<Float>, m: Int, ldx: Int,
                       out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool, panel: UnsafeMutablePointer<Float>)

    /// Rows `rows` of W as Float32 into out [rows.count, cols] (the values every product uses).
    static func dequantize(_ w: WeightMatrix, rows: Range<Int>, into out: UnsafeMutablePointer<Float>)

    /// out = x / sqrt(mean(x²) + eps) ⊙ (w + offset), for `count` rows of width n.
    static func rmsNorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, offset: Float, _ out: UnsafeMutablePointer<Float>,
                        n: Int, eps: Float, count: Int)

    /// One head vector rotated in place: pairs (i, i + half) (neox) or (2i, 2i + 1).
    static func rope(_ v: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, half: Int, adjacentPairs: Bool)

    /// out[j] = silu(gu[j]) · gu[f + j] for `count` rows (gate | up interleaved per row as [gate f, up f]).
    static func swiglu(_ gu: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, f: Int, count: Int, ldgu: Int)

    /// Attention of one query row against `visible` cached positions for one head:
    /// out[hd] = Σ_j softmax(scale · q·k_j)_j v_j; k, v rows are `stride` floats apart. `scores` holds `visible` floats.
    static func attend(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int, visible: Int,
                       hd: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>)

    /// Numerically stable softmax of n values in place (NaN in, NaN out).
    static func softmax(_ v: UnsafeMutablePointer<Float>, n: Int)

    /// out[j] = eˣʲ by the kernels' own exponential (the one softmax and SwiGLU use).
    static func exp(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, n: Int)

    /// x[j] += y[j].
    static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, n: Int)

    /// The canonical dot product of two Float32 vectors.
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, n: Int) -> Float
}

extension KernelSet {
    /// Scratch floats `matmul` needs for a matrix with `cols` columns.
    public static func panelFloats(cols: Int) -> Int { panelRows * cols }
}

/// Rows of W dequantized together when the panel path runs.
public let panelRows = 8

/// Rows of x per block of the many-rows products (at most, in the Float32 kernels, which size blocks by L2;
/// the bf16 path's blocks): a block stays in the caches while the decoded panels stream past it.
public let panelBlockRows = 256
