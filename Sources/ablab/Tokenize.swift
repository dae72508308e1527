import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime

struct Tokenize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text as a JSON array (tokenizer only; no weights are loaded).",
        discussion: """
        The text comes from --text or, without it, from stdin exactly as given (a trailing newline is kept).
        Special tokens written in the text (<|im_start|>, <|im_end|>, …) become their ids.
        With --chat the text is the user's message of a chat prompt rendered with the model's template
        (system prompt: the template's default, --system TEXT, or none with --no-system).
        """
    )
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "A GGUF model, a Hugging Face tokenizer folder or a tokenizer.json.") var model: String
    @Option(name: .long, help: "The text to tokenize (default: read stdin).") var text: String?
    @Flag(name: .long, help: "Render the text as a user message with the model's chat template first.") var chat = false
    @Option(name: .long, help: "With --chat: the system prompt (default: the template's own).") var system: String?
    @Flag(name: .customLong("no-system"), help: "With --chat: no system turn at all.") var noSystem = false
    @Option(name: .customLong("chat-format"), help: "With --chat: use this format instead of the model's template (chatml, qwen3, llama3, llama3.1, gemma2, gemma3, mistral, phi3, glm4).")
    var chatFormat: String?
    @Flag(name: .long, help: "With --chat, Qwen3: no empty think block after the prompt (the model may think first).")
    var thinking = false
    @Flag(name: .customLong("show-text"), help: "Print the rendered text to stderr as well.") var showText = false

    func validate() throws {
        if system != nil && noSystem { throw ValidationError("--system and --no-system exclude each other") }
        if !chat && (system != nil || noSystem || chatFormat != nil || thinking) {
            throw ValidationError("--system, --no-system, --chat-format and --thinking need --chat")
        }
    }

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let loaded = try LoadedTokenizer.load(path: model)
            var input: String
            if let text { input = text } else {
                let data = FileHandle.standardInput.readDataToEndOfFile()
                guard let s = String(data: data, encoding: .utf8) else {
                    throw InputError(file: "<stdin>", "the input is not valid UTF-8")
                }
                input = s
            }
            if chat {
                var tpl = try loaded.chatTemplate(format: chatFormat)
                tpl.thinking = thinking
                let choice: SystemPrompt = noSystem ? .none : (system.map { .custom($0) } ?? .modelDefault)
                input = try tpl.renderPrompt(user: input, system: choice)
            }
            if showText { FileHandle.standardError.write(Data((input + "\n").utf8)) }
            let ids = loaded.tokenizer.encode(input)
            print("[" + ids.map(String.init).joined(separator: ",") + "]")
        }
    }
}
