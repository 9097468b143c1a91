/// Exact money text ⇄ minor units. Never through floating point.
public enum Money {
    /// Parses a plain decimal amount such as `"88.88"` into minor units (`8888`).
    ///
    /// Accepted: one or more ASCII digits, optionally a `.` followed by 1...`fractionDigits`
    /// digits. Everything else is nil: signs, exponents, spaces, empty text, a trailing or
    /// leading `.`, more fraction digits than the currency has (`"0.001"`), a second `.`, and
    /// values that overflow `Int64`. Leading zeros are accepted (`"01.50"` is 150).
    public static func parseMinorUnits(_ text: some StringProtocol, fractionDigits: Int = 2) -> Int64? {
        var copy = String(text)
        return copy.withUTF8 { parseMinorUnits(utf8: $0, fractionDigits: fractionDigits) }
    }

    /// The same over raw ASCII bytes.
    public static func parseMinorUnits(utf8 bytes: UnsafeBufferPointer<UInt8>, fractionDigits: Int = 2) -> Int64? {
        guard fractionDigits >= 0, fractionDigits <= 18, !bytes.isEmpty else { return nil }
        var whole: Int64 = 0
        var index = 0
        var wholeDigits = 0
        while index < bytes.count, bytes[index] != UInt8(ascii: ".") {
            let byte = bytes[index]
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            let (times10, o1) = whole.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int64(byte - 0x30))
            guard !o1, !o2 else { return nil }
            whole = sum
            wholeDigits += 1
            index += 1
        }
        guard wholeDigits > 0 else { return nil }
        var fraction: Int64 = 0
        var fractionCount = 0
        if index < bytes.count {
            index += 1  // the "."
            guard index < bytes.count else { return nil }  // "1."
            while index < bytes.count {
                let byte = bytes[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                fractionCount += 1
                guard fractionCount <= fractionDigits else { return nil }
                fraction = fraction * 10 + Int64(byte - 0x30)
                index += 1
            }
        }
        for _ in fractionCount..<fractionDigits { fraction *= 10 }
        var scale: Int64 = 1
        for _ in 0..<fractionDigits { scale *= 10 }
        let (scaled, o3) = whole.multipliedReportingOverflow(by: scale)
        let (total, o4) = scaled.addingReportingOverflow(fraction)
        guard !o3, !o4 else { return nil }
        return total
    }

    /// Formats minor units as a plain decimal (`8888` → `"88.88"`); negative values keep a `-`.
    public static func format(minorUnits: Int64, fractionDigits: Int = 2) -> String {
        guard fractionDigits > 0 else { return String(minorUnits) }
        let negative = minorUnits < 0
        let magnitude = minorUnits.magnitude
        var scale: UInt64 = 1
        for _ in 0..<fractionDigits { scale *= 10 }
        let whole = magnitude / scale
        var fraction = String(magnitude % scale)
        while fraction.count < fractionDigits { fraction = "0" + fraction }
        return (negative ? "-" : "") + "\(whole).\(fraction)"
    }
}
