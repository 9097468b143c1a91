import HummingbirdCore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import PayhookCore
import Synchronization

// SwiftNIO's HTTP decoder turns every header value into a `String` before Hummingbird sees
// it, so bytes that are not UTF-8 arrive as U+FFFD. No package keeps the bytes: a small
// handler in front of the decoder reads the same bytes beside it, and the receiver takes a
// head's raw values only where they agree with what the decoder made of them.

/// The raw header fields of the request being answered, or `nil` when the decoded ones
/// are already verbatim (every value was UTF-8) or the raw reading lost track.
enum RawRequestHead {
    @TaskLocal static var current: [HeaderField]?

    /// Whether `raw` is the same head as the decoded one: the first `Host` is the authority,
    /// the rest the decoded fields in order, each value reading the same once decoded and
    /// legalized as HTTPTypes does. A head that does not agree is never used.
    static func agrees(_ raw: [HeaderField], authority: String?, fields: HTTPFields) -> Bool {
        var decoded = fields.makeIterator()
        var hostSeen = authority == nil
        for field in raw {
            if !hostSeen, HeaderField.namesEqual(field.name, "Host") {
                hostSeen = true
                guard legalized(field.value) == authority else { return false }
                continue
            }
            guard let next = decoded.next(), next.name.rawName == field.name,
                  legalized(field.value) == next.value else { return false }
        }
        return hostSeen && decoded.next() == nil
    }

    private static func legalized(_ value: String) -> String {
        HTTPField(name: .contentType, value: value).value
    }
}

