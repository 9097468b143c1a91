import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SiteAPI
import SiteOrders
import Testing
import Yams

/// `docs/openapi.yaml` and the code agree: the routes the document names answer (and no
/// other), its error codes are the code's, its request fields are the ones the parser reads,
/// and a real answer has exactly the order fields the document requires. Schemathesis checks
/// the rest against a running server in `Deploy/test`.
@Suite struct OpenAPIDocumentTests {
    static var document: [String: Any] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try! String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        return try! Yams.load(yaml: text) as! [String: Any]
    }

    static func schema(_ name: String) -> [String: Any] {
        ((document["components"] as! [String: Any])["schemas"] as! [String: Any])[name] as! [String: Any]
    }

    @Test func theDocumentIsOpenAPI31() {
        #expect(Self.document["openapi"] as? String == "3.1.0")
    }

    @Test func errorCodesAreTheCodes() {
        let code = (Self.schema("Error")["properties"] as! [String: Any])["code"] as! [String: Any]
        #expect(Set(code["enum"] as! [String]) == Set(OrderError.allCodes))
    }

    @Test func requestFieldsAreTheParsersFields() {
        let create = Self.schema("CreateOrder")
        #expect(Set((create["properties"] as! [String: Any]).keys) == OrderRequest.fields)
        #expect(create["additionalProperties"] as? Bool == false)
        #expect(Set((Self.schema("Payer")["properties"] as! [String: Any]).keys) == OrderRequest.payerFields)
        let refund = Self.schema("CreateRefund")
        #expect(Set((refund["properties"] as! [String: Any]).keys) == RefundRequest.fields)
        #expect(refund["additionalProperties"] as? Bool == false)
    }

    @Test func everyDocumentedRouteAnswersAndAnUndocumentedOneIsNotFound() async throws {
        try await APIHarness.with { harness in
            let paths = Self.document["paths"] as! [String: [String: Any]]
            #expect(Set(paths.keys) == ["/v1/orders", "/v1/orders/{id}", "/v1/orders/{id}/close", "/v1/orders/{id}/refunds"])
            // (path, method, documented statuses), read before the Sendable test closure.
            let operations: [(String, String, Set<String>)] = paths.flatMap { path, operations in
                operations.map { method, operation in
                    (path, method, Set(((operation as! [String: Any])["responses"] as! [String: Any]).keys))
                }
            }
            try await harness.test { client in
                for (path, method, documented) in operations {
                        let uri = path.replacingOccurrences(of: "{id}", with: "NO_SUCH_ORDER")
                        try await client.execute(uri: uri, method: HTTPRequest.Method(method.uppercased())!,
                                                 headers: APIHarness.auth, body: ByteBuffer(string: "{}")) { response in
                            #expect(documented.contains(String(response.status.code)), "\(method) \(path): \(response.status)")
                            let answerCode = try code(response)
                            #expect(answerCode != "not_found")
                        }
                }
                try await client.execute(uri: "/v1/refunds", method: .post, headers: APIHarness.auth) { response in
                    let answerCode = try code(response)
                    #expect(answerCode == "not_found")
                }
            }
        }
    }

    @Test func anAnswerHasExactlyTheDocumentedOrderFields() async throws {
        try await APIHarness.with { harness in
            try await harness.test { client in
                try await client.execute(uri: "/v1/orders", method: .post, headers: APIHarness.auth,
                                         body: ByteBuffer(string: #"{"channel":"alipay","scene":"page","amount":"2.00","subject":"x"}"#)) { response in
                    let answer = try json(response)
                    let documented = Set(Self.schema("Order")["required"] as! [String])
                    #expect(Set(order(answer).keys) == documented)
                    #expect(Set(answer.keys) == Set(Self.schema("Created")["required"] as! [String]))
                }
            }
        }
    }
}
