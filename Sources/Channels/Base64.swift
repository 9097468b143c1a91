/// Strict standard base64 (RFC 4648 §4, `=` padding required, no whitespace) into bytes,
/// without Foundation's `Data` round trips on the hot path.
package enum Base64 {
    /// Each character's 6 bits already shifted to its place in a quad's 24 bits, one table
    /// per place, so a quad is four loads and three ORs; a character that is not base64
    /// sets bit 31 in every table.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0x8000_0000, count: 4 * 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            for place in 0..<4 { tables[place * 256 + Int(c)] = UInt32(i) << (18 - 6 * place) }
        }
        return tables
    }()

    /// How many bytes `input` decodes to, or nil when its length cannot be base64.
    package static func decodedCount(_ input: UnsafeBufferPointer<UInt8>) -> Int? {
        let count = input.count
        guard count % 4 == 0 else { return nil }
        if count == 0 { return 0 }
        var padding = 0
        if input[count - 1] == UInt8(ascii: "=") { padding += 1 }
        if input[count - 2] == UInt8(ascii: "=") { padding += 1 }
        return count / 4 * 3 - padding
    }

    /// Decodes into `out`, which holds exactly `decodedCount(input)` bytes; false on a byte
    /// that is not base64 (what was written is then meaningless).
    package static func decode(_ input: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableRawBufferPointer) -> Bool {
        let count = input.count
        guard let outputCount = decodedCount(input), outputCount == out.count else { return false }
        if count == 0 { return true }
        let padding = count / 4 * 3 - outputCount
        return tables.withUnsafeBufferPointer { t in
            @inline(__always) func quad(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> UInt32 {
                t[Int(a)] | t[256 + Int(b)] | t[512 + Int(c)] | t[768 + Int(d)]
            }
            // Every quad but the last decodes to exactly 3 bytes; only the last can carry `=`.
            var o = 0
            var i = 0
            var invalid: UInt32 = 0
            while i + 4 < count {
                let n = quad(input[i], input[i + 1], input[i + 2], input[i + 3])
                invalid |= n
                out[o] = UInt8(truncatingIfNeeded: n >> 16)
                out[o + 1] = UInt8(truncatingIfNeeded: n >> 8)
                out[o + 2] = UInt8(truncatingIfNeeded: n)
                o += 3
                i += 4
            }
            let A = UInt8(ascii: "A")  // a padding `=` counts as zero bits
            let n = quad(input[i], input[i + 1], padding == 2 ? A : input[i + 2], padding >= 1 ? A : input[i + 3])
            invalid |= n
            out[o] = UInt8(truncatingIfNeeded: n >> 16)
            o += 1
            if o < outputCount { out[o] = UInt8(truncatingIfNeeded: n >> 8); o += 1 }
            if o < outputCount { out[o] = UInt8(truncatingIfNeeded: n); o += 1 }
            return invalid & 0x8000_0000 == 0
        }
    }

    package static func decode(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let outputCount = decodedCount(input) else { return nil }
        var ok = false
        let output = [UInt8](unsafeUninitializedCapacity: outputCount) { out, initialized in
            ok = decode(input, into: UnsafeMutableRawBufferPointer(out))
            initialized = ok ? outputCount : 0
        }
        return ok ? output : nil
    }

    package static func decode(_ bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBufferPointer { decode($0) }
    }

    package static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode($0) }
    }
}
