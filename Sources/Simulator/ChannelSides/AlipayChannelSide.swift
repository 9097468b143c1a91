public import Channels
public import PayhookCore
public import Foundation

/// An order as a simulated channel knows it.
public struct ChannelOrder: Sendable, Hashable {
    public var outTradeNo: String
    public var channelTradeNo: String
    public var status: PaymentStatus
    public var amountMinor: Int64
    public var currency: String
    public var paidAt: Date?
    /// Alipay `subject`; WeChat `description` (not part of notifies); points `subject`.
    public var subject: String
    /// Points spent (points channel).
    public var points: Int64?
    /// How the order was created at the simulated channel; nil for orders put in the books directly.
    public var scene: PaymentScene?
    /// Where the channel sends this order's notifies; nil: none are sent.
    public var notifyURL: String?
    /// Alipay page and wap `return_url` (the browser goes back there after paying).
    public var returnURL: String?
    /// Echoed in notifies: Alipay `passback_params`, WeChat Pay `attach`.
    public var attach: String?
    /// WeChat Pay `payer.openid`; points `user_id`.
    public var payerID: String?
    /// What created the order, compared on a repeated creation: Alipay's `biz_content`, WeChat
    /// Pay's and the points partner's request body.
    public var creationBody: [UInt8]?
    /// False while Alipay does not know the trade yet (a precreated QR code nobody scanned):
    /// queries and closes then answer `ACQ.TRADE_NOT_EXIST`. Default true.
    public var existsAtChannel: Bool
    /// The trade's refunds, oldest first.
    public var refunds: [SimulatedRefund] = []

    /// What succeeded refunds gave back.
    public var refundedMinor: Int64 { refunds.filter { $0.status == .succeeded }.reduce(0) { $0 + $1.amountMinor } }

    public init(
        outTradeNo: String, channelTradeNo: String, status: PaymentStatus, amountMinor: Int64,
        currency: String = "CNY", paidAt: Date? = nil, subject: String = "Payhook order", points: Int64? = nil,
        scene: PaymentScene? = nil, notifyURL: String? = nil, returnURL: String? = nil, attach: String? = nil,
        payerID: String? = nil, creationBody: [UInt8]? = nil, existsAtChannel: Bool = true
    ) {
        self.outTradeNo = outTradeNo
        self.channelTradeNo = channelTradeNo
        self.status = status
        self.amountMinor = amountMinor
        self.currency = currency
        self.paidAt = paidAt
        self.subject = subject
        self.points = points
        self.scene = scene
        self.notifyURL = notifyURL
        self.returnURL = returnURL
        self.attach = attach
        self.payerID = payerID
        self.creationBody = creationBody
        self.existsAtChannel = existsAtChannel
    }
}

/// One refund of a simulated trade.
public struct SimulatedRefund: Sendable, Hashable {
    /// The merchant's number (Alipay `out_request_no`, WeChat Pay `out_refund_no`, points `reverse_no`).
    public var refundNo: String
    /// The channel's id (WeChat Pay `refund_id`).
    public var refundID: String
    public var amountMinor: Int64
    public var status: RefundStatus
    public var refundedAt: Date?
    /// The refund call's body, compared on a repeat.
    public var requestBody: [UInt8]?

    public init(refundNo: String, refundID: String, amountMinor: Int64, status: RefundStatus = .succeeded,
                refundedAt: Date? = nil, requestBody: [UInt8]? = nil) {
        self.refundNo = refundNo
        self.refundID = refundID
        self.amountMinor = amountMinor
        self.status = status
        self.refundedAt = refundedAt
        self.requestBody = requestBody
    }
}

/// A request as the simulated channel's HTTP server received it.
public struct ReceivedRequest: Sendable {
    public var method: String
    public var path: String
    /// Raw query string without `?`.
    public var query: String
    public var headers: [HeaderField]
    public var body: [UInt8]

