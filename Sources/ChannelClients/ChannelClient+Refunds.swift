public import Channels
public import Foundation
public import PayhookCore

extension ChannelClient {
    /// The refund call, sent and its answer verified. A transient error means the outcome is
    /// unknown: the refund may have happened (ask with `queryRefund`), never "failed".
    public func refund(_ refund: ChannelRefundRequest) async throws(QueryError) -> RefundEvidence {
        let request = try adapter.refundRequest(refund, now: Date())
        let response = try await send(request)
        return try adapter.refundResult(response, refund: refund, now: Date())
    }

    /// The channel's refund query (points: the identical reverse call).
    public func queryRefund(_ refund: ChannelRefundRequest) async throws(QueryError) -> RefundQueryResult {
        let request = try adapter.refundQueryRequest(refund, now: Date())
        let response = try await send(request)
        return try adapter.refundQueryResult(response, refund: refund, now: Date())
    }
}
