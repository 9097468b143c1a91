public import Logging
import Synchronization

/// Which lines of one call site are written: the first at once, then at most one an
/// interval, each saying how many like it were left out since the line before. Pure: the
/// caller passes the time. A line a refused request writes would otherwise be thousands a
/// second while the database is away.
struct LogRateLimit: Sendable {
    enum Decision: Equatable, Sendable {
        /// Write the line now; `suppressed` lines from the same place were left out before it.
        case write(suppressed: Int)
        case suppress
    }

    let interval: Duration
    private var windows: [String: Window] = [:]

    private struct Window {
        var opened: ContinuousClock.Instant
        var suppressed: Int
    }

    init(interval: Duration = .seconds(1)) {
        self.interval = interval
    }

    mutating func record(_ key: String, at now: ContinuousClock.Instant) -> Decision {
        if var window = windows[key], now - window.opened < interval {
            window.suppressed += 1
            windows[key] = window
            return .suppress
        }
        let suppressed = windows[key]?.suppressed ?? 0
        windows[key] = Window(opened: now, suppressed: 0)
        return .write(suppressed: suppressed)
    }

    /// The places whose interval is over with lines left out, and how many: each is to be
    /// said now, and its next line waits another interval. Places with nothing left out are
    /// forgotten.
    mutating func due(at now: ContinuousClock.Instant) -> [(key: String, suppressed: Int)] {
        var due: [(key: String, suppressed: Int)] = []
        for (key, window) in windows where now - window.opened >= interval {
            if window.suppressed > 0 {
                due.append((key, window.suppressed))
                windows[key] = Window(opened: now, suppressed: 0)
            } else {
                windows[key] = nil
            }
        }
        return due
    }

    /// When the earliest open interval ends, if any place has lines left out.
    var nextDue: ContinuousClock.Instant? {
        windows.values.filter { $0.suppressed > 0 }.map { $0.opened + interval }.min()
    }
}

/// The state every copy of a `RateLimitedLogHandler` shares: the limit, and the last line
/// left out at each place, written with its count once the interval is over.
final class LogRateLimiter: Sendable {
    private struct State {
        var limit: LogRateLimit
        var lastSuppressed: [String: (handler: any LogHandler, event: LogEvent)] = [:]
        var flushScheduled = false
    }

    private let state: Mutex<State>
    let interval: Duration

    init(interval: Duration) {
        self.interval = interval
        state = Mutex(State(limit: LogRateLimit(interval: interval)))
    }

    func log(_ event: LogEvent, through handler: any LogHandler) {
        let key = "\(event.level)|\(event.file):\(event.line)"
        let now = ContinuousClock.now
        let (decision, scheduleFlush) = state.withLock { state in
            let decision = state.limit.record(key, at: now)
            guard decision == .suppress else {
                state.lastSuppressed[key] = nil
                return (decision, false)
            }
            state.lastSuppressed[key] = (handler, event)
            defer { state.flushScheduled = true }
            return (decision, !state.flushScheduled)
        }
        if case .write(let suppressed) = decision {
            handler.log(event: Self.counted(event, suppressed: suppressed))
        }
        if scheduleFlush {
            Task { await self.flushWhenDue() }
        }
    }

    /// Writes the lines left out once their interval is over, until none are left.
    private func flushWhenDue() async {
        while true {
            // A line left out after this finds `flushScheduled` still set, or schedules anew.
            let next = state.withLock { state in
                let next = state.limit.nextDue
                if next == nil { state.flushScheduled = false }
                return next
            }
            guard let next else { return }
            try? await Task.sleep(until: next, clock: .continuous)  // never cancelled: a detached flush
            let lines = state.withLock { state in
                state.limit.due(at: .now).compactMap { due -> (any LogHandler, LogEvent)? in
                    guard let last = state.lastSuppressed.removeValue(forKey: due.key) else { return nil }
                    // The last line left out is written itself, with the count of the others.
                    return (last.handler, Self.counted(last.event, suppressed: due.suppressed - 1))
                }
            }
            for (handler, event) in lines { handler.log(event: event) }
        }
    }

    /// The line, saying how many like it were left out before it (`suppressed` in its metadata).
    private static func counted(_ event: LogEvent, suppressed: Int) -> LogEvent {
        guard suppressed > 0 else { return event }
        var event = event
        event.message = "\(event.message) (and \(suppressed) more like it)"
        event.metadata = (event.metadata ?? [:]).merging(["suppressed": "\(suppressed)"]) { _, new in new }
        return event
    }
}

/// A log handler that writes each call site's lines at most once an interval (default one
/// second) through the handler it wraps, with a count of the lines left out; lines below
/// `minimumLevel` (default `warning`) pass unlimited. Copies share one limiter.
public struct RateLimitedLogHandler: LogHandler {
    private var wrapped: any LogHandler
    private let limiter: LogRateLimiter
    private let minimumLevel: Logger.Level

    public init(wrapping handler: any LogHandler, interval: Duration = .seconds(1), minimumLevel: Logger.Level = .warning) {
        wrapped = handler
        limiter = LogRateLimiter(interval: interval)
        self.minimumLevel = minimumLevel
    }

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        if event.level < minimumLevel {
            wrapped.log(event: event)
        } else {
            limiter.log(event, through: wrapped)
        }
    }
}
