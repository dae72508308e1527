import AblabCore

/// A drawing or writing failure, naming the output file and what to do about it.
public struct PlotError: AblabError {
    /// The output file (or "<memory>" for an in-memory image surface).
    public var file: String
    public var message: String
    public init(file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
    public var exitCode: Int32 { ExitCode.io }
}
