import Foundation
import Crypto

/// WeChat Pay APIv3 signing rules, shared by the adapter, the query client and the channel side.
enum WeChatPaySignature {
    static let signatureType = "WECHATPAY2-SHA256-RSA2048"
    static let probePrefix = "WECHATPAY/SIGNTEST/"

    /// `timestamp\nnonce\nbody\n` over the raw body bytes.
    static func responseMessage(timestamp: String, nonce: String, body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(timestamp.utf8.count + nonce.utf8.count + body.count + 3)
        out.append(contentsOf: timestamp.utf8)
        out.append(0x0A)
        out.append(contentsOf: nonce.utf8)
        out.append(0x0A)
        out.append(contentsOf: body)
        out.append(0x0A)
        return out
    }

    /// `METHOD\ntarget\ntimestamp\nnonce\nbody\n` for requests.
    static func requestMessage(method: String, target: String, timestamp: String, nonce: String, body: [UInt8]) -> [UInt8] {
        Array("\(method)\n\(target)\n".utf8) + responseMessage(timestamp: timestamp, nonce: nonce, body: body)
    }

    /// Checks the `Wechatpay-*` headers and the signature over `timestamp\nnonce\nbody\n`.
    /// Order: missing header (malformed), probe, signature type, unknown key, stale, signature.
    static func verify(headers: [HeaderField], body: [UInt8], keys: [String: RSAPublicKey], now: Date, maxSkewSeconds: Int) throws(Rejection) {
        guard let timestamp = headers.first(named: "Wechatpay-Timestamp"),
            let nonce = headers.first(named: "Wechatpay-Nonce"),
            let signatureText = headers.first(named: "Wechatpay-Signature"),
            let serial = headers.first(named: "Wechatpay-Serial")
        else { throw .malformed("Wechatpay-Timestamp, -Nonce, -Signature and -Serial headers are required") }
        if signatureText.hasPrefix(probePrefix) { throw Rejection(.probeSignature) }
        if let type = headers.first(named: "Wechatpay-Signature-Type"), type != signatureType {
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
        guard key.isValidSHA256Signature(Array(signature), for: responseMessage(timestamp: timestamp, nonce: nonce, body: body)) else {
            throw Rejection(.badSignature)
        }
    }

    /// AEAD_AES_256_GCM: base64 ciphertext with the 16-byte tag appended, the nonce's text
    /// bytes (12), `associated_data` text as AAD.
    static func decrypt(resource: JSONValue, key: SharedSecret) throws(Rejection) -> [UInt8] {
        guard let algorithm = resource["algorithm"]?.stringValue, let ciphertextText = resource["ciphertext"]?.stringValue,
            let nonceText = resource["nonce"]?.stringValue
        else { throw .malformed("resource fields") }
        guard algorithm == "AEAD_AES_256_GCM" else { throw Rejection(.unsupportedSignType, "resource algorithm") }
        let associatedData = resource["associated_data"]?.stringValue ?? ""
        guard let combined = Base64.decode(ciphertextText), combined.count >= 16 else {
            throw .malformed("resource.ciphertext")
        }
        guard key.byteCount == 32 else { throw Rejection(.decryptFailed, "APIv3 key is not 32 bytes") }
        do {
            let box: AES.GCM.SealedBox
            if nonceText.utf8.count == 12 {
                // The box's own layout, nonce‖ciphertext‖tag, built here in one buffer: the
                // (nonce:ciphertext:tag:) initializer is generic and copies byte by byte.
                var nonceText = nonceText
                var sealed = Data(count: 12 + combined.count)
                sealed.withUnsafeMutableBytes { out in
                    nonceText.withUTF8 { out.copyMemory(from: UnsafeRawBufferPointer($0)) }
                    combined.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[12...]).copyMemory(from: $0) }
                }
                box = try AES.GCM.SealedBox(combined: sealed)
            } else {
                let nonce = try AES.GCM.Nonce(data: Array(nonceText.utf8))
                box = try AES.GCM.SealedBox(nonce: nonce, ciphertext: combined.dropLast(16), tag: combined.suffix(16))
            }
            return Array(try AES.GCM.open(box, using: key.key, authenticating: Array(associatedData.utf8)))
        } catch {
            throw Rejection(.decryptFailed)
        }
    }

    static func encrypt(plaintext: [UInt8], key: SharedSecret, nonce: String, associatedData: String) -> String {
        // Sealing with a 32-byte key and a valid nonce does not fail.
        let box = try! AES.GCM.seal(plaintext, using: key.key, nonce: try! AES.GCM.Nonce(data: Array(nonce.utf8)), authenticating: Array(associatedData.utf8))
        return (box.ciphertext + box.tag).base64EncodedString()
    }

    static func status(_ tradeState: String) -> PaymentStatus {
        switch tradeState {
        case "SUCCESS": .paid
        case "CLOSED", "REVOKED": .closed
        case "NOTPAY", "USERPAYING": .pending
        default: .other(tradeState)
        }
    }

    static func tradeState(_ status: PaymentStatus) -> String {
        switch status {
        case .paid: "SUCCESS"
        case .closed: "CLOSED"
        case .pending: "NOTPAY"
        case .other(let raw): raw
        }
    }

    /// Every member `transaction` reads; the notify path builds only these.
    static let transactionKeys = ["mchid", "appid", "out_trade_no", "trade_state", "amount", "success_time", "transaction_id"]

    /// Reads a transaction object (decrypted notify resource or query answer).
    static func transaction(_ tx: JSONValue, mchID: String, appID: String) throws(Rejection) -> QueriedOrder {
        guard case .object = tx else { throw .malformed("transaction is not an object") }
        guard let txMch = tx["mchid"]?.stringValue, let txApp = tx["appid"]?.stringValue else { throw .malformed("mchid/appid") }
        guard txMch == mchID else { throw Rejection(.merchantMismatch, "mchid") }
        guard txApp == appID else { throw Rejection(.merchantMismatch, "appid") }
        guard let outTradeNo = tx["out_trade_no"]?.stringValue, !outTradeNo.isEmpty else { throw .malformed("out_trade_no") }
        guard let tradeState = tx["trade_state"]?.stringValue else { throw .malformed("trade_state") }
        guard let amount = tx["amount"], let total = amount["total"]?.int64Value, total >= 0 else { throw .malformed("amount.total") }
        let currency = amount["currency"]?.stringValue ?? "CNY"
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { throw .malformed("amount.currency") }
        var paidAt: Date? = nil
        if let text = tx["success_time"]?.stringValue {
            guard let date = Timestamps.parseRFC3339(text) else { throw .malformed("success_time") }
            paidAt = date
        }
        return QueriedOrder(
            outTradeNo: outTradeNo, channelTradeNo: tx["transaction_id"]?.stringValue, status: status(tradeState),
            amountMinor: total, currency: currency, merchant: MerchantIdentity(appID: txApp, merchantID: txMch), paidAt: paidAt
        )
    }

    /// Parses `WECHATPAY2-SHA256-RSA2048 k="v",k="v"`.
    static func parseAuthorization(_ header: String) -> [String: String]? {
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
