import Foundation
import Testing
import AblabCore
@testable import ModelRuntime

/// Fixtures written by notebooks-scripts/fixtures_chat_templates.py: each family's real Jinja template
/// rendered by transformers' apply_chat_template(add_generation_prompt=True), with token ids.
enum ChatFixtures {
    struct Message: Decodable, Sendable { var role: String; var content: String }
    struct Case: Decodable, Sendable {
        var name: String
        var messages: [Message]
        var text: String?
        var ids: [Int32]?
        var error: String?
        var thinking: Bool?
    }
    struct Tail: Decodable, Sendable { var text: String; var ids: [Int32]?; var thinking: Bool? }
    struct Family: Decodable, Sendable {
        var family: String
        var chat_template: String
        var tokenizer_source: String?
        var cases: [Case]
        var generation_tails: [Tail]
    }

    static func load(_ name: String) throws -> (Family, [String: Any]?) {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/chat"),
                               "fixture chat/\(name).json missing; run notebooks-scripts/fixtures_chat_templates.py")
        let data = try Data(contentsOf: url)
        let obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (try JSONDecoder().decode(Family.self, from: data), obj["tokenizer"] as? [String: Any])
    }

    static let gemmaPath = TokenizerFixtures.modelsDir + "/gemma-3-270m.Q4_K_M.gguf"
    static var gemmaPresent: Bool { FileManager.default.fileExists(atPath: gemmaPath) }
    /// Gemma-3-270M's tokenizer, loaded once for every test that needs it.
    static let gemma: Result<BPETokenizer, Error> = Result { try LoadedTokenizer.load(path: gemmaPath).tokenizer }
}

@Suite("Chat templates of every family against transformers")
struct ChatTemplateFamilyTests {
    static let families = ["chatml", "qwen3", "llama3", "llama3.1", "gemma2", "gemma3", "mistral", "phi3", "glm4"]

    @Test("detection, rendered text, refusals and token ids equal HF", arguments: families)
    func family(name: String) throws {
        let (fx, doc) = try ChatFixtures.load(name)
        var tpl = try ChatTemplate.detect(templateSource: fx.chat_template, architecture: "test")
        #expect(tpl.family.rawValue == name)
        #expect(try ChatTemplate.named(name).family == tpl.family)
        var tok: BPETokenizer?
        if let doc { tok = try BPETokenizer.fromTokenizerJSONObject(doc, source: name) }
        else if fx.tokenizer_source?.hasPrefix("gguf:") == true, ChatFixtures.gemmaPresent { tok = try ChatFixtures.gemma.get() }
        #expect(fx.cases.count >= 10)
        var refused = 0, compared = 0
        for c in fx.cases {
            tpl.thinking = c.thinking ?? true
            let msgs = c.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            if c.error != nil {
                refused += 1
                #expect(throws: ChatTemplateError.self, "\(c.name): HF raised \(c.error!)") {
                    try tpl.render(msgs, addGenerationPrompt: true)
                }
                continue
            }
            let text = try tpl.render(msgs, addGenerationPrompt: true)
            #expect(text == c.text, "\(name) \(c.name) thinking=\(String(describing: c.thinking))")
            if let tok, let ids = c.ids {
                #expect(tok.encode(text) == ids, "\(name) \(c.name) ids")
                compared += 1
            }
        }
        if tok != nil { #expect(compared == fx.cases.count - refused) }
        for t in fx.generation_tails {
            tpl.thinking = t.thinking ?? true
            #expect(tpl.userSuffix == t.text, "\(name) generation tail")
            if let tok, let ids = t.ids {
                #expect(tok.encode(tpl.userSuffix) == ids)
                #expect(tpl.tokenCountAfterUserText(tok) == ids.count)
            }
        }
    }

