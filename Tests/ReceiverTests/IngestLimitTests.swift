import Logging
@testable import Receiver
import Testing

/// The ingest budgets and the log limit, without I/O: time is passed in.
@Suite struct IngestLimitTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    @Test func bucketGivesItsBurstThenRefillsAtItsRate() {
        var bucket = TokenBucket(rate: 10, burst: 3, now: start)
        #expect((0..<5).map { _ in bucket.take(at: at(0)) } == [true, true, true, false, false])
        let result1 = bucket.take(at: at(50))
        #expect(!result1, "half a token")
        let result2 = bucket.take(at: at(100))
        #expect(result2)
        let result3 = bucket.take(at: at(100))
        #expect(!result3)
        // A long pause refills to the burst, never past it.
        #expect((0..<4).map { _ in bucket.take(at: at(60_000)) } == [true, true, true, false])
        #expect(!bucket.isFull(at: at(60_000)))
        #expect(bucket.isFull(at: at(60_300)))
        // Time going backwards (it cannot on one clock, but) takes nothing extra.
        let result4 = bucket.take(at: at(10))
        #expect(!result4)
    }

    @Test func anAddressInsideTheAllowlistIsNeverLimited() {
        var limits = Receiver.IngestLimits()
        limits.outsideAllowlistPerSecond = 1
        limits.outsideAllowlistBurst = 1
        var ingest = ChannelIngest(limits: limits, now: start)
        #expect((0..<10_000).allSatisfy { _ in ingest.admit(address: "110.75.1.1", outside: false, at: at(0)) == .admit })
        #expect(ingest.trackedAddresses == 0, "inside addresses are not even tracked")
    }

    @Test func eachOutsideAddressHasItsOwnBudget() {
        var limits = Receiver.IngestLimits()
        limits.outsideAllowlistPerSecond = 2
        limits.outsideAllowlistBurst = 5
        var ingest = ChannelIngest(limits: limits, now: start)
        let flood = (0..<100).map { _ in ingest.admit(address: "203.0.113.9", outside: true, at: at(0)) }
        #expect(flood.filter { $0 == .admit }.count == 5)
        #expect(flood.last == .addressLimited)
        let result5 = ingest.admit(address: "203.0.113.10", outside: true, at: at(0))
        #expect(result5 == .admit, "another address is not held back")
        let result6 = ingest.admit(address: "203.0.113.9", outside: true, at: at(499))
        #expect(result6 == .addressLimited)
        let result7 = ingest.admit(address: "203.0.113.9", outside: true, at: at(500))
        #expect(result7 == .admit, "2 a second")
        // Over ten seconds the flood gets its burst and its rate, nothing more.
        var admitted = 0
        for step in 0..<1000 where ingest.admit(address: "203.0.113.11", outside: true, at: at(step * 10)) == .admit {
            admitted += 1
        }
        #expect(admitted >= 5 + 19 && admitted <= 5 + 20)
    }

    @Test func zeroRateMeansNoLimitPerAddress() {
        var limits = Receiver.IngestLimits()
        limits.outsideAllowlistPerSecond = 0
        var ingest = ChannelIngest(limits: limits, now: start)
        #expect((0..<1000).allSatisfy { _ in ingest.admit(address: "203.0.113.9", outside: true, at: at(0)) == .admit })
    }

    @Test func theChannelCapHoldsEveryAddressAndIsOffByDefault() {
        var ingest = ChannelIngest(limits: Receiver.IngestLimits(), now: start)
        #expect((0..<100_000).allSatisfy { _ in ingest.admit(address: "110.75.1.1", outside: false, at: at(0)) == .admit })

        var limits = Receiver.IngestLimits()
        limits.channelPerSecond = 100
        ingest = ChannelIngest(limits: limits, now: start)
        let second = (0..<150).map { _ in ingest.admit(address: "110.75.1.1", outside: false, at: at(0)) }
        #expect(second.filter { $0 == .admit }.count == 100, "one second's worth at once")
        #expect(second.last == .channelLimited)
        let result8 = ingest.admit(address: "110.75.1.2", outside: false, at: at(10))
        #expect(result8 == .admit, "refilled at 100 a second")
    }

    @Test func trackedAddressesAreBounded() {
        var limits = Receiver.IngestLimits()
        limits.outsideAllowlistPerSecond = 1
        limits.outsideAllowlistBurst = 2
        limits.trackedAddresses = 100
        var ingest = ChannelIngest(limits: limits, now: start)
        for index in 0..<100 { _ = ingest.admit(address: "198.51.100.\(index)", outside: true, at: at(0)) }
        #expect(ingest.trackedAddresses == 100)
        // Full of buckets in use: new addresses share one bucket, so a spread flood still has one budget.
        let spread = (0..<50).map { ingest.admit(address: "203.0.113.\($0)", outside: true, at: at(0)) }
        #expect(spread.filter { $0 == .admit }.count == 2)
        #expect(ingest.trackedAddresses == 100)
        // Once the old buckets have refilled they are forgotten and new addresses are tracked again.
        let result9 = ingest.admit(address: "192.0.2.1", outside: true, at: at(5_000))
        #expect(result9 == .admit)
        #expect(ingest.trackedAddresses == 1)
    }
}

