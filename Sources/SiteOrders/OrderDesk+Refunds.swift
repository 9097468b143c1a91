public import ChannelClients
public import Channels
import Foundation
import Logging
public import Orders
public import PayhookCore
import Postgres

extension OrderDesk {
    /// What a refund request answered.
    public struct Refunded: Sendable {
        public var kind: Created.Kind
        public var order: SiteOrderStore.StoredOrder
        public var refund: RefundRecord
        /// The channel has not said how the refund ended (a timeout, a 5xx, `PROCESSING`):
        /// the same request again asks it, and its refund notify settles it (`202`).
        public var confirming: Bool { refund.status == .processing }
    }

    // MARK: Refund

    /// `POST /v1/orders/{id}/refunds`: recorded as `processing` first, then the channel's
    /// refund call; its answer is applied through the same refund state machine as a
    /// refund notify. The same request again answers the same refund (asking the channel
    /// while it is still processing); another body under the same number is `refund_conflict`.
    public func refund(_ id: String, body: [UInt8]) async throws(OrderError) -> Refunded {
        let request = try RefundRequest.parse(body)
        guard let order = try await db({ try SiteOrderStore.find(id, on: $0) }) else { throw .orderNotFound() }
        guard let client = clients[order.channel] else { throw .unknownChannel(order.channel) }
        let outTradeNo = order.outTradeNo
        let digest = request.digest(outTradeNo: outTradeNo)
        let outcome = try await db {
            try RefundStore.begin(outTradeNo: outTradeNo, refundNo: request.outRefundNo, amountMinor: request.amountMinor,
                                  reason: request.reason, digest: digest, on: $0)
        }
        let channelRefund = ChannelRefundRequest(
            outTradeNo: outTradeNo, refundNo: request.outRefundNo, amountMinor: request.amountMinor,
            orderAmountMinor: order.amountMinor, currency: order.currency, reason: request.reason,
            notifyURL: urls.notifyURL(channel: order.channel))
        switch outcome {
        case .orderNotFound: throw .orderNotFound()
        case .conflict: throw .refundConflict()
        case .notRefundable(let status): throw .orderNotRefundable(status.rawValue)
        case .exceedsPaid(let remaining): throw .refundExceedsPaid(Money.format(minorUnits: remaining))
        case .repeated(let record) where record.status != .processing:
            return try await refundAnswer(.repeated, outTradeNo: outTradeNo, refundNo: request.outRefundNo)
        case .repeated:
            return try await confirmRefund(channelRefund, client: client, kind: .repeated)
        case .begun:
            return try await callRefund(channelRefund, client: client, kind: .new)
        }
    }

    /// The refund call. A transient failure leaves the refund `processing` (its outcome is
    /// unknown: the money may have moved), a refusal marks it `failed`.
    private func callRefund(_ refund: ChannelRefundRequest, client: ChannelClient,
                            kind: Created.Kind) async throws(OrderError) -> Refunded {
        let evidence: RefundEvidence
        do { evidence = try await client.refund(refund) } catch where error.isTransient {
            logger.warning("refund call failed; the refund stays processing", metadata: [
                "channel": "\(client.channelID)", "out_trade_no": "\(refund.outTradeNo)", "error": "\(error)",
            ])
            return try await refundAnswer(kind, outTradeNo: refund.outTradeNo, refundNo: refund.refundNo)
        } catch {
            logger.error("channel refused the refund", metadata: [
                "channel": "\(client.channelID)", "out_trade_no": "\(refund.outTradeNo)", "error": "\(error)",
            ])
            let detail = error.description
            try await db { try RefundStore.fail(outTradeNo: refund.outTradeNo, refundNo: refund.refundNo, detail: detail, on: $0) }
            throw Self.refusal(error)
        }
        if evidence.status == .processing { return try await confirmRefund(refund, client: client, kind: kind, callAgain: false) }
        return try await applyRefund(evidence, kind: kind, note: "answered by the channel's refund call")
    }

