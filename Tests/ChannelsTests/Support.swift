import ChannelClients
import Foundation
import PayhookCore
import Simulator
import Testing
@testable import Channels

enum Fixture {
    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    static func text(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    /// `{"headers": {...}, "body": "..."}` fixtures.
    static func signedMessage(_ name: String) throws -> (headers: [HeaderField], body: [UInt8]) {
        let object = try JSONSerialization.jsonObject(with: Data(try bytes(name))) as! [String: Any]
        let headers = (object["headers"] as! [String: String]).map { HeaderField(name: $0.key, value: $0.value) }
            .sorted { $0.name < $1.name }
        return (headers, Array((object["body"] as! String).utf8))
    }

    static func json(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try bytes(name))) as! [String: Any]
    }
}

/// Answers channel requests in-process through a channel side (no sockets).
struct InProcessTransport: QueryTransport {
    let answer: @Sendable (ReceivedRequest) -> ChannelResponse

    func send(_ request: ChannelRequest, timeout: Duration) async throws(QueryError) -> ChannelResponse {
        answer(ReceivedRequest(request))
    }
}

/// Fails every request with the given error.
struct FailingTransport: QueryTransport {
    let error: QueryError
    func send(_ request: ChannelRequest, timeout: Duration) async throws(QueryError) -> ChannelResponse {
        throw error
    }
}

func expectRejection(_ reason: ReasonCode, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(Rejection) -> PaymentNotification) {
    do {
        let notification = try body()
        Issue.record("expected \(reason.rawValue), got \(notification)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.reason == reason, "\(error)", sourceLocation: sourceLocation)
    }
}

func expectQueryError(_ kind: QueryError.Kind, _ code: QueryError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(QueryError) -> OrderQueryResult) {
    do {
        let result = try body()
        Issue.record("expected \(kind) \(code), got \(result)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.kind == kind && error.code == code, "\(error)", sourceLocation: sourceLocation)
    }
}
