import Foundation
import Testing
import Webhooks

/// Payhook's signatures checked by the Standard Webhooks reference library (PyPI
/// `standardwebhooks`, installed by `Deploy/test`): it accepts them, and refuses a body
/// changed after signing.
@Suite struct ReferenceLibraryTests {
    static let script = """
        import json, sys
        from standardwebhooks import Webhook
        request = json.load(sys.stdin)
        wh = Webhook(request["secret"])
        try:
            wh.verify(request["body"].encode(), request["headers"])
            print("verified")
        except Exception as error:
            print("refused:", type(error).__name__)
        """

    func verify(secret: String, body: String, headers: [(name: String, value: String)]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let request: [String: Any] = [
            "secret": secret, "body": body,
            "headers": Dictionary(headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first }),
        ]
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: request))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func theReferenceLibraryAcceptsPayhooksSignatures() throws {
        let secret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 251) }).base64EncodedString()
        let signer = try WebhookSigner(secretFile: secret)
        let body = #"{"type":"order.paid","timestamp":"2026-12-02T03:00:00.000000Z","data":{"out_trade_no":"O-1","amount":"88.88","subject":"支付"}}"#
        let now = Int64(Date().timeIntervalSince1970)
        let headers = signer.headers(id: "evt_0123456789abcdef0123456789abcdef", timestamp: now, body: Array(body.utf8))
        #expect(try verify(secret: secret, body: body, headers: headers) == "verified")
        #expect(try verify(secret: secret, body: body.replacingOccurrences(of: "88.88", with: "8.88"), headers: headers)
                    .hasPrefix("refused"))

        // During a rotation either secret verifies.
        let old = "whsec_" + Data(repeating: 42, count: 24).base64EncodedString()
        let rotating = try WebhookSigner(secretFile: secret + "\n" + old)
        let both = rotating.headers(id: "evt_r", timestamp: now, body: Array(body.utf8))
        #expect(try verify(secret: old, body: body, headers: both) == "verified")
        #expect(try verify(secret: secret, body: body, headers: both) == "verified")
    }
}