    /// Asks the channel about a refund still processing; a refund the channel never got
    /// (not found) is sent again, which its number makes safe.
    private func confirmRefund(_ refund: ChannelRefundRequest, client: ChannelClient, kind: Created.Kind,
                               callAgain: Bool = true) async throws(OrderError) -> Refunded {
        let answer: RefundQueryResult
        do { answer = try await client.queryRefund(refund) } catch where error.isTransient {
            return try await refundAnswer(kind, outTradeNo: refund.outTradeNo, refundNo: refund.refundNo)
        } catch {
            throw Self.refusal(error)
        }
        switch answer {
        case .found(let evidence) where evidence.status != .processing:
            return try await applyRefund(evidence, kind: kind, note: "confirmed by the channel's refund query")
        case .notFound where callAgain:
            return try await callRefund(refund, client: client, kind: kind)
        case .found, .notFound:
            return try await refundAnswer(kind, outTradeNo: refund.outTradeNo, refundNo: refund.refundNo)
        }
    }

    private func applyRefund(_ evidence: RefundEvidence, kind: Created.Kind, note: String) async throws(OrderError) -> Refunded {
        let outTradeNo = evidence.outTradeNo
        let decisions = try await db { connection in
            try connection.transaction { connection throws(PostgresError) in
                try OrderStore.apply([], refunds: [RefundItem(source: .api, callbackID: nil, evidence: evidence, note: note)],
                                     on: connection).refundDecisions
            }
        }
        if case .conflict(let reason, _)?? = decisions.first {
            logger.error("refund conflict recorded, order not changed", metadata: [
                "channel": "\(evidence.channel)", "out_trade_no": "\(outTradeNo)", "reason": "\(reason)",
            ])
        }
        return try await refundAnswer(kind, outTradeNo: outTradeNo, refundNo: evidence.refundNo)
    }

    private func refundAnswer(_ kind: Created.Kind, outTradeNo: String, refundNo: String) async throws(OrderError) -> Refunded {
        let found = try await db { connection -> (SiteOrderStore.StoredOrder, RefundRecord)? in
            guard let order = try SiteOrderStore.find(outTradeNo, on: connection),
                  let refund = try RefundStore.record(outTradeNo: outTradeNo, refundNo: refundNo, on: connection) else { return nil }
            return (order, refund)
        }
        guard let (order, refund) = found else { throw .orderNotFound() }
        return Refunded(kind: kind, order: order, refund: refund)
    }

    /// Asks the channels about refunds still `processing` (a lost answer, a 5xx, `PROCESSING`),
    /// as a repeat of the request would (the sweeper's third task); returns how many it asked about.
    public func settleProcessingRefunds(limit: Int, everySeconds: Int) async throws(OrderError) -> Int {
        let claimed = try await db { try RefundStore.claimProcessing(limit: limit, everySeconds: everySeconds, on: $0) }
        for refund in claimed {
            let outTradeNo = refund.outTradeNo
            guard let client = clients[refund.channel],
                  let order = try await db({ try SiteOrderStore.find(outTradeNo, on: $0) }) else { continue }
            let request = ChannelRefundRequest(
                outTradeNo: outTradeNo, refundNo: refund.refundNo, amountMinor: refund.amountMinor,
                orderAmountMinor: order.amountMinor, currency: refund.currency, reason: refund.reason,
                notifyURL: urls.notifyURL(channel: order.channel))
            do { _ = try await confirmRefund(request, client: client, kind: .repeated) } catch {
                logger.warning("processing refund not settled yet", metadata: [
                    "channel": "\(refund.channel)", "out_trade_no": "\(outTradeNo)", "error": "\(error)",
                ])
            }
        }
        return claimed.count
    }

    /// The order, its events and its refunds, by either id.
    public func lookup(_ id: String) async throws(OrderError) -> (SiteOrderStore.StoredOrder, [OrderLookup.Event], [RefundRecord])? {
        try await db { connection in
            guard let order = try SiteOrderStore.find(id, on: connection) else { return nil }
            return (order, try OrderLookup.events(order.outTradeNo, on: connection),
                    try RefundStore.records([order.outTradeNo], on: connection))
        }
    }
}