    public init(method: String, path: String, query: String = "", headers: [HeaderField] = [], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// Splits a ``ChannelRequest`` the way a server would see it (in-process transports).
    public init(_ request: ChannelRequest) {
        let target = request.target
        if let q = target.firstIndex(of: "?") {
            self.init(method: request.method, path: String(target[..<q]), query: String(target[target.index(after: q)...]),
                      headers: request.headers, body: request.body)
        } else {
            self.init(method: request.method, path: target, headers: request.headers, body: request.body)
        }
    }
}

/// Alipay's side, for the simulator and tests: signs notifies and answers
/// `alipay.trade.query` exactly as Alipay does, with keys the caller supplies.
public struct AlipayChannelSide: Sendable {
    /// Alipay's own key (its public half is the merchant's `alipay_public_key_file`).
    public var alipayPrivateKey: RSAPrivateKey
    /// The merchant app's public key, to check query requests; nil skips the check.
    public var appPublicKey: RSAPublicKey?
    public var appID: String
    public var sellerID: String
    /// Certificate mode: requests must name the app's and root's SNs, and everything is
    /// signed with the current certificate's key, answers naming its `alipay_cert_sn`.
    /// Default nil (public-key mode).
    public var certificates: SimulatedAlipayCertificates?

    public init(alipayPrivateKey: RSAPrivateKey, appPublicKey: RSAPublicKey?, appID: String, sellerID: String,
                certificates: SimulatedAlipayCertificates? = nil) {
        self.alipayPrivateKey = alipayPrivateKey
        self.appPublicKey = appPublicKey
        self.appID = appID
        self.sellerID = sellerID
        self.certificates = certificates
    }

    /// The key notifies and answers are signed with now.
    var signingKey: RSAPrivateKey { certificates?.current.key ?? alipayPrivateKey }

    public enum Charset: String, Sendable { case utf8 = "utf-8", gbk }

    /// A signed notify form body (`application/x-www-form-urlencoded`) for the order.
    /// `extra` parameters are added before signing; `signType` `RSA` signs with SHA-1.
    public func notifyBody(
        for order: ChannelOrder, notifyID: String, notifyTime: Date, charset: Charset = .utf8,
        signType: String = "RSA2", extra: [(String, String)] = []
    ) -> [UInt8] {
        let cs: AlipayCharset = charset == .gbk ? .gbk : .utf8
        var fields: [(String, String)] = [
            ("notify_time", Timestamps.formatAlipay(notifyTime)), ("notify_type", "trade_status_sync"),
            ("notify_id", notifyID), ("charset", charset.rawValue), ("version", "1.0"),
            ("app_id", appID), ("auth_app_id", appID), ("seller_id", sellerID), ("buyer_id", Self.buyerID),
            ("trade_no", order.channelTradeNo), ("out_trade_no", order.outTradeNo),
            ("trade_status", AlipaySignature.tradeStatus(order.status)),
            ("total_amount", Money.format(minorUnits: order.amountMinor)),
            ("receipt_amount", Money.format(minorUnits: order.amountMinor)),
            ("buyer_pay_amount", Money.format(minorUnits: order.amountMinor)),
            ("subject", order.subject), ("gmt_create", Timestamps.formatAlipay(order.paidAt ?? notifyTime)),
        ]
        if let paidAt = order.paidAt { fields.append(("gmt_payment", Timestamps.formatAlipay(paidAt))) }
        if order.currency != "CNY" { fields.append(("trans_currency", order.currency)) }
        if let attach = order.attach { fields.append(("passback_params", attach)) }
        fields.append(contentsOf: extra)
        return FormEncoding.encode(signedForm(fields, charset: cs, signType: signType))
    }

    /// The signed refund notify Alipay sends to the payment's `notify_url`: the trade's
    /// status (`TRADE_SUCCESS` while some is left, `TRADE_CLOSED` once all is back) with
    /// `refund_fee` (the refunded total), `gmt_refund` and `out_biz_no` (the refund's number).
    public func refundNotifyBody(for order: ChannelOrder, refund: SimulatedRefund, notifyID: String, notifyTime: Date) -> [UInt8] {
        var trade = order
        trade.status = order.refundedMinor >= order.amountMinor ? .closed : .paid
        return notifyBody(for: trade, notifyID: notifyID, notifyTime: notifyTime, extra: [
            ("refund_fee", Money.format(minorUnits: order.refundedMinor)),
            ("gmt_refund", Timestamps.formatAlipay(refund.refundedAt ?? notifyTime)),
            ("out_biz_no", refund.refundNo),
        ])
    }

