import Foundation
import AblabCore
import ModelRuntime
import LinearAlgebra

/// One alternative token and its log-probability.
public struct TokenAlternative: Sendable, Equatable {
    /// The token's text (its bytes read as UTF-8; a cut multi-byte character shows as U+FFFD).
    public var token: String
    public var bytes: [UInt8]
    /// Natural log of the token's probability under the model (softmax of the raw logits, before temperature).
    public var logprob: Double
}

/// The chosen token's log-probability and the most probable alternatives at that step.
public struct TokenLogprob: Sendable, Equatable {
    public var chosen: TokenAlternative
    /// The `top` most probable tokens, most probable first (ties: lower id first).
    public var top: [TokenAlternative]
}

/// What a client asks the engine to decode.
public struct DecodeRequest: Sendable {
    /// The prompt's token ids (chat-formatted or raw), not empty.
    public var tokens: [Int]
    /// At most this many new tokens (≥ 1).
    public var maxTokens: Int
    public var sampling: SamplingOptions
    /// Stop strings: generation ends before the first occurrence of any of them (not included in the text).
    public var stop: [String]
    /// nil: no log-probabilities; k ≥ 0: the chosen token's and the k most probable tokens' at each step.
    public var logprobs: Int?
    /// Do not stop at end-of-sequence tokens (vLLM's `ignore_eos`; for benchmarks: exactly `maxTokens`).
    public var ignoreEOS: Bool

    public init(tokens: [Int], maxTokens: Int, sampling: SamplingOptions = .greedy, stop: [String] = [], logprobs: Int? = nil,
                ignoreEOS: Bool = false) {
        self.tokens = tokens; self.maxTokens = maxTokens; self.sampling = sampling; self.stop = stop; self.logprobs = logprobs
        self.ignoreEOS = ignoreEOS
    }
}

/// Why a sequence ended, in the OpenAI vocabulary.
public enum StopReason: String, Sendable {
    /// An end-of-sequence token or a stop string.
    case stop
    /// `maxTokens` were generated.
    case length
}

/// What the engine reports for one request, in order: `token` events, then exactly one `finished` or `failed`.
public enum DecodeEvent: Sendable {
    /// One generated token: the new text it completes (may be empty: an end-of-turn token, part of a
    /// multi-byte character, or text held back because it may start a stop string) and, when asked, its
    /// log-probabilities.
    case token(text: String, logprob: TokenLogprob?)
    case finished(StopReason, promptTokens: Int, completionTokens: Int)
    /// The request could not be decoded (non-finite logits, a failed forward pass); `message` says why.
    case failed(String)
}

/// Continuous batching over `Transformer.forward`: every running request has its own KV cache, and all of
/// them advance together, one token per step; a request submitted while others run is prefilled in the
/// next step's forward call, packed with the others' decoding steps. The model runs on one dedicated
/// thread (the runtime is not thread-safe); callers on any thread submit requests and read events.
///
/// A request decodes exactly as `Generator.generate` would decode it alone: greedy answers are the
/// argmax of the same logits (the runtime's results do not depend on which sequences share a forward
/// call), and sampling draws from `SamplingOptions.stream(promptIndex: 0)` of the request's seed, the
/// stream `ablab generate --prompt` uses.
public final class Engine: @unchecked Sendable {
    private let transformer: Transformer
    private let tokenizer: BPETokenizer
    private let eosIds: Set<Int>
    private let hooks: HookSet
    /// Sequences decoded together at most; more requests wait for a free slot.
    public let maxBatch: Int

    private let cond = NSCondition()
    private var waiting: [Job] = []
    private var stopping = false
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private var runningCount = 0

    private static let log = AblabLog.logger("serve")

    final class Job: @unchecked Sendable {
        let request: DecodeRequest
        let continuation: AsyncStream<DecodeEvent>.Continuation
        private let lock = NSLock()
        private var _cancelled = false
        var cancelled: Bool { lock.lock(); defer { lock.unlock() }; return _cancelled }
        func cancel() { lock.lock(); _cancelled = true; lock.unlock() }
        init(request: DecodeRequest, continuation: AsyncStream<DecodeEvent>.Continuation) {
            self.request = request; self.continuation = continuation
        }
    }

