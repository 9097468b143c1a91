public import AsyncHTTPClient
public import Channels
import NIOCore
import NIOHTTP1
import NIOPosix
public import PayhookCore

/// Sends a channel request. The real one is ``HTTPClientTransport``; tests and the simulator
/// can answer in-process.
public protocol QueryTransport: Sendable {
    func send(_ request: ChannelRequest, timeout: Duration) async throws(QueryError) -> ChannelResponse
}

/// AsyncHTTPClient transport. Failures are classified: timeouts, refused or reset
/// connections and TLS failures are transient; an unusable URL is permanent.
public struct HTTPClientTransport: QueryTransport {
    public var client: HTTPClient
    /// Largest response body accepted. Default 1 MiB.
    public var maxResponseBytes: Int

    /// The process's client for the channels' APIs: like `HTTPClient.shared`, but with 64
    /// connections per host instead of 8, so order creation calls and batches of queries do
    /// not queue for a connection (measured: +26% WeChat Pay jsapi orders/s, Benchmarks/README.md).
    /// A channel API's redirect is an error, not something to follow.
    public static let channels: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public init(client: HTTPClient = HTTPClientTransport.channels, maxResponseBytes: Int = 1 << 20) {
        self.client = client
        self.maxResponseBytes = maxResponseBytes
    }

    public func send(_ request: ChannelRequest, timeout: Duration) async throws(QueryError) -> ChannelResponse {
        var http = HTTPClientRequest(url: request.url)
        http.method = HTTPMethod(rawValue: request.method)
        for field in request.headers { http.headers.add(name: field.name, value: field.value) }
        if !request.body.isEmpty { http.body = .bytes(ByteBuffer(bytes: request.body)) }
        let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        do {
            let response = try await client.execute(http, timeout: .milliseconds(milliseconds))
            let body = try await response.body.collect(upTo: maxResponseBytes)
            return ChannelResponse(
                status: Int(response.status.code),
                headers: response.headers.map { HeaderField(name: $0.name, value: $0.value) },
                body: Array(buffer: body)
            )
        } catch {
            throw HTTPClientTransport.classify(error)
        }
    }

    static func classify(_ error: any Error) -> QueryError {
        if let error = error as? HTTPClientError {
            let timeouts: [HTTPClientError] = [.deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout, .tlsHandshakeTimeout]
            if timeouts.contains(error) { return .transient(.timeout, String(describing: error)) }
            let unusable: [HTTPClientError] = [.invalidURL, .emptyHost, .emptyScheme, .missingSocketPath]
            if unusable.contains(error) || String(describing: error).contains("unsupportedScheme") {
                return .permanent(.invalidRequest, String(describing: error))
            }
            return .transient(.connection, String(describing: error))
        }
        if error is NIOConnectionError || error is IOError || error is ChannelError {
            return .transient(.connection, "connection failed")
        }
        if error is CancellationError { return .transient(.timeout, "cancelled") }
        // Unknown transport failures are retried; the retry budget bounds them.
        return .transient(.connection, String(describing: type(of: error)))
    }
}