/// Finds request heads in the bytes of one HTTP/1.1 connection: reads each head's fields
/// and skips its body by Content-Length or chunked framing. Pure; anything it does not
/// follow (an upgrade, an unframed body, a malformed line) makes it stop for good.
struct RawHeadParser {
    /// One request head: its fields, or `nil` when every byte was ASCII (nothing to add).
    typealias Head = [HeaderField]?

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case lost
    }

    private var state = State.head
    private var pending: [UInt8] = []
    /// The decoder refuses heads past 80 KiB (Hummingbird's default), so nothing longer is kept.
    private let maxHeadBytes: Int

    init(maxHeadBytes: Int = 80 * 1024 + 8192) {
        self.maxHeadBytes = maxHeadBytes
    }

    var isLost: Bool {
        if case .lost = state { return true }
        return false
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [Head] {
        var heads: [Head] = []
        var index = 0
        while index < bytes.count {
            switch state {
            case .lost:
                return heads
            case .fixedBody(let remaining):
                let taken = min(remaining, bytes.count - index)
                index += taken
                state = remaining == taken ? .head : .fixedBody(remaining: remaining - taken)
            case .chunkData(let remaining):
                let taken = min(remaining, bytes.count - index)
                index += taken
                state = remaining == taken ? .chunkDataEnd : .chunkData(remaining: remaining - taken)
            case .head:
                if pending.isEmpty && (bytes[index] == 0x0D || bytes[index] == 0x0A) {
                    index += 1  // empty lines before a request line are allowed
                    continue
                }
                let start = index
                guard let end = Self.endOfHead(bytes, from: index, after: pending) else {
                    pending += bytes[index...]
                    index = bytes.count
                    if pending.count > maxHeadBytes { state = .lost }
                    continue
                }
                index = end
                if pending.isEmpty {
                    // The usual case: the whole head is in this read, parsed where it lies.
                    heads.append(head(UnsafeRawBufferPointer(rebasing: bytes[start..<end])))
                } else {
                    pending += bytes[start..<end]
                    let block = pending
                    pending.removeAll(keepingCapacity: true)
                    heads.append(block.withUnsafeBytes { head($0) })
                }
            case .chunkSize, .chunkDataEnd, .trailers:
                guard let line = takeLine(bytes, &index) else { continue }
                chunkLine(line)
            }
        }
        return heads
    }

    /// Where the empty line that ends a head ends (the index after its LF), looking from
    /// `from` with the head's earlier bytes in `before`; `nil` if not in these bytes.
    private static func endOfHead(_ bytes: UnsafeRawBufferPointer, from: Int, after before: [UInt8]) -> Int? {
        // The two bytes before each position, across the boundary with `before`.
        func byte(_ i: Int) -> UInt8? {
            if i >= from { return bytes[i] }
            let j = before.count - (from - i)
            return j >= 0 ? before[j] : nil
        }
        var i = from
        while i < bytes.count {
            if bytes[i] == 0x0A {
                if byte(i - 1) == 0x0A { return i + 1 }
                if byte(i - 1) == 0x0D && byte(i - 2) == 0x0A { return i + 1 }
            }
            i += 1
        }
        return nil
    }

    /// One line of chunk framing, without its line end, once it is complete.
    private mutating func takeLine(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> [UInt8]? {
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == 0x0A {
                defer { pending.removeAll(keepingCapacity: true) }
                return pending.last == 0x0D ? Array(pending.dropLast()) : pending
            }
            pending.append(byte)
        }
        if pending.count > maxHeadBytes { state = .lost }
        return nil
    }

    private mutating func chunkLine(_ line: [UInt8]) {
        switch state {
        case .chunkSize:
            let digits = line.prefix { $0 != UInt8(ascii: ";") && $0 != 0x20 && $0 != 0x09 }
            guard !digits.isEmpty, digits.count <= 15, let size = Int(String(decoding: digits, as: UTF8.self), radix: 16)
            else { state = .lost; return }
            state = size == 0 ? .trailers : .chunkData(remaining: size)
        case .chunkDataEnd:
            state = line.isEmpty ? .chunkSize : .lost
        case .trailers:
            if line.isEmpty { state = .head }
        default:
            state = .lost
        }
    }

    /// Reads a complete head (request line, fields, empty line) and sets up its body's
    /// framing. Fields are located in place; values are copied only for a head that is
    /// not all ASCII.
    private mutating func head(_ block: UnsafeRawBufferPointer) -> Head {
        var fields: [(name: Range<Int>, value: Range<Int>)] = []
        fields.reserveCapacity(16)
        var contentLength: Int?
        var chunked = false
        var nonASCII = false
        var lineStart = 0
        var first = true
        while lineStart < block.count {
            var lineEnd = lineStart
            while lineEnd < block.count && block[lineEnd] != 0x0A { lineEnd += 1 }
            let next = lineEnd + 1
            if lineEnd > lineStart && block[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            defer { lineStart = next; first = false }
            if first || lineEnd == lineStart { continue }  // the request line; the final empty line
            var colon = lineStart
            while colon < lineEnd && block[colon] != UInt8(ascii: ":") {
                nonASCII = nonASCII || block[colon] >= 0x80
                colon += 1
            }
            guard colon < lineEnd, colon > lineStart, block[lineStart] != 0x20, block[lineStart] != 0x09
            else { state = .lost; return nil }
            let value = Self.trimmed(block, colon + 1..<lineEnd)
            for i in value where block[i] >= 0x80 { nonASCII = true; break }
            let name = lineStart..<colon
            if Self.nameIs(block, name, "content-length") {
                guard value.count <= 18, value.allSatisfy({ block[$0] >= 0x30 && block[$0] <= 0x39 }),
                      let length = Int(String(decoding: UnsafeRawBufferPointer(rebasing: block[value]), as: UTF8.self)),
                      contentLength == nil || contentLength == length else { state = .lost; return nil }
                contentLength = length
            } else if Self.nameIs(block, name, "transfer-encoding") {
                var token = value
                if let comma = value.last(where: { block[$0] == UInt8(ascii: ",") }) { token = comma + 1..<value.upperBound }
                guard Self.nameIs(block, Self.trimmed(block, token), "chunked") else { state = .lost; return nil }
                chunked = true
            } else if Self.nameIs(block, name, "upgrade") {
                state = .lost
                return nil
            }
            fields.append((name, value))
        }
        if chunked {
            state = .chunkSize
        } else if let contentLength, contentLength > 0 {
            state = .fixedBody(remaining: contentLength)
        } else {
            state = .head
        }
        guard nonASCII else { return nil }
        return fields.map {
            HeaderField(name: String(decoding: UnsafeRawBufferPointer(rebasing: block[$0.name]), as: UTF8.self),
                        bytes: UnsafeRawBufferPointer(rebasing: block[$0.value]))
        }
    }

    /// Whether the bytes are `lowercase`, ASCII letters compared case-insensitively.
    private static func nameIs(_ block: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for (offset, i) in range.enumerated() {
            var byte = block[i]
            if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
            if byte != expected[offset] { return false }
        }
        return true
    }

    private static func trimmed(_ block: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper && (block[lower] == 0x20 || block[lower] == 0x09) { lower += 1 }
        while upper > lower && (block[upper - 1] == 0x20 || block[upper - 1] == 0x09) { upper -= 1 }
        return lower..<upper
    }
}

/// The heads one connection's tap has read and its requests have not yet taken, in order.
final class RawHeadQueue: Sendable {
    private let heads = Mutex<[RawHeadParser.Head]>([])

    func push(_ head: RawHeadParser.Head) {
        heads.withLock { $0.append(head) }
    }

    /// The next request's head; `nil` once the tap has lost track (the decoded head is used).
    func pop() -> RawHeadParser.Head {
        heads.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }
}

/// Sits in front of the HTTP decoder and passes every byte on unchanged.
final class RawHeadTap: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var parser = RawHeadParser()
    private let heads: RawHeadQueue

    init(heads: RawHeadQueue) {
        self.heads = heads
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !parser.isLost {
            for head in unwrapInboundIn(data).withUnsafeReadableBytes({ parser.feed($0) }) { heads.push(head) }
        }
        context.fireChannelRead(data)
    }
}