    public init(model: ChatModel, hooks: HookSet = HookSet(), maxBatch: Int = 16) {
        self.transformer = model.transformer
        self.tokenizer = model.tokenizer
        self.eosIds = model.eosIds
        self.hooks = hooks
        self.maxBatch = max(1, maxBatch)
    }

    /// Starts the decoding thread.
    public func start() {
        let t = Thread { [self] in loop(); done.signal() }
        t.name = "ablab-serve-engine"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Finishes every submitted request, then stops the thread (returns when it has stopped).
    public func shutdown() {
        cond.lock(); stopping = true; cond.broadcast(); cond.unlock()
        if thread != nil { done.wait(); thread = nil }
    }

    /// Requests running or waiting.
    public var load: Int { cond.lock(); defer { cond.unlock() }; return runningCount + waiting.count }

    /// Queues a request; its events arrive on the returned stream. Ending the stream early (the client
    /// went away) cancels the request at the next step.
    public func submit(_ request: DecodeRequest) -> AsyncStream<DecodeEvent> {
        let (stream, continuation) = AsyncStream<DecodeEvent>.makeStream(bufferingPolicy: .unbounded)
        let job = Job(request: request, continuation: continuation)
        continuation.onTermination = { reason in
            if case .cancelled = reason { job.cancel() }
        }
        cond.lock()
        waiting.append(job)
        cond.broadcast()
        cond.unlock()
        return stream
    }

    // MARK: the decoding thread

    struct Slot {
        let job: Job
        let cache: KVCache
        var pending: [Int]
        var rng: SamplingRNG
        var generated = 0
        /// Bytes of the generated non-special tokens.
        var bytes: [UInt8] = []
        /// UTF-8 bytes of text already sent.
        var sent = 0
    }

    private func loop() {
        var active: [Slot] = []
        var pool: [KVCache] = []
        var sampler = Sampler(vocab: transformer.config.vocab)
        let vocab = transformer.config.vocab
        while true {
            cond.lock()
            while waiting.isEmpty && active.isEmpty && !stopping { cond.wait() }
            if waiting.isEmpty && active.isEmpty && stopping { cond.unlock(); return }
            while !waiting.isEmpty && active.count < maxBatch {
                let job = waiting.removeFirst()
                let cache = pool.popLast() ?? transformer.makeCache()
                cache.reset()
                active.append(Slot(job: job, cache: cache, pending: job.request.tokens,
                                   rng: job.request.sampling.stream(promptIndex: 0)))
            }
            runningCount = active.count
            cond.unlock()

            // Requests whose client went away, or that ask for nothing, leave before the step.
            active.removeAll { slot in
                if slot.job.cancelled { slot.job.continuation.finish(); pool.append(slot.cache); return true }
                if slot.job.request.maxTokens <= 0 || slot.pending.isEmpty {
                    slot.job.continuation.yield(.finished(.length, promptTokens: slot.job.request.tokens.count, completionTokens: 0))
                    slot.job.continuation.finish(); pool.append(slot.cache); return true
                }
                return false
            }
            guard !active.isEmpty else { continue }

            let logits: Matrix
            do {
                logits = try transformer.forward(active.enumerated().map { ForwardItem(cache: $1.cache, tokens: $1.pending, sequenceID: $0) },
                                                 hooks: hooks, logits: .last)
            } catch {
                Self.log.error("forward pass failed: \(error)")
                for slot in active {
                    slot.job.continuation.yield(.failed("the forward pass failed: \(error)"))
                    slot.job.continuation.finish()
                }
                active.removeAll()
                continue
            }
            var keep: [Slot] = []
            keep.reserveCapacity(active.count)
            logits.data.withUnsafeBufferPointer { lp in
                for (i, var slot) in active.enumerated() {
                    let row = lp.baseAddress! + i * vocab
                    if let j = (0..<vocab).first(where: { !row[$0].isFinite }) {
                        slot.job.continuation.yield(.failed("non-finite logit \(row[j]) at token position \(slot.cache.count - 1); the request was stopped"))
                        slot.job.continuation.finish()
                        pool.append(slot.cache)
                        continue
                    }
                    let req = slot.job.request
                    let tok = sampler.pick(row, req.sampling, &slot.rng)
                    slot.generated += 1
                    let lp = req.logprobs.map { logprobs(row, vocab: vocab, chosen: tok, top: $0) }
                    let isEOS = !req.ignoreEOS && eosIds.contains(tok)
                    if !tokenizer.isSpecial(Int32(tok)) { slot.bytes.append(contentsOf: tokenizer.tokenBytes(Int32(tok))) }
                    let finishing: StopReason? = isEOS ? .stop : (slot.generated >= req.maxTokens ? .length : nil)
                    let (text, hitStop) = Self.newText(&slot, stops: req.stop, flush: finishing != nil)
                    slot.job.continuation.yield(.token(text: text, logprob: lp))
                    if let reason = hitStop ? .stop : finishing {
                        slot.job.continuation.yield(.finished(reason, promptTokens: req.tokens.count, completionTokens: slot.generated))
                        slot.job.continuation.finish()
                        pool.append(slot.cache)
                    } else {
                        slot.pending = [tok]
                        keep.append(slot)
                    }
                }
            }
            active = keep
        }
    }

    /// The text that can be sent after the newest token: complete UTF-8 characters only, and nothing that
    /// could be the start of a stop string, unless `flush` (the sequence ends). Returns whether a stop
    /// string was found (the text then ends before it).
    static func newText(_ slot: inout Slot, stops: [String], flush: Bool) -> (String, Bool) {
        let complete = flush ? slot.bytes.count : completeUTF8Prefix(slot.bytes)
        // The decoded text as UTF-8 (invalid sequences become U+FFFD, as in `BPETokenizer.decode`).
        let text = Array(String(decoding: slot.bytes[..<complete], as: UTF8.self).utf8)
        var end = text.count
        var hit = false
        if !stops.isEmpty {
            let longest = stops.map(\.utf8.count).max() ?? 0
            let from = max(0, slot.sent - longest + 1)
            var first: Int? = nil
            for s in stops {
                let sb = Array(s.utf8)
                guard !sb.isEmpty, text.count >= sb.count else { continue }
                var i = from
                while i + sb.count <= text.count {
                    if text[i] == sb[0] && Array(text[i..<(i + sb.count)]) == sb { first = min(first ?? i, i); break }
                    i += 1
                }
            }
            if let first { end = first; hit = true } else if !flush {
                // Hold back a suffix that is a proper prefix of a stop string.
                var hold = 0
                for s in stops {
                    let sb = Array(s.utf8)
                    for k in stride(from: min(sb.count - 1, text.count), to: hold, by: -1)
                        where Array(text[(text.count - k)...]) == Array(sb[..<k]) { hold = k; break }
                }
                end = text.count - hold
            }
        }
        guard end > slot.sent else { return ("", hit) }
        let s = String(decoding: text[slot.sent..<end], as: UTF8.self)
        slot.sent = end
        return (s, hit)
    }

    /// Length of the longest prefix of `b` that does not end inside a multi-byte UTF-8 character.
    static func completeUTF8Prefix(_ b: [UInt8]) -> Int {
        var i = b.count - 1, back = 0
        while i >= 0 && back < 4 && (b[i] & 0xC0) == 0x80 { i -= 1; back += 1 }
        guard i >= 0 else { return b.count }
        let lead = b[i]
        let need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return b.count - i < need ? i : b.count
    }

    /// Log-softmax of one logits row (in Double): the chosen token's value and the `top` largest.
    func logprobs(_ row: UnsafePointer<Float>, vocab: Int, chosen: Int, top: Int) -> TokenLogprob {
        var m = -Double.infinity
        for j in 0..<vocab { m = max(m, Double(row[j])) }
        var s = 0.0
        for j in 0..<vocab { s += exp(Double(row[j]) - m) }
        let lse = m + Foundation.log(s)
        // The `top` largest logits, kept sorted (descending value, ascending id).
        var best: [(Int, Float)] = []
        if top > 0 {
            best.reserveCapacity(top + 1)
            for j in 0..<vocab {
                let v = row[j]
                if best.count == top, let last = best.last, !(v > last.1) { continue }
                var k = best.count
                while k > 0 && v > best[k - 1].1 { k -= 1 }
                best.insert((j, v), at: k)
                if best.count > top { best.removeLast() }
            }
        }
        func alt(_ id: Int) -> TokenAlternative {
            let b = tokenizer.tokenBytes(Int32(id))
            return TokenAlternative(token: String(decoding: b, as: UTF8.self), bytes: b, logprob: Double(row[id]) - lse)
        }
        return TokenLogprob(chosen: alt(chosen), top: best.map { alt($0.0) })
    }
}
