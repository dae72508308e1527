import Foundation
import AblabCore
import ModelRuntime
import Hummingbird
import NIOCore

/// An error answered to the client as OpenAI does: `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error",
                param: String? = nil, code: String? = nil) {
        self.status = status; self.message = message; self.type = type; self.param = param; self.code = code
    }

    static func badRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(.badRequest, message, param: param, code: code)
    }

    var json: JSONOut {
        .object([("error", .object([
            ("message", .string(message)), ("type", .string(type)),
            ("param", param.map { .string($0) } ?? .null), ("code", code.map { .string($0) } ?? .null),
        ]))])
    }

    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: json.text)))
    }
}

/// How `ablab serve` listens and what it allows.
public struct ServeConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0: any free port (the port taken is reported through `onListening`).
    public var port: Int = 8000
    /// When set, every request must carry `Authorization: Bearer <key>`.
    public var apiKey: String?
    /// The model id clients name in `model` (and that `/v1/models` lists).
    public var modelName: String
    /// Request bodies above this many bytes get 413.
    public var maxBodyBytes: Int = 1 << 20
    /// `max_tokens` when the request gives none (never beyond the context).
    public var defaultMaxTokens: Int = 256
    /// Prompt plus completion tokens allowed per request.
    public var contextLength: Int

    public init(modelName: String, contextLength: Int) {
        self.modelName = modelName; self.contextLength = contextLength
    }
}

/// The tokenizer side of the served model, shared by the request handlers (encoding is serialised).
final class Encoder: @unchecked Sendable {
    private let model: ChatModel
    private let lock = NSLock()
    init(_ model: ChatModel) { self.model = model }
    func chat(_ messages: [ChatMessage]) -> [Int] { lock.lock(); defer { lock.unlock() }; return model.encodeChat(messages) }
    func raw(_ text: String) -> [Int] {
        lock.lock(); defer { lock.unlock() }
        return model.tokenizer.encode(text).map(Int.init)
    }
}

/// An OpenAI-compatible HTTP server (`/v1/models`, `/v1/chat/completions`, `/v1/completions`) over an
/// `Engine`. Every failure of a request is answered with an OpenAI-style JSON error; none stops the
/// server. SIGINT or SIGTERM stops accepting connections, lets every request in flight finish (streams
/// included), then returns.
public final class OpenAIServer: Sendable {
    public let configuration: ServeConfiguration
    let engine: Engine
    let encoder: Encoder
    let created = Int(Date().timeIntervalSince1970)
    private let counter = Counter()
    private static let log = AblabLog.logger("serve")

    public init(model: ChatModel, engine: Engine, configuration: ServeConfiguration) {
        self.configuration = configuration
        self.engine = engine
        self.encoder = Encoder(model)
    }

