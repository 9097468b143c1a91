import Logging
import Receiver
import Synchronization
import Testing

/// Collects written lines in memory.
final class CollectedLines: TextOutputStream, Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func write(_ string: String) { lines.withLock { $0.append(string) } }
}

@Suite struct LogHandlerTests {
    @Test func metadataSetOnTheLoggerAndPassedWithALineAreBothWritten() {
        let lines = CollectedLines()
        var logger = Logger(label: "payhook.test") { DeferredMetadataLogHandler(label: $0, stream: lines) }
        logger[metadataKey: "hb.request.id"] = "r-1"
        logger[metadataKey: "channel"] = "from-logger"
        logger.info("callback stored", metadata: ["callback_id": "42", "channel": "alipay"])
        logger.debug("not written at info level")

        #expect(lines.all.count == 1)
        let line = lines.all.first ?? ""
        #expect(line.contains(" info payhook.test:"))
        #expect(line.contains("callback_id=42"))
        #expect(line.contains("hb.request.id=r-1"))
        // A value passed with the line wins over the logger's own.
        #expect(line.contains("channel=alipay"))
        #expect(!line.contains("from-logger"))
        #expect(line.hasSuffix("callback stored\n"))
    }

    @Test func levelAndMetadataFollowValueSemantics() {
        let lines = CollectedLines()
        var first = Logger(label: "payhook.test") { DeferredMetadataLogHandler(label: $0, stream: lines) }
        first.logLevel = .error
        var second = first
        second.logLevel = .debug
        second[metadataKey: "worker"] = "w-2"
        first.warning("below error: dropped")
        second.debug("written")
        #expect(lines.all.count == 1)
        #expect(lines.all.first?.contains("worker=w-2") == true)
        #expect(first[metadataKey: "worker"] == nil)
    }
}
