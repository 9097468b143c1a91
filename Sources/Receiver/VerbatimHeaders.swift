import HummingbirdCore
import HTTPTypes
import Logging
import NIOCore
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
                guard let end = takeUntilEmptyLine(bytes, &index) else { continue }
                heads.append(head(Array(pending[..<end])))
                pending.removeAll(keepingCapacity: true)
            case .chunkSize, .chunkDataEnd, .trailers:
                guard let line = takeLine(bytes, &index) else { continue }
                chunkLine(line)
            }
        }
        return heads
    }

    /// Appends to `pending` up to the empty line that ends a head; the head's length, or `nil`.
    private mutating func takeUntilEmptyLine(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> Int? {
        while index < bytes.count {
            let byte = bytes[index]
            pending.append(byte)
            index += 1
            if byte == 0x0A {
                let count = pending.count
                if count >= 2 && pending[count - 2] == 0x0A { return count }
                if count >= 3 && pending[count - 2] == 0x0D && pending[count - 3] == 0x0A { return count }
            }
        }
        if pending.count > maxHeadBytes { state = .lost }
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

    /// Reads a complete head (request line, fields, empty line) and sets up its body's framing.
    private mutating func head(_ block: [UInt8]) -> Head {
        var fields: [(name: ArraySlice<UInt8>, value: ArraySlice<UInt8>)] = []
        var lines = block.split(separator: 0x0A, omittingEmptySubsequences: false).map {
            $0.last == 0x0D ? $0.dropLast() : $0
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line.first != 0x20, line.first != 0x09 else { state = .lost; return nil }
            fields.append((line[..<colon], trimmed(line[(colon + 1)...])))
        }
        var contentLength: Int?
        var chunked = false
        for field in fields {
            let name = String(decoding: field.name, as: UTF8.self)
            if HeaderField.namesEqual(name, "Content-Length") {
                guard field.value.count <= 18, field.value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                      let length = Int(String(decoding: field.value, as: UTF8.self)),
                      contentLength == nil || contentLength == length else { state = .lost; return nil }
                contentLength = length
            } else if HeaderField.namesEqual(name, "Transfer-Encoding") {
                let last = field.value.split(separator: UInt8(ascii: ",")).last.map(trimmed)
                guard let last, String(decoding: last, as: UTF8.self).lowercased() == "chunked"
                else { state = .lost; return nil }
                chunked = true
            } else if HeaderField.namesEqual(name, "Upgrade") {
                state = .lost
                return nil
            }
        }
        if chunked {
            state = .chunkSize
        } else if let contentLength, contentLength > 0 {
            state = .fixedBody(remaining: contentLength)
        } else {
            state = .head
        }
        guard block.contains(where: { $0 >= 0x80 }) else { return nil }
        return fields.map { HeaderField(name: String(decoding: $0.name, as: UTF8.self), bytes: $0.value) }
    }

    private func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }) else { return bytes[bytes.endIndex...] }
        let last = bytes.lastIndex(where: { !isSpace($0) })!
        return bytes[first...last]
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

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let heads = RawHeadQueue()
        do {
            try channel.pipeline.syncOperations.addHandler(RawHeadTap(heads: heads))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return http1.setup(channel: channel, logger: logger).map { Value(asyncChannel: $0, heads: heads) }
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
    /// HTTP/1 with header values kept as their bytes (see `VerbatimHeadersHTTP1Channel`).
    static func verbatimHeadersHTTP1(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            VerbatimHeadersHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: configuration))
        }
    }
}