    /// Serves until SIGINT/SIGTERM; `onListening(host, port)` is called once the socket is bound.
    public func run(onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }) async throws {
        let router = Router()
        router.add(middleware: Gate(apiKey: configuration.apiKey))
        router.get("/v1/models") { [self] _, _ in self.models() }
        router.get("/v1/models/:id") { [self] _, ctx in
            let id = ctx.parameters.get("id") ?? ""
            guard id == configuration.modelName else { throw Self.unknownModel(id) }
            return Self.json(.object(self.modelEntry))
        }
        router.post("/v1/chat/completions") { [self] req, ctx in try await self.complete(req, chat: true) }
        router.post("/v1/completions") { [self] req, ctx in try await self.complete(req, chat: false) }
        router.get("/health") { _, _ in Self.json(.object([("status", .string("ok"))])) }
        let host = configuration.host
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: "ablab"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                onListening(host, port)
            },
            logger: AblabLog.logger("serve.http"))
        try await app.runService(gracefulShutdownSignals: [.sigint, .sigterm])
    }

    // MARK: responses

    static func json(_ value: JSONOut, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value.text)))
    }

    var modelEntry: [(String, JSONOut)] {
        [("id", .string(configuration.modelName)), ("object", .string("model")), ("created", .int(created)), ("owned_by", .string("ablab"))]
    }

    func models() -> Response {
        Self.json(.object([("object", .string("list")), ("data", .array([.object(modelEntry)]))]))
    }

    static func unknownModel(_ id: String) -> APIError {
        APIError(.notFound, "The model '\(id)' does not exist; this server serves one model (see /v1/models)",
                 param: "model", code: "model_not_found")
    }

    /// One chat or text completion, streamed or not.
    func complete(_ request: Request, chat: Bool) async throws -> Response {
        var request = request
        let tooLarge = APIError(.contentTooLarge, "The request body is larger than \(configuration.maxBodyBytes) bytes", code: "request_too_large")
        if let n = request.headers[.contentLength].flatMap(Int.init), n > configuration.maxBodyBytes { throw tooLarge }
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: configuration.maxBodyBytes) } catch let e as HTTPError where e.status == .contentTooLarge {
            throw tooLarge
        } catch is NIOTooManyBytesError { throw tooLarge }
        let parsed = try ParsedRequest(body: Data(buffer: body), chat: chat, configuration: configuration)
        guard parsed.model == configuration.modelName else { throw Self.unknownModel(parsed.model) }
        let tokens: [Int]
        switch parsed.input {
        case .messages(let m): tokens = encoder.chat(m)
        case .text(let t): tokens = encoder.raw(t)
        }
        guard !tokens.isEmpty else { throw APIError.badRequest("The prompt is empty", param: chat ? "messages" : "prompt") }
        let context = configuration.contextLength
        let maxTokens = parsed.maxTokens ?? min(configuration.defaultMaxTokens, context - tokens.count)
        if tokens.count + max(maxTokens, 1) > context {
            throw APIError.badRequest(
                "This model's maximum context length is \(context) tokens. However, you requested \(tokens.count + maxTokens) tokens (\(tokens.count) in the \(chat ? "messages" : "prompt"), \(maxTokens) in the completion). Please reduce the length of the \(chat ? "messages" : "prompt") or the completion.",
                param: chat ? "messages" : "prompt", code: "context_length_exceeded")
        }
        let decode = DecodeRequest(tokens: tokens, maxTokens: maxTokens, sampling: parsed.sampling, stop: parsed.stop,
                                   logprobs: parsed.logprobs, ignoreEOS: parsed.ignoreEOS)
        let id = (chat ? "chatcmpl-" : "cmpl-") + counter.next()
        let events = engine.submit(decode)
        if parsed.stream {
            return streamResponse(events, id: id, chat: chat, parsed: parsed)
        }
        var text = ""
        var lps: [TokenLogprob] = []
        var finish: (StopReason, Int, Int)? = nil
        for await e in events {
            switch e {
            case .token(let t, let lp): text += t; if let lp { lps.append(lp) }
            case .finished(let r, let p, let c): finish = (r, p, c)
            case .failed(let why): throw APIError(.internalServerError, why, type: "server_error")
            }
        }
        guard let finish else { throw APIError(.internalServerError, "the request was cancelled", type: "server_error") }
        let usage = Self.usage(finish.1, finish.2)
        let choice: JSONOut
        if chat {
            choice = .object([("index", .int(0)),
                              ("message", .object([("role", .string("assistant")), ("content", .string(text))])),
                              ("logprobs", parsed.logprobs == nil ? .null : Self.chatLogprobs(lps)),
                              ("finish_reason", .string(finish.0.rawValue))])
        } else {
            choice = .object([("index", .int(0)), ("text", .string(text)),
                              ("logprobs", parsed.logprobs == nil ? .null : Self.completionLogprobs(lps, offset: 0)),
                              ("finish_reason", .string(finish.0.rawValue))])
        }
        return Self.json(.object([("id", .string(id)), ("object", .string(chat ? "chat.completion" : "text_completion")),
                                  ("created", .int(Int(Date().timeIntervalSince1970))), ("model", .string(configuration.modelName)),
                                  ("choices", .array([choice])), ("usage", usage)]))
    }

    static func usage(_ p: Int, _ c: Int) -> JSONOut {
        .object([("prompt_tokens", .int(p)), ("completion_tokens", .int(c)), ("total_tokens", .int(p + c))])
    }

    static func alternative(_ a: TokenAlternative) -> [(String, JSONOut)] {
        [("token", .string(a.token)), ("logprob", .number(a.logprob)), ("bytes", .array(a.bytes.map { .int(Int($0)) }))]
    }

    /// Chat format: `{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}`.
    static func chatLogprobs(_ lps: [TokenLogprob]) -> JSONOut {
        .object([("content", .array(lps.map { lp in
            .object(alternative(lp.chosen) + [("top_logprobs", .array(lp.top.map { .object(alternative($0)) }))])
        }))])
    }

    /// Completions format: `{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}`.
    static func completionLogprobs(_ lps: [TokenLogprob], offset: Int) -> JSONOut {
        var offsets: [JSONOut] = []
        var at = offset
        for lp in lps { offsets.append(.int(at)); at += lp.chosen.token.utf8.count }
        return .object([("tokens", .array(lps.map { .string($0.chosen.token) })),
                        ("token_logprobs", .array(lps.map { .number($0.chosen.logprob) })),
                        ("top_logprobs", .array(lps.map { lp in .object(lp.top.map { ($0.token, .number($0.logprob)) }) })),
                        ("text_offset", .array(offsets))])
    }

    /// Server-sent events: one `data: {chunk}` per token, the finish reason in the last chunk, then
    /// `data: [DONE]`. A failure mid-stream is sent as `data: {"error": …}` and ends the stream.
    func streamResponse(_ events: AsyncStream<DecodeEvent>, id: String, chat: Bool, parsed: ParsedRequest) -> Response {
        let model = configuration.modelName
        let created = Int(Date().timeIntervalSince1970)
        let includeUsage = parsed.includeUsage
        let wantLogprobs = parsed.logprobs != nil
        @Sendable func chunk(_ choice: [(String, JSONOut)], usage: JSONOut? = nil) -> ByteBuffer {
            var o: [(String, JSONOut)] = [("id", .string(id)), ("object", .string(chat ? "chat.completion.chunk" : "text_completion")),
                                          ("created", .int(created)), ("model", .string(model)),
                                          ("choices", .array(choice.isEmpty ? [] : [.object(choice)]))]
            if let usage { o.append(("usage", usage)) } else if includeUsage { o.append(("usage", .null)) }
            return ByteBuffer(string: "data: " + JSONOut.object(o).text + "\n\n")
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            if chat {
                try await writer.write(chunk([("index", .int(0)), ("delta", .object([("role", .string("assistant")), ("content", .string(""))])),
                                              ("logprobs", .null), ("finish_reason", .null)]))
            }
            var offset = 0
            for await e in events {
                switch e {
                case .token(let t, let lp):
                    let lpJSON: JSONOut = !wantLogprobs ? .null
                        : chat ? Self.chatLogprobs(lp.map { [$0] } ?? []) : Self.completionLogprobs(lp.map { [$0] } ?? [], offset: offset)
                    if let lp { offset += lp.chosen.token.utf8.count }
                    if t.isEmpty && !wantLogprobs { continue }
                    if chat {
                        try await writer.write(chunk([("index", .int(0)), ("delta", .object([("content", .string(t))])),
                                                      ("logprobs", lpJSON), ("finish_reason", .null)]))
                    } else {
                        try await writer.write(chunk([("index", .int(0)), ("text", .string(t)), ("logprobs", lpJSON), ("finish_reason", .null)]))
                    }
                case .finished(let r, let p, let c):
                    if chat {
                        try await writer.write(chunk([("index", .int(0)), ("delta", .object([])), ("logprobs", .null),
                                                      ("finish_reason", .string(r.rawValue))]))
                    } else {
                        try await writer.write(chunk([("index", .int(0)), ("text", .string("")), ("logprobs", .null),
                                                      ("finish_reason", .string(r.rawValue))]))
                    }
                    if includeUsage { try await writer.write(chunk([], usage: Self.usage(p, c))) }
                case .failed(let why):
                    let err = APIError(.internalServerError, why, type: "server_error")
                    try await writer.write(ByteBuffer(string: "data: " + err.json.text + "\n\n"))
                }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}

/// Ids for responses: a process-wide counter in hex, prefixed by the process id.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    private let prefix = String(getpid(), radix: 16)
    func next() -> String { lock.lock(); defer { lock.unlock() }; n += 1; return "\(prefix)-\(String(n, radix: 16))" }
}

/// Checks the API key and turns every error into an OpenAI-style JSON answer.
struct Gate<Context: RequestContext>: RouterMiddleware {
    let apiKey: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let apiKey {
            let given = request.headers[.authorization]
            guard given == "Bearer " + apiKey else {
                return APIError(.unauthorized, given == nil ? "No API key given; send the header 'Authorization: Bearer <key>'"
                                                            : "Incorrect API key provided",
                                type: "invalid_request_error", code: "invalid_api_key").response
            }
        }
        do {
            return try await next(request, context)
        } catch let e as APIError {
            return e.response
        } catch let e as HTTPError {
            switch e.status {
            case .notFound:
                return APIError(.notFound, "No route \(request.method.rawValue) \(request.uri.path); this server has GET /v1/models, POST /v1/chat/completions and POST /v1/completions",
                                code: "not_found").response
            case .contentTooLarge:
                return APIError(.contentTooLarge, "The request body is too large", code: "request_too_large").response
            default:
                return APIError(e.status, e.body ?? "\(e.status)", type: e.status.code >= 500 ? "server_error" : "invalid_request_error").response
            }
        } catch {
            return APIError(.internalServerError, "\(error)", type: "server_error").response
        }
    }
}
