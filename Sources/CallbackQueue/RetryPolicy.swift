/// When to try a callback again: `delay = min(maxDelay, base * factor^(attempt-1))` with
/// full jitter (a uniform pick in `0...delay`), and at most `maxAttempts` attempts.
public struct RetryPolicy: Sendable, Equatable {
    /// Delay cap before jitter for the first retry. Default 5 s.
    public var baseSeconds: Double
    /// Growth per attempt. Default 2.
    public var factor: Double
    /// Upper bound of any delay. Default 3600 s.
    public var maxDelaySeconds: Double
    /// Attempts in all, the first included; the next failure after the last is `dead`. Default 12.
    public var maxAttempts: Int

    public init(baseSeconds: Double = 5, factor: Double = 2, maxDelaySeconds: Double = 3600, maxAttempts: Int = 12) {
        self.baseSeconds = baseSeconds
        self.factor = factor
        self.maxDelaySeconds = maxDelaySeconds
        self.maxAttempts = maxAttempts
    }

    /// The largest delay after failed attempt number `attempt` (1-based), before jitter.
    public func delayCap(afterAttempt attempt: Int) -> Double {
        let exponent = Double(max(attempt, 1) - 1)
        let grown = baseSeconds * pow(factor, exponent)
        return grown.isFinite ? min(maxDelaySeconds, grown) : maxDelaySeconds
    }

    public enum Decision: Sendable, Equatable {
        case retry(afterSeconds: Double)
        case giveUp
    }

    /// What to do after attempt number `attempt` failed transiently.
    public func decide(afterFailedAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Decision {
        guard attempt < maxAttempts else { return .giveUp }
        let cap = delayCap(afterAttempt: attempt)
        return .retry(afterSeconds: cap > 0 ? Double.random(in: 0...cap, using: &random) : 0)
    }

    public func decide(afterFailedAttempt attempt: Int) -> Decision {
        var generator = SystemRandomNumberGenerator()
        return decide(afterFailedAttempt: attempt, using: &generator)
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    // Integer exponents by repeated squaring keep this free of libm differences.
    guard exponent >= 0, exponent == exponent.rounded(), exponent < 4096 else { return .infinity }
    var result = 1.0, factor = base, remaining = Int(exponent)
    while remaining > 0 {
        if remaining & 1 == 1 { result *= factor }
        factor *= factor
        remaining >>= 1
    }
    return result
}
