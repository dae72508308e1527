import Foundation

/// Where in a block a hook sees the activations (TransformerLens names, `blocks.{l}.hook_…`).
/// Order within a block: resid_pre → attn_out → resid_mid → mlp_out → resid_post.
public enum HookPoint: Int, CaseIterable, Sendable, Hashable {
    /// The block's input (the residual stream before attention).
    case residPre = 0
    /// The attention output (after o_proj), before it is added to the residual stream.
    case attnOut
    /// resid_pre + attn_out.
    case residMid
    /// The MLP output (after down_proj), before it is added to the residual stream.
    case mlpOut
    /// resid_mid + mlp_out (for the last block: before the final norm).
    case residPost

    public var name: String {
        switch self {
        case .residPre: return "hook_resid_pre"
        case .attnOut: return "hook_attn_out"
        case .residMid: return "hook_resid_mid"
        case .mlpOut: return "hook_mlp_out"
        case .residPost: return "hook_resid_post"
        }
    }

    /// "blocks.{layer}.{name}".
    public func fullName(layer: Int) -> String { "blocks.\(layer).\(name)" }

    /// Parses "blocks.{layer}.hook_…" into (layer, point).
    public static func parse(_ s: String) -> (layer: Int, point: HookPoint)? {
        let parts = s.split(separator: ".")
        guard parts.count == 3, parts[0] == "blocks", let l = Int(parts[1]), l >= 0,
              let p = HookPoint.allCases.first(where: { $0.name == parts[2] }) else { return nil }
        return (l, p)
    }
}

/// One sequence's rows inside a packed activation matrix.
public struct HookSegment: Sendable, Equatable {
    /// The caller's id for the sequence (e.g. prompt index), as given in the forward batch.
    public var sequenceID: Int
    /// First row of this sequence in the activation matrix.
    public var rowStart: Int
    /// Number of rows (new tokens) of this sequence in this forward call.
    public var rowCount: Int
    /// Absolute position (in the sequence) of the first row.
    public var positionStart: Int
}

/// What a hook receives: the activation rows of every sequence in the current forward call.
/// `rows` may be read (capture) or written in place (edit); later computation sees the edits.
public struct HookActivations {
    public let layer: Int
    public let point: HookPoint
    public let rows: UnsafeMutablePointer<Float>  // [rowCount, dModel]
    public let rowCount: Int
    public let dModel: Int
    public let segments: UnsafeBufferPointer<HookSegment>

    /// Pointer to the row of `segment` at absolute position `position`, or nil when not in this call.
    public func row(segment s: HookSegment, position: Int) -> UnsafeMutablePointer<Float>? {
        let i = position - s.positionStart
        guard i >= 0, i < s.rowCount else { return nil }
        return rows + (s.rowStart + i) * dModel
    }
}

public typealias Hook = (HookActivations) -> Void

/// Hooks by (layer, point). Empty sets cost one branch per block and point.
public struct HookSet {
    private var table: [[Hook]] = []   // index layer * pointCount + point
    private static let pointCount = HookPoint.allCases.count

    public init() {}

    public var isEmpty: Bool { table.allSatisfy { $0.isEmpty } }

    public mutating func add(layer: Int, point: HookPoint, _ hook: @escaping Hook) {
        let i = layer * Self.pointCount + point.rawValue
        if table.count <= i { table.append(contentsOf: Array(repeating: [], count: i + 1 - table.count)) }
        table[i].append(hook)
    }

    /// Adds a hook by TransformerLens name, e.g. "blocks.3.hook_resid_pre"; returns false if the name is unknown.
    @discardableResult
    public mutating func add(_ name: String, _ hook: @escaping Hook) -> Bool {
        guard let (l, p) = HookPoint.parse(name) else { return false }
        add(layer: l, point: p, hook)
        return true
    }

    /// Appends every hook of `other`.
    public mutating func merge(_ other: HookSet) {
        for (i, hooks) in other.table.enumerated() where !hooks.isEmpty {
            let l = i / Self.pointCount, p = HookPoint(rawValue: i % Self.pointCount)!
            for h in hooks { add(layer: l, point: p, h) }
        }
    }

