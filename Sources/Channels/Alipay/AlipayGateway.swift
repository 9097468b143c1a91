import PayhookCore
import Foundation

/// What every call to Alipay's `gateway.do` shares: the signed parameters of a request and
/// the verified reading of an answer's response node. Used by the query, order creation
/// and close, so all of them sign and classify alike.
enum AlipayGateway {
    /// The protocol parameters and `biz_content`, then `sign`: RSA2 with the app private key
    /// over every parameter sent but `sign` (sign_type included), as Alipay's SDKs do.
    /// `notify_url` and `return_url` are sent only when given.
    static func signedParameters(
        method: String, bizContent: JSONValue, configuration: AlipayConfiguration, now: Date,
        notifyURL: String? = nil, returnURL: String? = nil
    ) throws(QueryError) -> [FormEncoding.Pair] {
        guard let key = configuration.appPrivateKey else {
            throw .permanent(.invalidRequest, "app_private_key_file is not configured")
        }
        var pairs: [FormEncoding.Pair] = [
            .init(key: "app_id", value: Array(configuration.appID.utf8)),
            .init(key: "method", value: Array(method.utf8)),
            .init(key: "format", value: Array("JSON".utf8)),
            .init(key: "charset", value: Array("utf-8".utf8)),
            .init(key: "sign_type", value: Array("RSA2".utf8)),
            .init(key: "timestamp", value: Array(Timestamps.formatAlipay(now).utf8)),
            .init(key: "version", value: Array("1.0".utf8)),
        ]
        if let mode = configuration.certificateMode {
            // Certificate mode: both SNs are ordinary parameters, signed with the rest.
            pairs.append(.init(key: "app_cert_sn", value: Array(mode.appCertSN.utf8)))
            pairs.append(.init(key: "alipay_root_cert_sn", value: Array(mode.rootCertSN.utf8)))
        }
        if let notifyURL { pairs.append(.init(key: "notify_url", value: Array(notifyURL.utf8))) }
        if let returnURL { pairs.append(.init(key: "return_url", value: Array(returnURL.utf8))) }
        pairs.append(.init(key: "biz_content", value: Array(bizContent.serialized().utf8)))
        // The keys above are distinct, so the sign content always exists.
        let content = AlipaySignature.signContent(pairs, excludingSignType: false)!
        pairs.append(.init(key: "sign", value: Array(AlipaySignature.base64(key.signSHA256(content)).utf8)))
        return pairs
    }

    /// A server-to-server call: the signed parameters as a form body POSTed to the gateway.
    static func post(_ pairs: [FormEncoding.Pair], configuration: AlipayConfiguration) -> ChannelRequest {
        ChannelRequest(
            method: "POST", url: configuration.gatewayURL,
            headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded;charset=utf-8")],
            body: FormEncoding.encode(pairs)
        )
    }

    /// The response node of a method: `alipay.trade.close` → `alipay_trade_close_response`.
    static func responseNode(method: String) -> String {
        method.replacingOccurrences(of: ".", with: "_") + "_response"
    }

    /// An answer's response node, its signature checked when the answer carries one.
    struct Answer {
        var body: JSONValue
        var code: String
        var subCode: String
        /// Whether a `sign` was present and valid (an invalid one throws).
        var verified: Bool
    }

    /// Reads the gateway's answer. The signature is checked over the exact text of the
    /// response node as it appears in the bytes; 5xx, 429 and 408 are transient, any other
    /// status but 200 permanent.
    static func answer(_ response: ChannelResponse, node responseNode: String, configuration: AlipayConfiguration) throws(QueryError) -> Answer {
        if response.status >= 500 || response.status == 429 || response.status == 408 {
            throw .transient(.httpStatus, "HTTP \(response.status)")
        }
        guard response.status == 200 else { throw .permanent(.httpStatus, "HTTP \(response.status)") }
        let signed = try signedNode(response, node: responseNode)
        var verified = false
        if let signature = signed.signature {
            let key = try verificationKey(certSN: signed.certSN, configuration: configuration)
            guard let signatureBytes = AlipaySignature.decodeBase64(signature),
                key.isValidSHA256Signature(signatureBytes, for: response.body[signed.nodeRange])
            else { throw .permanent(.badSignature, "response signature") }
            verified = true
        }
        let nodeRange = signed.nodeRange
        // Checked already as part of the whole answer, so this parse does not fail.
        guard let body = try? JSONValue.parse(response.body[nodeRange]) else { throw .permanent(.malformedResponse, "not JSON") }
        return Answer(body: body, code: body["code"]?.stringValue ?? "", subCode: body["sub_code"]?.stringValue ?? "", verified: verified)
    }

    /// Where an answer's node sits in the bytes, and its siblings `sign` and `alipay_cert_sn`.
    struct SignedNode {
        var nodeRange: Range<Int>
        var signature: String?
        var certSN: String?
    }

    static func signedNode(_ response: ChannelResponse, node responseNode: String) throws(QueryError) -> SignedNode {
        try response.body.withUnsafeBufferPointer { bytes throws(QueryError) -> SignedNode in
            guard let view = JSONObjectView(bytes) else { throw .permanent(.malformedResponse, "not a JSON object") }
            // The answer or the error node, whichever comes first.
            let nodes = [view[responseNode], view["error_response"]].compactMap { $0 }
            guard let node = nodes.min(by: { $0.range.lowerBound < $1.range.lowerBound }) else {
                throw .permanent(.malformedResponse, "no \(responseNode)")
            }
            return SignedNode(nodeRange: node.range, signature: view["sign"]?.string, certSN: view["alipay_cert_sn"]?.string)
        }
    }

    /// The key that verifies an answer: in certificate mode the one of the certificate its
    /// `alipay_cert_sn` names (the client has downloaded an unknown one before the answer is
    /// read; one still unknown here is a transient `unknown_key`), or the configured
    /// certificate's when it names none; in public-key mode the configured key.
    static func verificationKey(certSN: String?, configuration: AlipayConfiguration) throws(QueryError) -> RSAPublicKey {
        guard let mode = configuration.certificateMode, let certSN, !certSN.isEmpty else { return configuration.alipayPublicKey }
        guard let key = mode.publicKey(sn: certSN) else {
            throw .transient(.unknownKey, "alipay_cert_sn \(Rejection.quoted(certSN)) is not a trusted certificate")
        }
        return key
    }

    /// The error for an answer no caller took as a result: `20000`, `isp.*`,
    /// `ACQ.SYSTEM_ERROR` and `aop.*unknow*` are transient, anything else permanent.
    static func failure(_ answer: Answer) -> QueryError {
        let detail = "code \(answer.code.prefix(16)) \(answer.subCode.prefix(48))"
        let subCode = answer.subCode
        if answer.code == "20000" || subCode.hasPrefix("isp.") || subCode == "ACQ.SYSTEM_ERROR"
            || subCode.hasPrefix("aop.") && subCode.contains("unknow") {
            return .transient(.channelError, detail)
        }
        return .permanent(.channelError, detail)
    }
}
