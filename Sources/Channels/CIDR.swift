/// An IPv4 or IPv6 network in CIDR notation, for the channels' `allowed_ips` and the
/// receiver's `trusted_proxies`. Pure: no DNS, no sockets.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// Network address bytes: 4 for IPv4, 16 for IPv6, host bits cleared.
    public let network: [UInt8]
    public let prefixLength: Int

    /// Parses `"10.0.0.0/8"`, `"2001:db8::/32"`, or a bare address (a /32 or /128).
    /// Host bits set in the address are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    public static func parse(_ text: String) -> CIDR? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress.parse(String(parts[0])) else { return nil }
        let maxBits = address.count * 8
        var prefix = maxBits
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(digits), value <= maxBits
            else { return nil }
            prefix = value
        }
        return CIDR(network: mask(address, prefix), prefixLength: prefix)
    }

    /// Whether the address text (IPv4, IPv6, or IPv4-mapped IPv6 `::ffff:a.b.c.d`) is inside.
    /// Unparseable text is never inside.
    public func contains(_ ipString: String) -> Bool {
        guard var address = IPAddress.parse(ipString) else { return false }
        if address.count == 16, network.count == 4, let v4 = IPAddress.unmapIPv4(address) {
            address = v4
        } else if address.count == 4, network.count == 16 {
            address = IPAddress.mapIPv4(address)
        }
        guard address.count == network.count else { return false }
        return CIDR.mask(address, prefixLength) == network
    }

    public var description: String {
        "\(IPAddress.format(network))/\(prefixLength)"
    }

    static func mask(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let bitsHere = max(0, min(8, prefix - i * 8))
            out[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        return out
    }
}

extension Array where Element == CIDR {
    /// Whether any network contains the address. An empty list contains nothing.
    public func containsAddress(_ ipString: String) -> Bool {
        // Every callback passes through here: a plain dotted-quad address is matched against
        // the IPv4 networks without building arrays; anything else takes the general path.
        if let v4 = IPAddress.parseIPv4Word(ipString) {
            for cidr in self {
                if cidr.network.count == 4 {
                    if cidr.containsIPv4(v4) { return true }
                } else if cidr.contains(ipString) {
                    return true
                }
            }
            return false
        }
        return contains { $0.contains(ipString) }
    }
}

extension CIDR {
    /// Same answer as `contains` for an IPv4 address, given as a big-endian word.
    @inline(__always)
    func containsIPv4(_ address: UInt32) -> Bool {
        let network = UInt32(self.network[0]) << 24 | UInt32(self.network[1]) << 16 | UInt32(self.network[2]) << 8 | UInt32(self.network[3])
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
        return address & mask == network
    }
}

/// IP address text parsing (RFC 4291 text forms, dotted-quad IPv4, zone ids dropped).
enum IPAddress {
    static func parse(_ text: String) -> [UInt8]? {
        var text = Substring(text)
        if text.hasPrefix("[") && text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let zone = text.firstIndex(of: "%") { text = text[..<zone] }
        if text.contains(":") { return parseIPv6(text) }
        return parseIPv4(text)
    }

    /// `parseIPv4` for bare text (no brackets, zone or colon), as a big-endian word; nil for
    /// anything `parse` would not read as this IPv4 address.
    static func parseIPv4Word(_ text: String) -> UInt32? {
        var word: UInt32 = 0
        var value: UInt32 = 0
        var digits = 0
        var dots = 0
        var leadingZero = false
        for b in text.utf8 {
            if b == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                word = word << 8 | value
                value = 0
                digits = 0
                leadingZero = false
                dots += 1
                continue
            }
            guard b >= 0x30, b <= 0x39, !leadingZero else { return nil }
            if digits == 0 && b == 0x30 { leadingZero = true }
            value = value * 10 + UInt32(b - 0x30)
            digits += 1
            guard value <= 255 else { return nil }
        }
        guard digits > 0, dots == 3 else { return nil }
        return word << 8 | value
    }

    /// Dotted quad: four decimal parts 0...255, no leading zeros (no octal-looking forms).
    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(4)
        var value = 0
        var digits = 0
        var leadingZero = false
        for b in text.utf8 {
            if b == UInt8(ascii: ".") {
                guard digits > 0, out.count < 3 else { return nil }
                out.append(UInt8(value))
                value = 0
                digits = 0
                leadingZero = false
                continue
            }
            guard b >= 0x30, b <= 0x39, !leadingZero else { return nil }
            if digits == 0 && b == 0x30 { leadingZero = true }
            value = value * 10 + Int(b - 0x30)
            digits += 1
            guard value <= 255 else { return nil }
        }
        guard digits > 0, out.count == 3 else { return nil }
        out.append(UInt8(value))
        return out
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let pieces = text.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        guard pieces.count <= 2 else { return nil }
        if pieces.count == 2 { sawGap = true }
        func groups(_ s: String, allowV4: Bool) -> [UInt16]? {
            if s.isEmpty { return [] }
            var result: [UInt16] = []
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, part) in parts.enumerated() {
                if allowV4 && i == parts.count - 1 && part.contains(".") {
                    guard let v4 = parseIPv4(part) else { return nil }
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard !part.isEmpty, part.count <= 4, let value = UInt16(part, radix: 16),
                    part.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) })
                else { return nil }
                result.append(value)
            }
            return result
        }
        if sawGap {
            guard let h = groups(pieces[0], allowV4: false), let t = groups(pieces[1], allowV4: true) else { return nil }
            head = h
            tail = t
            guard head.count + tail.count <= 7 else { return nil }
        } else {
            guard let h = groups(pieces[0], allowV4: true), h.count == 8 else { return nil }
            head = h
        }
        let all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for group in all {
            out.append(UInt8(group >> 8))
            out.append(UInt8(group & 0xFF))
        }
        return out
    }

    static func unmapIPv4(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF
        else { return nil }
        return Array(bytes[12..<16])
    }

    static func mapIPv4(_ bytes: [UInt8]) -> [UInt8] {
        Array(repeating: 0, count: 10) + [0xFF, 0xFF] + bytes
    }

    static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }
}
