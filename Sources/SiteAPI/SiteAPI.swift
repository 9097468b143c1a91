public import Hummingbird
import HTTPTypes
import HummingbirdTLS
public import Logging
import NIOCore
public import NIOSSL
import Orders
public import SiteOrders

/// The site-facing API on its own listener (`api.listen`), never on the channels' notify
/// port: create, close, refund and look up orders. Every route needs the bearer token; every
/// answer is JSON, errors as `{"code","message"}` (`docs/openapi.yaml`).
public struct SiteAPI: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 8081
        /// Largest request body. Default 16 KiB.
        public var maxBodyBytes = 16_384
        public init() {}
    }

    public let configuration: Configuration
    let desk: OrderDesk
    let access: AdminAccess
    let logger: Logger

    public init(configuration: Configuration, desk: OrderDesk, access: AdminAccess, logger: Logger) {
        self.configuration = configuration
        self.desk = desk
        self.access = access
        self.logger = logger
    }

    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.middlewares.add(ErrorMiddleware(access: access))
        router.post("/v1/orders") { request, _ in
            try Self.requireJSON(request)
            let body = try await Self.body(request, limit: configuration.maxBodyBytes)
            let created = try await desk.create(body: body)
            let status: HTTPResponse.Status = created.confirming ? .accepted : created.kind == .new ? .created : .ok
            return Self.json(OrderView.created(created), status: status)
        }
        router.get("/v1/orders/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let (order, events, refunds) = try await desk.lookup(id) else { throw OrderError.orderNotFound() }
            return Self.json(OrderView.found(order, events: events, refunds: refunds))
        }
        router.post("/v1/orders/:id/refunds") { request, context in
            let id = try context.parameters.require("id")
            try Self.requireJSON(request)
            let body = try await Self.body(request, limit: configuration.maxBodyBytes)
            let refunded = try await desk.refund(id, body: body)
            let status: HTTPResponse.Status = refunded.confirming ? .accepted : refunded.kind == .new ? .created : .ok
            return Self.json(OrderView.refunded(refunded), status: status)
        }
        router.post("/v1/orders/:id/close") { _, context in
            let id = try context.parameters.require("id")
            return Self.json(OrderView.closed(try await desk.close(id)))
        }
        return router
    }

    /// The application; over TLS when `tls` is given (`api.tls`); `onListening` runs once
    /// its socket is bound.
    public func buildApplication(tls: TLSConfiguration? = nil,
                                 onListening: @escaping @Sendable () -> Void = {}) throws -> some ApplicationProtocol {
        Application(router: buildRouter(),
                    server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
                    configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
                    onServerRunning: { _ in onListening() },
                    logger: logger)
    }

    static func requireJSON(_ request: Request) throws(OrderError) {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type == "application/json" || type.hasPrefix("application/json;") else { throw .unsupportedMediaType() }
    }

    static func body(_ request: Request, limit: Int) async throws -> [UInt8] {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw OrderError.bodyTooLarge(limit)
        }
        do {
            return Array(buffer: try await request.body.collect(upTo: limit))
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw OrderError.bodyTooLarge(limit)
        }
    }

    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The bearer token before any route, and every failure as the API's JSON error: an
/// `OrderError` as itself, an unknown route as `not_found`, anything else as a `500`
/// that says nothing about the cause (it is logged).
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let access: AdminAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard access.allows(authorization: request.headers[.authorization]) else {
            return answer(.unauthorized())
        }
        do {
            return try await next(request, context)
        } catch let error as OrderError {
            return answer(error)
        } catch let error as HTTPError where error.status == .notFound {
            // A route the API has, with a method it does not: 405 naming the methods it takes.
            if let allowed = Self.allowedMethods(path: request.uri.path) {
                var response = answer(.methodNotAllowed())
                response.headers[.allow] = allowed
                return response
            }
            return answer(.notFound())
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return answer(.bodyTooLarge(0))
        } catch {
            context.logger.error("site API request failed", metadata: ["error": "\(type(of: error))"])
            return answer(OrderError(500, "internal_error", "the request failed; it is logged"))
        }
    }

    /// The methods of the route `path` names, or nil when the API has no such route.
    static func allowedMethods(path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0].isEmpty, parts[1] == "v1", parts[2] == "orders" else { return nil }
        switch parts.count {
        case 3: return "POST"
        case 4 where !parts[3].isEmpty: return "GET"
        case 5 where !parts[3].isEmpty && (parts[4] == "close" || parts[4] == "refunds"): return "POST"
        default: return nil
        }
    }

    private func answer(_ error: OrderError) -> Response {
        var response = SiteAPI.json(OrderView.error(error), status: HTTPResponse.Status(code: error.status))
        if error.status == 401 { response.headers[.wwwAuthenticate] = "Bearer" }
        return response
    }
}