@Suite struct LogRateLimitTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    @Test func firstLineAtOnceThenOneAnIntervalWithTheCount() {
        var limit = LogRateLimit(interval: .seconds(1))
        let result10 = limit.record("a", at: at(0))
        #expect(result10 == .write(suppressed: 0))
        #expect((1...99).allSatisfy { limit.record("a", at: at($0 * 5)) == .suppress })
        let result11 = limit.record("b", at: at(500))
        #expect(result11 == .write(suppressed: 0), "each place has its own interval")
        #expect(limit.nextDue == at(1000))
        let result12 = limit.due(at: at(999))
        #expect(result12.isEmpty)
        let due = limit.due(at: at(1000))
        #expect(due.count == 1 && due.first?.key == "a" && due.first?.suppressed == 99)
        // The count was said: the next line waits another interval.
        let result13 = limit.record("a", at: at(1100))
        #expect(result13 == .suppress)
        let result14 = limit.record("a", at: at(2100))
        #expect(result14 == .write(suppressed: 1), "the count rides on the next line when it comes first")
        let result15 = limit.due(at: at(2100))
        #expect(result15.isEmpty)
        // Places with nothing left out are forgotten.
        _ = limit.due(at: at(10_000))
        #expect(limit.nextDue == nil)
        let result16 = limit.record("a", at: at(10_001))
        #expect(result16 == .write(suppressed: 0))
    }

    @Test func handlerWritesAFewLinesAndSaysHowManyItLeftOut() async throws {
        let lines = CollectedLines()
        let logger = Logger(label: "payhook.test") {
            RateLimitedLogHandler(wrapping: DeferredMetadataLogHandler(label: $0, stream: lines), interval: .milliseconds(300))
        }
        for index in 0..<500 {
            logger.error("callback not stored", metadata: ["channel": "alipay", "attempt": "\(index)"])
            logger.info("not limited")
        }
        #expect(lines.all.filter { $0.contains("not limited") }.count == 500, "below warning: every line")
        // Wait for the count of the last interval, which no new line carries.
        for _ in 0..<40 where !(lines.all.last?.contains("attempt=499") ?? false) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let limited = lines.all.filter { $0.contains("callback not stored") }
        #expect(limited.count >= 2 && limited.count <= 6, "the first at once, then one each 300 ms: \(limited.count)")
        #expect(limited.first?.contains("suppressed=") == false)
        #expect(limited.last?.contains("attempt=499") == true, "the last line left out, with its own metadata")
        #expect(limited.last?.contains("more like it)") == true)
        #expect(limited.count + limited.map(suppressedCount).reduce(0, +) == 500, "every line written or counted")
    }
}

/// The `suppressed=N` a rate-limited line carries, 0 when none.
func suppressedCount(_ line: String) -> Int {
    line.firstMatch(of: /suppressed=(\d+)/).flatMap { Int($0.1) } ?? 0
}