    /// The signed `alipay.trade.fastpay.refund.query` answer: the refund with
    /// `refund_status: REFUND_SUCCESS`, or, for a refund Alipay does not have (or that did not
    /// succeed), `10000` without `refund_status`; no trade: `ACQ.TRADE_NOT_EXIST`.
    public func refundQueryResponse(for order: ChannelOrder?, outTradeNo: String, refundNo: String) -> ChannelResponse {
        let node = AlipayGatewayRequest.node(AlipayRefund.queryMethod)
        guard let order else {
            return businessFailure(node: node, subCode: "ACQ.TRADE_NOT_EXIST", subMsg: "交易不存在", outTradeNo: outTradeNo)
        }
        var members: [JSONValue.Member] = [
            .init(key: "code", value: .string("10000")), .init(key: "msg", value: .string("Success")),
            .init(key: "trade_no", value: .string(order.channelTradeNo)),
            .init(key: "out_trade_no", value: .string(order.outTradeNo)),
            .init(key: "out_request_no", value: .string(refundNo)),
            .init(key: "total_amount", value: .string(Money.format(minorUnits: order.amountMinor))),
        ]
        if let refund = order.refunds.first(where: { $0.refundNo == refundNo }), refund.status == .succeeded {
            members.append(.init(key: "refund_amount", value: .string(Money.format(minorUnits: refund.amountMinor))))
            members.append(.init(key: "refund_status", value: .string("REFUND_SUCCESS")))
            if let at = refund.refundedAt {
                members.append(.init(key: "gmt_refund_pay", value: .string(Timestamps.formatAlipay(at))))
            }
        }
        return answer(node: node, members)
    }

    /// The signed query string of the browser's return to `return_url` after paying (the
    /// "sync return"): signed like a notify, without `sign_type` in the signed text.
    public func returnQuery(for order: ChannelOrder, timestamp: Date) -> String {
        let method = order.scene == .wap ? "alipay.trade.wap.pay.return" : "alipay.trade.page.pay.return"
        let fields: [(String, String)] = [
            ("charset", "utf-8"), ("out_trade_no", order.outTradeNo), ("method", method),
            ("total_amount", Money.format(minorUnits: order.amountMinor)), ("trade_no", order.channelTradeNo),
            ("auth_app_id", appID), ("version", "1.0"), ("app_id", appID), ("seller_id", sellerID),
            ("timestamp", Timestamps.formatAlipay(timestamp)),
        ]
        return String(decoding: FormEncoding.encode(signedForm(fields, charset: .utf8, signType: "RSA2")), as: UTF8.self)
    }

    /// Notify-style signing (`sign` and `sign_type` out of the signed text), shared by
    /// notifies and sync returns.
    private func signedForm(_ fields: [(String, String)], charset: AlipayCharset, signType: String) -> [FormEncoding.Pair] {
        var pairs = fields.map { FormEncoding.Pair(key: $0.0, value: charset.encode($0.1) ?? Array($0.1.utf8)) }
        let content = AlipaySignature.signContent(pairs, excludingSignType: true)!
        let signature = signType == "RSA" ? signingKey.signSHA1(content) : signingKey.signSHA256(content)
        pairs.append(.init(key: "sign", value: Array(AlipaySignature.base64(signature).utf8)))
        pairs.append(.init(key: "sign_type", value: Array(signType.utf8)))
        return pairs
    }

    /// The out_trade_no a query request asks for, after checking the request's signature
    /// (when ``appPublicKey`` is set); or the error response Alipay would give.
    public func readQueryRequest(_ request: ReceivedRequest) -> Result<String, ChannelResponseError> {
        switch readGatewayRequest(request) {
        case .failure(let refusal): .failure(refusal)
        case .success(let read): queryOutTradeNo(read)
        }
    }

    /// The out_trade_no of a gateway request that was read, if it is an `alipay.trade.query`.
    func queryOutTradeNo(_ read: AlipayGatewayRequest) -> Result<String, ChannelResponseError> {
        guard read.method == AlipayQuery.method else { return .failure(error("40002", "isv.invalid-method", node: read.node)) }
        guard let no = read.biz["out_trade_no"]?.stringValue else {
            return .failure(error("40002", "isv.missing-biz-content", node: read.node))
        }
        return .success(no)
    }

