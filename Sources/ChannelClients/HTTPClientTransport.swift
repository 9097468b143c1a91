public import AsyncHTTPClient
public import Channels
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
public import PayhookCore
import Synchronization

/// Sends a channel request. The real one is ``HTTPClientTransport``; tests and the simulator
/// can answer in-process.
public protocol QueryTransport: Sendable {
    func send(_ request: ChannelRequest, timeout: Duration) async throws(QueryError) -> ChannelResponse
}

/// AsyncHTTPClient transport. Failures are classified: timeouts, refused or reset
/// connections and TLS failures are transient; an unusable URL is permanent. A channel
/// whose certificate does not verify (another CA, expired, another name) is logged at
/// warning level with the channel and the TLS reason: never a silent pass, never a secret.
public struct HTTPClientTransport: QueryTransport {
    public var client: HTTPClient
    /// Largest response body accepted. Default 1 MiB.
    public var maxResponseBytes: Int
    /// The channel this transport serves, for its log lines. Default nil (not named).
    public var channelID: String?
    /// Where TLS refusals are logged. Default `payhook.channels`.
    public var logger: Logger

    /// The process's client for the channels' APIs: like `HTTPClient.shared`, but with 64
    /// connections per host instead of 8, so order creation calls and batches of queries do
    /// not queue for a connection (measured: +26% WeChat Pay jsapi orders/s, Benchmarks/README.md),
    /// TLS 1.2 or newer, and the system's trust roots. A channel API's redirect is an error,
    /// not something to follow.
    public static let channels: HTTPClient = makeClient(trustRoots: .default)

    public init(client: HTTPClient = HTTPClientTransport.channels, maxResponseBytes: Int = 1 << 20,
                channelID: String? = nil, logger: Logger = Logger(label: "payhook.channels")) {
        self.client = client
        self.maxResponseBytes = maxResponseBytes
        self.channelID = channelID
        self.logger = logger
    }

    /// A PEM bundle (`ca_file`) that does not read as certificates.
    public struct CABundleError: Error, CustomStringConvertible {
        public let problem: String
        public var description: String { problem }
    }

    /// The client that trusts only the certificates of `pem` (a channel's `ca_file`): one per
    /// distinct bundle, made once and kept for the process, like ``channels``.
    public static func client(trustingPEM pem: [UInt8]) throws(CABundleError) -> HTTPClient {
        let certificates: [NIOSSLCertificate]
        do { certificates = try NIOSSLCertificate.fromPEMBytes(pem) } catch {
            throw CABundleError(problem: "does not read as PEM certificates")
        }
        guard !certificates.isEmpty else { throw CABundleError(problem: "holds no PEM certificate") }
        return pinnedClients.withLock { clients in
            if let client = clients[pem] { return client }
            let client = makeClient(trustRoots: .certificates(certificates))
            clients[pem] = client
            return client
        }
    }

    private static let pinnedClients = Mutex<[[UInt8]: HTTPClient]>([:])

    private static func makeClient(trustRoots: NIOSSLTrustRoots) -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        tls.trustRoots = trustRoots
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
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
            let classified = HTTPClientTransport.classify(error)
            if classified.code == .tls {
                logger.warning("channel TLS refused: the query is retried later", metadata: [
                    "channel": "\(channelID ?? "?")", "host": "\(http.url.split(separator: "/").dropFirst().first ?? "")",
                    "error": "\(classified.detail)",
                ])
            }
            throw classified
        }
    }

    static func classify(_ error: any Error) -> QueryError {
        if let reason = tlsReason(error) { return .transient(.tls, reason) }
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

    /// Why the TLS handshake failed, in words, or nil for a failure that is not TLS. The
    /// certificate check reports only that the chain did not verify (BoringSSL's error
    /// queue does not say whether the CA is unknown or the certificate expired).
    static func tlsReason(_ error: any Error) -> String? {
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "the channel's certificate is for another host name (\(error))"
        }
        if let error = error as? NIOSSLError {
            switch error {
            case .handshakeFailed(let underlying):
                let text = String(describing: underlying)
                if text.contains("CERTIFICATE_VERIFY_FAILED") {
                    return "the channel's certificate does not verify against the trusted roots "
                        + "(unknown CA, expired or not yet valid)"
                }
                if text.contains("WRONG_VERSION_NUMBER") || text.contains("UNSUPPORTED_PROTOCOL")
                    || text.contains("TLSV1_ALERT_PROTOCOL_VERSION") {
                    return "the channel does not speak TLS 1.2 or newer (\(text))"
                }
                return "TLS handshake failed (\(text))"
            default:
                return "TLS failed (\(error))"
            }
        }
        if error is NIOSSLExtraError || error is BoringSSLError { return "TLS failed (\(error))" }
        return nil
    }
}
