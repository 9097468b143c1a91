package import Foundation
import PayhookCore

/// Exact, allocation-light parsing of the channels' time formats (no `DateFormatter`, whose
/// cost and locale rules do not belong on the hot path).
package enum Timestamps {
    /// `yyyy-MM-dd HH:mm:ss`, a wall-clock time in China Standard Time (+08:00), as Alipay sends.
    package static func parseAlipay(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parseAlipay($0) }
    }

    package static func parseAlipay(_ b: UnsafeBufferPointer<UInt8>) -> Date? {
        guard b.count == 19, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x20, b[13] == 0x3A, b[16] == 0x3A,
            let year = digits(b, 0, 4), let month = digits(b, 5, 2), let day = digits(b, 8, 2),
            let hour = digits(b, 11, 2), let minute = digits(b, 14, 2), let second = digits(b, 17, 2)
        else { return nil }
        return make(year, month, day, hour, minute, second, offsetSeconds: 8 * 3600)
    }

    /// RFC 3339 `yyyy-MM-ddTHH:mm:ss[.fff](Z|±hh:mm)`, as WeChat Pay and the points partner send.
    package static func parseRFC3339(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parseRFC3339($0) }
    }

    package static func parseRFC3339(_ b: UnsafeBufferPointer<UInt8>) -> Date? {
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20,
            b[13] == 0x3A, b[16] == 0x3A,
            let year = digits(b, 0, 4), let month = digits(b, 5, 2), let day = digits(b, 8, 2),
            let hour = digits(b, 11, 2), let minute = digits(b, 14, 2), let second = digits(b, 17, 2)
        else { return nil }
        var i = 19
        var fraction = 0.0
        if b[i] == 0x2E {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                fraction += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 0x5A || b[i] == 0x7A {
            guard i + 1 == b.count else { return nil }
        } else if b[i] == 0x2B || b[i] == 0x2D {
            guard i + 6 == b.count, b[i + 3] == 0x3A, let oh = digits(b, i + 1, 2), let om = digits(b, i + 4, 2),
                oh < 24, om < 60
            else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == 0x2D ? -1 : 1)
        } else {
            return nil
        }
        guard let date = make(year, month, day, hour, minute, second, offsetSeconds: offset) else { return nil }
        return date.addingTimeInterval(fraction)
    }

    /// `yyyy-MM-dd HH:mm:ss` in +08:00.
    package static func formatAlipay(_ date: Date) -> String {
        CivilTime(epochSeconds: Int64(date.timeIntervalSince1970.rounded(.down)), offsetSeconds: 8 * 3600).text()
    }

    /// RFC 3339 in +08:00, whole seconds, as WeChat Pay writes it.
    package static func formatRFC3339China(_ date: Date) -> String {
        CivilTime(epochSeconds: Int64(date.timeIntervalSince1970.rounded(.down)), offsetSeconds: 8 * 3600)
            .text(separator: "T") + "+08:00"
    }

    private static func digits(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int) -> Int? {
        var v = 0
        for i in start..<(start + count) {
            guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
            v = v * 10 + Int(b[i] - 0x30)
        }
        return v
    }

    private static func make(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, offsetSeconds: Int) -> Date? {
        guard (1...12).contains(mo), d >= 1, d <= daysIn(y, mo), h < 24, mi < 60, s < 61 else { return nil }
        let days = CivilTime.daysFromCivil(y, mo, d)
        let seconds = Int64(days) * 86400 + Int64(h * 3600 + mi * 60 + s) - Int64(offsetSeconds)
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    private static func daysIn(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
