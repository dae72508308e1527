import Foundation
import Dispatch
import KernelABI
#if os(Linux)
import Synchronization
import Glibc
#endif

/// Memory a model owns (edited or re-laid-out copies of weights, norms, biases), freed with the model.
final class OwnedBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let bytes: Int
    init(bytes: Int) {
        self.bytes = bytes
        base = .allocate(byteCount: max(bytes, 1), alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 1))
    }
    deinit { base.deallocate() }
    var floats: UnsafeMutablePointer<Float> { base.assumingMemoryBound(to: Float.self) }
}

extension UnsafeMutablePointer where Pointee == Float {
    /// n floats starting on a cache line (64 bytes); freed with `deallocate()` as any allocation.
    static func allocateAligned(_ n: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: 4 * max(n, 1), alignment: 64).bindMemory(to: Float.self, capacity: max(n, 1))
    }
}

/// A linear layer y = x · Wᵀ (+ b) with W [out, in] kept in the format it is stored in.
public struct Linear: @unchecked Sendable {
    public internal(set) var weight: WeightMatrix
    /// [out] Float32, or nil.
    public internal(set) var bias: UnsafePointer<Float>?
    /// Keeps the memory of `weight` alive (a mapped file or an owned buffer).
    var owner: AnyObject

    init(weight: WeightMatrix, bias: UnsafePointer<Float>? = nil, owner: AnyObject) {
        self.weight = weight; self.bias = bias; self.owner = owner
    }

    public var outFeatures: Int { weight.rows }
    public var inFeatures: Int { weight.cols }
    public var format: WeightFormat { weight.format }

    /// The same layer with its weight dequantized to an owned Float32 copy (the values every product uses),
    /// returned with a pointer to edit it in place.
    func float32Copy() -> (Linear, UnsafeMutablePointer<Float>) {
        let buf = OwnedBuffer(bytes: weight.rows * weight.cols * 4)
        CPUKernels.active.dequantize(weight, rows: 0..<weight.rows, into: buf.floats)
        let w = WeightMatrix(format: .f32, rows: weight.rows, cols: weight.cols, base: UnsafeRawPointer(buf.floats))
        return (Linear(weight: w, bias: bias, owner: buf), buf.floats)
    }

    /// The layer with its rows in the order `perm` (new row r = old row perm[r]); copies the stored bytes.
    func permutingRows(_ perm: [Int]) -> Linear {
        let rb = weight.rowBytes
        let buf = OwnedBuffer(bytes: weight.rows * rb)
        for (r, src) in perm.enumerated() { (buf.base + r * rb).copyMemory(from: weight.base + src * rb, byteCount: rb) }
        return Linear(weight: WeightMatrix(format: weight.format, rows: weight.rows, cols: weight.cols, base: UnsafeRawPointer(buf.base)),
                      bias: bias, owner: buf)
    }
}

/// Products of several linear layers with the same input, written side by side into one output
/// (Q | K | V, gate | up), split across threads by output columns: every output is reduced by one
/// thread in the canonical order, so the split never changes a bit.
struct LinearProduct {
    /// Panels for `threads` threads, each `panelRows × maxCols` floats; in bf16 mode also a bf16 panel per
    /// thread ([panelRows, kp] with kp = maxCols padded to 32) and the activation rows as bf16 ([rows, kp]).
    final class Scratch: @unchecked Sendable {
        private(set) var panels: [UnsafeMutablePointer<Float>] = []
        private(set) var cols = 0
        private(set) var bf16Panels: [UnsafeMutablePointer<UInt16>] = []
        private(set) var bf16Cols = 0
        private(set) var bf16X = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
        private(set) var bf16XElements = 0
        func ensure(threads: Int, cols: Int) {
            guard threads > panels.count || cols > self.cols else { return }
            for p in panels { p.deallocate() }
            self.cols = max(cols, self.cols)
            panels = (0..<max(threads, panels.count)).map { _ in
                let p = UnsafeMutablePointer<Float>.allocateAligned(panelRows * self.cols)
                p.initialize(repeating: 0, count: panelRows * self.cols)
                return p
            }
        }
        /// bf16 panels for `threads` threads of `kp` columns and room for `rows` bf16 activation rows.
        func ensureBF16(threads: Int, kp: Int, rows: Int) {
            if threads > bf16Panels.count || kp > bf16Cols {
                for p in bf16Panels { p.deallocate() }
                bf16Cols = max(kp, bf16Cols)
                bf16Panels = (0..<max(threads, bf16Panels.count)).map { _ in
                    let p = UnsafeMutablePointer<UInt16>.allocate(capacity: panelRows * bf16Cols)
                    p.initialize(repeating: 0, count: panelRows * bf16Cols)
                    return p
                }
            }
            if rows * kp > bf16XElements {
                bf16X.deallocate()
                bf16XElements = max(rows * kp, bf16XElements + bf16XElements / 2)
                bf16X = .allocate(capacity: bf16XElements)
            }
        }
        /// Bytes held (for `Transformer.scratchBytes`).
        var bytes: Int { 4 * panels.count * panelRows * cols + 2 * (bf16Panels.count * panelRows * bf16Cols + bf16XElements) }
        deinit {
            for p in panels { p.deallocate() }
            for p in bf16Panels { p.deallocate() }
            bf16X.deallocate()
        }
    }

