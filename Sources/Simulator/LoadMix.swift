import Foundation

/// What kind of notify the load generator sends for an order, and what Payhook must make of it.
public enum NotifyKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Correctly signed, the channel says paid: the order is paid.
    case valid
    /// A valid notify sent twice, as channels resend: the order is paid once.
    case duplicate
    /// Signed with a key that is not the channel's: rejected `bad_signature`.
    case forged
    /// Amount changed after signing: rejected `bad_signature`.
    case tampered
    /// WeChat Pay notify signed an hour ago: rejected `stale_timestamp`.
    case stale
    /// WeChat Pay's probe signature (`WECHATPAY/SIGNTEST/…`): rejected `probe_signature`.
    case probe
    /// A body over the receiver's `max_body_bytes`: refused with 413, not stored.
    case oversize

    public var description: String { rawValue }

    /// Whether the order must end paid.
    public var paysOrder: Bool { self == .valid || self == .duplicate }

    /// How many times its notify is sent.
    public var sends: Int { self == .duplicate ? 2 : 1 }

    /// The callback state and rejection reason Payhook must record; nil: nothing stored.
    public var expectedCallback: (state: String, reason: String?)? {
        switch self {
        case .valid, .duplicate: ("done", nil)
        case .forged, .tampered: ("rejected", "bad_signature")
        case .stale: ("rejected", "stale_timestamp")
        case .probe: ("rejected", "probe_signature")
        case .oversize: nil
        }
    }

    /// The HTTP status class the receiver must answer with: 2xx stored, 413 refused.
    public func isExpectedStatus(_ status: Int) -> Bool {
        self == .oversize ? status == 413 : (200..<300).contains(status)
    }
}

/// The share of each ``NotifyKind`` in a load run, e.g.
/// `valid=80,duplicate=10,forged=3,tampered=3,stale=2,probe=1,oversize=1`.
public struct LoadMix: Sendable, Hashable, CustomStringConvertible {
    /// Relative weights; kinds not named weigh 0.
    public var weights: [NotifyKind: Int]

    public static let realistic = LoadMix(weights: [
        .valid: 80, .duplicate: 10, .forged: 3, .tampered: 3, .stale: 2, .probe: 1, .oversize: 1,
    ])

    public init(weights: [NotifyKind: Int]) { self.weights = weights }

    /// Parses `kind=weight` pairs separated by commas. Weights are whole numbers ≥ 0 and
    /// at least one is positive; a kind may appear once.
    public static func parse(_ text: String) throws(SimulatorError) -> LoadMix {
        var weights: [NotifyKind: Int] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let known = NotifyKind.allCases.map(\.rawValue).joined(separator: ", ")
            guard parts.count == 2, let kind = NotifyKind(rawValue: parts[0]) else {
                throw SimulatorError("--mix: '\(item)' is not kind=weight with kind one of \(known)")
            }
            guard let weight = Int(parts[1]), weight >= 0 else {
                throw SimulatorError("--mix: the weight of \(kind) must be a whole number ≥ 0")
            }
            guard weights[kind] == nil else { throw SimulatorError("--mix: \(kind) is named twice") }
            weights[kind] = weight
        }
        guard weights.values.contains(where: { $0 > 0 }) else { throw SimulatorError("--mix: no kind has a positive weight") }
        return LoadMix(weights: weights)
    }

    /// How many of `total` orders get each kind: proportional to the weights, rounded by
    /// largest remainder so the counts add up to `total` exactly.
    public func counts(total: Int) -> [NotifyKind: Int] {
        let sum = weights.values.reduce(0, +)
        guard sum > 0, total > 0 else { return [:] }
        var counts: [NotifyKind: Int] = [:]
        var remainders: [(NotifyKind, Int)] = []
        for kind in NotifyKind.allCases {
            let weight = weights[kind] ?? 0
            counts[kind] = total * weight / sum
            remainders.append((kind, total * weight % sum))
        }
        var missing = total - counts.values.reduce(0, +)
        // Stable: ties go to the kind listed first.
        for (kind, _) in remainders.enumerated().sorted(by: { ($0.element.1, -$0.offset) > ($1.element.1, -$1.offset) }).map(\.element)
            where missing > 0 {
            counts[kind, default: 0] += 1
            missing -= 1
        }
        return counts.filter { $0.value > 0 }
    }

    /// `total` kinds in the mix's proportions, spread evenly over the run (not in blocks),
    /// so every stretch of the run carries the same mix.
    public func sequence(total: Int) -> [NotifyKind] {
        let counts = counts(total: total)
        // Each kind's i-th order sits at (i + 0.5) / count of the run; merge by that position.
        var slots: [(position: Double, kind: NotifyKind)] = []
        slots.reserveCapacity(total)
        for kind in NotifyKind.allCases {
            let count = counts[kind] ?? 0
            for i in 0..<count { slots.append(((Double(i) + 0.5) / Double(count), kind)) }
        }
        return slots.enumerated().sorted { ($0.element.position, $0.offset) < ($1.element.position, $1.offset) }.map(\.element.kind)
    }

    public var description: String {
        NotifyKind.allCases.compactMap { kind in weights[kind].map { "\(kind)=\($0)" } }.joined(separator: ",")
    }
}

/// Exact latency percentiles over every sample (nearest rank on the sorted samples).
public struct LatencySummary: Sendable, Hashable {
    /// Sorted, in microseconds.
    public let samples: [Int64]

    public init(microseconds: [Int64]) { samples = microseconds.sorted() }

    public var count: Int { samples.count }

    /// The smallest sample at or above fraction `p` (0…1) of the samples; 0 without samples.
    public func percentile(_ p: Double) -> Int64 {
        guard !samples.isEmpty else { return 0 }
        let rank = Int((p * Double(samples.count)).rounded(.up))
        return samples[Swift.min(Swift.max(rank, 1), samples.count) - 1]
    }

    public var p50: Int64 { percentile(0.50) }
    public var p90: Int64 { percentile(0.90) }
    public var p99: Int64 { percentile(0.99) }
    public var maximum: Int64 { samples.last ?? 0 }
}
