/// `application/x-www-form-urlencoded` and percent-encoding over raw bytes. Values decode to
/// bytes, not text: what those bytes mean depends on the charset the message names.
enum FormEncoding {
    struct Pair: Sendable, Hashable {
        var key: String
        var value: [UInt8]
    }

    /// Splits `k=v&k2=v2` and percent-decodes both sides (`+` is a space). Keys must decode
    /// to UTF-8 text. Returns nil on a bad `%` escape or a non-text key. Empty segments
    /// (`a=1&&b=2`) are skipped; a segment without `=` has an empty value.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> [Pair]? {
        var pairs: [Pair] = []
        pairs.reserveCapacity(32)
        var start = 0
        let count = bytes.count
        while start <= count {
            var end = start
            while end < count, bytes[end] != UInt8(ascii: "&") { end += 1 }
            if end > start {
                var eq = start
                while eq < end, bytes[eq] != UInt8(ascii: "=") { eq += 1 }
                guard let keyBytes = percentDecode(UnsafeBufferPointer(rebasing: bytes[start..<eq])),
                    let key = String(validating: keyBytes, as: UTF8.self)
                else { return nil }
                let valueStart = eq < end ? eq + 1 : end
                guard let value = percentDecode(UnsafeBufferPointer(rebasing: bytes[valueStart..<end])) else { return nil }
                pairs.append(Pair(key: key, value: value))
            }
            start = end + 1
        }
        return pairs
    }

    static func parse(_ bytes: [UInt8]) -> [Pair]? {
        bytes.withUnsafeBufferPointer { parse($0) }
    }

    static func parse(_ text: String) -> [Pair]? {
        var text = text
        return text.withUTF8 { parse($0) }
    }

    static func percentDecode(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else {
                    return nil
                }
                out.append(hi << 4 | lo)
                i += 3
            } else if b == UInt8(ascii: "+") {
                out.append(0x20)
                i += 1
            } else {
                out.append(b)
                i += 1
            }
        }
        return out
    }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }

    /// Percent-encodes bytes for a form body: unreserved bytes as-is, space as `+`.
    static func encode(_ bytes: some Sequence<UInt8>, into out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        for b in bytes {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "*"):
                out.append(b)
            case 0x20:
                out.append(UInt8(ascii: "+"))
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0x0F)])
            }
        }
    }

    /// Encodes pairs as a form body.
    static func encode(_ pairs: [Pair]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, pair) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "&")) }
            encode(pair.key.utf8, into: &out)
            out.append(UInt8(ascii: "="))
            encode(pair.value, into: &out)
        }
        return out
    }

    /// Percent-encodes text for a URL path segment (RFC 3986 unreserved kept).
    static func encodePathSegment(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF")
        var out = ""
        for b in text.utf8 {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out.append("%")
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0x0F)])
            }
        }
        return out
    }
}

/// Hex and text helpers shared by the adapters.
enum Bytes {
    static func hexLower(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexUpper(_ bytes: some Sequence<UInt8>) -> String {
        hexLower(bytes).uppercased()
    }

    /// Decodes hex text (either case); nil on odd length or a non-hex digit.
    static func fromHex(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = FormEncoding.hexValue(utf8[i]), let lo = FormEncoding.hexValue(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// Printable ASCII text (0x20...0x7E) from bytes, or nil. Identifier fields are ASCII in
    /// every charset the channels use, so this reads them the same in utf-8 and gbk.
    static func ascii(_ bytes: [UInt8]) -> String? {
        for b in bytes where b < 0x20 || b > 0x7E { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A random alphanumeric string (nonces).
    static func randomAlphanumeric(_ count: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
    }
}

/// Random nonces for signed messages.
public enum Nonce {
    /// `count` random characters from `A-Z0-9` (system CSPRNG).
    public static func random(_ count: Int = 32) -> String {
        Bytes.randomAlphanumeric(count)
    }
}

extension FormEncoding {
    static func percentDecode(_ bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBufferPointer { percentDecode($0) }
    }
}
