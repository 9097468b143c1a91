package import PayhookCore
package import Foundation
import Crypto

/// WeChat Pay APIv3 signing rules, shared by the adapter, the query client and the channel side.
package enum WeChatPaySignature {
    package static let signatureType = "WECHATPAY2-SHA256-RSA2048"
    package static let probePrefix = "WECHATPAY/SIGNTEST/"

    /// Checks the `Wechatpay-*` headers and the signature over `timestamp\nnonce\nbody\n`.
    /// Order: missing header (malformed), probe, signature type, unknown key, stale, signature.
    package static func verify(headers: [HeaderField], body: [UInt8], keys: [String: RSAPublicKey], now: Date, maxSkewSeconds: Int) throws(Rejection) {
        let signed = SignedHeaders(headers)
        guard let timestamp = signed.timestamp, let nonce = signed.nonce, let signatureText = signed.signature, let serial = signed.serial
        else { throw .malformed("Wechatpay-Timestamp, -Nonce, -Signature and -Serial headers are required") }
        if signatureText.hasPrefix(probePrefix) { throw Rejection(.probeSignature) }
        if let type = signed.signatureType, type != signatureType {
            throw Rejection(.unsupportedSignType, Rejection.quoted(type))
        }
        guard let key = keys[WeChatPayConfiguration.normalizeSerial(serial)] else {
            throw Rejection(.unknownKey, "Wechatpay-Serial \(Rejection.quoted(serial))")
        }
        guard timestamp.utf8.count <= 12, let seconds = Int64(timestamp), seconds >= 0 else {
            throw .malformed("Wechatpay-Timestamp")
        }
        let skew = abs(now.timeIntervalSince1970 - Double(seconds))
        guard skew <= Double(maxSkewSeconds) else { throw Rejection(.staleTimestamp, "\(Int64(skew)) s from receive time") }
        guard let signature = Base64.decode(signatureText), !signature.isEmpty else {
            throw .malformed("Wechatpay-Signature is not base64")
        }
        guard key.isValidSHA256Signature(Array(signature), for: SignedMessage.answer(timestamp: timestamp, nonce: nonce, body: body)) else {
            throw Rejection(.badSignature)
        }
    }

    /// The `Wechatpay-*` headers, found in one pass over the request's (names compared
    /// case-insensitively, the first of each kept).
    package struct SignedHeaders {
        var timestamp, nonce, signature, serial, signatureType: String?

        init(_ headers: [HeaderField]) {
            func keep(_ slot: inout String?, _ field: HeaderField, _ name: String) {
                if slot == nil, HeaderField.namesEqual(field.name, name) { slot = field.value }
            }
            for field in headers {
                switch field.name.utf8.count {  // the names' lengths tell them apart, but for two
                case 15: keep(&nonce, field, "Wechatpay-Nonce")
                case 16: keep(&serial, field, "Wechatpay-Serial")
                case 19:
                    keep(&timestamp, field, "Wechatpay-Timestamp")
                    keep(&signature, field, "Wechatpay-Signature")
                case 24: keep(&signatureType, field, "Wechatpay-Signature-Type")
                default: continue
                }
            }
        }
    }

    /// AEAD_AES_256_GCM: base64 ciphertext with the 16-byte tag appended, the nonce's 12
    /// text bytes, `associated_data` text as AAD.
    package static func decrypt(resource: JSONObjectView, key: SharedSecret) throws(Rejection) -> [UInt8] {
        guard let algorithm = resource["algorithm"], algorithm.isString, let ciphertext = resource["ciphertext"], ciphertext.isString,
            let nonce = resource["nonce"], nonce.isString
        else { throw .malformed("resource fields") }
        guard algorithm.isString("AEAD_AES_256_GCM") else { throw Rejection(.unsupportedSignType, "resource algorithm") }
        guard nonce.withStringBytes({ $0.count == 12 }) == true else { throw .malformed("resource.nonce is not 12 bytes") }
        guard let sealed = ciphertext.withStringBytes(Base64.decode) ?? nil, sealed.count >= 16 else { throw .malformed("resource.ciphertext") }
        guard key.byteCount == 32 else { throw Rejection(.decryptFailed, "APIv3 key is not 32 bytes") }
        func open(_ associatedData: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
            key.withUnsafeBytes { key in
                sealed.withUnsafeBufferPointer { sealed in
                    nonce.withStringBytes { LibCryptoAESGCM.open(key: key, nonce: $0, ciphertextAndTag: sealed, associatedData: associatedData) } ?? nil
                }
            }
        }
        // A missing (or non-string) `associated_data` authenticates as empty.
        guard let plaintext = resource["associated_data"]?.withStringBytes(open) ?? [UInt8]().withUnsafeBufferPointer(open) else {
            throw Rejection(.decryptFailed)
        }
        return plaintext
    }

    package static func encrypt(plaintext: [UInt8], key: SharedSecret, nonce: String, associatedData: String) -> String {
        // Sealing with a 32-byte key and a valid nonce does not fail.
        let box = try! AES.GCM.seal(plaintext, using: key.key, nonce: try! AES.GCM.Nonce(data: Array(nonce.utf8)), authenticating: Array(associatedData.utf8))
        return (box.ciphertext + box.tag).base64EncodedString()
    }

    /// `trade_state` values and what they mean; any other is kept verbatim.
    private static let tradeStates: [(text: StaticString, status: PaymentStatus)] = [
        ("SUCCESS", .paid), ("CLOSED", .closed), ("REVOKED", .closed), ("NOTPAY", .pending), ("USERPAYING", .pending),
    ]

    package static func status(_ tradeState: JSONSpan) -> PaymentStatus? {
        guard tradeState.isString else { return nil }
        for known in tradeStates where tradeState.isString(known.text) { return known.status }
        return tradeState.string.map { .other($0) }
    }

    package static func tradeState(_ status: PaymentStatus) -> String {
        switch status {
        case .paid: "SUCCESS"
        case .closed: "CLOSED"
        case .pending: "NOTPAY"
        case .other(let raw): raw
        }
    }

    /// Reads a transaction object (decrypted notify resource or query answer). Values equal to
    /// the configured ones are compared in place and the configured strings reused.
    package static func transaction(_ tx: JSONObjectView, channel: String, mchID: String, appID: String) throws(Rejection) -> OrderEvidence {
        guard let txMch = tx["mchid"], txMch.isString, let txApp = tx["appid"], txApp.isString else { throw .malformed("mchid/appid") }
        guard txMch.isString(mchID) else { throw Rejection(.merchantMismatch, "mchid") }
        guard txApp.isString(appID) else { throw Rejection(.merchantMismatch, "appid") }
        guard let outTradeNo = tx["out_trade_no"]?.string, !outTradeNo.isEmpty else { throw .malformed("out_trade_no") }
        guard let tradeState = tx["trade_state"], let status = status(tradeState) else { throw .malformed("trade_state") }
        guard let amount = tx["amount"]?.object, let total = amount["total"]?.int64, total >= 0 else { throw .malformed("amount.total") }
        let currency: String
        if let text = amount["currency"], text.isString {
            currency = text.isString("CNY") ? "CNY" : text.string!
        } else {
            currency = "CNY"
        }
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { throw .malformed("amount.currency") }
        var paidAt: Date? = nil
        if let time = tx["success_time"], time.isString {
            guard let date = time.withStringBytes(Timestamps.parseRFC3339) ?? nil else { throw .malformed("success_time") }
            paidAt = date
        }
        return OrderEvidence(
            channel: channel, outTradeNo: outTradeNo, channelTradeNo: tx["transaction_id"]?.string, status: status,
            amountMinor: total, currency: currency, merchant: MerchantIdentity(appID: appID, merchantID: mchID), paidAt: paidAt,
            payer: tx["payer"]?.object?["openid"]?.string
        )
    }

    /// Reads a transaction from JSON bytes; malformed when they are not a JSON object.
    package static func transaction(json: UnsafeRawBufferPointer, channel: String, mchID: String, appID: String) throws(Rejection) -> OrderEvidence {
        guard let tx = JSONObjectView(json) else { throw .malformed("transaction is not a JSON object") }
        return try transaction(tx, channel: channel, mchID: mchID, appID: appID)
    }

    /// Parses `WECHATPAY2-SHA256-RSA2048 k="v",k="v"`.
    package static func parseAuthorization(_ header: String) -> [String: String]? {
        guard header.hasPrefix(signatureType + " ") else { return nil }
        var out: [String: String] = [:]
        for part in header.dropFirst(signatureType.count + 1).split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard let eq = trimmed.firstIndex(of: "=") else { return nil }
            var value = trimmed[trimmed.index(after: eq)...]
            guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") else { return nil }
            value = value.dropFirst().dropLast()
            out[String(trimmed[..<eq])] = String(value)
        }
        return out
    }
}