    struct Part { let linear: Linear; let outOffset: Int }

    /// out[i, part.outOffset + j] (+)= x[i] · W_partᵀ[j] (+ b_part[j]) for every part, in Float32 (`.f32`)
    /// or with bf16 operands (`.bf16`, which the caller has checked the CPU can run; see `ComputeMode`).
    static func run(_ parts: [Part], x: UnsafePointer<Float>, m: Int, ldx: Int, out: UnsafeMutablePointer<Float>, ldo: Int,
                    accumulate: Bool, scratch: Scratch, kernels K: any KernelSet.Type = CPUKernels.active,
                    threads: Int = CPUKernels.threads, compute: ComputeMode = .f32) {
        guard m > 0 else { return }
        let total = parts.reduce(0) { $0 + $1.linear.outFeatures }
        let maxCols = parts.map(\.linear.inFeatures).max() ?? 0
        // Work per thread: at least ~64k multiply-adds, in chunks of whole 16-column groups.
        let work = m * total * maxCols
        let t = max(1, min(threads, work / 65_536, (total + 15) / 16))
        scratch.ensure(threads: t, cols: maxCols)
        let ux = UnsafeSendable(x), uo = UnsafeSendableMutable(out)
        let panels = scratch.panels
        // bf16: the activation rows rounded once ([m, kp], zero padded), by row ranges on the threads
        // (each value rounds alone, so the split changes nothing).
        let kp = BF16Product.padded(maxCols)
        if compute == .bf16 {
            precondition(parts.allSatisfy { $0.linear.inFeatures == maxCols }, "the parts of one product share their input")
            scratch.ensureBF16(threads: t, kp: kp, rows: m)
            let xb = UncheckedBox(value: scratch.bf16X)
            let rowsPer = (m + t - 1) / t
            parallelFor(t) { c in
                let lo = c * rowsPer, hi = min(m, lo + rowsPer)
                if lo < hi {
                    BF16Product.round(ux.p + lo * ldx, rows: hi - lo, cols: maxCols, lds: ldx, into: xb.value + lo * kp, kp: kp)
                }
            }
        }
        let bf16Panels = UncheckedBox(value: scratch.bf16Panels), bf16X = UncheckedBox(value: UnsafePointer(scratch.bf16X))
        func chunk(_ c: Int) {
            let per = ((total + t - 1) / t + 15) / 16 * 16
            let lo = c * per, hi = min(total, lo + per)
            guard lo < hi else { return }
            var base = 0
            for p in parts {
                let n = p.linear.outFeatures
                let a = max(lo, base), b = min(hi, base + n)
                if a < b {
                    if compute == .bf16 {
                        // Groups of `panelRows` rows of W: decoded exactly (the values f32 uses), rounded to bf16,
                        // against blocks of `panelBlockRows` rows of x (a block stays in the caches while the
                        // panels stream past it, as in the Float32 kernels).
                        let wp = bf16Panels.value[c]
                        var i0 = 0
                        while i0 < m {
                            let mi = min(panelBlockRows, m - i0)
                            var j = a - base
                            while j < b - base {
                                let nj = min(panelRows, b - base - j)
                                K.dequantize(p.linear.weight, rows: j..<(j + nj), into: panels[c])
                                BF16Product.round(panels[c], rows: nj, cols: maxCols, lds: maxCols, into: wp, kp: kp)
                                BF16Product.panel(wp, nj: nj, kp: kp, x: bf16X.value + i0 * kp, m: mi,
                                                  out: uo.p + i0 * ldo + p.outOffset + j, ldo: ldo, accumulate: accumulate)
                                j += nj
                            }
                            i0 += mi
                        }
                    } else {
                        K.matmul(p.linear.weight, columns: (a - base)..<(b - base), x: ux.p, m: m, ldx: ldx, out: uo.p + p.outOffset, ldo: ldo,
                                 accumulate: accumulate, panel: panels[c])
                    }
                    if let bias = p.linear.bias {
                        for i in 0..<m {
                            let row = uo.p + i * ldo + p.outOffset
                            for j in (a - base)..<(b - base) { row[j] += bias[j] }
                        }
                    }
                }
                base += n
            }
        }
        parallelFor(t, chunk)
    }
}

/// Pointers handed to `concurrentPerform` workers, which write disjoint parts.
struct UnsafeSendable: @unchecked Sendable { let p: UnsafePointer<Float>; init(_ p: UnsafePointer<Float>) { self.p = p } }
struct UnsafeSendableMutable: @unchecked Sendable { let p: UnsafeMutablePointer<Float>; init(_ p: UnsafeMutablePointer<Float>) { self.p = p } }

/// A value handed to `concurrentPerform` workers that only read it (or write disjoint parts through it).
struct UncheckedBox<T>: @unchecked Sendable { let value: T }

