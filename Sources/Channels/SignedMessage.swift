/// The line-joined messages that WeChat Pay APIv3 signs with RSA and the points protocol
/// (which follows it) with HMAC: every part and a final newline, the body's bytes verbatim.
package enum SignedMessage {
    /// `timestamp\nnonce\nbody\n`: notifies and API answers.
    package static func answer(timestamp: String, nonce: String, body: [UInt8]) -> [UInt8] {
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

    /// `METHOD\ntarget\ntimestamp\nnonce\nbody\n`: API requests.
    package static func request(method: String, target: String, timestamp: String, nonce: String, body: [UInt8]) -> [UInt8] {
        Array("\(method)\n\(target)\n".utf8) + answer(timestamp: timestamp, nonce: nonce, body: body)
    }
}
