import Foundation
import Testing
import Webhooks

/// Signing and scheduling, without I/O.
@Suite struct SigningTests {
    /// The specification's published example (standard-webhooks spec, also in its SDKs' tests).
    @Test func reproducesTheSpecificationsExample() throws {
        let signer = try WebhookSigner(secretFile: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
        let signature = signer.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                         body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func aRotationSignsWithEverySecret() throws {
        let file = """
            # the new secret first, the old one until every receiver has the new
            whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

            whsec_\(Data(repeating: 7, count: 32).base64EncodedString())
            """
        let signer = try WebhookSigner(secretFile: file)
        #expect(signer.keys.count == 2)
        let parts = signer.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                     body: Array(#"{"test": 2432232314}"#.utf8)).split(separator: " ")
        #expect(parts.count == 2 && parts[0] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(parts[1].hasPrefix("v1,") && parts[1] != parts[0])
    }

    @Test func badSecretFilesAreRefusedSayingWhy() {
        #expect(throws: WebhookSigner.SecretError.empty) { try WebhookSigner(secretFile: "# nothing\n\n") }
        #expect(throws: WebhookSigner.SecretError.notWhsec(line: 1)) { try WebhookSigner(secretFile: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") }
        #expect(throws: WebhookSigner.SecretError.badBase64(line: 2)) { try WebhookSigner(secretFile: "\nwhsec_%%%") }
        #expect(throws: WebhookSigner.SecretError.length(line: 1, bytes: 3)) { try WebhookSigner(secretFile: "whsec_AAAA") }
    }

    @Test func theScheduleWaitsWithJitterThenGivesUp() {
        let schedule = DeliverySchedule()
        #expect(schedule.maxAttempts == 8)
        var random = SystemRandomNumberGenerator()
        for (attempt, base) in [5.0, 300, 1800, 7200, 18_000, 36_000, 36_000].enumerated() {
            for _ in 0..<50 {
                let wait = schedule.wait(afterFailedAttempt: attempt + 1, using: &random)
                #expect(wait.map { $0 >= base * 0.8 && $0 <= base * 1.2 } == true, "attempt \(attempt + 1): \(String(describing: wait))")
            }
        }
        #expect(schedule.wait(afterFailedAttempt: 8, using: &random) == nil, "dead after the eighth attempt")
        let exact = DeliverySchedule(waits: [1, 2], jitter: 0)
        #expect(exact.wait(afterFailedAttempt: 2, using: &random) == 2)
    }

    @Test func onlyTwoHundredsAreDeliveredAndGoneDisables() {
        #expect(DeliverySchedule.verdict(status: 200) == .delivered)
        #expect(DeliverySchedule.verdict(status: 204) == .delivered)
        #expect(DeliverySchedule.verdict(status: 299) == .delivered)
        #expect(DeliverySchedule.verdict(status: 410) == .gone)
        for status in [100, 301, 302, 400, 404, 429, 500, 503] {
            #expect(DeliverySchedule.verdict(status: status) == .failed, "\(status)")
        }
        #expect(DeliverySchedule.verdict(status: nil) == .failed, "no answer")
    }
}