    /// Any gateway request (query string and form body together, as Alipay reads a GET of
    /// `pay_url` and the auto-submitted POST form alike), its app and signature checked
    /// (when ``appPublicKey`` is set) and its `biz_content` parsed; or Alipay's refusal.
    func readGatewayRequest(_ request: ReceivedRequest) -> Result<AlipayGatewayRequest, ChannelResponseError> {
        var pairs: [FormEncoding.Pair] = []
        if !request.query.isEmpty {
            guard let fromQuery = FormEncoding.parse(request.query) else { return .failure(error("40002", "isv.invalid-parameter")) }
            pairs += fromQuery
        }
        guard let fromBody = FormEncoding.parse(request.body) else { return .failure(error("40002", "isv.invalid-parameter")) }
        pairs += fromBody
        let fields = AlipayAdapter.Fields(pairs)
        guard let method = fields.ascii("method"), !method.isEmpty else {
            return .failure(error("40001", "isv.missing-method", msg: "Missing Required Arguments"))
        }
        let node = AlipayGatewayRequest.node(method)
        guard fields.ascii("app_id") == appID else { return .failure(error("40002", "isv.invalid-app-id", node: node)) }
        if let appPublicKey {
            guard let signText = fields.raw("sign"), let signature = AlipaySignature.decodeBase64(signText),
                let content = AlipaySignature.signContent(pairs, excludingSignType: false),
                appPublicKey.isValidSHA256Signature(signature, for: content)
            else { return .failure(error("40002", "isv.invalid-signature", node: node)) }
        }
        if let refusal = certificateRefusal(fields, node: node) { return .failure(refusal) }
        guard let bizBytes = fields.raw("biz_content"), let biz = try? JSONValue.parse(bizBytes), case .object = biz else {
            return .failure(error("40002", "isv.missing-biz-content", node: node))
        }
        return .success(AlipayGatewayRequest(method: method, fields: fields, biz: biz, bizBytes: bizBytes))
    }

    /// The simulated buyer, in Alipay's 2088… form.
    public static let buyerID = "2088102177846880"

    /// The signed `alipay.trade.query` answer for an order (nil: ACQ.TRADE_NOT_EXIST). The
    /// bytes depend only on the arguments, so callers may memoize them per order state.
    public func queryResponse(for order: ChannelOrder?, outTradeNo: String) -> ChannelResponse {
        let inner: JSONValue
        if let order {
            var members: [JSONValue.Member] = [
                .init(key: "code", value: .string("10000")), .init(key: "msg", value: .string("Success")),
                .init(key: "buyer_logon_id", value: .string("sim***@example.com")),
                .init(key: "buyer_user_id", value: .string(Self.buyerID)),
                .init(key: "buyer_pay_amount", value: .string(Money.format(minorUnits: order.status == .paid ? order.amountMinor : 0))),
                .init(key: "out_trade_no", value: .string(order.outTradeNo)),
                .init(key: "total_amount", value: .string(Money.format(minorUnits: order.amountMinor))),
                .init(key: "trade_no", value: .string(order.channelTradeNo)),
                .init(key: "trade_status", value: .string(AlipaySignature.tradeStatus(order.status))),
            ]
            if let paidAt = order.paidAt { members.append(.init(key: "send_pay_date", value: .string(Timestamps.formatAlipay(paidAt)))) }
            if order.currency != "CNY" { members.append(.init(key: "trans_currency", value: .string(order.currency))) }
            inner = .object(members)
        } else {
            inner = .object([
                .init(key: "code", value: .string("40004")), .init(key: "msg", value: .string("Business Failed")),
                .init(key: "sub_code", value: .string("ACQ.TRADE_NOT_EXIST")), .init(key: "sub_msg", value: .string("交易不存在")),
                .init(key: "out_trade_no", value: .string(outTradeNo)),
            ])
        }
        return signedResponse(node: AlipayQuery.responseNode, inner: inner)
    }

    /// Reads the request and answers from `lookup`.
    public func answerQuery(_ request: ReceivedRequest, lookup: (String) -> ChannelOrder?) -> ChannelResponse {
        readQueryRequest(request).answer { queryResponse(for: lookup($0), outTradeNo: $0) }
    }