/// Hummingbird's HTTP/1 channel with the tap in front of its decoder; each request is
/// answered with its raw head in `RawRequestHead.current`.
struct VerbatimHeadersHTTP1Channel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let asyncChannel: HTTP1Channel.Value
        let heads: RawHeadQueue
        var channel: any Channel { asyncChannel.channel }
    }

    let http1: HTTP1Channel
    /// The whole request (head and body) must arrive within this (`RequestDeadlineHandler`).
    let readTimeout: TimeAmount
    let metrics: ReceiverMetrics?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let heads = RawHeadQueue()
        let deadline = RequestDeadlineHandler(timeout: readTimeout, metrics: metrics)
        do {
            try channel.pipeline.syncOperations.addHandler(RawHeadTap(heads: heads))
            try channel.pipeline.syncOperations.addHandler(RequestStartTap(deadline: deadline))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return http1.setup(channel: channel, logger: logger).assumeIsolated().flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(deadline, position: .after(decoder))
            return Value(asyncChannel: value, heads: heads)
        }.nonisolated()
    }

    func handle(value: Value, logger: Logger) async {
        let responder = http1.responder
        let connection = HTTP1Channel(responder: { request, writer, channel in
            var writer = Optional(writer)
            try await RawRequestHead.$current.withValue(value.heads.pop()) {
                try await responder(request, writer.take()!, channel)
            }
        }, configuration: http1.configuration)
        await connection.handleHTTP(asyncChannel: value.asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with header values kept as their bytes (see `VerbatimHeadersHTTP1Channel`),
    /// each request whole within `readTimeout`.
    static func verbatimHeadersHTTP1(configuration: HTTP1Channel.Configuration, readTimeout: TimeAmount,
                                     metrics: ReceiverMetrics?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            VerbatimHeadersHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: configuration),
                                        readTimeout: readTimeout, metrics: metrics)
        }
    }
}
