/// Calendar fields of a Unix time in a fixed UTC offset, by arithmetic (no `tm`, locale or
/// formatter): one conversion for the channels' wall-clock times, partition names and the
/// operator's UTC times. Howard Hinnant's days_from_civil / civil_from_days.
package struct CivilTime: Equatable, Sendable {
    package let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    /// The fields of `epochSeconds` at `offsetSeconds` east of UTC.
    package init(epochSeconds: Int64, offsetSeconds: Int = 0) {
        let local = epochSeconds + Int64(offsetSeconds)
        var days = Int(local / 86400)
        var rem = Int(local % 86400)
        if rem < 0 { rem += 86400; days -= 1 }
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp + (mp < 10 ? 3 : -9)
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        hour = rem / 3600
        minute = rem % 3600 / 60
        second = rem % 60
    }

    /// Days from 1970-01-01 to the given civil date.
    package static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// `yyyy-MM-dd`, then `separator`, then `HH:mm:ss`; `compact` drops the dashes and colons.
    package func text(separator: String = " ", compact: Bool = false) -> String {
        let dash = compact ? "" : "-", colon = compact ? "" : ":"
        return "\(Self.pad(year, 4))\(dash)\(Self.pad(month, 2))\(dash)\(Self.pad(day, 2))\(separator)"
            + "\(Self.pad(hour, 2))\(colon)\(Self.pad(minute, 2))\(colon)\(Self.pad(second, 2))"
    }

    private static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
