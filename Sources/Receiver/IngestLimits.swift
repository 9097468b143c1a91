import Synchronization

extension Receiver {
    /// How much a channel takes in before the body is read, so a flood cannot fill the queue.
    /// An address inside the channel's `allowed_ips` (or any address, for a channel without
    /// one) is never limited per address; the channel cap is off unless set.
    public struct IngestLimits: Sendable, Equatable {
        /// `receiver.outside_allowlist_per_second`: requests a second from each source address
        /// outside a channel's `allowed_ips`, per channel; 0 is no limit. Default 5.
        public var outsideAllowlistPerSecond: Double = 5
        /// `receiver.outside_allowlist_burst`: what such an address may send at once. Default 20.
        public var outsideAllowlistBurst = 20
        /// `receiver.channel_max_per_second`: requests a second for each channel from every
        /// address, one second's worth at once; 0 is off. Default 0 (off).
        public var channelPerSecond: Double = 0
        /// Addresses tracked per channel; past it, refilled buckets are forgotten and new
        /// addresses share one bucket. Default 65,536 (a few MB at most).
        public var trackedAddresses = 65_536

        public init() {}
    }
}

/// A token bucket: at most `burst` tokens, refilled at `rate` a second; each admitted
/// request takes one. Pure: the caller passes the time. (No package in the build has one:
/// swift-async-algorithms throttles a sequence, which is not a per-address budget.)
struct TokenBucket: Sendable, Equatable {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private(set) var updated: ContinuousClock.Instant

    init(rate: Double, burst: Int, now: ContinuousClock.Instant) {
        self.rate = rate
        self.burst = Double(max(1, burst))
        tokens = self.burst
        updated = now
    }

    /// Takes a token if there is one.
    mutating func take(at now: ContinuousClock.Instant) -> Bool {
        tokens = available(at: now)
        updated = max(updated, now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whether the bucket has refilled: then it is the same as a new one and can be forgotten.
    func isFull(at now: ContinuousClock.Instant) -> Bool {
        available(at: now) >= burst
    }

    private func available(at now: ContinuousClock.Instant) -> Double {
        guard now > updated else { return tokens }
        let elapsed = now - updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return min(burst, tokens + seconds * rate)
    }
}

/// One channel's buckets: one per source address outside its allowlist, and the channel's
/// cap. Pure: the caller passes the time.
struct ChannelIngest: Sendable {
    enum Decision: Equatable, Sendable {
        case admit
        /// The source address used up its budget.
        case addressLimited
        /// The channel as a whole is over its cap.
        case channelLimited
    }

    let limits: Receiver.IngestLimits
    private var cap: TokenBucket?
    private var addresses: [String: TokenBucket] = [:]
    /// Shared by new addresses while `addresses` is full of buckets still in use.
    private var overflow: TokenBucket?
    private var lastSweep: ContinuousClock.Instant

    init(limits: Receiver.IngestLimits, now: ContinuousClock.Instant) {
        self.limits = limits
        lastSweep = now
        if limits.channelPerSecond > 0 {
            cap = TokenBucket(rate: limits.channelPerSecond, burst: Int(limits.channelPerSecond.rounded(.up)), now: now)
        }
    }

    /// Whether the channel takes a request from `address` (outside its allowlist or not).
    mutating func admit(address: String, outside: Bool, at now: ContinuousClock.Instant) -> Decision {
        if outside && limits.outsideAllowlistPerSecond > 0 && !takeAddress(address, at: now) {
            return .addressLimited
        }
        if cap != nil && !cap!.take(at: now) { return .channelLimited }
        return .admit
    }

    var trackedAddresses: Int { addresses.count }

    private mutating func takeAddress(_ address: String, at now: ContinuousClock.Instant) -> Bool {
        if addresses[address] != nil { return addresses[address]!.take(at: now) }
        if addresses.count >= limits.trackedAddresses && now - lastSweep >= .seconds(1) {
            addresses = addresses.filter { !$0.value.isFull(at: now) }
            lastSweep = now
        }
        let fresh = TokenBucket(rate: limits.outsideAllowlistPerSecond, burst: limits.outsideAllowlistBurst, now: now)
        guard addresses.count < limits.trackedAddresses else {
            if overflow == nil { overflow = fresh }
            return overflow!.take(at: now)
        }
        var bucket = fresh
        let taken = bucket.take(at: now)
        addresses[address] = bucket
        return taken
    }
}

/// A channel's `ChannelIngest` behind a lock, shared by the requests of that channel.
final class ChannelGate: Sendable {
    private let state: Mutex<ChannelIngest>

    init(limits: Receiver.IngestLimits) {
        state = Mutex(ChannelIngest(limits: limits, now: .now))
    }

    func admit(address: String, outside: Bool) -> ChannelIngest.Decision {
        let now = ContinuousClock.now
        return state.withLock { $0.admit(address: address, outside: outside, at: now) }
    }
}
