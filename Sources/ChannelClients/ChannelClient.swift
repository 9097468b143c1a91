public import Channels
public import Foundation
public import Logging
public import PayhookCore

/// One channel's API as Payhook calls it: the adapter's signed requests and verified
/// answers, sent through a transport. Signing and verifying are CPU work and run on the
/// caller's thread; only `send` waits on the network.
public struct ChannelClient: Sendable {
    public let adapter: AnyChannelAdapter
    public let transport: any QueryTransport
    /// Where certificate downloads (Alipay certificate mode) are logged. Default `payhook.channels`.
    public let logger: Logger

    public init(_ adapter: AnyChannelAdapter, transport: any QueryTransport = HTTPClientTransport(),
                logger: Logger = Logger(label: "payhook.channels")) {
        self.adapter = adapter
        self.transport = transport
        self.logger = logger
    }

    public var channelID: String { adapter.channelID }

    /// Step 1: the signed order-query request.
    public func queryRequest(outTradeNo: String, now: Date = Date()) throws(QueryError) -> ChannelRequest {
        try adapter.queryRequest(outTradeNo: outTradeNo, now: now)
    }

    /// Step 2: the request sent, within the channel's `query_timeout_ms`. In Alipay's
    /// certificate mode an answer naming an `alipay_cert_sn` with no trusted key first has that
    /// certificate downloaded and checked (its chain, its dates), so step 3 can verify it; a
    /// refused certificate makes the call a transient failure, logged at error level.
    public func send(_ request: ChannelRequest) async throws(QueryError) -> ChannelResponse {
        let response = try await transport.send(request, timeout: adapter.queryTimeout)
        if case .alipay(let alipay) = adapter, let sn = alipay.unknownCertificateSN(in: response) {
            try await downloadCertificate(sn, alipay)
        }
        return response
    }

    private func downloadCertificate(_ sn: String, _ alipay: AlipayAdapter) async throws(QueryError) {
        let metadata: Logger.Metadata = ["channel": "\(alipay.channelID)", "alipay_cert_sn": "\(sn)"]
        do throws(QueryError) {
            let request = try alipay.certificateDownloadRequest(sn: sn, now: Date())
            let response = try await transport.send(request, timeout: adapter.queryTimeout)
            try await alipay.acceptDownloadedCertificate(response, sn: sn, now: Date())
            logger.notice("Alipay certificate downloaded, chain and dates verified: now trusted", metadata: metadata)
        } catch {
            var metadata = metadata
            metadata["error"] = "\(error)"
            logger.error("Alipay certificate refused or not downloaded: the answer naming it is not used; retried later",
                         metadata: metadata)
            throw QueryError(.transient, error.code, error.detail)
        }
    }

    /// Step 3: the answer, its signature verified.
    public func queryResult(_ response: ChannelResponse, outTradeNo: String,
                            now: Date = Date()) throws(QueryError) -> OrderQueryResult {
        try adapter.queryResult(response, outTradeNo: outTradeNo, now: now)
    }

    /// The three steps in turn, for callers on a task (the simulator's checks, tests). The
    /// workers run the same steps themselves, a batch at a time (`QueryRound`).
    public func queryOrder(outTradeNo: String) async throws(QueryError) -> OrderQueryResult {
        let request = try queryRequest(outTradeNo: outTradeNo)
        let response = try await send(request)
        return try queryResult(response, outTradeNo: outTradeNo)
    }
}

extension ChannelConfiguration {
    /// The client for this channel: its adapter over `transport` (default AsyncHTTPClient's shared client).
    public func makeClient(transport: any QueryTransport = HTTPClientTransport(),
                           logger: Logger = Logger(label: "payhook.channels")) -> ChannelClient {
        ChannelClient(makeAdapter(), transport: transport, logger: logger)
    }
}