/// body(0) … body(n − 1), on up to n threads (inline when n is 1). On Linux the calling thread and the
/// helper threads of `WorkerPool` share the work (a decoding step makes ~100 such calls, too many to
/// wake dispatch threads for each); when the pool is busy (another caller, or a nested call) the
/// work goes to `concurrentPerform`. Which thread runs which index never changes a value: callers
/// give each index its own outputs.
func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n == 1 { body(0); return }
    #if os(Linux)
    if WorkerPool.enabled, WorkerPool.shared.run(n, body) { return }
    #endif
    withoutActuallyEscaping(body) { b in
        let box = UncheckedBox(value: b)
        DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
    }
}

/// body(rows) over `count` rows split into one contiguous range per thread (inline below `minRows` rows):
/// for the row-wise steps of a forward pass (norms, RoPE, activations), whose rows are independent, so
/// the split changes no value.
func parallelRows(_ count: Int, threads: Int, minRows: Int = 64, _ body: (Range<Int>) -> Void) {
    let t = count >= minRows ? min(threads, count / (minRows / 2)) : 1
    if t <= 1 { if count > 0 { body(0..<count) }; return }
    let per = (count + t - 1) / t
    parallelFor(t) { c in
        let lo = c * per, hi = min(count, lo + per)
        if lo < hi { body(lo..<hi) }
    }
}

#if os(Linux)
/// Helper threads that stay ready between the products of a forward pass: after a job they spin for a
/// short while (`spinNanoseconds`) watching for the next one, then sleep on a condition variable.
/// One caller at a time. A job is published as one atomic ticket (job number, index count, next index);
/// threads claim indices by compare-and-swap on it, so a late helper can never claim an index of a job
/// that is over, and the caller waits only for the indices claimed, never for an idle helper.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle helper keeps watching for work before it sleeps.
    static let spinNanoseconds: UInt64 = 200_000

    /// `ABLAB_WORKER_POOL=0` sends the work to `concurrentPerform` instead (to compare the two).
    static let enabled = ProcessInfo.processInfo.environment["ABLAB_WORKER_POOL"] != "0"

    /// Spin iterations before a waiting thread starts yielding its core (to a helper descheduled on a busy
    /// machine, or to other processes).
    static let pureSpins = 2_000

    private let busy = Atomic<Bool>(false)
    /// job number << 32 | index count << 16 | next index.
    private let ticket = Atomic<UInt64>(0)
    private let finished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    /// The current job's body: written by the caller only when every claimed index of the previous job
    /// has finished, read by a thread only after it claimed an index of this job.
    private var body: ((Int) -> Void)?
    private var helpers = 0

    private init() {
        mutex = .allocate(capacity: 1); cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    /// Runs body(0..<n) on the caller and up to n − 1 helpers; false (nothing run) when the pool is in use.
    func run(_ n: Int, _ body: (Int) -> Void) -> Bool {
        guard n < 1 << 16 else { return false }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while helpers < n - 1 { startHelper() }
        withoutActuallyEscaping(body) { b in
            self.body = b
            finished.store(0, ordering: .relaxed)
            let job = ((ticket.load(ordering: .relaxed) >> 32) &+ 1) & 0xFFFF_FFFF
            ticket.store(job << 32 | UInt64(n) << 16, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex); pthread_cond_broadcast(cond); pthread_mutex_unlock(mutex)
            }
            work(job: job)
            var spins = 0
            while finished.load(ordering: .acquiring) < n {
                spins += 1
                if spins > Self.pureSpins { sched_yield() }
            }
            self.body = nil
        }
        return true
    }

    /// Claims and runs indices of job `job` until none is left.
    private func work(job: UInt64) {
        var t = ticket.load(ordering: .acquiring)
        while t >> 32 == job {
            let n = (t >> 16) & 0xFFFF, i = t & 0xFFFF
            guard i < n else { return }
            let (done, now) = ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing)
            if done {
                body!(Int(i))
                finished.wrappingAdd(1, ordering: .releasing)
                t = ticket.load(ordering: .acquiring)
            } else {
                t = now
            }
        }
    }

    private func startHelper() {
        helpers += 1
        let seen = ticket.load(ordering: .acquiring) >> 32
        let t = Thread { [unowned self] in self.helperLoop(seen: seen) }
        t.name = "ablab-worker"
        t.start()
    }

    private func helperLoop(seen start: UInt64) {
        var seen = start
        while true {
            let spinUntil = DispatchTime.now().uptimeNanoseconds + Self.spinNanoseconds
            var spins = 0
            while ticket.load(ordering: .acquiring) >> 32 == seen {
                spins += 1
                if spins > Self.pureSpins { sched_yield() }
                if spins & 255 == 0, DispatchTime.now().uptimeNanoseconds > spinUntil {
                    pthread_mutex_lock(mutex)
                    sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    while ticket.load(ordering: .sequentiallyConsistent) >> 32 == seen { pthread_cond_wait(cond, mutex) }
                    sleepers.wrappingSubtract(1, ordering: .relaxed)
                    pthread_mutex_unlock(mutex)
                }
            }
            seen = ticket.load(ordering: .acquiring) >> 32
            work(job: seen)
        }
    }
}
#endif
