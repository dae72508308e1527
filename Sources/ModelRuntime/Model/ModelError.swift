import AblabCore

/// Errors loading or running a model: one sentence naming the file (and tensor or key) and what to do.
public struct ModelError: AblabError {
    public var file: String
    public var tensor: String?
    public var message: String
    public init(file: String, tensor: String? = nil, _ message: String) {
        self.file = file; self.tensor = tensor; self.message = message
    }
    public var description: String {
        if let tensor { return "\(file) [\(tensor)]: \(message)" }
        return "\(file): \(message)"
    }
    public var exitCode: Int32 { ExitCode.badInput }
}
