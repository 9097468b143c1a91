public import Foundation
public import PayhookCore

/// The points partner's protocol version 2 (`Points/PROTOCOL.md`): the deduct call and the
/// reverse (refund) call. Pure builders and readers, signed and verified as the v1 query.
public enum PointsOrderCreation {
    public static let deductPath = "/v2/deducts"

    public static func reversePath(outTradeNo: String) -> String {
        deductPath + "/" + FormEncoding.encodePathSegment(outTradeNo) + "/reverse"
    }

    /// `POST {base}/v2/deducts`. Needs `payer.userID`. The body's bytes are the idempotency
    /// key's content: the same order always builds the same body.
    public static func step(_ order: ChannelOrderRequest, configuration: PointsConfiguration, now: Date, nonce: String) throws(QueryError) -> CreationStep {
        try order.check(for: .points)
        guard let userID = order.payer.userID, !userID.isEmpty else {
            throw .permanent(.invalidRequest, "scene deduct needs payer.user_id")
        }
        var members: [JSONValue.Member] = [
            .init(key: "partner_id", value: .string(configuration.partnerID)),
            .init(key: "out_trade_no", value: .string(order.outTradeNo)),
            .init(key: "user_id", value: .string(userID)),
            .init(key: "amount", value: .string(Money.format(minorUnits: order.amountMinor))),
            .init(key: "currency", value: .string(order.currency)),
            .init(key: "subject", value: .string(order.subject)),
            .init(key: "notify_url", value: .string(order.notifyURL)),
        ]
        if let expiresAt = order.expiresAt {
            members.append(.init(key: "expires_at", value: .string(Timestamps.formatRFC3339China(expiresAt))))
        }
        let body = Array(JSONValue.object(members).serialized().utf8)
        return .call(PointsAPI.signedRequest(method: "POST", path: deductPath, body: body, configuration: configuration, now: now, nonce: nonce))
    }

    /// The verified deduct answer, about this order: `PAID` → `.settled` (status paid),
    /// `FAILED` → `.settled` (status closed: final, nothing deducted), `PROCESSING` →
    /// `.processing` (query later). Front end: `points_trade_no`, `status`. 409
    /// `IDEMPOTENCY_CONFLICT` is permanent; 5xx, 429 and 408 transient: the outcome is
    /// unknown, never failed.
    public static func result(_ response: ChannelResponse, order: ChannelOrderRequest, configuration: PointsConfiguration, now: Date) throws(QueryError) -> CreationResult {
        try order.check(for: .points)
        let json = try verifiedAnswer(response, configuration: configuration, now: now)
        var evidence = try PointsAPI.order(json, configuration: configuration, outTradeNo: order.outTradeNo)
        let status = json["status"]?.stringValue ?? ""
        var fields: [FrontEndParameters.Field] = []
        if let tradeNo = evidence.channelTradeNo { fields.append(.init("points_trade_no", tradeNo)) }
        fields.append(.init("status", status))
        switch status {
        case "PAID":
            evidence.status = .paid
            return .settled(evidence, FrontEndParameters(fields))
        case "FAILED":
            // Final: the v1 query then says CLOSED, so the evidence says so now.
            evidence.status = .closed
            return .settled(evidence, FrontEndParameters(fields))
        case "PROCESSING":
            return .processing(FrontEndParameters(fields))
        default:
            throw .permanent(.malformedResponse, "status \(status.prefix(24))")
        }
    }

    /// `POST {base}/v2/deducts/{out_trade_no}/reverse`: give back `amountMinor` (all or part)
    /// of a paid deduct. `reverseNo` is the reversal's own idempotency key.
    public static func reverseRequest(outTradeNo: String, reverseNo: String, amountMinor: Int64, configuration: PointsConfiguration,
                                      now: Date, nonce: String) throws(QueryError) -> ChannelRequest {
        guard OrderRules.amountRange(type: .points).contains(amountMinor) else { throw .permanent(.invalidRequest, "amount out of range") }
        guard OrderRules.outTradeNoProblem(reverseNo, type: .points) == nil else {
            throw .permanent(.invalidRequest, "reverse_no must be 1-64 letters, digits, _ or -")
        }
        let body = Array(JSONValue.object([
            "partner_id": .string(configuration.partnerID), "out_trade_no": .string(outTradeNo),
            "reverse_no": .string(reverseNo), "amount": .string(Money.format(minorUnits: amountMinor)),
        ]).serialized().utf8)
        return PointsAPI.signedRequest(method: "POST", path: reversePath(outTradeNo: outTradeNo), body: body,
                                       configuration: configuration, now: now, nonce: nonce)
    }

    /// The verified reverse answer, about this deduct and this reversal. Errors as for the deduct.
    public static func reverseResult(_ response: ChannelResponse, outTradeNo: String, reverseNo: String, configuration: PointsConfiguration,
                                     now: Date) throws(QueryError) -> PointsReversal {
        let json = try verifiedAnswer(response, configuration: configuration, now: now)
        guard json["partner_id"]?.stringValue == configuration.partnerID else { throw .permanent(.malformedResponse, "partner_id") }
        guard json["out_trade_no"]?.stringValue == outTradeNo else {
            throw .permanent(.malformedResponse, "out_trade_no differs from the request")
        }
        guard json["reverse_no"]?.stringValue == reverseNo else { throw .permanent(.malformedResponse, "reverse_no differs from the request") }
        guard let amountText = json["amount"]?.stringValue, let amount = Money.parseMinorUnits(amountText) else {
            throw .permanent(.malformedResponse, "amount")
        }
        let statusText = json["status"]?.stringValue ?? ""
        guard let status = PointsReversal.Status(rawValue: statusText) else {
            throw .permanent(.malformedResponse, "status \(statusText.prefix(24))")
        }
        return PointsReversal(outTradeNo: outTradeNo, reverseNo: reverseNo, status: status, amountMinor: amount)
    }

    /// A 200 answer, signature checked, as a JSON object; any other status classified.
    static func verifiedAnswer(_ response: ChannelResponse, configuration: PointsConfiguration, now: Date) throws(QueryError) -> JSONValue {
        guard response.status == 200 else {
            let code = (try? JSONValue.parse(response.body))?["code"]?.stringValue ?? ""
            throw PointsAPI.failure(response, code: code)
        }
        try PointsAPI.verify(response, configuration: configuration, now: now)
        guard let json = try? JSONValue.parse(response.body), case .object = json else {
            throw .permanent(.malformedResponse, "not a JSON object")
        }
        return json
    }
}

/// The partner's answer to a reverse call.
public struct PointsReversal: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// The points are back with the member.
        case reversed = "REVERSED"
        /// Not reversed, final.
        case failed = "FAILED"
        /// Accepted, not done yet: ask again with the same `reverse_no`.
        case processing = "PROCESSING"
    }

    public var outTradeNo: String
    public var reverseNo: String
    public var status: Status
    /// The amount the answer names, in minor units.
    public var amountMinor: Int64

    public init(outTradeNo: String, reverseNo: String, status: Status, amountMinor: Int64) {
        self.outTradeNo = outTradeNo
        self.reverseNo = reverseNo
        self.status = status
        self.amountMinor = amountMinor
    }
}
