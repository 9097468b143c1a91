public import Channels
import Crypto
public import Foundation
public import PayhookCore

/// The points partner's side, for the simulator and tests.
public struct PointsChannelSide: Sendable {
    public var partnerID: String
    public var hmacSecret: Channels.SharedSecret
    /// Largest clock distance accepted on query requests. Default 300 s.
    public var maxClockSkewSeconds: Int

    public init(partnerID: String, hmacSecret: Channels.SharedSecret, maxClockSkewSeconds: Int = 300) {
        self.partnerID = partnerID
        self.hmacSecret = hmacSecret
        self.maxClockSkewSeconds = maxClockSkewSeconds
    }

    func orderJSON(_ order: ChannelOrder, event: (id: String, type: String)?) -> JSONValue {
        var members: [JSONValue.Member] = []
        if let event {
            members.append(.init(key: "event_id", value: .string(event.id)))
            members.append(.init(key: "event_type", value: .string(event.type)))
        }
        members += [
            .init(key: "partner_id", value: .string(partnerID)), .init(key: "out_trade_no", value: .string(order.outTradeNo)),
            .init(key: "points_trade_no", value: .string(order.channelTradeNo)),
            .init(key: "status", value: .string(PointsSignature.statusText(order.status))),
            .init(key: "amount", value: .string(Money.format(minorUnits: order.amountMinor))),
            .init(key: "currency", value: .string(order.currency)),
            .init(key: "points", value: .number(String(order.points ?? order.amountMinor))),
            .init(key: "user_id", value: .string("sim-member-0001")),
        ]
        if let paidAt = order.paidAt { members.append(.init(key: "paid_at", value: .string(Timestamps.formatRFC3339China(paidAt)))) }
        return .object(members)
    }

    /// A signed notify: headers and JSON body.
    public func notify(for order: ChannelOrder, eventID: String, timestamp: Date, nonce: String = Nonce.random(24)) -> (headers: [HeaderField], body: [UInt8]) {
        let type = order.status == .paid ? "PAYMENT.SUCCEEDED" : "PAYMENT.\(PointsSignature.statusText(order.status))"
        let body = Array(orderJSON(order, event: (eventID, type)).serialized().utf8)
        return (signedHeaders(body: body, timestamp: timestamp, nonce: nonce) + [HeaderField(name: "Content-Type", value: "application/json")], body)
    }

    public func signedHeaders(body: [UInt8], timestamp: Date, nonce: String = Nonce.random(24)) -> [HeaderField] {
        PointsSignature.headers(message: PointsSignature.bodyMessage(body), partnerID: partnerID, secret: hmacSecret, timestamp: timestamp, nonce: nonce)
    }

    /// The out_trade_no a query asks for after checking its signature; or the partner's error answer.
    public func readQueryRequest(_ request: ReceivedRequest, now: Date) -> Result<String, ChannelResponseError> {
        guard request.method == "GET", let range = request.path.range(of: "/v1/orders/"),
            let decoded = FormEncoding.percentDecode(Array(request.path[range.upperBound...].utf8)),
            let outTradeNo = Bytes.utf8String(decoded), !outTradeNo.isEmpty
        else { return .failure(error(404, "NOT_FOUND", "no such resource", now: now)) }
        let target = request.query.isEmpty ? request.path : request.path + "?" + request.query
        do {
            try PointsSignature.verify(
                headers: request.headers, message: PointsSignature.requestMessage(method: request.method, target: target, body: request.body),
                partnerID: partnerID, secret: hmacSecret, now: now, maxSkewSeconds: maxClockSkewSeconds)
        } catch {
            return .failure(self.error(401, "SIGN_ERROR", error.reason.rawValue, now: now))
        }
        return .success(outTradeNo)
    }

    /// The signed answer for an order (nil: 404 ORDER_NOT_FOUND); memoizable per order state.
    public func queryResponse(for order: ChannelOrder?, outTradeNo: String, now: Date) -> ChannelResponse {
        guard let order else { return error(404, "ORDER_NOT_FOUND", "order not found", now: now).response }
        let body = Array(orderJSON(order, event: nil).serialized().utf8)
        return .signedJSON(status: 200, body: body, signedHeaders: signedHeaders(body: body, timestamp: now))
    }

    public func answerQuery(_ request: ReceivedRequest, now: Date, lookup: (String) -> ChannelOrder?) -> ChannelResponse {
        readQueryRequest(request, now: now).answer { queryResponse(for: lookup($0), outTradeNo: $0, now: now) }
    }

    private func error(_ status: Int, _ code: String, _ message: String, now: Date) -> ChannelResponseError {
        ChannelResponse.signedJSONError(status: status, code: code, message: message) { signedHeaders(body: $0, timestamp: now) }
    }
}
