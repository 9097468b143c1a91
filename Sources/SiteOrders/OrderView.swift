import Channels
import Foundation
public import Orders
import PayhookCore

/// The site API's JSON, built member by member so key order is stable and amounts are
/// exact decimal strings and minor units, never floating point.
public enum OrderView {
    public static func created(_ created: OrderDesk.Created) -> [UInt8] {
        let pay: JSONValue = created.pay.map { pay in
            .object([.init(key: "scene", value: .string(created.order.scene ?? ""))]
                + pay.fields.map { JSONValue.Member(key: $0.name, value: .string($0.value)) })
        } ?? .null
        return bytes(.object([
            .init(key: "order", value: order(created.order)), .init(key: "pay", value: pay),
            .init(key: "confirming", value: .bool(created.confirming)),
        ]))
    }

    public static func found(_ order: SiteOrderStore.StoredOrder, events: [OrderLookup.Event],
                             refunds: [RefundRecord] = []) -> [UInt8] {
        bytes(.object([
            .init(key: "order", value: self.order(order)),
            .init(key: "events", value: .array(events.map(event))),
            .init(key: "refunds", value: .array(refunds.map(refund))),
        ]))
    }

    public static func refunded(_ refunded: OrderDesk.Refunded) -> [UInt8] {
        bytes(.object([
            .init(key: "refund", value: refund(refunded.refund)), .init(key: "order", value: order(refunded.order)),
            .init(key: "confirming", value: .bool(refunded.confirming)),
        ]))
    }

    static func refund(_ refund: RefundRecord) -> JSONValue {
        .object([
            .init(key: "out_refund_no", value: .string(refund.refundNo)),
            .init(key: "channel_refund_id", value: text(refund.channelRefundID)),
            .init(key: "status", value: .string(refund.status.rawValue)),
            .init(key: "amount", value: .string(Money.format(minorUnits: refund.amountMinor))),
            .init(key: "amount_minor", value: .number(String(refund.amountMinor))),
            .init(key: "currency", value: .string(refund.currency)),
            .init(key: "reason", value: text(refund.reason)),
            .init(key: "refunded_at", value: time(refund.refundedAt)),
        ])
    }

    public static func closed(_ order: SiteOrderStore.StoredOrder) -> [UInt8] {
        bytes(.object([.init(key: "order", value: self.order(order))]))
    }

    public static func error(_ error: OrderError) -> [UInt8] {
        bytes(.object([.init(key: "code", value: .string(error.code)), .init(key: "message", value: .string(error.message))]))
    }

    static func order(_ order: SiteOrderStore.StoredOrder) -> JSONValue {
        .object([
            .init(key: "out_trade_no", value: .string(order.outTradeNo)),
            .init(key: "channel", value: .string(order.channel)),
            .init(key: "scene", value: text(order.scene)),
            .init(key: "status", value: .string(order.status.rawValue)),
            .init(key: "amount", value: .string(Money.format(minorUnits: order.amountMinor))),
            .init(key: "amount_minor", value: .number(String(order.amountMinor))),
            .init(key: "currency", value: .string(order.currency)),
            .init(key: "subject", value: text(order.subject)),
            .init(key: "description", value: text(order.description)),
            .init(key: "channel_trade_no", value: text(order.channelTradeNo)),
            .init(key: "payer", value: text(order.payer)),
            .init(key: "expires_at", value: time(order.expiresAt)),
            .init(key: "return_url", value: text(order.returnURL)),
            .init(key: "attach", value: text(order.attach)),
            .init(key: "created_at", value: time(order.createdAt)),
            .init(key: "paid_at", value: time(order.paidAt)),
            .init(key: "updated_at", value: time(order.updatedAt)),
            .init(key: "refunded_amount", value: .string(Money.format(minorUnits: order.refundedMinor))),
            .init(key: "refunded_minor", value: .number(String(order.refundedMinor))),
        ])
    }

    static func event(_ event: OrderLookup.Event) -> JSONValue {
        .object([
            .init(key: "kind", value: .string(event.kind)), .init(key: "source", value: .string(event.source)),
            .init(key: "from_status", value: text(event.fromStatus)), .init(key: "to_status", value: text(event.toStatus)),
            .init(key: "flagged", value: .bool(event.flagged)), .init(key: "detail", value: text(event.detail)),
            .init(key: "at", value: time(event.at)),
        ])
    }

    private static func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }

    // A format style, not an ISO8601DateFormatter made per call: making those took a fifth
    // of the API's CPU at saturation (Benchmarks/README.md, orders).
    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    private static func time(_ date: Date?) -> JSONValue {
        guard let date else { return .null }
        return .string(timeFormat.format(date))
    }

    private static func bytes(_ value: JSONValue) -> [UInt8] { Array((value.serialized() + "\n").utf8) }
}
