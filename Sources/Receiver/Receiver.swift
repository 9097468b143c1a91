public import CallbackQueue
import Channels
import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HTTPTypes
public import Logging
import NIOCore
import NIOHTTP1
public import NIOSSL
import Orders
import PayhookCore
import Postgres
public import Prometheus

/// The thin HTTP receiver: captures each callback verbatim, hands it to the group-commit
/// enqueuer, and acknowledges in the channel's own format only after the commit. It does
/// not parse or verify payloads.
public struct Receiver: Sendable {
    public let configuration: Configuration
    let enqueuer: Enqueuer
    let readiness: Readiness
    /// The browser returns' pages: verification and the order's state.
    let returns: ReturnPages?
    let registry: PrometheusCollectorRegistry
    let metrics: ReceiverMetrics
    /// Each configured channel id with its type and its success answer, built once.
    let routes: [String: ChannelRoute]
    let logger: Logger

    struct ChannelRoute: Sendable {
        let type: ChannelType
        /// The success answer: its body buffer is shared, never copied.
        let successResponse: Response
        let allowedIPs: [CIDR]
        /// The channel's ingest budgets; nil when none can refuse anything.
        let gate: ChannelGate?
        /// 429 and 403 in the channel's failure format, built once: a flood costs little.
        let tooManyRequests: Response
        let forbidden: Response
    }

    public init(configuration: Configuration, enqueuer: Enqueuer, readiness: Readiness, returns: ReturnPages?,
                registry: PrometheusCollectorRegistry, metrics: ReceiverMetrics, logger: Logger) {
        self.configuration = configuration
        self.enqueuer = enqueuer
        self.readiness = readiness
        self.returns = returns
        self.registry = registry
        self.metrics = metrics
        self.logger = logger
        let limits = configuration.ingestLimits
        routes = Dictionary(uniqueKeysWithValues: configuration.channels.map { id, type in
            let allowedIPs = configuration.allowedIPs[id] ?? []
            let limitsAddresses = !allowedIPs.isEmpty && limits.outsideAllowlistPerSecond > 0
            var tooMany = response(ChannelResponse.failure(for: type, status: 429, message: "too many requests"))
            tooMany.headers[.retryAfter] = "1"
            return (id, ChannelRoute(
                type: type, successResponse: response(ChannelResponse.acknowledgement(for: type)), allowedIPs: allowedIPs,
                gate: limitsAddresses || limits.channelPerSecond > 0 ? ChannelGate(limits: limits) : nil,
                tooManyRequests: tooMany,
                forbidden: response(ChannelResponse.failure(for: type, status: 403, message: "source address not allowed"))))
        })
    }

    public func buildRouter() -> Router<ReceiverContext> {
        let router = Router(context: ReceiverContext.self)
        router.post("/notify/:channel") { request, context in
            try await receive(request, context: context, kind: .notify)
        }
        router.get("/return/:channel") { request, context in
            try await receive(request, context: context, kind: .return)
        }
        for method in [HTTPRequest.Method.get, .put, .delete, .patch] {
            router.on("/notify/:channel", method: method) { _, _ in Response(status: .methodNotAllowed) }
        }
        for method in [HTTPRequest.Method.post, .put, .delete, .patch] {
            router.on("/return/:channel", method: method) { _, _ in Response(status: .methodNotAllowed) }
        }
        Self.addOperationsRoutes(to: router, registry: registry)
        router.get("/readyz") { _, _ in
            readiness.isReady ? text("ready\n") : text("database unreachable\n", status: .serviceUnavailable)
        }
        return router
    }

    /// `/healthz` and `/metrics` (Prometheus text), shared by every process that serves HTTP.
    public static func addOperationsRoutes<Context: RequestContext>(to router: Router<Context>,
                                                                      registry: PrometheusCollectorRegistry) {
        router.get("/healthz") { _, _ in text("ok\n") }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }

