import Foundation
import Testing
import AblabCore
@testable import ModelRuntime

/// The two default models' tokenizers against Hugging Face: ids of ~70 hand-written strings and ~100 real
/// prompts, decode round trips, special tokens, and chat renderings (text and ids).
@Suite("Tokenizer on the default models")
struct TokenizerModelTests {
    /// (fixture name, GGUF file name)
    static let models = ["smollm2", "qwen2.5-coder"]

    /// The corrected HF tokenizer folder the fixture script saves beside the models (not committed).
    static func hfFolder(_ short: String) -> String {
        let base = ProcessInfo.processInfo.environment["ABLAB_HF_TOKENIZERS_DIR"]
            ?? (TokenizerFixtures.modelsDir + "/hf-tokenizers")
        return base + "/" + short
    }
    static var hfFoldersPresent: Bool {
        models.allSatisfy { FileManager.default.fileExists(atPath: hfFolder($0) + "/tokenizer.json") }
    }

    static func check(_ tok: BPETokenizer, _ fx: TokenizerFixtures.Model) {
        #expect(tok.vocabSize == fx.vocab_size)
        #expect(fx.cases.count >= 60)
        for c in fx.cases {
            let ids = tok.encode(c.text)
            #expect(ids == c.ids, "text: \(c.text.debugDescription)")
            #expect(tok.decode(c.ids) == c.decoded, "decode: \(c.text.debugDescription)")
            if let skip = c.decoded_skip_special {
                #expect(tok.decode(c.ids, skipSpecial: true) == skip, "decode skipping specials: \(c.text.debugDescription)")
            }
            #expect(tok.decode(ids) == c.text.precomposedIfNFC(tok), "round trip: \(c.text.debugDescription)")
        }
        #expect(fx.prompts.count >= 90)
        for p in fx.prompts {
            #expect(tok.encode(p.text) == p.ids, "prompt \(p.id)")
        }
        for (name, id) in fx.special_ids {
            #expect(tok.addedTokenId(name) == id, "special token \(name)")
            #expect(tok.encode(name) == [id])
            #expect(tok.encode(name, parseSpecial: false).count > 1, "\(name) as plain text")
        }
        #expect(tok.eosTokenIds.contains(fx.special_ids["<|im_end|>"]!))
    }

    @Test("from tokenizer.json: ids, decode and specials equal HF", .enabled(if: hfFoldersPresent,
          "run notebooks-scripts/fixtures_tokenizer.py to save the HF tokenizer folders beside the models"),
          arguments: models)
    func fromTokenizerJSON(short: String) throws {
        let fx = try TokenizerFixtures.model(short)
        let tok = try BPETokenizer.fromTokenizerJSON(path: Self.hfFolder(short))
        Self.check(tok, fx)
        #expect(tok.eosTokenId == fx.special_ids[fx.eos_token ?? ""])
    }

    static let ggufFiles = ["smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder": "Qwen2.5-Coder-0.5B-Instruct.gguf"]

    static func ggufPath(_ short: String) -> String { TokenizerFixtures.modelsDir + "/" + ggufFiles[short]! }

    static var ggufPresent: Bool {
        models.allSatisfy { FileManager.default.fileExists(atPath: ggufPath($0)) }
    }

    @Test("from GGUF metadata: ids, decode and specials equal HF",
          .enabled(if: ggufPresent, "fetch the default models (make models)"), arguments: models)
    func fromGGUF(short: String) throws {
        let fx = try TokenizerFixtures.model(short)
        let loaded = try LoadedTokenizer.load(path: Self.ggufPath(short))
        let tok = loaded.tokenizer
        Self.check(tok, fx)
        #expect(tok.eosTokenId == fx.special_ids[fx.eos_token ?? ""])
        #expect(loaded.chatTemplateSource == fx.chat_template)
        let tpl = try loaded.chatTemplate()
        for chat in fx.chats {
            let msgs = chat.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            let text = try tpl.render(msgs, addGenerationPrompt: true, insertDefaultSystem: chat.system != "none")
            #expect(tok.encode(text) == chat.ids, "chat \(chat.name)")
        }
        #expect(tpl.tokenCountAfterUserText(tok) == fx.generation_tail.ids.count)
        #expect(tok.encode(tpl.userSuffix) == fx.generation_tail.ids)
    }

