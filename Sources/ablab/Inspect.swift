import ArgumentParser
import Foundation
import AblabCore

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a GGUF model's metadata and tensor table.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A GGUF file.") var model: String

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            throw InputError(file: model, "inspect is not available yet")
        }
    }
}