    /// A business answer (code 10000 members, or an error), signed over the node's text.
    func answer(node: String, _ members: [JSONValue.Member]) -> ChannelResponse {
        signedResponse(node: node, inner: .object(members))
    }

    /// `40004 Business Failed` with the sub_code (`ACQ.TRADE_NOT_EXIST`, ...), as the channel answers it.
    func businessFailure(node: String, subCode: String, subMsg: String, outTradeNo: String? = nil) -> ChannelResponse {
        var members: [JSONValue.Member] = [
            .init(key: "code", value: .string("40004")), .init(key: "msg", value: .string("Business Failed")),
            .init(key: "sub_code", value: .string(subCode)), .init(key: "sub_msg", value: .string(subMsg)),
        ]
        if let outTradeNo { members.append(.init(key: "out_trade_no", value: .string(outTradeNo))) }
        return answer(node: node, members)
    }

    private func signedResponse(node: String, inner: JSONValue) -> ChannelResponse {
        let innerText = inner.serialized()
        let signer = certificates?.current ?? (sn: "", key: alipayPrivateKey)
        let sign = AlipaySignature.base64(signer.key.signSHA256(Array(innerText.utf8)))
        let certSN = signer.sn.isEmpty ? "" : ",\"alipay_cert_sn\":\"\(signer.sn)\""
        let text = "{\"\(node)\":\(innerText)\(certSN),\"sign\":\"\(sign)\"}"
        return ChannelResponse(status: 200, headers: [HeaderField(name: "Content-Type", value: "text/html;charset=utf-8")], body: Array(text.utf8))
    }

    /// A gateway-level refusal (bad signature, missing or malformed parameter) in `node`.
    func error(_ code: String, _ subCode: String, node: String = "error_response", msg: String = "Invalid Arguments",
               subMsg: String? = nil) -> ChannelResponseError {
        let inner = JSONValue.object([
            .init(key: "code", value: .string(code)), .init(key: "msg", value: .string(msg)),
            .init(key: "sub_code", value: .string(subCode)), .init(key: "sub_msg", value: .string(subMsg ?? subCode)),
        ])
        return ChannelResponseError(response: signedResponse(node: node, inner: inner))
    }
}

/// A gateway request Alipay has read and whose signature it checked.
struct AlipayGatewayRequest {
    var method: String
    var fields: AlipayAdapter.Fields
    var biz: JSONValue
    /// `biz_content` as sent.
    var bizBytes: [UInt8]

    /// The answer's node: the method with dots as underscores, and `_response`.
    var node: String { Self.node(method) }

    static func node(_ method: String) -> String { method.replacingOccurrences(of: ".", with: "_") + "_response" }
}

/// A channel side's refusal of a request, carrying the response the channel would give.
public struct ChannelResponseError: Error, Sendable, Hashable {
    public var response: ChannelResponse
    public init(response: ChannelResponse) { self.response = response }
}

extension Result where Success == String, Failure == ChannelResponseError {
    /// The refusal's response, or `respond(outTradeNo)` for a request that was read.
    func answer(_ respond: (String) -> ChannelResponse) -> ChannelResponse {
        switch self {
        case .failure(let failure): failure.response
        case .success(let outTradeNo): respond(outTradeNo)
        }
    }
}

extension ChannelResponse {
    /// A JSON answer carrying a channel side's signature headers (WeChat Pay v3, points).
    static func signedJSON(status: Int, body: [UInt8], signedHeaders: [HeaderField]) -> ChannelResponse {
        ChannelResponse(status: status,
                        headers: signedHeaders + [HeaderField(name: "Content-Type", value: "application/json")],
                        body: body)
    }

    /// A signed `{"code":…,"message":…}` refusal; `sign` makes the headers for the body.
    static func signedJSONError(status: Int, code: String, message: String,
                                sign: ([UInt8]) -> [HeaderField]) -> ChannelResponseError {
        let body = Array(JSONValue.object(["code": .string(code), "message": .string(message)]).serialized().utf8)
        return ChannelResponseError(response: .signedJSON(status: status, body: body, signedHeaders: sign(body)))
    }
}
