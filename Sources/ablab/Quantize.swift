import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime

struct Quantize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a GGUF copy of a model requantized to one type, with llama.cpp's rules.",
        discussion: """
        Matrices (2-D weights other than norms) get --type; norms, biases and other 1-D tensors are copied.
        output.weight (token_embd.weight for a tied model) becomes Q6_K (Q8_0 for --type Q8_0 or when its
        rows do not fit Q6_K's 256-value blocks); Q4_K is llama.cpp's Q4_K_S mix (attn_v of layers 0-3 and
        ffn_down of the first eighth of the layers in Q5_K); rows that do not fit a K-type's 256-value
        blocks fall back to Q5_0 / Q5_1 / Q8_0 as in llama-quantize. The bytes equal llama.cpp's reference
        quantizer (no importance matrix). README, "Quantizing a model", has the details.
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A GGUF model file.") var model: String
    @Option(name: .long, help: "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, F16, BF16 or F32.") var type: String
    @Option(name: .long, help: "The quantized GGUF file.") var out: String
    @Option(name: .long, help: "Threads (default: all cores).") var threads: Int?

    var target: GGMLType? {
        GGMLType.allCases.first { $0.name.caseInsensitiveCompare(type) == .orderedSame && ModelQuantization.fileTypes[$0] != nil }
    }

    func validate() throws {
        if target == nil { throw ValidationError("--type \(type): choose one of \(ModelQuantization.supportedNames)") }
    }

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let t = target!
            if let threads { setThreads(threads) }
            let plan = try ModelQuantization.quantize(source: model, target: t, to: out)
            var counts: [GGMLType: Int] = [:]
            for p in plan { counts[p.type, default: 0] += 1 }
            let summary = counts.keys.sorted { $0.rawValue < $1.rawValue }.map { "\(counts[$0]!) \($0)" }.joined(separator: ", ")
            FileHandle.standardError.write(Data("\(out): \(plan.count) tensors (\(summary))\n".utf8))
            print(out)
        }
    }
}