    /// An application serving only the operations routes (for `payhook work`); `onListening`
    /// runs once its socket is bound.
    public static func operationsApplication(host: String, port: Int, registry: PrometheusCollectorRegistry,
                                             logger: Logger,
                                             onListening: @escaping @Sendable () -> Void = {}) -> some ApplicationProtocol {
        let router = Router()
        addOperationsRoutes(to: router, registry: registry)
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
                           onServerRunning: { _ in onListening() }, logger: logger)
    }

    /// The application, with read timeouts so stalled clients are cut off; over TLS when
    /// `tls` is given (`receiver.tls`), the raw-header tap then reading decrypted bytes.
    /// `onListening` runs once its socket is bound (systemd's `READY=1` waits for it).
    public func buildApplication(tls: TLSConfiguration? = nil,
                                 onListening: @escaping @Sendable () -> Void = {}) throws -> some ApplicationProtocol {
        let http1 = HTTPServerBuilder.verbatimHeadersHTTP1(
            configuration: .init(idleTimeout: TimeAmount(configuration.readTimeout)),
            readTimeout: TimeAmount(configuration.readTimeout), metrics: metrics)
        return Application(
            router: buildRouter(),
            server: try tls.map { try .tls(http1, tlsConfiguration: $0) } ?? http1,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                 serverName: nil),
            onServerRunning: { _ in onListening() },
            logger: logger)
    }

    private func receive(_ request: Request, context: ReceiverContext, kind: RawCallback.Kind) async throws -> Response {
        let channelID = try context.parameters.require("channel")
        guard let route = routes[channelID] else {
            metrics.request(channel: "unknown", status: 404)
            return text("unknown channel\n", status: .notFound)
        }
        let peer = context.remoteAddress?.ipAddress
        let source = peer.map {
            ClientAddress.resolve(peer: $0, forwardedFor: request.headers[values: .xForwardedFor],
                                  trustedProxies: configuration.trustedProxies)
        }
        if let refusal = refusal(route, channelID: channelID, source: source, kind: kind) { return refusal }
        let limit = configuration.maxBodyBytes
        // The first Content-Length field, without the joined-values string HTTPFields' subscript builds.
        let contentLength = request.headers.first { $0.name == .contentLength }?.value
        let declared = contentLength.flatMap { Int($0) }
        if let declared, declared > limit {
            return tooLarge(channelID)
        }
        let body: ByteBuffer
        do {
            // A request not whole within read_timeout_seconds has its connection cut
            // (RequestDeadlineHandler): the read fails here and nothing is stored.
            body = try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return tooLarge(channelID)
        } catch is HTTPParserError {
            metrics.request(channel: channelID, status: 400)
            return text("malformed request\n", status: .badRequest)
        } catch {
            metrics.request(channel: channelID, status: 408)
            return text("request incomplete\n", status: .requestTimeout)
        }
        if let declared, declared != body.readableBytes {
            // The decoder never ends a body short of its Content-Length; never store one that is.
            metrics.request(channel: channelID, status: 400)
            return text("body shorter than Content-Length\n", status: .badRequest)
        }
        let callback = RawCallback(
            channel: channelID, kind: kind, method: request.method.rawValue, path: request.uri.path,
            query: request.uri.query ?? "", headers: capturedHeaders(request), body: Array(buffer: body),
            sourceIP: source, peerIP: peer, receivedAt: Date())
        if kind == .return, let returns {
            return await returns.page(for: callback, enqueue: { try await enqueuer.enqueue(callback) })
        }
        do {
            let id = try await enqueuer.enqueue(callback)
            logger.debug("callback stored", metadata: ["callback_id": "\(id)", "channel": "\(channelID)"])
            metrics.request(channel: channelID, status: kind == .notify ? Int(route.successResponse.status.code) : 200)
            return kind == .notify ? route.successResponse : ReturnPages.page(.confirming, outTradeNo: request.uri.queryParameters.get("out_trade_no"), returnURL: nil)
        } catch {
            logger.error("callback not stored", metadata: ["channel": "\(channelID)", "error": "\(error)"])
            metrics.unavailable(channel: channelID)
            metrics.request(channel: channelID, status: 503)
            return response(ChannelResponse.failure(for: route.type, status: 503, message: "temporarily unavailable"))
        }
    }

    /// The headers as sent: the raw head where a value was not UTF-8 and it agrees with the
    /// decoded one. Otherwise the decoded fields, which are then verbatim; HTTPTypes moves
    /// `Host` into the request's authority, so it is put back in front, where HTTP/1.1
    /// clients send it.
    private func capturedHeaders(_ request: Request) -> [HeaderField] {
        if let raw = RawRequestHead.current,
           RawRequestHead.agrees(raw, authority: request.head.authority, fields: request.headers) {
            return raw
        }
        var captured: [HeaderField] = []
        captured.reserveCapacity(request.headers.count + 1)
        if let host = request.head.authority { captured.append(.init(name: "Host", value: host)) }
        for field in request.headers { captured.append(.init(name: field.name.rawName, value: field.value)) }
        return captured
    }

    /// The answer when the channel does not take this request (before its body is read),
    /// nil when it does. Browser returns come from buyers, so only notifies are held to
    /// `allowed_ips`; both are held to the budgets.
    private func refusal(_ route: ChannelRoute, channelID: String, source: String?, kind: RawCallback.Kind) -> Response? {
        let outside = !route.allowedIPs.isEmpty && !(source.map { route.allowedIPs.containsAddress($0) } ?? false)
        if outside && kind == .notify && configuration.enforceAllowedIPs {
            metrics.refused(channel: channelID, reason: "outside_allowlist")
            metrics.request(channel: channelID, status: 403)
            return route.forbidden
        }
        guard let gate = route.gate else { return nil }
        let reason: String
        switch gate.admit(address: source ?? "", outside: outside) {
        case .admit: return nil
        case .addressLimited: reason = "address_rate"
        case .channelLimited: reason = "channel_rate"
        }
        metrics.refused(channel: channelID, reason: reason)
        metrics.request(channel: channelID, status: 429)
        return kind == .notify ? route.tooManyRequests : text("too many requests\n", status: .tooManyRequests)
    }

    private func tooLarge(_ channelID: String) -> Response {
        metrics.bodyTooLarge(channel: channelID)
        metrics.request(channel: channelID, status: 413)
        return text("body too large\n", status: .contentTooLarge)
    }
}

private func response(_ acknowledgement: ChannelResponse) -> Response {
    var headers = HTTPFields()
    for field in acknowledgement.headers {
        if let name = HTTPField.Name(field.name) { headers.append(HTTPField(name: name, value: field.value)) }
    }
    return Response(status: .init(code: acknowledgement.status), headers: headers,
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: acknowledgement.body)))
}

func text(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
             body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
}


extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
