/// `application/x-www-form-urlencoded` and percent-encoding over raw bytes. Values decode to
/// bytes, not text: what those bytes mean depends on the charset the message names.
package enum FormEncoding {
    package struct Pair: Sendable, Hashable {
        package var key: String
        package var value: [UInt8]

        package init(key: String, value: [UInt8]) {
            self.key = key
            self.value = value
        }
    }

    /// Splits `k=v&k2=v2` and percent-decodes both sides (`+` is a space). Keys must decode
    /// to UTF-8 text. Returns nil on a bad `%` escape or a non-text key. Empty segments
    /// (`a=1&&b=2`) are skipped; a segment without `=` has an empty value.
    package static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> [Pair]? {
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
                let rawKey = UnsafeBufferPointer(rebasing: bytes[start..<eq])
                let key: String
                if rawKey.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
                    guard let keyBytes = percentDecode(rawKey), let decoded = Bytes.utf8String(keyBytes) else { return nil }
                    key = decoded
                } else {
                    guard let plain = Bytes.utf8String(rawKey) else { return nil }
                    key = plain
                }
                let valueStart = eq < end ? eq + 1 : end
                let rawValue = UnsafeBufferPointer(rebasing: bytes[valueStart..<end])
                let value: [UInt8]
                if rawValue.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
                    guard let decoded = percentDecode(rawValue) else { return nil }
                    value = decoded
                } else {
                    value = Array(rawValue)
                }
                pairs.append(Pair(key: key, value: value))
            }
            start = end + 1
        }
        return pairs
    }

    package static func parse(_ bytes: [UInt8]) -> [Pair]? {
        bytes.withUnsafeBufferPointer { parse($0) }
    }

    package static func parse(_ text: String) -> [Pair]? {
        var text = text
        return text.withUTF8 { parse($0) }
    }

    package static func percentDecode(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
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

    @inline(__always) package static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }

    /// Percent-encodes bytes for a form body: unreserved bytes as-is, space as `+`.
    package static func encode(_ bytes: some Sequence<UInt8>, into out: inout [UInt8]) {
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
    package static func encode(_ pairs: [Pair]) -> [UInt8] {
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
    package static func encodePathSegment(_ text: String) -> String {
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
package enum Bytes {
    package static func hexLower(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    package static func hexUpper(_ bytes: some Sequence<UInt8>) -> String {
        hexLower(bytes).uppercased()
    }

    /// Decodes hex text (either case); nil on odd length or a non-hex digit.
    package static func fromHex(_ text: String) -> [UInt8]? {
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
    package static func ascii(_ bytes: [UInt8]) -> String? {
        for b in bytes where b < 0x20 || b > 0x7E { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes as text if they are valid UTF-8, else nil. (`String(validating:as:)` is not
    /// specialized across modules and costs a generic-metadata lookup per call on the hot path.)
    @inline(__always)
    package static func utf8String(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        isUTF8(bytes) ? String(decoding: bytes, as: UTF8.self) : nil
    }

    /// Whether the bytes are well-formed UTF-8 (Unicode table 3-7: no overlong forms, no
    /// surrogates, nothing above U+10FFFF), without making a `String`.
    package static func isUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if isASCII(bytes) { return true }
        let count = bytes.count
        var i = 0
        while i < count {
            let lead = bytes[i]
            if lead < 0x80 { i += 1; continue }
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF  // the second byte's range
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return false
            }
            guard count - i >= length, bytes[i + 1] >= low, bytes[i + 1] <= high else { return false }
            var k = 2
            while k < length {
                guard bytes[i + k] & 0xC0 == 0x80 else { return false }
                k += 1
            }
            i += length
        }
        return true
    }

    /// Byte-for-byte equality, 8 bytes at a time.
    @inline(__always)
    package static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return true }
        var i = 0
        while i + 8 <= a.count {
            if UnsafeRawPointer(pa + i).loadUnaligned(as: UInt64.self) != UnsafeRawPointer(pb + i).loadUnaligned(as: UInt64.self) { return false }
            i += 8
        }
        while i < a.count {
            if pa[i] != pb[i] { return false }
            i += 1
        }
        return true
    }

    /// Whether every byte is below 0x80, 8 bytes at a time.
    @inline(__always)
    package static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var i = 0
        var high: UInt64 = 0
        while i + 8 <= bytes.count {
            high |= UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            high |= UInt64(base[i])
            i += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }

    package static func utf8String(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBufferPointer { utf8String($0) }
    }

    /// A random alphanumeric string (nonces).
    package static func randomAlphanumeric(_ count: Int) -> String {
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
    package static func percentDecode(_ bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBufferPointer { percentDecode($0) }
    }
}

/// A decoded form held in one buffer: every pair's decoded key and value bytes sit side by
/// side in `storage`, found by range. One allocation for all pairs and no `String` per key:
/// the notify hot path.
package struct DecodedForm {
    package struct Entry {
        var key: Range<Int>
        var value: Range<Int>
    }

    package var entries: [Entry]
    package var storage: [UInt8]

    /// nil on a bad `%` escape or a key that is not UTF-8 text.
    package init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        var entries: [Entry] = []
        entries.reserveCapacity(32)
        var failed = false
        // Decoding never grows the text, so one buffer of the input's size holds every pair.
        let storage = [UInt8](unsafeUninitializedCapacity: max(bytes.count, 1)) { out, initialized in
            if let written = DecodedForm.decode(bytes, into: out, entries: &entries) {
                initialized = written
            } else {
                initialized = 0
                failed = true
            }
        }
        if failed { return nil }
        self.entries = entries
        self.storage = storage
    }

    /// Decodes every pair in one pass (`+` is a space, `%XX` a byte; the first `=` of a
    /// segment ends its key; empty segments are skipped) and returns the bytes written.
    /// nil on a bad escape or a non-UTF-8 key. Same results as `FormEncoding.parse`: hex
    /// digits are never `&` or `=`, so an escape cannot straddle a key, value or pair end.
    private static func decode(_ bytes: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>, entries: inout [Entry]) -> Int? {
        guard let base = bytes.baseAddress, let target = out.baseAddress else { return 0 }
        let count = bytes.count
        var i = 0
        var w = 0
        while i < count {
            let segmentStart = i
            let keyStart = w
            var keyEnd = -1
            scan: while true {
                // Copy 8 bytes at a time up to the next `&`, `=`, `%` or `+`. Storing a whole
                // word is safe: `w <= i` and `i + 8 <= count`, the buffer's size, and bytes past
                // `w` are not final yet.
                while i + 8 <= count {
                    let word = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
                    UnsafeMutableRawPointer(target + w).storeBytes(of: word.littleEndian, as: UInt64.self)
                    let special = DecodedForm.byteMask(word, 0x26) | DecodedForm.byteMask(word, 0x3D) | DecodedForm.byteMask(word, 0x25) | DecodedForm.byteMask(word, 0x2B)
                    if special == 0 {
                        i += 8
                        w += 8
                        continue
                    }
                    let skip = special.trailingZeroBitCount >> 3
                    i += skip
                    w += skip
                    break
                }
                guard i < count else { break scan }
                let b = base[i]
                switch b {
                case UInt8(ascii: "&"):
                    break scan
                case UInt8(ascii: "=") where keyEnd < 0:
                    keyEnd = w
                    i += 1
                case UInt8(ascii: "%"):
                    guard i + 2 < count, let hi = FormEncoding.hexValue(base[i + 1]), let lo = FormEncoding.hexValue(base[i + 2]) else { return nil }
                    target[w] = hi << 4 | lo
                    w += 1
                    i += 3
                case UInt8(ascii: "+"):
                    target[w] = 0x20
                    w += 1
                    i += 1
                default:
                    target[w] = b
                    w += 1
                    i += 1
                }
            }
            if i > segmentStart {
                if keyEnd < 0 { keyEnd = w }
                guard Bytes.isUTF8(UnsafeBufferPointer(rebasing: out[keyStart..<keyEnd])) else { return nil }
                entries.append(Entry(key: keyStart..<keyEnd, value: keyEnd..<w))
            }
            i += 1  // the `&`
        }
        return w
    }

    /// The high bit set in each byte of `word` equal to `byte`. The lowest set bit marks the
    /// first such byte exactly (higher ones can be false hits after it: the SWAR borrow).
    @inline(__always)
    package static func byteMask(_ word: UInt64, _ byte: UInt8) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let x = word ^ (ones &* UInt64(byte))
        return (x &- ones) & ~x & 0x8080_8080_8080_8080
    }

    package var count: Int { entries.count }

    /// The first pair's index with this key (repeats fail the sign content).
    package func index(of key: String) -> Int? {
        var key = key
        return key.withUTF8 { wanted in
            storage.withUnsafeBufferPointer { storage in
                for i in 0..<entries.count where entries[i].key.count == wanted.count {
                    if UnsafeBufferPointer(rebasing: storage[entries[i].key]).elementsEqual(wanted) { return i }
                }
                return nil
            }
        }
    }

    package func key(at index: Int) -> String {
        String(decoding: storage[entries[index].key], as: UTF8.self)
    }

    package func value(_ key: String) -> ArraySlice<UInt8>? {
        index(of: key).map { storage[entries[$0].value] }
    }

    /// The value as printable ASCII; nil when absent, empty, or not ASCII.
    package func ascii(_ key: String) -> String? {
        guard let bytes = value(key), !bytes.isEmpty else { return nil }
        for b in bytes where b < 0x20 || b > 0x7E { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    package var pairs: [FormEncoding.Pair] {
        (0..<entries.count).map { FormEncoding.Pair(key: key(at: $0), value: Array(storage[entries[$0].value])) }
    }
}
