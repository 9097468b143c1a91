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

    /// The simulated member when the order names none.
    public static let memberID = "sim-member-0001"

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
            .init(key: "user_id", value: .string(order.payerID ?? Self.memberID)),
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
        if let refusal = checkSignature(request, now: now) { return .failure(refusal) }
        return .success(outTradeNo)
    }

    /// The partner's 401 `SIGN_ERROR` when the request is not signed with the shared secret
    /// over its whole target (base path included); nil when it is.
    func checkSignature(_ request: ReceivedRequest, now: Date) -> ChannelResponseError? {
        let target = request.query.isEmpty ? request.path : request.path + "?" + request.query
        do {
            try PointsSignature.verify(
                headers: request.headers, message: PointsSignature.requestMessage(method: request.method, target: target, body: request.body),
                partnerID: partnerID, secret: hmacSecret, now: now, maxSkewSeconds: maxClockSkewSeconds)
        } catch {
            return self.error(401, "SIGN_ERROR", error.reason.rawValue, now: now)
        }
        return nil
    }

    /// A deduct call (protocol version 2, `POST …/v2/deducts`), its signature and fields
    /// checked; or the partner's refusal (401 SIGN_ERROR, 400 PARAM_ERROR).
    func readDeductRequest(_ request: ReceivedRequest, now: Date) -> Result<PointsDeduct, ChannelResponseError> {
        if let refusal = checkSignature(request, now: now) { return .failure(refusal) }
        guard let json = try? JSONValue.parse(request.body), case .object = json else {
            return .failure(error(400, "PARAM_ERROR", "body is not a JSON object", now: now))
        }
        func field(_ name: String) -> String? { json[name]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        guard field("partner_id") == partnerID else { return .failure(error(400, "PARAM_ERROR", "partner_id", now: now)) }
        guard let outTradeNo = field("out_trade_no"), OrderRules.outTradeNoProblem(outTradeNo, type: .points) == nil else {
            return .failure(error(400, "PARAM_ERROR", "out_trade_no", now: now))
        }
        guard let userID = field("user_id") else { return .failure(error(400, "PARAM_ERROR", "user_id", now: now)) }
        guard let amountText = field("amount"), let amount = Money.parseMinorUnits(amountText),
            OrderRules.amountRange(type: .points).contains(amount)
        else { return .failure(error(400, "PARAM_ERROR", "amount", now: now)) }
        let currency = field("currency") ?? "CNY"
        guard currency == "CNY" else { return .failure(error(400, "PARAM_ERROR", "currency", now: now)) }
        guard let subject = field("subject") else { return .failure(error(400, "PARAM_ERROR", "subject", now: now)) }
        guard let notifyURL = field("notify_url"), notifyURL.hasPrefix("http") else {
            return .failure(error(400, "PARAM_ERROR", "notify_url", now: now))
        }
        if let expires = field("expires_at"), Timestamps.parseRFC3339(expires) == nil {
            return .failure(error(400, "PARAM_ERROR", "expires_at", now: now))
        }
        return .success(PointsDeduct(outTradeNo: outTradeNo, userID: userID, amountMinor: amount, currency: currency,
                                     subject: subject, notifyURL: notifyURL, body: request.body))
    }

    /// The deduct answer's body: the order as the query states it, with the deduct's own
    /// status (`FAILED` for a refused deduct, which the query then calls `CLOSED`).
    func deductAnswerBody(_ order: ChannelOrder, status: String, code: String? = nil, message: String? = nil) -> [UInt8] {
        guard case .object(var members) = orderJSON(order, event: nil) else { return [] }
        if let index = members.firstIndex(where: { $0.key == "status" }) { members[index].value = .string(status) }
        if let code { members.append(.init(key: "code", value: .string(code))) }
        if let message { members.append(.init(key: "message", value: .string(message))) }
        return Array(JSONValue.object(members).serialized().utf8)
    }

    /// A 200 answer with `body`, signed at `now` (a repeated deduct gets the original bytes signed afresh).
    func signedAnswer(body: [UInt8], now: Date) -> ChannelResponse {
        .signedJSON(status: 200, body: body, signedHeaders: signedHeaders(body: body, timestamp: now))
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

    func error(_ status: Int, _ code: String, _ message: String, now: Date) -> ChannelResponseError {
        ChannelResponse.signedJSONError(status: status, code: code, message: message) { signedHeaders(body: $0, timestamp: now) }
    }
}

/// A deduct call the partner has read and whose signature it checked.
struct PointsDeduct {
    var outTradeNo: String
    var userID: String
    var amountMinor: Int64
    var currency: String
    var subject: String
    var notifyURL: String
    /// The body as sent: the idempotency check compares these bytes.
    var body: [UInt8]
}
