import Channels
import Foundation
import PayhookCore

/// What the fuzz target drives: the package-internal parsers, and inputs signed so that
/// fuzzed bytes reach past the signature checks.
enum FuzzHooks {
    /// JSON reader; checks that whatever parses re-serializes to something that parses the same.
    static func json(_ bytes: [UInt8]) {
        if let value = try? JSONValue.parse(bytes) {
            let again = try? JSONValue.parse(Array(value.serialized().utf8))
            precondition(again == value, "JSON re-serialization changed the value")
        }
        precondition(JSONObjectView.agreesWithParse(bytes), "JSONObjectView disagrees with JSONValue.parse")
    }

    /// Money, CIDR, timestamps, form decoding over the text.
    static func scalars(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let minor = Money.parseMinorUnits(text) {
            precondition(minor >= 0 && Money.parseMinorUnits(Money.format(minorUnits: minor)) == minor, "money round trip")
        }
        if let cidr = CIDR.parse(text) {
            precondition(CIDR.parse(cidr.description) == cidr, "CIDR round trip")
            _ = cidr.contains(text)
        }
        _ = Timestamps.parseAlipay(text)
        _ = Timestamps.parseRFC3339(text)
        if let pairs = FormEncoding.parse(bytes) {
            let again = FormEncoding.parse(FormEncoding.encode(pairs))
            precondition(again == pairs, "form round trip")
            _ = AlipaySignature.signContent(pairs)
        }
        _ = WeChatPaySignature.parseAuthorization(text)
        _ = Bytes.fromHex(text)
    }

    /// Appends a valid RSA2 signature over the form's own sign content, so fuzzed notifies
    /// reach field parsing. nil when the form does not parse.
    static func signAlipayForm(_ bytes: [UInt8], key: RSAPrivateKey) -> [UInt8]? {
        guard var pairs = FormEncoding.parse(bytes) else { return nil }
        pairs.removeAll { $0.key == "sign" || $0.key == "sign_type" }
        guard let content = AlipaySignature.signContent(pairs) else { return nil }
        pairs.append(.init(key: "sign", value: Array(AlipaySignature.base64(key.signSHA256(content)).utf8)))
        pairs.append(.init(key: "sign_type", value: Array("RSA2".utf8)))
        return FormEncoding.encode(pairs)
    }

    /// A WeChat notify envelope around `plaintext`, encrypted with `apiV3Key` (reaches the
    /// transaction reader).
    static func wechatEnvelope(plaintext: [UInt8], apiV3Key: SharedSecret) -> [UInt8] {
        let ciphertext = WeChatPaySignature.encrypt(plaintext: plaintext, key: apiV3Key, nonce: "0123456789ab", associatedData: "transaction")
        let envelope = JSONValue.object([
            "id": .string("EV-FUZZ"),
            "resource": .object([
                "algorithm": .string("AEAD_AES_256_GCM"), "ciphertext": .string(ciphertext),
                "associated_data": .string("transaction"), "nonce": .string("0123456789ab"),
            ]),
        ])
        return Array(envelope.serialized().utf8)
    }

    /// An Alipay gateway answer whose node is `inner`, signed when `key` is given.
    static func alipayResponse(inner: [UInt8], key: RSAPrivateKey?) -> [UInt8] {
        var out = Array(#"{"alipay_trade_query_response":"#.utf8) + inner
        if let key { out += Array(#","sign":""#.utf8) + Array(AlipaySignature.base64(key.signSHA256(inner)).utf8) + [0x22] }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