    @Test("the families HF refuses: Gemma 2 has no system role, Gemma and Mistral need alternating turns")
    func refusals() throws {
        let (g2, _) = try ChatFixtures.load("gemma2")
        #expect(g2.cases.filter { $0.error != nil }.map(\.name).sorted()
                == ["empty-system", "multi-turn-system", "not-alternating", "system", "whitespace"])
        let (mi, _) = try ChatFixtures.load("mistral")
        #expect(mi.cases.filter { $0.error != nil }.map(\.name).sorted() == ["not-alternating", "system-later"])
        // Gemma 2 with a study's system prompt is refused when the model is set up, not mid-run.
        let t = ChatTemplate(family: .gemma2, defaultSystemPrompt: nil)
        #expect(throws: ChatTemplateError.self) { try t.check(system: .custom("Be brief.")) }
        try t.check(system: .none)
        try t.check(system: .modelDefault)
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(family: .glm4, defaultSystemPrompt: nil).render([.init(role: "tool", content: "x")], addGenerationPrompt: true) }
    }

    @Test("an unrecognised template names --chat-format and every known format",
          arguments: ["{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
                      "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}",
                      "[gMASK]<sop>{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}",
                      "<|start_header_id|>{{ x }}<|end_header_id|><|eot_id|>{{ strftime_now('%d') }}Cutting Knowledge Date: December 2023"])
    func unknown(source: String) {
        do {
            _ = try ChatTemplate.detect(templateSource: source, architecture: "llama")
            Issue.record("accepted an unknown template")
        } catch {
            let s = "\(error)"
            #expect(s.contains("--chat-format"))
            for f in ChatTemplate.formatNames { #expect(s.contains(f), "\(f) missing from: \(s)") }
        }
        #expect(throws: ChatTemplateError.self) { try ChatTemplate.named("llama2") }
    }

    @Test("the judges' answer: Qwen3's think block removed as its template removes it")
    func splitThinking() {
        // Qwen3's template keeps what follows the last </think>, minus leading newlines.
        let (t1, a1) = ChatTemplate.splitThinking("<think>\nStep one.\nStep two.\n</think>\n\nI can't help with that.")
        #expect(t1 == "Step one.\nStep two." && a1 == "I can't help with that.")
        let (t2, a2) = ChatTemplate.splitThinking("Plain answer without thinking.")
        #expect(t2 == nil && a2 == "Plain answer without thinking.")
        // Cut off while thinking: there is no answer yet.
        let (t3, a3) = ChatTemplate.splitThinking("<think>\nStill thinking about")
        #expect(t3 == "Still thinking about" && a3 == "")
        let (t4, a4) = ChatTemplate.splitThinking("<think>\n\n</think>\n\nSure: 42.")
        #expect(t4 == "" && a4 == "Sure: 42.")
    }
}

/// Gemma-3-270M's SentencePiece vocabulary (GGUF `tokenizer.ggml.model = llama`) against transformers'
/// conversion of the same file (fixtures_tokenizer.py, gemma3.json).
@Suite("Gemma-3 tokenizer against transformers")
struct GemmaTokenizerTests {
    struct Fixture: Decodable {
        var vocab_size: Int
        var special_ids: [String: Int32]
        var cases: [TokenizerFixtures.Case]
        var prompts: [TokenizerFixtures.Prompt]
    }

    @Test("ids, decodes and special tokens equal HF on the tokenizer string set and 100 prompts",
          .enabled(if: ChatFixtures.gemmaPresent, "fetch Gemma-3-270M with make models-gemma"))
    func gemma() throws {
        let url = try #require(Bundle.module.url(forResource: "gemma3", withExtension: "json", subdirectory: "Fixtures/tokenizer"))
        let fx = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let tok = try ChatFixtures.gemma.get()
        #expect(tok.model == .sentencePiece)
        #expect(tok.vocabSize == fx.vocab_size)
        #expect(fx.cases.count >= 70 && fx.prompts.count >= 90)
        for c in fx.cases {
            let ids = tok.encode(c.text)
            #expect(ids == c.ids, "text: \(c.text.debugDescription)")
            #expect(tok.decode(c.ids) == c.decoded, "decode: \(c.text.debugDescription)")
            if let skip = c.decoded_skip_special {
                #expect(tok.decode(c.ids, skipSpecial: true) == skip, "decode skipping specials: \(c.text.debugDescription)")
            }
        }
        for p in fx.prompts { #expect(tok.encode(p.text) == p.ids, "prompt \(p.id)") }
        for (name, id) in fx.special_ids {
            #expect(tok.addedTokenId(name) == id, "special token \(name)")
            #expect(tok.encode(name) == [id])
        }
        #expect(tok.bosTokenId == fx.special_ids["<bos>"] && tok.eosTokenId == fx.special_ids["<eos>"])
    }

    @Test("a SentencePiece vocabulary of another architecture is refused, naming the key")
    func otherArchitecture() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-spm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.gguf").path
        var w = GGUFWriter()
        w.set("general.architecture", .string("mistral"))
        w.set("tokenizer.ggml.model", .string("llama"))
        w.set("tokenizer.ggml.tokens", .array(.string, [.string("<unk>"), .string("a")]))
        try w.write(to: path)
        do {
            _ = try LoadedTokenizer.load(path: path)
            Issue.record("accepted a non-Gemma SentencePiece vocabulary")
        } catch let e as InputError {
            #expect("\(e)".contains(path) && "\(e)".contains("tokenizer.ggml.model") && "\(e)".contains("mistral"))
        }
    }
}
