import Foundation

/// Keys and values of one sequence for every layer, grown on demand (amortised doubling).
/// Layout per layer: [capacity, kvDim] row-major (position-major), RoPE already applied to keys.
public final class KVCache {
    public let nLayers: Int
    public let kvDim: Int
    /// Positions stored (the next token goes at this position).
    public internal(set) var count: Int = 0
    private(set) var capacity: Int = 0
    private(set) var k: [UnsafeMutablePointer<Float>] = []
    private(set) var v: [UnsafeMutablePointer<Float>] = []

    init(nLayers: Int, kvDim: Int, capacity: Int = 0) {
        self.nLayers = nLayers; self.kvDim = kvDim
        reserve(capacity)
    }

    deinit {
        for p in k { p.deallocate() }
        for p in v { p.deallocate() }
    }

    /// Makes room for `n` positions in total, keeping what is stored.
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        let newCap = max(n, capacity * 2, 64)
        for l in 0..<nLayers {
            let nk = UnsafeMutablePointer<Float>.allocate(capacity: newCap * kvDim)
            let nv = UnsafeMutablePointer<Float>.allocate(capacity: newCap * kvDim)
            if l < k.count {
                nk.update(from: k[l], count: count * kvDim)
                nv.update(from: v[l], count: count * kvDim)
                k[l].deallocate(); v[l].deallocate()
                k[l] = nk; v[l] = nv
            } else {
                k.append(nk); v.append(nv)
            }
        }
        capacity = newCap
    }

    /// Forgets every position (keeps the memory for reuse by another sequence).
    public func reset() { count = 0 }

    /// Forgets positions from `n` on (e.g. to re-run a suffix).
    public func truncate(to n: Int) { count = max(0, min(count, n)) }

    /// Bytes held.
    public var bytes: Int { 2 * nLayers * capacity * kvDim * MemoryLayout<Float>.size }
}