    @inline(__always)
    func has(_ layer: Int, _ point: HookPoint) -> Bool {
        let i = layer * Self.pointCount + point.rawValue
        return i < table.count && !table[i].isEmpty
    }

    @inline(__always)
    func run(_ layer: Int, _ point: HookPoint, rows: UnsafeMutablePointer<Float>, rowCount: Int, dModel: Int,
             segments: UnsafeBufferPointer<HookSegment>) {
        let i = layer * Self.pointCount + point.rawValue
        guard i < table.count, !table[i].isEmpty else { return }
        let a = HookActivations(layer: layer, point: point, rows: rows, rowCount: rowCount, dModel: dModel, segments: segments)
        for h in table[i] { h(a) }
    }
}

// MARK: - The two common uses

extension HookSet {
    /// Directional ablation: at each given point of each given layer (all layers when nil), every row x
    /// becomes x − (x·r̂) r̂ with r̂ = direction / |direction|, during prefill and decoding alike.
    /// Throws nothing; a zero direction leaves activations unchanged.
    public static func directionAblation(direction: [Float], layers: Range<Int>,
                                         points: [HookPoint] = [.residPre, .attnOut, .mlpOut]) -> HookSet {
        var norm2: Float = 0
        for v in direction { norm2 += v * v }
        var set = HookSet()
        guard norm2 > 0 else { return set }
        let inv = 1 / norm2.squareRoot()
        let unit = UnsafeMutablePointer<Float>.allocate(capacity: direction.count)
        for (i, v) in direction.enumerated() { unit[i] = v * inv }
        let keeper = PointerKeeper(unit)
        let n = direction.count
        let hook: Hook = { a in
            _ = keeper
            precondition(a.dModel == n, "ablation direction has \(n) values, the model \(a.dModel)")
            for r in 0..<a.rowCount {
                projectOut(a.rows + r * n, unit, n)
            }
        }
        for l in layers { for p in points { set.add(layer: l, point: p, hook) } }
        return set
    }
}

/// x ← x − (x·u) u for a unit vector u.
@inline(__always)
func projectOut(_ x: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int) {
    var dot: Float = 0
    for j in 0..<n { dot += x[j] * u[j] }
    for j in 0..<n { x[j] -= dot * u[j] }
}

/// Frees a buffer captured by hook closures when the last closure goes away.
final class PointerKeeper: @unchecked Sendable {
    let p: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { self.p = p }
    deinit { p.deallocate() }
}

/// Captures the residual stream (or any hook point) at the last `lastPositions` positions of every
/// sequence during prefill, for the given layers: `values[sequenceID][layer]` is
/// [min(lastPositions, prompt length), dModel] row-major (oldest position first).
/// Register with `hooks(points:)`, run one prefill, read `values`.
public final class ActivationCapture {
    public let layers: [Int]
    public let lastPositions: Int
    public private(set) var values: [Int: [Int: [Float]]] = [:]
    /// Total prompt length of each sequence, needed to know which rows are the last ones.
    private let promptLengths: [Int: Int]

    /// `promptLengths[sequenceID]` = number of tokens of that prompt.
    public init(layers: [Int], lastPositions: Int, promptLengths: [Int: Int]) {
        self.layers = layers; self.lastPositions = lastPositions; self.promptLengths = promptLengths
    }

    public func hooks(point: HookPoint = .residPre) -> HookSet {
        var set = HookSet()
        for l in layers {
            set.add(layer: l, point: point) { [unowned self] a in self.take(a) }
        }
        return set
    }

    private func take(_ a: HookActivations) {
        let d = a.dModel
        for s in a.segments {
            guard let total = promptLengths[s.sequenceID] else { continue }
            let k = min(lastPositions, total)
            let first = total - k
            var buf = values[s.sequenceID]?[a.layer] ?? [Float](repeating: 0, count: k * d)
            buf.withUnsafeMutableBufferPointer { dst in
                for pos in max(first, s.positionStart)..<min(total, s.positionStart + s.rowCount) {
                    (dst.baseAddress! + (pos - first) * d).update(from: a.rows + (s.rowStart + pos - s.positionStart) * d, count: d)
                }
            }
            values[s.sequenceID, default: [:]][a.layer] = buf
        }
    }
}
