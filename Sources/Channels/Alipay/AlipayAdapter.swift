public import PayhookCore
public import Foundation

/// `type: alipay`: form-encoded notifies (and GET returns), RSA2 in public-key mode,
/// `alipay.trade.query` cross-check, ack body `success`.
public struct AlipayAdapter: ChannelAdapter {
    public let configuration: AlipayConfiguration

    public init(configuration: AlipayConfiguration) {
        self.configuration = configuration
    }

    public var channelID: String { configuration.channelID }
    public var channelType: ChannelType { .alipay }
    public var allowedIPs: [CIDR] { configuration.allowedIPs }
    public var merchant: MerchantIdentity { MerchantIdentity(appID: configuration.appID, merchantID: configuration.sellerID) }

    public func verify(_ raw: RawCallback) throws(Rejection) -> PaymentNotification {
        try checkSource(raw)
        guard let form = Self.form(of: raw) else { throw .malformed("form encoding") }
        return try verify(form: form, kind: raw.kind)
    }

    /// The notify carries its parameters in the form body; the browser return in the query.
    static func form(of raw: RawCallback) -> DecodedForm? {
        if raw.kind == .return || (raw.body.isEmpty && !raw.query.isEmpty) {
            var query = raw.query
            return query.withUTF8 { DecodedForm($0) }
        }
        return raw.body.withUnsafeBufferPointer { DecodedForm($0) }
    }

    func verify(form fields: DecodedForm, kind: RawCallback.Kind) throws(Rejection) -> PaymentNotification {
        let charset: AlipayCharset
        if let name = fields.ascii("charset") {
            guard let known = AlipayCharset(name: name) else { throw .malformed("charset") }
            charset = known
        } else {
            charset = .utf8
        }
        guard let signType = fields.ascii("sign_type") else { throw .malformed("sign_type missing") }
        let algorithm: AlipaySignature.Algorithm
        switch signType {
        case "RSA2": algorithm = .rsa2
        case "RSA" where configuration.allowSHA1SignType: algorithm = .rsa
        default: throw Rejection(.unsupportedSignType, Rejection.quoted(signType))
        }
        guard let signText = fields.value("sign") else { throw .malformed("sign missing") }
        guard let signature = signText.withUnsafeBufferPointer({ Base64.decode($0) }), !signature.isEmpty else {
            throw .malformed("sign is not base64")
        }
        guard let content = AlipaySignature.signContent(fields) else {
            throw .malformed("repeated parameter")
        }
        let key = notifyKey(fields)
        let valid =
            switch algorithm {
            case .rsa2: key.isValidSHA256Signature(signature, for: content)
            case .rsa: key.isValidSHA1Signature(signature, for: content)
            }
        guard valid else { throw Rejection(.badSignature) }

        // Genuine from here on: check it is ours, then read it.
        guard let appID = fields.ascii("app_id") else { throw .malformed("app_id missing") }
        guard appID == configuration.appID else { throw Rejection(.merchantMismatch, "app_id") }
        let sellerID = fields.ascii("seller_id")
        if let expected = configuration.sellerID, sellerID != expected {
            throw Rejection(.merchantMismatch, "seller_id")
        }
        guard let outTradeNo = fields.ascii("out_trade_no"), !outTradeNo.isEmpty else { throw .malformed("out_trade_no missing") }
        let tradeNo = fields.ascii("trade_no")
        let status: PaymentStatus
        if let tradeStatus = fields.ascii("trade_status") {
            status = AlipaySignature.status(tradeStatus)
        } else if kind == .return {
            // The browser return says only that the buyer came back: confirm by query.
            status = .pending
        } else {
            throw .malformed("trade_status missing")
        }
        guard let amountText = fields.value("total_amount") else { throw .malformed("total_amount missing") }
        guard let amount = amountText.withUnsafeBufferPointer({ Money.parseMinorUnits(utf8: $0) }) else {
            throw .malformed("total_amount")
        }
        var paidAt: Date? = nil
        if let text = fields.ascii("gmt_payment") {
            guard let date = Timestamps.parseAlipay(text) else { throw .malformed("gmt_payment") }
            paidAt = date
        }
        let currency = fields.ascii("trans_currency") ?? "CNY"
        let subject = fields.value("subject").flatMap { charset.decode(Array($0)) }
        var evidence = OrderEvidence(
            channel: configuration.channelID, outTradeNo: outTradeNo, channelTradeNo: tradeNo, status: status,
            amountMinor: amount, currency: currency, merchant: MerchantIdentity(appID: appID, merchantID: sellerID),
            paidAt: paidAt, payer: fields.ascii("buyer_id") ?? fields.ascii("buyer_open_id"))
        // A refund's TRADE_SUCCESS (partial) or TRADE_CLOSED (full) is never a payment or a close.
        let refund = kind == .notify ? try AlipayRefund.notice(fields, evidence: evidence) : nil
        if refund != nil { evidence.status = .other("REFUND") }
        return PaymentNotification(evidence: evidence, channelType: .alipay, eventID: fields.ascii("notify_id"),
                                   subject: subject, refund: refund)
    }

    /// The key a notify is verified with: in certificate mode the trusted certificate its
    /// `alipay_cert_sn` names, if it names one; otherwise the configured Alipay key or
    /// certificate (a reissued Alipay certificate keeps its key, so an SN not known yet
    /// still verifies with the configured one, or fails as a bad signature).
    func notifyKey(_ fields: DecodedForm) -> RSAPublicKey {
        if let mode = configuration.certificateMode, let sn = fields.ascii("alipay_cert_sn"), let key = mode.publicKey(sn: sn) {
            return key
        }
        return configuration.alipayPublicKey
    }

    public func unverifiedOutTradeNo(_ raw: RawCallback) -> String? {
        Self.form(of: raw)?.ascii("out_trade_no")
    }

    public func queryRequest(outTradeNo: String, now: Date) throws(QueryError) -> ChannelRequest {
        try AlipayQuery.makeRequest(configuration: configuration, outTradeNo: outTradeNo, now: now)
    }

    public func queryResult(_ response: ChannelResponse, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult {
        try AlipayQuery.interpret(response, configuration: configuration, outTradeNo: outTradeNo)
    }

    public var queryTimeout: Duration { configuration.queryTimeout }

    /// Parameter lookup over decoded pairs (first occurrence wins; repeats fail the sign content).
    package struct Fields {
        let pairs: [FormEncoding.Pair]
        package init(_ pairs: [FormEncoding.Pair]) { self.pairs = pairs }

        package func raw(_ key: String) -> [UInt8]? {
            let length = key.utf8.count
            for pair in pairs where pair.key.utf8.count == length && pair.key == key { return pair.value }
            return nil
        }

        /// The value as printable ASCII; nil when absent, empty, or not ASCII.
        package func ascii(_ key: String) -> String? {
            guard let bytes = raw(key), !bytes.isEmpty else { return nil }
            return Bytes.ascii(bytes)
        }
    }
}
