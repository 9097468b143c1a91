public import Channels
public import Foundation
public import PayhookCore

/// One channel's API as Payhook calls it: the adapter's signed requests and verified
/// answers, sent through a transport. Signing and verifying are CPU work and run on the
/// caller's thread; only `send` waits on the network.
public struct ChannelClient: Sendable {
    public let adapter: AnyChannelAdapter
    public let transport: any QueryTransport

    public init(_ adapter: AnyChannelAdapter, transport: any QueryTransport = HTTPClientTransport()) {
        self.adapter = adapter
        self.transport = transport
    }

    public var channelID: String { adapter.channelID }

    /// Step 1: the signed order-query request.
    public func queryRequest(outTradeNo: String, now: Date = Date()) throws(QueryError) -> ChannelRequest {
        try adapter.queryRequest(outTradeNo: outTradeNo, now: now)
    }

    /// Step 2: the request sent, within the channel's `query_timeout_ms`.
    public func send(_ request: ChannelRequest) async throws(QueryError) -> ChannelResponse {
        try await transport.send(request, timeout: adapter.queryTimeout)
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
    public func makeClient(transport: any QueryTransport = HTTPClientTransport()) -> ChannelClient {
        ChannelClient(makeAdapter(), transport: transport)
    }
}
