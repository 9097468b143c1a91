public import Logging

/// Log lines on standard error, written by swift-log's `StreamLogHandler`, with the logger's
/// metadata kept as given until a line is written. `StreamLogHandler` renders its metadata
/// to text every time metadata is set, and Hummingbird sets a request id on every request's
/// logger: that rendering was 2% of `payhook serve`'s CPU, for lines that are rarely written.
public struct DeferredMetadataLogHandler: LogHandler {
    private var output: StreamLogHandler
    public var metadata: Logger.Metadata = [:]

    /// Lines go to standard error.
    public init(label: String) {
        output = StreamLogHandler.standardError(label: label)
    }

    /// Lines go to `stream` (for tests).
    public init(label: String, stream: any TextOutputStream & Sendable) {
        output = StreamLogHandler(label: label, stream: stream, metadataProvider: nil)
    }

    public var logLevel: Logger.Level {
        get { output.logLevel }
        set { output.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { output.metadataProvider }
        set { output.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        output.log(event: event)
    }
}