    @Test("chat template: detection, rendering and ids equal HF", arguments: models)
    func chat(short: String) throws {
        let fx = try TokenizerFixtures.model(short)
        let arch = short == "smollm2" ? "llama" : "qwen2"
        let tpl = try ChatTemplate.detect(templateSource: fx.chat_template, architecture: arch)
        #expect(tpl.family == (short == "smollm2" ? .smollm2 : .qwen2))
        #expect(tpl.defaultSystemPrompt == (short == "smollm2"
            ? "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
            : "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."))
        #expect(fx.chats.count >= 8)
        for chat in fx.chats {
            let msgs = chat.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            let text = try tpl.render(msgs, addGenerationPrompt: true, insertDefaultSystem: chat.system != "none")
            #expect(text == chat.text, "chat \(chat.name)")
        }
        #expect(tpl.userSuffix == fx.generation_tail.text)
    }

    @Test("chat ids and template-token count equal HF", .enabled(if: hfFoldersPresent), arguments: models)
    func chatIds(short: String) throws {
        let fx = try TokenizerFixtures.model(short)
        let tok = try BPETokenizer.fromTokenizerJSON(path: Self.hfFolder(short))
        for chat in fx.chats { #expect(tok.encode(chat.text) == chat.ids, "chat \(chat.name)") }
        let tpl = try ChatTemplate.detect(templateSource: fx.chat_template, architecture: "x")
        #expect(tpl.tokenCountAfterUserText(tok) == fx.generation_tail.ids.count)
        #expect(tok.encode(tpl.userSuffix) == fx.generation_tail.ids)
    }
}

extension String {
    /// The text a tokenizer gives back: NFC-normalising tokenizers return the composed form.
    func precomposedIfNFC(_ tok: BPETokenizer) -> String {
        tok.normalizer == .nfc ? precomposedStringWithCanonicalMapping : self
    }
}

@Suite("Chat templates")
struct ChatTemplateTests {
    @Test("unknown or missing templates are errors that say how to choose a format",
          arguments: [nil, "", "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}",
                      "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] | trim }}<|im_end|>{% endfor %}"])
    func unknown(source: String?) {
        #expect(throws: ChatTemplateError.self) { try ChatTemplate.detect(templateSource: source, architecture: "llama") }
        do { _ = try ChatTemplate.detect(templateSource: source, architecture: "llama") } catch {
            #expect("\(error)".contains("--chat-format") && ChatTemplate.formatNames.allSatisfy { "\(error)".contains($0) })
        }
    }

    @Test("generic ChatML: no default system turn; explicit format names")
    func generic() throws {
        let src = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        let t = try ChatTemplate.detect(templateSource: src, architecture: "llama")
        #expect(t.family == .chatml && t.defaultSystemPrompt == nil)
        // The rendering is the ChatML definition: role line, content, end marker, newline.
        #expect(try t.render([.user("hi")], addGenerationPrompt: true) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
        #expect(try t.render([.user("hi")], addGenerationPrompt: false) == "<|im_start|>user\nhi<|im_end|>\n")
        #expect(try ChatTemplate.named("ChatML") == ChatTemplate(family: .chatml, defaultSystemPrompt: nil))
        #expect(throws: ChatTemplateError.self) { try ChatTemplate.named("llama2") }
    }

    @Test("system prompt choices")
    func systemChoices() throws {
        let t = ChatTemplate(family: .qwen2, defaultSystemPrompt: "D")
        #expect(try t.renderPrompt(user: "u", system: .modelDefault) == "<|im_start|>system\nD<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n")
        #expect(try t.renderPrompt(user: "u", system: .custom("S")) == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n")
        #expect(try t.renderPrompt(user: "u", system: .none) == "<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n")
    }
}
