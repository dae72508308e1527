import Foundation
import Logging

/// Logging for every module: swift-log, written to stderr by the CLI's bootstrap.
public enum AblabLog {
    public static func logger(_ label: String) -> Logger { Logger(label: "ablab.\(label)") }
}

/// A progress line on stderr: done/total, rate and ETA; redrawn in place on a terminal, printed every
/// few seconds otherwise (logs, CI).
public final class Progress: @unchecked Sendable {
    private let label: String
    private let total: Int
    private let unit: String
    private var done: Int = 0
    private let start = Date()
    private var lastPrint = Date.distantPast
    /// `done` when the line was last drawn (-1: never), so that `finish` does not print the final line twice.
    private var drawnAt = -1
    private let isTTY = isatty(2) != 0
    private let lock = NSLock()
    public var enabled: Bool

    public init(_ label: String, total: Int, unit: String = "prompts", enabled: Bool = true) {
        self.label = label; self.total = total; self.unit = unit; self.enabled = enabled
    }

    public func advance(by n: Int = 1) {
        lock.lock(); defer { lock.unlock() }
        done += n
        let now = Date()
        let interval: TimeInterval = isTTY ? 0.2 : 5
        if done >= total || now.timeIntervalSince(lastPrint) >= interval {
            lastPrint = now
            render(now: now)
        }
    }

    public func finish() {
        lock.lock(); defer { lock.unlock() }
        if drawnAt != done { render(now: Date()) }
        if enabled && isTTY { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func render(now: Date) {
        guard enabled else { return }
        drawnAt = done
        let elapsed = max(now.timeIntervalSince(start), 1e-9)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let pct = total > 0 ? 100 * Double(done) / Double(total) : 100
        let barWidth = 24
        let filled = total > 0 ? Int(Double(barWidth) * Double(done) / Double(total)) : barWidth
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: max(0, barWidth - filled))
        let line = String(format: "%@ [%@] %d/%d %@ (%.0f%%) %.1f %@/s ETA %@",
                          label, bar, done, total, unit, pct, rate, unit, Progress.clock(eta))
        let out = isTTY ? "\r\u{1B}[2K" + line : line + "\n"
        FileHandle.standardError.write(Data(out.utf8))
    }

    static func clock(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60)
                         : String(format: "%02d:%02d", t / 60, t % 60)
    }
}
