/// Strict standard base64 (RFC 4648 §4, `=` padding required, no whitespace) into bytes,
/// without Foundation's `Data` round trips on the hot path.
enum Base64 {
    private static let table: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        return table
    }()

    static func decode(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = input.count
        guard count % 4 == 0 else { return nil }
        if count == 0 { return [] }
        var padding = 0
        if input[count - 1] == UInt8(ascii: "=") { padding += 1 }
        if input[count - 2] == UInt8(ascii: "=") { padding += 1 }
        let outputCount = count / 4 * 3 - padding
        var failed = false
        let table = Base64.table
        let output = table.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: outputCount) { out, initialized in
                initialized = 0
                // Every quad but the last decodes to exactly 3 bytes; only the last can carry `=`.
                var o = 0
                var i = 0
                while i + 4 < count {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])], c = table[Int(input[i + 2])], d = table[Int(input[i + 3])]
                    if (a | b | c | d) & 0xC0 != 0 { failed = true; return }
                    let n = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    out[o] = UInt8(truncatingIfNeeded: n >> 16)
                    out[o + 1] = UInt8(truncatingIfNeeded: n >> 8)
                    out[o + 2] = UInt8(truncatingIfNeeded: n)
                    o += 3
                    i += 4
                }
                let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                let c = padding == 2 ? 0 : table[Int(input[i + 2])]
                let d = padding >= 1 ? 0 : table[Int(input[i + 3])]
                if (a | b | c | d) & 0xC0 != 0 { failed = true; return }
                let n = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                out[o] = UInt8(truncatingIfNeeded: n >> 16)
                o += 1
                if o < outputCount { out[o] = UInt8(truncatingIfNeeded: n >> 8); o += 1 }
                if o < outputCount { out[o] = UInt8(truncatingIfNeeded: n); o += 1 }
                initialized = o
            }
        }
        return failed ? nil : output
    }

    static func decode(_ bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBufferPointer { decode($0) }
    }

    static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode($0) }
    }
}
